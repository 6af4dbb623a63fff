"""The experiments of Chapter 7 (Section 6.4): registry entry, sizes by budget, device."""

import math

import pytest
import torch

from spdl_ref import experiments
from spdl_ref.experiments import ch7_open_problems as ch7


def test_metric_flows_is_registered_with_budgeted_tasks():
    exp = experiments.get("ch7_metric_flows")
    assert exp.chapter == "chapters/ch7_open_problems"
    ci, paper = exp.make_tasks("ci", runs=2), exp.make_tasks("paper", runs=2)
    assert {t["J"] for t in ci} < {t["J"] for t in paper}
    assert len(ci) == 2 * len({t["J"] for t in ci})


def test_metric_flows_smoke_task_runs_both_flows(device):
    exp = experiments.get("ch7_metric_flows")
    res = exp.run(exp.smoke(3), budget="ci", device=device)
    assert res["fr_mass_error"] < 1e-12 and res["fr_min_weight"] > 0
    assert res["w_moved"] > 0 and res["fr_train"] <= res["fr_train_start"]
    assert len(res["fr_weights"]) == 4 and len(res["w_curve"]) == len(res["x_test"])


def test_port_hamiltonian_comparison_small(device):
    out = ch7.port_hamiltonian_comparison(
        budget="ci", device=device, steps=10, step_sizes=(0.2, 2.0)
    )
    assert out["dg"]["0.2"]["balance_defect"] < 1e-14
    assert out["port"]["balance_defect"] < 1e-14
    assert set(out["conformal"]) == {"0.2", "2.0"}
    assert out["conformal"]["2.0"]["diverged"] is not None
    assert math.isinf(out["conformal"]["2.0"]["distance"])


def test_bad_budget_is_refused():
    with pytest.raises(ValueError, match="budget must be one of"):
        ch7.metric_flows(J=4, seed=0, budget="huge", device="cpu", steps=2)
    with pytest.raises(ValueError, match="J must be >= 1"):
        ch7.metric_flows(J=0, seed=0, budget="ci", device=torch.device("cpu"), steps=2)
