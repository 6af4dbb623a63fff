"""Helpers shared by the book tests: the table of contents and one build of the book."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def toc_files(node=None):
    """Every page named in ``_toc.yml`` (root first), as paths without suffix."""
    if node is None:
        node = yaml.safe_load((ROOT / "_toc.yml").read_text())
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("root", "file"):
                yield value
            else:
                yield from toc_files(value)
    elif isinstance(node, list):
        for item in node:
            yield from toc_files(item)


# warnings are errors; nitpicky: every cross-reference must resolve
FLAGS = ["--warningiserror", "--nitpick", "--keep-going"]


def build_book(out: pathlib.Path) -> subprocess.CompletedProcess:
    """``jupyter-book build`` with warnings as errors, nitpicky (every cross-reference must
    resolve; _config.yml lists the outside types ignored), into ``out`` (HTML in
    out/_build/html)."""
    exe = shutil.which("jupyter-book") or str(pathlib.Path(sys.executable).parent / "jupyter-book")
    if not os.path.exists(exe):
        raise FileNotFoundError("jupyter-book is not installed; run ./dev setup")
    return subprocess.run(
        [exe, "build", str(ROOT), "--path-output", str(out), *FLAGS],
        capture_output=True,
        text=True,
        timeout=900,
    )
