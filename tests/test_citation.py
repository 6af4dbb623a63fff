"""Release metadata agrees with itself: citation file, version, licence, changelog."""

import importlib.metadata
import pathlib
import re
import subprocess
import sys

import tomllib
import yaml

import spdl_ref

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
REVIEW_DOI = "10.1017/S0956792521000139"

# The top-level keys of Citation File Format 1.2.0 (its schema allows no others), and the ones
# it requires.
CFF_KEYS = {
    "abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi",
    "identifiers", "keywords", "license", "license-url", "message", "preferred-citation",
    "references", "repository", "repository-artifact", "repository-code", "title", "type",
    "url", "version",
}  # fmt: skip
CFF_REQUIRED = {"cff-version", "message", "title", "authors"}


def _cff():
    return yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))


def _is_person_or_entity(author):
    return isinstance(author, dict) and bool(author.get("family-names") or author.get("name"))


def test_citation_file_has_the_keys_of_cff_1_2_0():
    cff = _cff()
    assert cff["cff-version"] == "1.2.0"
    assert cff.keys() >= CFF_REQUIRED, f"missing {CFF_REQUIRED - cff.keys()}"
    assert cff.keys() <= CFF_KEYS, f"not CFF 1.2.0 keys: {cff.keys() - CFF_KEYS}"
    assert cff["type"] == "software"
    assert isinstance(cff["message"], str) and cff["message"].strip()
    assert isinstance(cff["title"], str) and cff["title"].strip()
    assert cff["authors"] and all(_is_person_or_entity(a) for a in cff["authors"])
    for ref in cff.get("references", []):
        assert {"type", "title", "authors"} <= ref.keys(), ref.get("title")
        assert ref["authors"] and all(_is_person_or_entity(a) for a in ref["authors"])


def test_citation_version_and_licence_are_the_package_ones():
    cff = _cff()
    # A string: YAML reads an unquoted 1.0 as a float, which would compare unequal.
    assert isinstance(cff["version"], str)
    assert cff["version"] == PROJECT["version"] == spdl_ref.__version__
    assert cff["license"] == PROJECT["license"] == "MIT"
    authors = [a["name"] for a in PROJECT["authors"]]
    assert [a.get("name") for a in cff["authors"]] == authors


def test_citation_references_the_review():
    (review,) = [r for r in _cff()["references"] if r.get("doi") == REVIEW_DOI]
    assert re.fullmatch(r"10\.\d{4,9}/\S+", review["doi"])
    assert review["type"] == "article"
    assert review["journal"] == "European Journal of Applied Mathematics"
    assert (review["year"], review["volume"], review["issue"]) == (2021, 32, 5)
    assert review["start"] < review["end"]
    # The same seven authors, in the same order, as the README names them.
    family = [a["family-names"] for a in review["authors"]]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ", ".join(family) in " ".join(readme.split()), family


def test_licence_file_is_the_declared_one():
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) 20\d\d The spdl-book authors$", text, re.M)
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_version_comes_from_the_package_metadata():
    assert importlib.metadata.version("spdl-ref") == PROJECT["version"], (
        "the installed metadata is stale: run ./dev setup"
    )
    assert spdl_ref.__version__ == PROJECT["version"]


def test_version_without_installation_reads_pyproject():
    # A source checkout that was never installed: no metadata for spdl-ref.
    code = (
        "import importlib.metadata as m\n"
        "def missing(name):\n"
        "    raise m.PackageNotFoundError(name)\n"
        "m.version = missing\n"
        "import spdl_ref\n"
        "print(spdl_ref.__version__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == PROJECT["version"]


def test_changelog_has_unreleased_and_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings[0] == "Unreleased", headings
    assert PROJECT["version"] in headings, f"CHANGELOG.md has no section for {PROJECT['version']}"
