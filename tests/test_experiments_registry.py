"""The experiment registry (spdl_ref.experiments): tasks, validation, aggregation."""

import math

import pytest
import torch

from spdl_ref import experiments
from spdl_ref.experiments import Experiment, aggregate


def _toy(name="toy_registry_test"):
    def tasks(budget, runs, seed):
        size = 4 if budget == "ci" else 16
        return [
            {"seed": seed + r, "size": size, "model": m} for m in ("a", "b") for r in range(runs)
        ]

    def run(task, *, budget, device):
        g = torch.Generator().manual_seed(task["seed"])
        x = torch.randn(task["size"], generator=g).to(device)
        return {"mean": float(x.mean()), "label": task["model"], "flag": True}

    return Experiment(name=name, description="toy", chapter="chapters/x", tasks=tasks, run=run)


def test_tasks_follow_budget_runs_and_seed():
    toy = _toy()
    ci = toy.make_tasks("ci", runs=3, seed=5)
    assert len(ci) == 6 and {t["seed"] for t in ci} == {5, 6, 7}
    assert {t["size"] for t in ci} == {4}
    assert {t["size"] for t in toy.make_tasks("paper")} == {16}


def test_aggregate_mean_and_spread_per_group():
    toy = _toy()
    tasks = toy.make_tasks("ci", runs=3)
    results = [toy.run(t, budget="ci", device="cpu") for t in tasks]
    rows = aggregate(tasks, results)
    assert len(rows) == 2 and all(r["runs"] == 3 for r in rows)
    for row in rows:
        vals = [
            r["mean"] for t, r in zip(tasks, results, strict=True) if t["model"] == row["model"]
        ]
        mean = sum(vals) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / 2)
        assert row["mean"]["mean"] == pytest.approx(mean, abs=1e-15)
        assert row["mean"]["std"] == pytest.approx(std, rel=1e-12)
        assert row["mean"]["min"] == min(vals) and row["mean"]["max"] == max(vals)
        # strings and booleans are not averaged
        assert "label" not in row and "flag" not in row


def test_register_get_and_unknown_name():
    toy = experiments.register(_toy("toy_registry_names"))
    assert experiments.get("toy_registry_names") is toy
    assert "toy_registry_names" in experiments.names()
    with pytest.raises(ValueError, match="an experiment named 'toy_registry_names'"):
        experiments.register(_toy("toy_registry_names"))
    with pytest.raises(ValueError, match=r"unknown experiment 'nope'; known: .*toy_registry_names"):
        experiments.get("nope")
    tasks, results = experiments.run_tasks("toy_registry_names", budget="ci", device="cpu")
    assert len(tasks) == len(results) == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "Bad-Name"}, ValueError, "name must be"),
        ({"name": "Upper"}, ValueError, "lower case"),
        ({"run": 3}, TypeError, "run must be callable"),
        ({"tasks": None}, TypeError, "tasks must be callable"),
        ({"plot": "x"}, TypeError, "plot must be callable or None"),
        ({"smoke": 1}, TypeError, "smoke must be callable or None"),
    ],
)
def test_experiment_bad_definitions(kwargs, error, match):
    base = dict(name="ok", description="d", chapter="c", tasks=lambda b, r, s: [], run=lambda t: {})
    base.update(kwargs)
    with pytest.raises(error, match=match):
        Experiment(**base)


def test_make_tasks_bad_inputs():
    toy = _toy()
    with pytest.raises(ValueError, match="budget must be one of ci, paper"):
        toy.make_tasks("huge")
    with pytest.raises(ValueError, match="runs must be"):
        toy.make_tasks("ci", runs=0)
    empty = Experiment(
        name="empty", description="", chapter="", tasks=lambda b, r, s: [], run=lambda t: {}
    )
    with pytest.raises(ValueError, match="made no tasks"):
        empty.make_tasks("ci")
    noseed = Experiment(
        name="noseed", description="", chapter="", tasks=lambda b, r, s: [{}], run=lambda t: {}
    )
    with pytest.raises(TypeError, match="with a 'seed'"):
        noseed.make_tasks("ci")
    with pytest.raises(ValueError, match="same length"):
        aggregate([{"seed": 0}], [])


def test_task_sizes_checks_the_task_and_applies_its_overrides():
    from spdl_ref.experiments._registry import task_sizes

    sizes = {"ci": {"n": 10, "iterations": 5}, "paper": {"n": 100, "iterations": 50}}
    task = {"seed": 0, "kind": "a", "n": 3}
    assert task_sizes(task, "paper", sizes, "kind", ("a", "b")) == {"n": 3, "iterations": 50}
    assert sizes["paper"]["n"] == 100  # the table itself is left alone
    with pytest.raises(ValueError, match=r"budget must be one of"):
        task_sizes(task, "huge", sizes)
    with pytest.raises(ValueError, match=r"'kind' in \['a', 'b'\]"):
        task_sizes({"seed": 0, "kind": "c"}, "ci", sizes, "kind", ("a", "b"))
    with pytest.raises(ValueError, match=r"task\['seed'\]"):
        task_sizes({"seed": -1}, "ci", sizes)
    with pytest.raises(ValueError, match=r"task\['n'\]"):
        task_sizes({"seed": 0, "n": 0}, "ci", sizes)


def test_save_figure_writes_the_png_and_closes_the_figure(tmp_path):
    import matplotlib.pyplot as plt

    from spdl_ref.experiments._registry import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    (path,) = save_figure(fig, tmp_path, "x.png", dpi=50)
    assert path == tmp_path / "x.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert fig.number not in plt.get_fignums()
