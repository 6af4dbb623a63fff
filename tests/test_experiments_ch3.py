"""Chapter 3's experiments: deep_limits (Theorem 3.3, §3.4.3) and adjoint_orders (Theorem 3.1)."""

import itertools
import json

import pytest
import torch
from control_helpers import one_thread  # noqa: F401 (a fixture)

from spdl_ref import experiments
from spdl_ref.experiments import adjoint_orders, deep_limits

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["adjoint_orders", "deep_limits"])
def test_registered_with_tasks_and_a_smoke_task_that_runs(name):
    exp = experiments.get(name)
    assert name in experiments.names() and exp.chapter == "chapters/ch3_optimal_control"
    for budget in ("ci", "paper"):
        tasks = exp.make_tasks(budget, runs=2, seed=5)
        assert {t["seed"] for t in tasks} == {5, 6}
        json.dumps(tasks)
    result = exp.run(exp.smoke(0), budget="ci", device="cpu")
    json.dumps(result)  # plain numbers only


def test_adjoint_orders_runs_with_the_default_device_unusable():
    """Everything is made on the experiment's device: 'meta' as the default device breaks any
    tensor made without one (as on a GPU run, where it would land on the CPU). Not deep_limits:
    spdl_ref.data makes its points on the default device before moving them."""
    exp = experiments.get("adjoint_orders")
    torch.set_default_device("meta")
    try:
        result = exp.run(exp.smoke(0), budget="ci", device="cpu")
    finally:
        torch.set_default_device(None)
    assert result["fitted_order"] == pytest.approx(2, abs=0.2)


def test_adjoint_orders_observes_each_method_order():
    tasks = [{"seed": 1, "method": m} for m in adjoint_orders.METHODS]
    for task in tasks:
        res = adjoint_orders.run(task, budget="ci", device="cpu")
        assert (
            res["order"] == {"explicit_euler": 1, "heun": 2, "kutta3": 3, "rk4": 4}[task["method"]]
        )
        assert all(abs(q - res["order"]) < 0.2 for q in res["observed_orders"]), res


def test_deep_limits_summary_of_a_small_run(monkeypatch):
    """Two seeds at K = 2, 4, 8 and a reference with J = 8: the summary picks the best seed,
    reports the spread, and the quantities of Theorem 3.3 behave as in Chapter 3."""
    monkeypatch.setitem(deep_limits.SIZES, "ci", dict(deep_limits.SIZES["ci"], reference=8))
    tasks = []
    for seed in (0, 1):
        tasks += [
            {"seed": seed, "problem": "h1", "method": m, "K": K}
            for m in ("explicit_euler", "heun")
            for K in (2, 4, 8)
        ]
        tasks.append({"seed": seed, "problem": "h1", "method": "continuous", "K": 8})
    # seed 1's Euler run at K = 8 stops after 2 L-BFGS iterations: not a minimiser
    tasks[2 + 7] = {**tasks[2 + 7], "max_iter": 2}
    results = [deep_limits.run(t, budget="ci", device="cpu") for t in tasks]
    s = deep_limits.summarise(tasks, results)
    euler = s["h1"]["explicit_euler"]["table"]
    assert [row["K"] for row in euler] == [2, 4, 8]
    assert euler[2]["spread"] > 1e-4  # the stopped run is worse ...
    stopped = results[9]["value"]
    assert euler[2]["value"] < stopped  # ... and the best seed is reported
    for method in ("explicit_euler", "heun"):
        table = s["h1"][method]["table"]
        gaps = [row["value"] - s["reference"]["value"] for row in table]
        assert all(g1 < g0 for g0, g1 in itertools.pairwise(gaps))
        assert all(row["E_infinity"] >= s["reference"]["value"] - 1e-9 for row in table)
    assert s["reference"]["spread"] < 1e-8 and s["reference"]["seeds"] == 2
