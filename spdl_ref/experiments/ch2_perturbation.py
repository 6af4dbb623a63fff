r"""Perturbation growth through trained ODE networks, against the bounds of Section 2.1.

Four ODE networks (7) of depth :math:`K` and final time :math:`T = 2` are trained on two moons
(squared loss on :math:`\pm 1` labels through a linear output layer, as in Chapter 1), one per
field: the plain field (8), the dissipative field (:math:`\gamma = 0.1`), the gradient flow (16)
and the second-order Hamiltonian model with :math:`p(0) = 0`; the first three are integrated by
forward Euler (the ResNet), the last by symplectic Euler (22). Each task measures, on test
points perturbed by :math:`10^{-4}`, the ratio of (13)

* through the network itself, and through the exact flow of its piecewise-constant field
  (RK4 with many steps per layer, :func:`spdl_ref.control.ode_flow`);

and compares them with the bounds: :math:`e^{TL}` and the one-sided :math:`e^{T\nu}` (both from
:func:`spdl_ref.ode.growth_bounds.field_bounds`, exact suprema over the box of activation
derivatives, per layer), for the flow, and the discrete
:func:`~spdl_ref.ode.growth_bounds.euler_growth_bound` for the forward Euler networks. For the
gradient network it also integrates the trained field by implicit Euler (B-stable) and by
forward Euler with steps below :math:`2/L` (non-expansive for the gradient of a convex function
with :math:`L`-Lipschitz gradient): both must contract every pair.
"""

from __future__ import annotations

import copy
import functools
import math

import torch

from .. import data
from ..config import seed_everything
from ..ode import (
    ClassifierHead,
    DissipativeField,
    GradientField,
    HamiltonianField,
    ODENet,
    PlainField,
    perturbation_growth,
)
from ..ode.growth_bounds import euler_growth_bound, field_bounds
from ..train import accuracy, fit
from ._registry import Experiment, register, task_sizes

__all__ = ["KINDS", "SIZES", "T", "run", "smoke", "tasks", "train_network"]

