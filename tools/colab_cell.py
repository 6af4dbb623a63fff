"""Insert or update the Colab cell of every chapter notebook.

Usage: ``python tools/colab_cell.py [--check] [NOTEBOOK ...]`` (default: every notebook under
chapters/). The cell sits right after a chapter's title and does something only inside Google
Colab: it installs ``spdl_ref`` with the extras that the chapter needs, from the repository and
branch named in ``_config.yml`` (``repository.url``, ``repository.branch``), which is also where
the book's launch buttons point. Elsewhere (locally, in Binder, under nbval) it does nothing and
prints nothing. ``--check`` changes no file and exits with status 1 if a notebook's cell is
missing or differs from what this tool would write.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import nbformat
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CELL_ID = "colab-install"
#: The book's HTML leaves the cell out (``remove-cell``): it matters only to Colab.
METADATA = {"tags": ["remove-cell"]}

#: The extras of ``spdl-ref`` each chapter needs; "book" (matplotlib) for all of them.
CHAPTER_EXTRAS = {
    "chapters/ch5_equivariant.ipynb": ("book", "equivariant"),
    "chapters/ch6_optimisation.ipynb": ("book", "riemannian"),
}
DEFAULT_EXTRAS = ("book",)

TEMPLATE = """\
# Google Colab only (elsewhere this cell does nothing): install spdl_ref with the extras this
# chapter needs. With a GPU, spdl_ref.budget() picks the "paper" sizes and config.device() CUDA;
# os.environ["SPDL_BUDGET"] = "ci" picks the quick sizes of the stored outputs.
import sys

if "google.colab" in sys.modules:
    import subprocess

    requirement = "{requirement}"{fortran}
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement], check=True)"""

# escnn (the "equivariant" extra) declares py3nj, which compiles only with a Fortran compiler.
FORTRAN = """
    subprocess.run(
        "command -v gfortran || (apt-get -qq update && apt-get -qq install -y gfortran)",
        shell=True,
        check=True,
    )"""


def repository() -> tuple[str, str]:
    """The repository url and branch of ``_config.yml``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config.get("repository") or {}
    url = (repo.get("url") or "").rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"_config.yml: repository.url must be an https url, got {url!r}")
    return url, repo.get("branch") or "main"


def extras_for(notebook: pathlib.Path) -> tuple[str, ...]:
    """The extras the chapter ``notebook`` needs (see :data:`CHAPTER_EXTRAS`)."""
    key = notebook.resolve().relative_to(ROOT).as_posix()
    return CHAPTER_EXTRAS.get(key, DEFAULT_EXTRAS)


def requirement(extras) -> str:
    """The pip requirement that installs ``spdl-ref[extras]`` from the book's repository."""
    url, branch = repository()
    return f"spdl-ref[{','.join(extras)}] @ git+{url}@{branch}"


def cell_source(notebook: pathlib.Path) -> str:
    """The source of the Colab cell of ``notebook``."""
    extras = extras_for(notebook)
    fortran = FORTRAN if "equivariant" in extras else ""
    return TEMPLATE.format(requirement=requirement(extras), fortran=fortran)


def find_cell(nb):
    """Index of the Colab cell in ``nb``, or ``None``."""
    for i, cell in enumerate(nb.cells):
        if cell.get("id") == CELL_ID:
            return i
    return None


def update(notebook: pathlib.Path, check: bool = False) -> bool:
    """Insert or refresh the Colab cell of ``notebook``; return whether it changed (or would)."""
    nb = nbformat.read(notebook, as_version=4)
    source = cell_source(notebook)
    i = find_cell(nb)
    if i is not None and nb.cells[i].source == source and nb.cells[i].metadata == METADATA:
        return False
    if check:
        return True
    if i is None:
        cell = nbformat.v4.new_code_cell(source, metadata=dict(METADATA))
        cell.id = CELL_ID
        # right after the chapter's title (the first cell, a markdown heading)
        nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, cell)
    else:
        nb.cells[i].cell_type, nb.cells[i].source = "code", source
        nb.cells[i].metadata = dict(METADATA)
    nbformat.write(nb, notebook)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; fail if stale")
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "chapters").rglob("*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    stale = [p for p in paths if update(p, check=args.check)]
    for p in stale:
        print(f"{'stale' if args.check else 'updated'}: {p}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
