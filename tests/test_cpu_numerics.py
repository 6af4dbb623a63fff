"""The CPU code paths are pinned for the test run (tools/cpu_numerics.py, applied by conftest.py).

Without the pinning, float32 results (and so the chapters' stored outputs) depend on the CPU model:
AVX-512 and AVX2 kernels add in different orders.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
_SPEC = importlib.util.spec_from_file_location("cpu_numerics", ROOT / "tools" / "cpu_numerics.py")
assert _SPEC is not None and _SPEC.loader is not None
cpu_numerics = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(cpu_numerics)
PINNED = {"AVX2", "DEFAULT", "NO AVX"}  # never AVX512 (AVX2 where the CPU has it)


def test_settings_are_in_force_in_this_process():
    for key, value in cpu_numerics.CPU_NUMERICS.items():
        assert os.environ.get(key) == value, f"{key} is {os.environ.get(key)!r}, want {value!r}"
    # ATen reads its variable once: the kernels of this process are the AVX2 ones (or older,
    # on a machine without AVX2), never AVX-512
    assert torch.backends.cpu.get_cpu_capability() in PINNED


def test_a_child_process_inherits_them():
    # notebook kernels are child processes of pytest; they see the same settings
    code = (
        "import os, torch; print(os.environ['MKL_CBWR'], torch.backends.cpu.get_cpu_capability())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["COMPATIBLE", "AVX2"] or out.stdout.split()[1] != "AVX512"


def test_apply_keeps_a_value_already_set():
    env = {"MKL_CBWR": "AVX2"}
    assert cpu_numerics.apply(env)["MKL_CBWR"] == "AVX2"
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
