"""The "ci vs paper" table of a chapter cell (spdl_ref.experiments.results), on fixtures."""

import json

import pytest

from spdl_ref.experiments import aggregate
from spdl_ref.experiments.results import artifact_path, ci_vs_paper, load, pending_message

NAME = "fig_toy"


def _rows(budget, losses):
    """Aggregated rows of two models whose size differs between the budgets."""
    size = 20 if budget == "ci" else 60
    tasks, results = [], []
    for model, values in losses.items():
        for seed, v in enumerate(values):
            tasks.append({"model": model, "size": size, "seed": seed})
            results.append({"loss": v, "psnr": 30.0 + v, "label": "x"})
    return aggregate(tasks, results)


def _write(root, budget, rows, **extra):
    record = {
        "experiment": NAME,
        "budget": budget,
        "device": "cuda" if budget == "paper" else "cpu",
        "device_name": "NVIDIA H200" if budget == "paper" else "x86_64",
        "runs": max(r["runs"] for r in rows),
        "runs_requested": 5,
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "git_dirty": False,
        "seconds": 312.4,
        "metrics": {"runs": [], "aggregated": rows},
        **extra,
    }
    path = artifact_path(NAME, budget, root)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    return record


CI = {"ordinary": [0.30, 0.34], "equivariant": [0.40, 0.44]}
PAPER = {"ordinary": [0.21, 0.23, 0.22], "equivariant": [0.12, 0.14, 0.13]}


def test_ci_and_paper_side_by_side(tmp_path):
    _write(tmp_path, "paper", _rows("paper", PAPER))
    table = ci_vs_paper(NAME, ["loss"], ci=_rows("ci", CI), root=tmp_path)
    assert table.by == ("model",)  # size differs between the budgets, not within one
    assert table.pending is None
    ordinary = next(r for r in table.rows if r["label"] == {"model": "ordinary"})
    assert ordinary["ci"] == {
        "mean": pytest.approx(0.32),
        "std": pytest.approx(0.02828427),
        "runs": 2,
    }
    assert ordinary["paper"]["mean"] == pytest.approx(0.22) and ordinary["paper"]["runs"] == 3
    lines = str(table).splitlines()
    assert lines[0] == f"{NAME}: ci vs paper (mean ± std over n runs)"
    assert lines[1].split() == ["model", "metric", "ci", "paper"]
    assert lines[2].split() == ["ordinary", "loss", "0.32", "±", "0.028", "(n=2)", "0.22", "±",
                                "0.01", "(n=3)"]  # fmt: skip
    assert lines[3].startswith("equivariant  loss    0.42 ± 0.028 (n=2)  0.13 ± 0.01 (n=3)")
    assert lines[4] == "ci: this run"
    assert lines[5] == (
        f"paper: {tmp_path / 'paper' / NAME / 'result.json'}: 3 run(s) on cuda (NVIDIA H200), "
        "commit 0123456, 312 s"
    )


def test_pending_without_a_paper_artifact(tmp_path):
    _write(tmp_path, "ci", _rows("ci", CI))
    table = ci_vs_paper(NAME, ["loss", "psnr"], root=tmp_path)  # ci read from its artifact
    assert table.pending == pending_message(NAME)
    assert table.pending == (
        "pending: no paper-budget artifact yet "
        f"(run `python -m spdl_ref.reproduce {NAME} --budget paper`)"
    )
    text = str(table)
    assert text.splitlines()[-1] == f"paper: {table.pending}"
    assert [r["paper"] for r in table.rows] == [None] * 4
    assert all(line.endswith("pending") for line in text.splitlines()[2:6])
    assert "cpu (x86_64), commit 0123456" in text.splitlines()[-2]


def test_time_limited_and_dirty_artifacts_say_so(tmp_path):
    _write(tmp_path, "paper", _rows("paper", PAPER), stopped_by_time_limit=True, git_dirty=True)
    table = ci_vs_paper(NAME, ["loss"], ci=_rows("ci", CI), root=tmp_path)
    assert "3 run(s) of 5 (time limit)" in str(table) and "0123456+dirty" in str(table)


