"""Re-execute chapter notebooks in place so their stored outputs match the current code.

Usage: ``./dev refresh [NOTEBOOK ...]`` (default: every notebook under chapters/). Runs with the
"ci" budget (unless SPDL_BUDGET is set) and torch's CPU code paths pinned by tools/cpu_numerics.py
(as the test command does); seeds come from the notebooks themselves, and the outputs written are
what the book shows and what nbval checks.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

import cpu_numerics
import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(argv):
    os.environ.setdefault("SPDL_BUDGET", "ci")
    cpu_numerics.apply()  # the kernels below inherit it: the same code paths as nbval's
    paths = [pathlib.Path(a) for a in argv] or sorted((ROOT / "chapters").rglob("*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    for path in paths:
        start = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            timeout=1800,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
            # one output per stream, carriage returns applied: a progress bar is stored as the
            # terminal shows it (its last state), not as one line per redraw
            coalesce_streams=True,
        )
        client.execute()
        for cell in nb.cells:  # execution counts from 1 in order; no run-specific metadata
            cell.metadata.pop("execution", None)
        nbformat.write(nb, path)
        print(
            f"refreshed {path.relative_to(ROOT) if path.is_absolute() else path} "
            f"in {time.perf_counter() - start:.0f} s"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
