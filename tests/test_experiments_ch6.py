"""Chapter 6's experiments: fig4 (Figure 4) and mean_field (Theorem 6.1 against the NTK scaling)."""

import matplotlib
import pytest
import torch

from spdl_ref import experiments
from spdl_ref.experiments import fig4, mean_field

matplotlib.use("Agg")


@pytest.mark.parametrize("name", ["fig4", "mean_field"])
def test_smoke_task_makes_every_tensor_on_the_given_device(name):
    """With torch's default device set to "meta", a tensor made without the experiment's device
    would be a meta tensor and the run would fail; the smoke task must run on the CPU."""
    exp = experiments.get(name)
    task = exp.smoke(0)
    with torch.device("meta"):
        out = exp.run(task, budget="ci", device="cpu")
    assert out and all(isinstance(k, str) for k in out)


def test_fig4_tasks_and_review_start():
    tasks = experiments.get("fig4").make_tasks("paper", runs=2, seed=3)
    assert len(tasks) == 2 * len(fig4.METHODS) * len(fig4.STARTS)
    assert {t["seed"] for t in tasks} == {3, 4} and {t["steps"] for t in tasks} == {1000}
    out = fig4.run(
        {"seed": 0, "method": "GD", "start": "review", "steps": 3}, budget="ci", device="cpu"
    )
    assert out["path"][0] == [-0.5, 0.8] and len(out["losses"]) == 4
    # gradient descent with h = 0.01: the first step is theta - 0.01 grad V(theta)
    expected = torch.tensor([-0.5, 0.8], dtype=torch.float64) - 0.01 * torch.tensor(
        [4 * -0.5 - 4.2 * -0.125 + -0.03125 + 0.8, -0.5 + 1.6], dtype=torch.float64
    )
    torch.testing.assert_close(torch.tensor(out["path"][1], dtype=torch.float64), expected)
    assert out["max_delta_v2"] is None


def test_fig4_rgd_records_the_relativistic_factor():
    out = fig4.run(
        {"seed": 0, "method": "RGD", "start": "review", "steps": 50}, budget="ci", device="cpu"
    )
    path = torch.tensor(out["path"], dtype=torch.float64)
    # theta_(k+1) - theta_k = v / sqrt(1 + delta |v|^2): delta |v|^2 >= delta |step|^2
    steps = (path[1:] - path[:-1]).pow(2).sum(1)
    assert out["max_delta_v2"] >= fig4.RGD_DELTA * steps.max().item() > 0


@pytest.mark.parametrize(
    "task, match",
    [
        ({"seed": 0, "method": "SGD", "start": "review"}, "method"),
        ({"seed": 0, "method": "GD", "start": "anywhere"}, "start"),
        ({"seed": 0, "method": "GD", "start": "review", "steps": 0}, "steps"),
    ],
)
def test_fig4_bad_task(task, match):
    with pytest.raises(ValueError, match=match):
        fig4.run(task, budget="ci", device="cpu")
    with pytest.raises(ValueError, match="budget"):
        fig4.run({"seed": 0, "method": "GD", "start": "review"}, budget="huge", device="cpu")


def test_fig4_figure_has_a_legend_on_each_trajectory_panel():
    tasks = [
        {"seed": 0, "method": m, "start": s, "steps": 5} for s in fig4.STARTS for m in fig4.METHODS
    ]
    results = [fig4.run(t, budget="ci", device="cpu") for t in tasks]
    fig = fig4.figure(tasks, results)
    _loss, *paths = fig.axes
    assert len(paths) == len(fig4.STARTS)
    for ax in paths:
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert texts == list(fig4.METHODS.values())


def test_mean_field_scalings_and_slopes():
    tasks = experiments.get("mean_field").make_tasks("ci", runs=2)
    assert [t["scaling"] for t in tasks] == ["mean_field"] * 2 + ["ntk"] * 2
    rows = [
        {"m_J2": 4.0, "m_J4": 2.0, "m_J8": 1.0},
        {"m_J2": {"mean": 4.0}, "m_J4": 2.0, "m_J8": 1.0},
    ]
    assert mean_field.slopes(rows, "m") == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="two widths"):
        mean_field.slopes([{"m_J2": 1.0}], "m")


def test_mean_field_run_pairs_the_widths_and_starts_nested():
    task = {"seed": 1, "scaling": "ntk", "widths": [3, 6, 12], "steps": 2}
    out = mean_field.run(task, budget="ci", device="cpu")
    assert {k for k in out if k.startswith("rel_dev")} == {"rel_dev_J3", "rel_dev_J6"}
    assert out["time"] == pytest.approx(0.1) and out["scaling"] == "ntk"
    for J in (3, 6):
        assert out[f"w2_0_J{J}"] > 0 and out[f"dev_J{J}"] > 0
    fig = mean_field.figure([task], [out])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="scaling"):
        mean_field.run({"seed": 0, "scaling": "lazy"}, budget="ci", device="cpu")
