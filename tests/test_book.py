"""The book builds with warnings as errors, and its table of contents lists only real pages."""

import pathlib

import yaml
from _book import toc_files

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_toc_lists_only_existing_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = list(toc_files(toc))
    assert files
    for f in files:
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f


def test_every_chapter_notebook_is_in_the_toc():
    toc = set(toc_files())
    for nb in (ROOT / "chapters").rglob("*.ipynb"):
        if ".ipynb_checkpoints" in nb.parts:
            continue
        assert str(nb.relative_to(ROOT).with_suffix("")) in toc, nb


def test_bibliography_has_every_reference_of_the_review():
    import pybtex.database

    bib = pybtex.database.parse_file(str(ROOT / "book" / "references.bib"))
    # the review's 127 come first, in its order (so "[60]" is entry 60); references the book
    # adds follow them
    assert len(bib.entries) >= 127
    numbers = [
        int(line.split("\t")[0])
        for line in (ROOT / "book" / "review_refs_keys.tsv").read_text().splitlines()
    ]
    keys = [
        line.split("\t")[1]
        for line in (ROOT / "book" / "review_refs_keys.tsv").read_text().splitlines()
    ]
    assert numbers == list(range(1, 128))
    assert keys == list(bib.entries.keys())[:127]
    for key, entry in bib.entries.items():
        assert "title" in entry.fields and "year" in entry.fields, key
        assert entry.persons.get("author") or entry.persons.get("editor"), key


def test_book_builds_without_warnings(built_book):
    import pybtex.database

    html, out = built_book
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-6000:]
    assert "WARNING" not in log, log[-6000:]
    for page in [
        "book/index",
        "book/notation",
        "book/references",
        "book/api",
        "book/claims",
        "book/errata",
        "chapters/ch1_introduction",
    ]:
        assert (html / f"{page}.html").exists(), page
    assert (html / "index.html").exists()
    refs = (html / "book" / "references.html").read_text()
    n_refs = len(pybtex.database.parse_file(str(ROOT / "book" / "references.bib")).entries)
    assert refs.count('role="doc-biblioentry"') == n_refs or refs.count("citation") >= n_refs
    chapter = (html / "chapters" / "ch1_introduction.html").read_text()
    assert chapter.count("<img") >= 1  # the stored figures render
    api = (html / "book" / "api.html").read_text()
    # documented at the path people import, once; no inherited nn.Module.forward text
    assert api.count('id="spdl_ref.ode.ResNet"') == 1
    assert 'id="spdl_ref.ode.resnet.ResNet"' not in api
    assert "Define the computation performed at every call" not in api
