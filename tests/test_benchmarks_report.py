"""Benchmarks write a table and a plot drawn from it; the book's benchmarks page shows them all.

No benchmark runs here (they measure time, which tests never assert): the tests check the shared
report helper, that each committed plot is what the committed table draws now (so a plot cannot
go stale silently), and that the page shows every table and plot with its command.
"""

import importlib.util

import matplotlib.image
import numpy as np
import pytest
from _book import ROOT

BENCH = ROOT / "benchmarks"
# loading a benchmark for its plot imports its peers, some of which use deprecated torch APIs
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _load_report():
    spec = importlib.util.spec_from_file_location("_report", BENCH / "_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load_report()
PAGE = (ROOT / "book" / "benchmarks.md").read_text()


def test_every_benchmark_is_registered():
    scripts = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(report.BENCHMARKS)


@pytest.mark.parametrize("name", report.BENCHMARKS)
def test_committed_plot_is_drawn_from_the_committed_table(name, tmp_path):
    rows = report.table_rows((BENCH / "results" / f"{name}.md").read_text())
    assert rows, name
    committed = BENCH / "results" / f"{name}.png"
    assert committed.exists(), f"run: python benchmarks/_report.py {name}"
    fresh = report.draw(name, out=tmp_path / f"{name}.png")
    a, b = matplotlib.image.imread(committed), matplotlib.image.imread(fresh)
    assert a.shape == b.shape and np.array_equal(a, b), f"run: python benchmarks/_report.py {name}"


@pytest.mark.parametrize("name", report.BENCHMARKS)
def test_page_shows_table_plot_and_command(name):
    assert f"```{{include}} ../benchmarks/results/{name}.md\n:start-line: 2" in PAGE
    assert f"```{{figure}} ../benchmarks/results/{name}.png" in PAGE
    assert f"`python benchmarks/{name}.py" in PAGE
    assert "**Machine.**" in PAGE


def test_table_rows_parses_a_markdown_table():
    text = "# T\n\nintro\n\n| a | b (ms) |\n| --- | ---: |\n| x | 1,234.5 |\n| y | 2e-3 |\n\nend\n"
    rows = report.table_rows(text)
    assert rows == [{"a": "x", "b (ms)": "1,234.5"}, {"a": "y", "b (ms)": "2e-3"}]
    assert report.number(rows[0]["b (ms)"]) == 1234.5
    with pytest.raises(ValueError, match="no Markdown table"):
        report.table_rows("no table here")
    with pytest.raises(ValueError, match="row has 1 cells"):
        report.table_rows("| a | b |\n| --- | --- |\n| x |\n")


def test_write_stores_the_table_with_the_machine_and_draws_from_it(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    seen = []

    def plot(rows):
        seen.append(rows)
        fig, ax = plt.subplots()
        ax.plot([report.number(r["n"]) for r in rows])
        return fig

    report.write("demo", ["# Demo", "", "| n |", "| --- |", "| 3 |"], plot)
    text = (tmp_path / "demo.md").read_text()
    assert text.startswith("# Demo\n") and "\nMachine: " in text and "torch " in text
    assert seen == [[{"n": "3"}]]
    assert (tmp_path / "demo.png").stat().st_size > 0
