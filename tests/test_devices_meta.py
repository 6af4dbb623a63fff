"""Every registered experiment makes its tensors on the device it is given (a CPU-only check).

Each experiment with a smoke task runs through ``python -m spdl_ref.reproduce``'s pipeline
(:func:`spdl_ref.reproduce.reproduce` with ``smoke=True`` and ``device="cpu"``) while torch's
default device is ``"meta"``. A tensor or module made without an explicit device then lands on
``meta``, which holds no numbers: the run fails as soon as it meets a CPU tensor, is read
(``float``, ``.item()``) or is moved (``.to(device)``). On a GPU the same omission would put
it on the CPU. Third-party layers that make their own tensors (escnn's) are built inside
``with torch.device(device):``. Experiments registered later are checked by the same test.
"""

import pytest
import torch
from torch import nn

from spdl_ref.experiments import Experiment, get, names
from spdl_ref.reproduce import reproduce

SMOKED = [n for n in names() if get(n).smoke is not None]


def assert_built_on_its_device(experiment, out):
    """Run ``experiment``'s smoke task under the meta default device; a clear error if it fails."""
    try:
        with torch.device("meta"):
            return reproduce(experiment, smoke=True, device="cpu", out=out, progress=False)
    except Exception as err:
        meta_error = err
    name = getattr(experiment, "name", experiment)
    try:
        reproduce(experiment, smoke=True, device="cpu", out=out / "plain", progress=False)
    except Exception as err:
        raise AssertionError(f"{name}: the smoke task fails even on the CPU: {err!r}") from err
    raise AssertionError(
        f"{name}: a tensor or module is made without the experiment's device (it landed on "
        f"torch's default device, 'meta' in this test): {meta_error!r}"
    ) from meta_error


@pytest.mark.parametrize(
    "name",
    SMOKED or [pytest.param("", marks=pytest.mark.skip(reason="no experiment has a smoke task"))],
)
def test_registered_experiment_makes_its_tensors_on_its_device(name, tmp_path):
    record = assert_built_on_its_device(name, tmp_path)
    folder = tmp_path / "smoke" / name
    assert record["device"] == "cpu" and record["metrics"]["runs"]
    assert (folder / "result.json").is_file()
    assert all((folder / f).is_file() for f in record["figures"])


def _tasks(budget, runs, seed):
    return [{"seed": seed + r} for r in range(runs)]


def _placed(task, *, budget, device):
    g = torch.Generator(device=device).manual_seed(task["seed"])
    net = nn.Linear(3, 1, device=device)
    x = torch.randn(5, 3, generator=g, device=device)
    return {"loss": net(x).pow(2).mean().item()}


def _data_without_device(task, *, budget, device):
    x = torch.randn(5, 3)  # the bug: no device
    return {"loss": float((x + torch.ones(3, device=device)).mean())}


def _model_moved_after_building(task, *, budget, device):
    net = nn.Linear(3, 1).to(device)  # built on the default device, then moved
    return {"loss": net(torch.ones(5, 3, device=device)).mean().item()}


def _nothing_placed(task, *, budget, device):
    return {"loss": float(torch.randn(5).mean())}  # fine on a CPU, wrong device on a GPU


def _toy(run, name="toy_meta"):
    return Experiment(
        name=name,
        description="toy",
        chapter="tests",
        tasks=_tasks,
        run=run,
        smoke=lambda seed: {"seed": seed},
    )


def test_a_device_clean_toy_passes(tmp_path):
    record = assert_built_on_its_device(_toy(_placed), tmp_path)
    assert record["metrics"]["runs"][0]["metrics"]["loss"] > 0


@pytest.mark.parametrize(
    "run", [_data_without_device, _model_moved_after_building, _nothing_placed]
)
def test_a_tensor_made_without_the_device_fails(run, tmp_path):
    toy = _toy(run)
    # the bug is invisible on a CPU: the same run passes without the meta default device
    assert reproduce(toy, smoke=True, device="cpu", out=tmp_path / "cpu", progress=False)
    with pytest.raises(AssertionError, match="made without the experiment's device"):
        assert_built_on_its_device(toy, tmp_path)


def test_a_smoke_task_that_fails_anyway_is_reported_as_such(tmp_path):
    def broken(task, *, budget, device):
        raise RuntimeError("boom")

    with pytest.raises(AssertionError, match=r"fails even on the CPU.*boom"):
        assert_built_on_its_device(_toy(broken), tmp_path)
