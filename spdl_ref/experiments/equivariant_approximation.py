r"""Approximation properties of equivariant networks, the open problem of Section 5.3.2.

Networks of the same depth and about the same number of parameters, built from different
choices, are fitted to one map whose symmetry is known,
:func:`spdl_ref.equivariant.gradient_magnitude` (the length of the image gradient: rotation
equivariant, exactly so for quarter turns on the grid, and even). The choices
(:data:`ARCHITECTURES`, all from :func:`spdl_ref.equivariant.make_denoiser`):

* ``"ordinary"`` -- plain convolutions and ReLU, no rotation symmetry built in;
* ``"regular"`` -- regular fields of :math:`C_8` and the pointwise ReLU (the chapter's
  equivariant denoiser);
* ``"trivial"`` -- scalar fields of :math:`C_8` only: every kernel is :math:`C_8`-invariant
  (nearly isotropic), with the pointwise ReLU;
* ``"harmonic"`` -- fields of rotation orders 0 and 1 of :math:`SO(2)` and the norm
  nonlinearity of Section 5.1.3, as in harmonic networks.

One task per architecture and seed; each returns the relative error of the fit on held-out
images. The review states no result here; both budgets run the same comparison, ``"paper"``
with larger images, deeper networks and longer training.

>>> from spdl_ref.experiments import equivariant_approximation as ea
>>> sorted({t["arch"] for t in ea.EXPERIMENT.make_tasks("ci", runs=1)})
['harmonic', 'ordinary', 'regular', 'trivial']
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from .. import _validate
from ..config import BUDGETS
from ..data import random_rectangles
from ..equivariant import (
    equivariance_error,
    fit_map,
    gradient_magnitude,
    make_denoiser,
    parameter_count,
)
from ._registry import Experiment, register

__all__ = ["ARCHITECTURES", "EXPERIMENT", "RUNS", "SETTINGS", "run", "settings", "tasks"]

#: The architectures compared: keyword arguments of make_denoiser (besides width and depth).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "ordinary": dict(kind="ordinary"),
    "regular": dict(kind="equivariant", fields="regular", group_order=8),
    "trivial": dict(kind="equivariant", fields="trivial", group_order=8),
    "harmonic": dict(kind="equivariant", fields="harmonic", max_order=1),
}
#: Sizes at each budget; ``widths`` are chosen so that the parameter counts are close.
SETTINGS: dict[str, dict[str, Any]] = {
    "ci": dict(
        size=16,
        n_train=256,
        n_test=64,
        depth=2,
        iterations=200,
        batch=16,
        widths=dict(ordinary=5, regular=16, trivial=10, harmonic=12),
    ),
    "paper": dict(
        size=32,
        n_train=2048,
        n_test=256,
        depth=4,
        iterations=3000,
        batch=32,
        widths=dict(ordinary=11, regular=40, trivial=24, harmonic=30),
    ),
}
#: Shared: Adam's step size, the seeds of the training and test images, the target's epsilon.
COMMON: dict[str, Any] = dict(lr=1e-2, data_seeds=(31, 32), eps=1e-2, kernel_size=3)
#: Seeds per architecture at each budget.
RUNS = {"ci": 3, "paper": 5}
_OVERRIDES = {"size", "n_train", "n_test", "depth", "iterations", "batch", "width"}


def settings(budget: str, task: dict | None = None) -> dict[str, Any]:
    """The sizes of ``budget`` for ``task``'s architecture, overridden by ``task`` (Section
    5.3.2)."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    out = {**COMMON, **SETTINGS[budget]}
    arch = (task or {}).get("arch")
    if arch is not None:
        out["width"] = out["widths"][_validate.choice(arch, ARCHITECTURES, 'task["arch"]')]
    for key, value in (task or {}).items():
        if key in _OVERRIDES:
            out[key] = value
    return out


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per architecture and seed (Section 5.3.2)."""
    return [{"arch": a, "seed": seed + r} for a in ARCHITECTURES for r in range(runs)]


def smoke(seed: int) -> dict:
    """The smallest task that runs every code path of :func:`run` (escnn included)."""
    return {
        "arch": "harmonic",
        "seed": seed,
        "size": 9,
        "n_train": 4,
        "n_test": 2,
        "depth": 1,
        "iterations": 2,
        "batch": 2,
        "width": 3,
    }


def run(task: dict, *, budget: str, device: torch.device | str | None) -> dict[str, float]:
    """Fit one architecture to the gradient magnitude and test it (Section 5.3.2).

    Returns ``parameters``, ``test_error`` and ``train_error`` (relative :math:`L^2` errors
    :math:`\\|\\Psi(x) - F(x)\\| / \\|F(x)\\|` over the test and training images) and
    ``equivariance_error_at_45`` (relative error (50) of the fitted network at 45 degrees on
    the test images).
    """
    seed = _validate.nonnegative_int(task.get("seed"), 'task["seed"]')
    s = settings(budget, task)
    device = _validate.device(device)
    x, x_test = (
        random_rectangles(n, size=s["size"], seed=k, device=device)
        for n, k in zip((s["n_train"], s["n_test"]), s["data_seeds"], strict=True)
    )
    torch.manual_seed(seed)
    model = make_denoiser(
        width=s["width"],
        depth=s["depth"],
        kernel_size=s["kernel_size"],
        device=device,
        **ARCHITECTURES[task["arch"]],
    )
    target = functools.partial(gradient_magnitude, eps=s["eps"])
    fit_map(
        model,
        target,
        x,
        iterations=s["iterations"],
        batch_size=s["batch"],
        lr=s["lr"],
        generator=torch.Generator(device=device).manual_seed(seed),
    )
    with torch.no_grad():
        errors = {
            name: float((model(u) - target(u)).norm() / target(u).norm())
            for name, u in (("test_error", x_test), ("train_error", x))
        }
    return {
        "parameters": parameter_count(model),
        **errors,
        "equivariance_error_at_45": equivariance_error(model, x_test, 45.0),
    }


#: The registered experiment (:class:`~spdl_ref.experiments.Experiment`); run it with
#: ``python -m spdl_ref.reproduce equivariant_approximation``.
EXPERIMENT = register(
    Experiment(
        name="equivariant_approximation",
        description="Section 5.3.2: fitting an equivariant map with different field types",
        chapter="chapters/ch5_equivariant",
        tasks=tasks,
        run=run,
        peers=("escnn",),
        smoke=smoke,
    )
)