#: The networks: name -> (field class, keyword arguments, integrator).
KINDS = {
    "plain": (PlainField, {}, "explicit_euler"),
    "dissipative": (DissipativeField, {"gamma": 0.1}, "explicit_euler"),
    "gradient": (GradientField, {}, "explicit_euler"),
    "hamiltonian": (HamiltonianField, {}, "symplectic_euler"),
}
#: Final time of every network.
T = 2.0
#: Sizes by budget (a task may override them, as :func:`smoke` does).
SIZES = {
    "ci": {"n": 200, "iterations": 300, "K": 10, "flow_steps": 16},
    "paper": {"n": 1000, "iterations": 2000, "K": 10, "flow_steps": 64},
}
EPS = 1e-4


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per network kind and seed: ``{"seed": s, "kind": name}`` (Section 2.1)."""
    return [{"seed": seed + r, "kind": kind} for kind in KINDS for r in range(runs)]


def _sizes(task, budget):
    return task_sizes(task, budget, SIZES, "kind", KINDS)


def train_network(
    task: dict, *, budget: str, device: torch.device | str | None = None
) -> tuple[ODENet, float, torch.Tensor]:
    """Train the network of one task; returns ``(net, test_accuracy, x_test)`` (Section 2.1).

    Training points from seed 1, test points from seed 2 (of :func:`spdl_ref.data.two_moons`),
    parameters from the global generator seeded with the task's seed.
    """
    from ..config import device as default_device

    sizes = _sizes(task, budget)
    device = default_device() if device is None else torch.device(device)
    x, y = data.two_moons(sizes["n"], seed=1, device=device)
    x_test, y_test = data.two_moons(sizes["n"], seed=2, device=device)
    cls, kwargs, method = KINDS[task["kind"]]
    seed_everything(task["seed"])
    net = ODENet(cls(2, sizes["K"], device=device, **kwargs), method, T=T)
    model = torch.nn.Sequential(net, ClassifierHead(2, 1, device=device))
    fit(model, x, data.labels_to_signs(y), iterations=sizes["iterations"], lr=0.02, progress=False)
    with torch.no_grad():
        test_accuracy = accuracy(model(x_test), y_test)
    return net, test_accuracy, x_test


def _ode_flow(net, method, steps_per_layer):
    from ..control import ode_flow

    return functools.partial(ode_flow, net, method=method, steps_per_layer=steps_per_layer)


def run(task: dict, *, budget: str, device: torch.device | str | None = None) -> dict:
    """Train one network and measure the ratios of (13) and their bounds (Section 2.1).

    Metrics: ``kind``, ``test_accuracy``, ``ratios`` (network, one per test point),
    ``median`` and ``max`` of them, ``flow_max`` (the exact flow of the trained field),
    ``nu_max`` and ``L_max`` (largest per-layer bounds), ``flow_bound``
    (:math:`e^{h\\sum_k\\nu_k}`), ``nu_bound`` (:math:`e^{T\\max_k\\nu_k}`, the review's
    :math:`e^{T\\nu}`), ``lipschitz_bound`` (:math:`e^{T\\max_k L_k}`) and, for forward Euler
    networks, ``euler_bound``; for the gradient network also ``h_L`` (:math:`h\\max_k L_k`),
    ``implicit_max`` and ``fine_euler_max`` with ``fine_euler_steps`` steps per layer.
    """
    sizes = _sizes(task, budget)
    net, test_accuracy, x_test = train_network(task, budget=budget, device=device)
    gen = torch.Generator().manual_seed(task["seed"])
    ratios = perturbation_growth(net, x_test, EPS, gen)
    flow = _ode_flow(net, "rk4", sizes["flow_steps"])
    flow_ratios = perturbation_growth(flow, x_test, EPS, torch.Generator().manual_seed(0))
    nu, L = field_bounds(net.vector_field)
    metrics = {
        "kind": task["kind"],
        "test_accuracy": test_accuracy,
        "ratios": ratios.cpu().tolist(),
        "median": float(ratios.median()),
        "max": float(ratios.max()),
        "flow_max": float(flow_ratios.max()),
        "nu_max": float(nu.max()),
        "L_max": float(L.max()),
        "flow_bound": math.exp(net.h * float(nu.sum())),
        "nu_bound": math.exp(T * float(nu.max())),
        "lipschitz_bound": math.exp(T * float(L.max())),
    }
    if net.method == "explicit_euler":
        metrics["euler_bound"] = euler_growth_bound(nu, L, net.h)
    if task["kind"] == "gradient":
        h_L = net.h * float(L.max())
        implicit = ODENet(copy.deepcopy(net.vector_field).double(), "implicit_euler", T=T)
        gen = torch.Generator().manual_seed(1)
        substeps = max(1, math.ceil(h_L / 1.9))
        fine = _ode_flow(net, "explicit_euler", substeps)
        metrics.update(
            h_L=h_L,
            implicit_max=float(perturbation_growth(implicit, x_test.double(), EPS, gen).max()),
            fine_euler_steps=substeps,
            fine_euler_max=float(perturbation_growth(fine, x_test, EPS, gen).max()),
        )
    return metrics


def smoke(seed: int) -> dict:
    """A tiny task that runs every code path (the gradient network, 8 points, 2 iterations).

    See Section 2.1 of the review."""
    return {"seed": seed, "kind": "gradient", "n": 8, "iterations": 2, "K": 2, "flow_steps": 2}


register(
    Experiment(
        name="ch2_perturbation",
        description="Section 2.1: perturbation growth through trained ODE networks vs e^(TL), "
        "e^(T nu) and the forward Euler bound",
        chapter="chapters/ch2_ode_networks/1_stability",
        tasks=tasks,
        run=run,
        smoke=smoke,
    )
)
