"""The landing page's gallery shows the review's four figures as the chapters store them.

Each gallery image must equal the stored output it was copied from (tools/gallery.py), so a
chapter refreshed without the gallery fails here instead of leaving an old picture on the
landing page; and the landing page shows each image and links to its chapter.
"""

import importlib.util

import pytest
from _book import ROOT


def _load_tool():
    spec = importlib.util.spec_from_file_location("gallery", ROOT / "tools" / "gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gallery = _load_tool()
INDEX = (ROOT / "book" / "index.md").read_text()


def test_the_four_figures_of_the_review():
    assert [f.number for f in gallery.FIGURES] == [1, 2, 3, 4]


@pytest.mark.parametrize("figure", gallery.FIGURES, ids=lambda f: f"figure{f.number}")
def test_gallery_image_is_the_current_stored_output(figure):
    assert figure.image.exists(), "run: python tools/gallery.py"
    assert figure.image.read_bytes() == gallery.stored_png(figure), "run: python tools/gallery.py"


@pytest.mark.parametrize("figure", gallery.FIGURES, ids=lambda f: f"figure{f.number}")
def test_landing_page_shows_the_image_and_links_to_its_chapter(figure):
    image = figure.image.relative_to(ROOT / "book").as_posix()
    chapter = "/" + figure.notebook.removesuffix(".ipynb")
    cards = [c.split("\n:::", 1)[0] for c in INDEX.split(":::{grid-item-card}")[1:]]
    card = [c for c in cards if f":img-top: {image}\n" in c]
    assert len(card) == 1, f"no gallery card shows {image}"
    assert f":link: {chapter}\n" in card[0] and ":link-type: doc" in card[0]
    assert card[0].lstrip().startswith(f"Figure {figure.number}")