def test_unmatched_rows_and_explicit_labels(tmp_path):
    paper = _rows("paper", {"ordinary": [0.2], "wide": [0.1]})
    _write(tmp_path, "paper", paper)
    table = ci_vs_paper(NAME, ["loss"], ci=_rows("ci", CI), root=tmp_path)
    cells = {r["label"]["model"]: (r["ci"] is None, r["paper"] is None) for r in table.rows}
    assert cells == {
        "ordinary": (False, False),
        "equivariant": (False, True),
        "wide": (True, False),
    }
    assert "wide         loss    -" in str(table)
    with pytest.raises(ValueError, match="share the label"):
        ci_vs_paper(NAME, ["loss"], ci=_rows("ci", CI), by=(), root=tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not a readable JSON artifact"),
        ('{"experiment": "other", "budget": "paper"}', "has experiment 'other'"),
        (json.dumps({"experiment": NAME, "budget": "ci"}), "has budget 'ci'"),
        (json.dumps({"experiment": NAME, "budget": "paper"}), "no metrics.aggregated"),
        ("[]", "must hold a JSON object"),
    ],
)
def test_a_broken_artifact_is_named(tmp_path, content, match):
    path = artifact_path(NAME, "paper", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        load(NAME, "paper", tmp_path)


def test_bad_arguments(tmp_path):
    ci = _rows("ci", CI)
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['nope'\].*available: \['loss'"):
        ci_vs_paper(NAME, ["nope"], ci=ci, root=tmp_path)
    with pytest.raises(TypeError, match="metrics must be a non-empty list"):
        ci_vs_paper(NAME, "loss", ci=ci, root=tmp_path)
    with pytest.raises(TypeError, match="ci must be the rows"):
        ci_vs_paper(NAME, ["loss"], ci=3.0, root=tmp_path)
    with pytest.raises(ValueError, match="digits must be"):
        ci_vs_paper(NAME, ["loss"], ci=ci, digits=0, root=tmp_path)
    with pytest.raises(ValueError, match="name must be a plain folder name"):
        artifact_path("../x", "paper")
    assert load(NAME, "paper", tmp_path) is None


def test_a_run_at_the_paper_budget_fills_the_paper_column(tmp_path):
    # a chapter run with SPDL_BUDGET=paper passes its rows as paper=; the committed artifact is
    # then not read, and the ci column comes from the ci artifact (absent here: "-")
    _write(tmp_path, "paper", _rows("paper", {"ordinary": [9.0], "equivariant": [9.0]}))
    table = ci_vs_paper(NAME, ["loss"], paper=_rows("paper", PAPER), root=tmp_path)
    ordinary = next(r for r in table.rows if r["label"] == {"model": "ordinary"})
    assert ordinary["paper"]["mean"] == pytest.approx(0.22) and ordinary["ci"] is None
    assert table.pending is None and table.sources["paper"] == "this run"
    assert "paper: this run" in str(table)


def test_rows_told_apart_by_a_setting_the_runs_report(tmp_path):
    # a regularisation weight reported as a metric (constant over seeds) labels the rows
    tasks = [{"seed": s, "i": i} for i in range(2) for s in range(2)]
    results = [{"lam": [0.0, 1e-3][t["i"]], "acc": 0.9 + 0.01 * t["i"]} for t in tasks]
    rows = [{k: v for k, v in r.items() if k != "i"} for r in aggregate(tasks, results)]
    with pytest.raises(ValueError, match="share the label"):
        ci_vs_paper(NAME, ["acc"], ci=rows, root=tmp_path)
    table = ci_vs_paper(NAME, ["acc"], ci=rows, by=["lam"], root=tmp_path)
    assert [r["label"] for r in table.rows] == [{"lam": 0.0}, {"lam": 1e-3}]
    assert [r["ci"]["mean"] for r in table.rows] == pytest.approx([0.9, 0.91])


def test_committed_artifacts_are_records_of_registered_experiments_shown_in_their_chapter():
    # results/<budget>/<name>/result.json is the book's source for full-scale numbers: each must
    # load, name a registered experiment, list figures that exist, and be tabled by its chapter
    import pathlib

    from spdl_ref.experiments import names
    from spdl_ref.experiments.results import RESULTS

    found = sorted(RESULTS.glob("*/*/result.json"))
    assert found, "no committed artifact under results/"
    for path in found:
        budget, name = path.parent.parent.name, path.parent.name
        assert name in names(), f"{path}: {name!r} is not a registered experiment"
        record = load(name, budget)
        for figure in record.get("figures", []):
            assert (path.parent / figure).is_file(), f"{path}: missing figure {figure}"
        chapter = pathlib.Path(RESULTS.parent, record["chapter"])
        notebook = chapter.with_suffix(".ipynb") if chapter.suffix != ".ipynb" else chapter
        code = "".join(
            "".join(cell["source"])
            for cell in json.loads(notebook.read_text())["cells"]
            if cell["cell_type"] == "code"
        )
        assert f'ci_vs_paper("{name}"' in code, f"{notebook} does not table {name}"
