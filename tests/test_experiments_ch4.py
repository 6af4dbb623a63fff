"""Chapter 4's experiments: fig2 (Figure 2) and memory_efficient (Section 4.2.1).

Their smoke tasks run with torch's default device set to "meta" (anything made without the
experiment's device fails), and a smoke-sized task of each flow of Figure 2 does too.
"""

import json
import math

import pytest
import torch

from spdl_ref import experiments
from spdl_ref.experiments import fig2, memory_efficient


@pytest.mark.parametrize("name", ["fig2", "memory_efficient"])
def test_registered_with_tasks_at_both_budgets(name):
    exp = experiments.get(name)
    assert exp.chapter == "chapters/ch4_invertible" and exp.smoke is not None
    for budget in ("ci", "paper"):
        tasks = exp.make_tasks(budget, runs=2)
        json.dumps(tasks)
        assert len({t["seed"] for t in tasks}) == 2
    assert {t["model"] for t in fig2.tasks("paper", 1, 0)} == set(fig2.MODELS)
    residual = next(t for t in fig2.tasks("paper", 1, 0) if t["model"] == "residual")
    assert residual["logdet"] == "roulette" and residual["blocks"] == 100


@pytest.mark.parametrize("model", fig2.MODELS)
def test_fig2_makes_its_tensors_on_its_device(model, tmp_path):
    task = dict(
        fig2.smoke(0) if model == "residual" else fig2.SETTINGS["ci"][model],
        seed=0,
        model=model,
        n_train=32,
        n_test=32,
        grid=5,
        n_samples=8,
        iterations=2,
        hidden=4,
    )
    if model != "residual":
        task["layers"] = 2
    with torch.device("meta"):
        result = fig2.run(task, budget="ci", device="cpu")
        paths = fig2.plot([task], [result], tmp_path)
    json.dumps(result)
    assert all(p.is_file() for p in paths)
    assert len(result["grid_logp"]) == 5 and len(result["samples"]) == 8
    assert result["test_nll"] > 0 and result["gaussian_nll"] > 0
    assert ("lipschitz_max" in result) == (model == "residual")


def test_memory_efficient_smoke_on_its_device(tmp_path):
    task = memory_efficient.smoke(0)
    with torch.device("meta"):
        result = memory_efficient.run(task, budget="ci", device="cpu")
        paths = memory_efficient.plot([task], [result], tmp_path)
    json.dumps(result)
    assert all(p.is_file() for p in paths)
    assert result["memory_autograd"] > result["memory_efficient"]
    assert result["gradient_difference"] < 1e-5


def test_gaussian_nll_of_a_gaussian_sample():
    x = torch.randn(20000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert fig2.gaussian_nll(x) == pytest.approx(1 + math.log(2 * math.pi), abs=0.02)


def test_fig2_estimate_scales_with_the_iterations():
    exp = experiments.get("fig2")
    assert exp.estimate is fig2.estimate
    task = fig2.smoke(0)
    short = fig2.estimate(dict(task, iterations=4), budget="ci", device="cpu")
    long = fig2.estimate(dict(task, iterations=10**6), budget="ci", device="cpu")
    assert 0 < 100 * short < long
