"""Pin the CPU code paths behind torch's float arithmetic: results independent of the CPU model.

On x86 the same torch build picks its kernels by what the processor offers: MKL's matrix products,
ATen's vectorised element-wise operations and reductions, and oneDNN's convolutions each have
AVX2, AVX-512 (and AMX) variants that add in a different order. Float32 training amplifies the
last-bit differences: the chapters' stored outputs, refreshed on one machine, then differ in the
third digit on a machine of another generation, and nbval fails. These settings make every x86
machine with AVX2 take the same code paths (MKL's conditional numerical reproducibility mode
``COMPATIBLE``, ATen's AVX2 kernels, oneDNN capped at AVX2):

* the root ``conftest.py`` applies them before pytest imports torch, so the unit tests and the
  notebook kernels nbval starts run with them;
* ``tools/refresh_notebooks.py`` applies them to the kernels that write the stored outputs.

A variable already set in the environment is kept. Run ``python tools/cpu_numerics.py`` for the
``export`` lines that reproduce the stored outputs in a shell of your own (book/using.md). The
cost is small for the book's tensors: the suite runs about as fast.

Mainly outside the review: it supports the reproducibility of every chapter (Sections 1-7).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: Environment variables and values that pin MKL, ATen and oneDNN to the same code paths on
#: every AVX2-capable x86 processor.
CPU_NUMERICS = {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "avx2",
    "DNNL_MAX_CPU_ISA": "AVX2",
}


def apply(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set each of :data:`CPU_NUMERICS` in ``environ`` unless it is set; return what is in force.

    Must run before torch is imported in the process it is meant for (or before a child process,
    such as a notebook kernel, starts).
    """
    for key, value in CPU_NUMERICS.items():
        environ.setdefault(key, value)
    return {key: environ[key] for key in CPU_NUMERICS}


if __name__ == "__main__":
    for key, value in CPU_NUMERICS.items():
        print(f"export {key}={value}")
