r"""Open problem 2.4.1: does :math:`H^1` regularisation make a Hamiltonian network less
time-dependent?

The review expects that smoothing the parameters across layers makes a non-autonomous
Hamiltonian model behave more like an autonomous one. The experiment trains the second-order
Hamiltonian network of Section 2.1.2 (:class:`~spdl_ref.ode.HamiltonianField`, symplectic Euler
(22), :math:`p(0) = 0`, a linear output layer) on two moons, with and without the discrete
:math:`H^1` regulariser of (37)/(40), :math:`\lambda` times
:func:`spdl_ref.control.h1_discrete`, and measures after training

* how much the parameters vary across layers: the total variation
  :math:`\sum_k \|\theta^{k+1} - \theta^k\|` and the :math:`H^1` seminorm
  :math:`\sum_k \|\theta^{k+1} - \theta^k\|^2 / h`;
* how much the energy varies along the layers, on test points:
  :math:`H_k = H(t^k, z^k, p^k)` with layer :math:`k`'s parameters; ``energy_variation`` is the
  mean over points of :math:`\max_k |H_k - H_0|`, and ``energy_jumps`` the mean of
  :math:`\sum_k |H_{k+1}(u^{k+1}) - H_k(u^{k+1})|`, the part of the change that comes from the
  parameters changing between layers (an autonomous model has none).
"""

from __future__ import annotations

import torch

from .. import _validate, data
from ..config import seed_everything
from ..ode import ClassifierHead, HamiltonianField, ODENet
from ..train import accuracy, fit
from ._registry import Experiment, register, task_sizes

__all__ = ["LAMBDAS", "SIZES", "T", "layer_energies", "run", "smoke", "tasks", "train_network"]

#: The regularisation weights :math:`\lambda` compared (0: no regulariser).
LAMBDAS = (0.0, 1e-3, 1e-2)
#: Final time of the network.
T = 2.0
#: Sizes by budget (a task may override them, as :func:`smoke` does).
SIZES = {
    "ci": {"n": 200, "iterations": 400, "K": 16},
    "paper": {"n": 1000, "iterations": 3000, "K": 32},
}


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per weight of :data:`LAMBDAS` and seed: ``{"seed": s, "lam": lam}``.

    See Section 2.4.1 of the review."""
    return [{"seed": seed + r, "lam": lam} for lam in LAMBDAS for r in range(runs)]


def _sizes(task, budget):
    if isinstance(task, dict) and "lam" not in task:
        raise ValueError(f"task must be a dict with a weight 'lam', got {task!r}")
    sizes = task_sizes(task, budget, SIZES)
    _validate.nonnegative_real(task["lam"], "task['lam']")
    return sizes


class _H1:
    """The regulariser :math:`\\lambda\\,` ``h1_discrete(model[0])`` (eq. (40)) for :func:`fit`."""

    def __init__(self, lam):
        self.lam = lam

    def __call__(self, model):
        from ..control import h1_discrete

        return self.lam * h1_discrete(model[0])


def train_network(
    task: dict, *, budget: str, device: torch.device | str | None = None
) -> tuple[ODENet, torch.nn.Sequential, float, torch.Tensor]:
    """Train the network of one task; returns ``(net, model, test_accuracy, x_test)`` (§2.4.1)."""
    from ..config import device as default_device

    sizes = _sizes(task, budget)
    device = default_device() if device is None else torch.device(device)
    x, y = data.two_moons(sizes["n"], seed=1, device=device)
    x_test, y_test = data.two_moons(sizes["n"], seed=2, device=device)
    seed_everything(task["seed"])
    net = ODENet(HamiltonianField(2, sizes["K"], device=device), "symplectic_euler", T=T)
    model = torch.nn.Sequential(net, ClassifierHead(2, 1, device=device))
    regulariser = _H1(float(task["lam"])) if task["lam"] > 0 else None
    fit(
        model,
        x,
        data.labels_to_signs(y),
        regulariser=regulariser,
        iterations=sizes["iterations"],
        lr=0.02,
        progress=False,
    )
    with torch.no_grad():
        test_accuracy = accuracy(model(x_test), y_test)
    return net, model, test_accuracy, x_test


def layer_energies(net: ODENet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(H, H_next)``: :math:`H_k(u^k)` and :math:`H_k(u^{k+1})` along a Hamiltonian network.

    Section 2.1.2 / 2.4.1. ``net`` is an :class:`~spdl_ref.ode.ODENet` of a
    :class:`~spdl_ref.ode.HamiltonianField`; ``x`` has shape ``(N, M)``. Both results have shape
    ``(K, N)``: row :math:`k` evaluates layer :math:`k`'s Hamiltonian at the state entering
    and leaving that layer.
    """
    field = _validate.instance(net, ODENet, "net").vector_field
    _validate.instance(field, HamiltonianField, "net.vector_field")
    with torch.no_grad():
        states = net.states(x)
        H = torch.stack([field.hamiltonian(k, states[k]) for k in range(net.depth)])
        H_next = torch.stack([field.hamiltonian(k, states[k + 1]) for k in range(net.depth)])
    return H, H_next


def run(task: dict, *, budget: str, device: torch.device | str | None = None) -> dict:
    """Train with weight ``task["lam"]`` and measure the variation of θ and of H (§2.4.1).

    Metrics: ``lam``, ``test_accuracy``, ``theta_variation`` (total variation over layers),
    ``h1_seminorm``, ``energy_variation``, ``energy_jumps`` and ``theta`` (the per-layer
    Frobenius norm of the parameters :math:`(A_2^k, b_2^k)`, for plots).
    """
    net, _, test_accuracy, x_test = train_network(task, budget=budget, device=device)
    field = net.vector_field
    with torch.no_grad():
        theta = torch.cat([field.A2.flatten(1), field.b2], 1)
        jumps = (theta[1:] - theta[:-1]).norm(dim=1)
        H, H_next = layer_energies(net, x_test)
    energy_variation = (torch.cat([H, H_next[-1:]]) - H[0]).abs().max(0).values.mean()
    energy_jumps = (H[1:] - H_next[:-1]).abs().sum(0).mean()
    return {
        "lam": float(task["lam"]),
        "test_accuracy": test_accuracy,
        "theta_variation": float(jumps.sum()),
        "h1_seminorm": float((jumps**2).sum() / net.h),
        "energy_variation": float(energy_variation),
        "energy_jumps": float(energy_jumps),
        "theta": theta.norm(dim=1).cpu().tolist(),
    }


def smoke(seed: int) -> dict:
    """A tiny task that runs every code path (regularised, 8 points, 2 iterations, 3 layers).

    See Section 2.4.1 of the review."""
    return {"seed": seed, "lam": 1e-2, "n": 8, "iterations": 2, "K": 3}


register(
    Experiment(
        name="ch2_hamiltonian_h1",
        description="Open problem 2.4.1: H1 regularisation and the time dependence of a trained "
        "Hamiltonian network",
        chapter="chapters/ch2_ode_networks/2_hamiltonian_models",
        tasks=tasks,
        run=run,
        smoke=smoke,
    )
)
