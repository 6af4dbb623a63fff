"""The experiments of Chapters 1-2 (Figure 1, Sections 2.1, 2.3, 2.4.1): registered, runnable
tasks per seed, and the figure and metrics made from results. (Their smoke tasks run under a
meta default device in tests/test_devices_meta.py.)"""

import math

import pytest
import torch

from spdl_ref import experiments
from spdl_ref.experiments import ch2_manifold, fig1

NAMES = ["fig1", "ch2_perturbation", "ch2_hamiltonian_h1", "ch2_manifold"]


@pytest.mark.parametrize("name", NAMES)
def test_tasks_cover_every_configuration_per_seed(name):
    experiment = experiments.get(name)
    one, two = experiment.make_tasks("ci", runs=1), experiment.make_tasks("ci", runs=2)
    assert len(two) == 2 * len(one)
    assert {t["seed"] for t in two} == {0, 1}


def test_tasks_reject_a_wrong_budget_and_task():
    with pytest.raises(ValueError, match="budget"):
        fig1.run(fig1.smoke(0), budget="huge", device="cpu")
    with pytest.raises(ValueError, match="task"):
        fig1.run({"seed": 0, "dataset": "moons"}, budget="ci", device="cpu")


def test_fig1_result_rebuilds_the_trained_model_and_its_figure(tmp_path):
    pytest.importorskip("matplotlib")
    task = fig1.smoke(0)
    result = fig1.run(task, budget="ci", device="cpu")
    model = fig1.model_from_result(result)
    trained = fig1.train(task, budget="ci", device="cpu").model  # the same seeds: the same model
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(model(x), trained(x), atol=1e-6)
    assert len(result["min_layer_det"]) == fig1.SETTINGS["K"]
    x_train, y_train = fig1.training_data(task, result)
    run = fig1.train(task, budget="ci", device="cpu")
    assert torch.equal(x_train, run.x) and torch.equal(y_train, run.y)
    paths = fig1.plot([task], [result], tmp_path)
    assert [p.name for p in paths] == ["figure1.png"] and paths[0].stat().st_size > 1000


def test_circle_data_targets_are_the_circle_map():
    x, target = ch2_manifold.circle_data(50, 3, dtype=torch.float64)
    theta = torch.atan2(x[:, 1], x[:, 0])
    assert torch.allclose(x.norm(dim=-1), torch.ones(50, dtype=torch.float64))
    # target - theta - 0.5 - 0.4 sin(theta) is a multiple of 2 pi
    k = (target - theta - 0.5 - 0.4 * torch.sin(theta)) / (2 * math.pi)
    assert torch.allclose(k, k.round(), atol=1e-12)
