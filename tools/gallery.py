"""Copy the review's four figures, as the chapters reproduce them, into the landing page's gallery.

Usage: ``python tools/gallery.py [--check]``. Each gallery image is the first PNG output of one
cell of a chapter notebook (its stored output, the one the chapter page shows), written to
``book/_static/gallery/figure<N>.png``. Run it after refreshing a chapter that holds one of the
figures; ``--check`` changes nothing and exits with status 1 if an image is missing or differs
from its stored output (tests/test_gallery.py runs the same comparison).
"""

from __future__ import annotations

import argparse
import base64
import pathlib
import sys
from typing import NamedTuple

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
GALLERY = ROOT / "book" / "_static" / "gallery"


class Figure(NamedTuple):
    """A figure of the review and the notebook cell (by its id) that reproduces it."""

    number: int
    notebook: str
    cell: str

    @property
    def image(self) -> pathlib.Path:
        return GALLERY / f"figure{self.number}.png"


FIGURES = (
    Figure(1, "chapters/ch1_introduction.ipynb", "fd4bc7fc"),  # features through trained ResNets
    Figure(2, "chapters/ch4_invertible.ipynb", "fig2-flows"),  # normalising flows on two moons
    Figure(3, "chapters/ch5_equivariant.ipynb", "a9208707"),  # the two denoisers, on and off grid
    Figure(4, "chapters/ch6_optimisation.ipynb", "55e8c4b5"),  # optimisers on the camelback
)


def stored_png(figure: Figure) -> bytes:
    """The first PNG output stored in the figure's cell."""
    nb = nbformat.read(ROOT / figure.notebook, as_version=4)
    cells = [c for c in nb.cells if c.get("id") == figure.cell]
    if len(cells) != 1:
        raise LookupError(
            f"{figure.notebook}: no cell with id {figure.cell!r} (Figure {figure.number})"
        )
    for output in cells[0].get("outputs", []):
        png = output.get("data", {}).get("image/png")
        if png:
            return base64.b64decode(png if isinstance(png, str) else "".join(png))
    raise LookupError(
        f"{figure.notebook}, cell {figure.cell}: no PNG output (Figure {figure.number})"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; fail if stale")
    args = parser.parse_args(argv)
    stale = []
    for figure in FIGURES:
        png = stored_png(figure)
        if figure.image.exists() and figure.image.read_bytes() == png:
            continue
        stale.append(figure.image)
        if not args.check:
            figure.image.parent.mkdir(parents=True, exist_ok=True)
            figure.image.write_bytes(png)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
