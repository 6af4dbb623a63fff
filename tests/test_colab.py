"""Every chapter opens with the Colab cell of tools/colab_cell.py, current with _config.yml.

The cell installs ``spdl-ref`` with the extras the chapter needs from the repository that
``_config.yml`` names (the same place the launch buttons use), and only inside Colab.
"""

import importlib.util
import re
import subprocess
import sys
import types

import pytest
import yaml
from _book import ROOT

from spdl_ref._optional import EXTRAS


def _load_tool():
    spec = importlib.util.spec_from_file_location("colab_cell", ROOT / "tools" / "colab_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


colab_cell = _load_tool()
NOTEBOOKS = sorted(
    p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)


def _read(path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _needed_extras(nb):
    """The extras a chapter's own code needs, from the packages it (or what it calls) imports."""
    code = "\n".join(
        c.source for c in nb.cells if c.cell_type == "code" and c.get("id") != colab_cell.CELL_ID
    )
    needed = {"book"}  # every chapter plots
    if re.search(r"\bescnn|make_denoiser\(\s*[\"']equivariant", code):
        needed.add(EXTRAS["escnn"])
    if re.search(r"\bgeoopt\b", code):
        needed.add(EXTRAS["geoopt"])
    return needed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_has_the_current_colab_cell(path):
    nb = _read(path)
    cells = [i for i, c in enumerate(nb.cells) if c.get("id") == colab_cell.CELL_ID]
    assert cells == [1], f"{path.name}: the Colab cell must be the one right after the title"
    cell = nb.cells[1]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert cell.cell_type == "code" and cell.outputs == [], "the cell prints nothing"
    assert cell.metadata.get("tags") == ["remove-cell"]

    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    url, branch = config["url"].rstrip("/"), config.get("branch", "main")
    match = re.search(r'"spdl-ref\[([a-z,]+)\] @ git\+(\S+)@(\S+)"', cell.source)
    assert match, cell.source
    extras, cell_url, cell_branch = match.groups()
    assert (cell_url, cell_branch) == (url, branch), "run: python tools/colab_cell.py"
    assert set(extras.split(",")) == _needed_extras(nb), "update CHAPTER_EXTRAS in the tool"
    assert cell.source == colab_cell.cell_source(path), "run: python tools/colab_cell.py"


def _run_cell(source, monkeypatch, in_colab):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append((a, k)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "<colab cell>", "exec"), {})
    return calls


def test_the_cell_installs_only_inside_colab(monkeypatch, capsys):
    path = ROOT / "chapters" / "ch5_equivariant.ipynb"
    source = _read(path).cells[1].source
    assert _run_cell(source, monkeypatch, in_colab=False) == []
    calls = _run_cell(source, monkeypatch, in_colab=True)
    pip = [a[0] for a, _ in calls if isinstance(a[0], list)]
    assert len(pip) == 1 and pip[0][1:5] == ["-m", "pip", "install", "-q"]
    assert pip[0][-1] == colab_cell.requirement(("book", "equivariant"))
    assert any("gfortran" in str(a[0]) for a, _ in calls)  # escnn's py3nj compiles with it
    assert capsys.readouterr().out == ""


def test_check_mode_finds_nothing_stale():
    assert colab_cell.main(["--check"]) == 0
