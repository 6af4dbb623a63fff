r"""A network trained on data on the circle :math:`S^1`: intrinsic versus constrained (§2.3).

The data are phases, as in InSAR: inputs :math:`x_n \in S^1` (unit vectors of
:math:`\mathbb R^2`) and targets :math:`y_n = \phi(x_n)` for the circle diffeomorphism
:math:`\phi(\vartheta) = \vartheta + 0.5 + 0.4\sin\vartheta`. The loss is the review's
(Section 2.3): the mean of the geodesic (arc-length) distance :math:`d` on :math:`S^1` between
the network's output and the target. Two formulations of the ODE (7) on
:math:`\mathcal M = S^1 = \{y \in \mathbb R^2 : g(y) = 0\}`, :math:`g(y) = |y|^2 - 1`:

* ``"intrinsic"``: a :class:`~spdl_ref.ode.sphere.SphereODENet` whose layers rotate the features
  by the Lie–Euler method, so they never leave the circle;
* ``"penalty"``: the ResNet (6) on :math:`\mathbb R^2`, with the constraint :math:`g = 0`
  imposed by the penalty :math:`\mu\,\frac1{NK}\sum_{n,k} g(z_n^k)^2` added to the loss (the
  output is read as a phase through its angle), for the weights :data:`PENALTIES`.

Each task reports how well its model fits (mean test distance, against the untrained identity
map) and how far its features leave the circle (:math:`\max_{n,k}|g(z_n^k)|` on test points).
"""

from __future__ import annotations

import math

import torch

from .. import _validate
from ..config import seed_everything
from ..ode import ResNet, circle_distance
from ..ode.sphere import SphereODENet, sphere_constraint
from ..train import History, train_loop
from ._registry import Experiment, register, task_sizes

__all__ = [
    "DTYPE",
    "MODELS",
    "PENALTIES",
    "SIZES",
    "circle_data",
    "run",
    "smoke",
    "tasks",
    "train_model",
]

#: The two formulations.
MODELS = ("intrinsic", "penalty")
#: The weights :math:`\mu` of the constraint penalty that :func:`tasks` tries.
PENALTIES = (1.0, 10.0)
#: Everything runs in float64, so that "on the manifold" means to float64 round-off.
DTYPE = torch.float64
#: Sizes by budget (a task may override them, as :func:`smoke` does).
SIZES = {
    "ci": {"n_train": 256, "n_test": 512, "iterations": 400, "K": 8, "width": 16},
    "paper": {"n_train": 2048, "n_test": 4096, "iterations": 3000, "K": 16, "width": 32},
}


def circle_data(
    n: int,
    seed: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(x, target)``: ``n`` points :math:`x = (\cos\vartheta, \sin\vartheta)` and the angles
    :math:`\phi(\vartheta) = \vartheta + 0.5 + 0.4\sin\vartheta` (Section 2.3).

    The angles :math:`\vartheta` are uniform on :math:`[0, 2\pi)`, drawn on the CPU from a
    generator seeded with ``seed``; the tensors are then placed on ``device``.
    """
    n = _validate.positive_int(n, "n")
    seed = _validate.nonnegative_int(seed, "seed")
    gen = torch.Generator().manual_seed(seed)
    theta = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64, device="cpu")
    x = torch.stack([torch.cos(theta), torch.sin(theta)], -1)
    target = theta + 0.5 + 0.4 * torch.sin(theta)
    return x.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """Per seed: the intrinsic model, and the penalised one for each weight of :data:`PENALTIES`.
    See Section 2.3 of the review.

    ``{"seed": s, "model": "intrinsic"}`` and ``{"seed": s, "model": "penalty", "mu": mu}``.
    """
    out = []
    for r in range(runs):
        out.append({"seed": seed + r, "model": "intrinsic"})
        out += [{"seed": seed + r, "model": "penalty", "mu": mu} for mu in PENALTIES]
    return out


def _sizes(task, budget):
    return task_sizes(task, budget, SIZES, "model", MODELS)


def _angle(z):
    return torch.atan2(z[..., 1], z[..., 0])


def _trajectory(model, x):
    return model.trajectory(x)


def train_model(
    task: dict, *, budget: str, device: torch.device | str | None = None
) -> tuple[SphereODENet | ResNet, History]:
    """Train the model of one task (Section 2.3); returns ``(model, history)``."""
    from ..config import device as default_device

    sizes = _sizes(task, budget)
    mu = _validate.nonnegative_real(task.get("mu", PENALTIES[0]), "task['mu']")
    device = default_device() if device is None else torch.device(device)
    x, target = circle_data(sizes["n_train"], 2 * task["seed"] + 1, device, DTYPE)
    seed_everything(task["seed"])
    generator = torch.Generator().manual_seed(task["seed"])
    model: SphereODENet | ResNet
    if task["model"] == "intrinsic":
        model = SphereODENet(
            2,
            sizes["K"],
            T=1.0,
            width=sizes["width"],
            device=device,
            dtype=DTYPE,
            generator=generator,
        )
    else:
        model = ResNet(2, sizes["K"], T=1.0, device=device, dtype=DTYPE, generator=generator)

    def objective(_):
        states = _trajectory(model, x)
        fit = circle_distance(_angle(states[-1]), target).mean()
        if task["model"] == "intrinsic":
            return fit, fit
        return fit + mu * sphere_constraint(states[1:]).pow(2).mean(), fit

    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    history = train_loop(model, objective, iterations=sizes["iterations"], optimizer=optimizer)
    return model, history


def run(task: dict, *, budget: str, device: torch.device | str | None = None) -> dict:
    """Train one formulation and measure fit and distance from the circle (Section 2.3).

    Metrics: ``model``, ``mu`` (0 for the intrinsic model), ``test_distance`` (mean :math:`d`
    between output and target on test points), ``identity_distance`` (the same for the
    untrained identity map), ``train_distance``, ``drift``
    (:math:`\\max_{n,k}|g(z_n^k)|` on test points) and ``final_objective``.
    """
    sizes = _sizes(task, budget)
    model, history = train_model(task, budget=budget, device=device)
    ref = next(model.parameters())
    x_test, target = circle_data(sizes["n_test"], 2 * task["seed"] + 2, ref.device, ref.dtype)
    with torch.no_grad():
        states = _trajectory(model, x_test)
        test_distance = circle_distance(_angle(states[-1]), target).mean()
        identity = circle_distance(_angle(x_test), target).mean()
    return {
        "model": task["model"],
        "mu": float(task.get("mu", 0.0)) if task["model"] == "penalty" else 0.0,
        "test_distance": float(test_distance),
        "identity_distance": float(identity),
        "train_distance": float(history.data_fit[-1]),
        "drift": float(sphere_constraint(states).abs().max()),
        "final_objective": float(history.loss[-1]),
    }


def smoke(seed: int) -> dict:
    """A tiny task that runs every code path (the penalised ResNet, 8 points, 2 iterations).

    See Section 2.3 of the review."""
    return {
        "seed": seed,
        "model": "penalty",
        "mu": 1.0,
        "n_train": 8,
        "n_test": 8,
        "iterations": 2,
        "K": 2,
    }


register(
    Experiment(
        name="ch2_manifold",
        description="Section 2.3: a network on S^1 data with the geodesic distance as loss, "
        "intrinsic (Lie-Euler) versus constrained (penalised ResNet)",
        chapter="chapters/ch2_ode_networks/4_manifolds",
        tasks=tasks,
        run=run,
        smoke=smoke,
    )
)
