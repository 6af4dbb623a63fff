r"""Observed orders of the continuous adjoint per Runge–Kutta method (Theorem 3.1, (26)-(27)).

Registered as ``adjoint_orders``; Chapter 3 runs it. For a fixed piecewise-constant control (a
ResNet (6) with :math:`K = 4` layers on :math:`[0, 2]`, read as the control of the ODE (24b)),
:func:`spdl_ref.control.continuous_adjoint` with an explicit Runge–Kutta method of order
:math:`q` and :math:`s` steps per layer approximates the gradient (27) of the continuous problem
with an error :math:`O(s^{-q})`. The reference is RK4 with many steps per layer. One task is one
method and one seed (the seed draws the network and the inputs).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import _validate, config
from ..config import BUDGETS
from ..control import SquaredFit, continuous_adjoint, relative_error, squared_fit
from ..ode import TABLEAUX, ResNet, fitted_order, observed_orders
from ._registry import Experiment, register, save_figure

__all__ = [
    "DEPTH",
    "EXPERIMENT",
    "FINAL_TIME",
    "METHODS",
    "SIZES",
    "plot",
    "problem",
    "run",
    "tasks",
]

#: The explicit methods whose orders are measured (their orders are in ``TABLEAUX``).
METHODS = ("explicit_euler", "heun", "kutta3", "rk4")

#: The test network: depth K and final time T (layer step h = T/K).
DEPTH, FINAL_TIME = 4, 2.0

#: Steps per layer, and those of the RK4 reference, by budget.
SIZES = {
    "ci": {"per_layer": [4, 8, 16, 32], "reference": 512},
    "paper": {"per_layer": [4, 8, 16, 32, 64], "reference": 2048},
}


def problem(
    seed: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
) -> tuple[ResNet, torch.Tensor, SquaredFit]:
    r"""The test problem: a ResNet (6) (:math:`M = 2`, :math:`K = 4`, :math:`T = 2`), 32 inputs.

    The network's parameters, then the inputs :math:`x_n \sim N(0, I)`, are drawn from one
    generator seeded with ``seed`` on ``device`` (default :func:`spdl_ref.config.device`); the
    loss is
    :math:`\frac1N \sum_n \frac12 (z_{n,1}(T) - 1)^2`. Returns ``(net, x, fit)``.
    """
    seed = _validate.nonnegative_int(seed, "seed")
    device = torch.device(device) if device is not None else config.device()
    gen = torch.Generator(device=device).manual_seed(seed)
    net = ResNet(2, DEPTH, T=FINAL_TIME, dtype=dtype, device=device, generator=gen)
    x = torch.randn(32, 2, dtype=dtype, device=device, generator=gen)
    fit = squared_fit(torch.ones(32, dtype=dtype, device=device))
    return net, x, fit


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per method and seed (Section 3.1)."""
    return [{"seed": seed + r, "method": m} for r in range(runs) for m in METHODS]


def run(task: dict, *, budget: str, device: torch.device | str | None) -> dict:
    """Relative gradient errors against the reference, observed and fitted orders, one method.
    See Section 3.1 of the review.

    Returns ``{"method", "order" (the method's), "steps_per_layer", "errors",
    "observed_orders" (pairwise), "fitted_order" (least squares)}``. A task may carry its own
    ``"per_layer"`` list and ``"reference"`` step count (the smoke task does).
    """
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    method = _validate.choice(task["method"], METHODS, "task['method']")
    per_layer = list(task.get("per_layer", SIZES[budget]["per_layer"]))
    reference = task.get("reference", SIZES[budget]["reference"])
    net, x, fit = problem(task["seed"], device)
    exact = continuous_adjoint(net, x, fit, method="rk4", steps_per_layer=reference)
    errors = [
        relative_error(continuous_adjoint(net, x, fit, method=method, steps_per_layer=s), exact)
        for s in per_layer
    ]
    return {
        "method": method,
        "order": TABLEAUX[method],
        "steps_per_layer": per_layer,
        "errors": errors,
        "observed_orders": observed_orders(per_layer, errors),
        "fitted_order": fitted_order(per_layer, errors),
    }


def plot(task_list: list, results: list, out_dir: Path | str) -> list[Path]:
    """Figure: relative gradient error against the step size, one curve per method (log-log).

    See Section 3.1 of the review."""
    import matplotlib.pyplot as plt

    from ..plotting import use_style

    use_style()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for res in results:
        h = [FINAL_TIME / DEPTH / s for s in res["steps_per_layer"]]
        ax.loglog(h, res["errors"], "o-", label=f"{res['method']} (order {res['order']})")
    ax.set_xlabel("step size h")
    ax.set_ylabel("relative gradient error")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, out_dir, "adjoint_orders.png", dpi=120)


def _smoke(seed: int) -> dict:
    return {"seed": seed, "method": "heun", "per_layer": [1, 2], "reference": 4}


#: The registered experiment (:class:`~spdl_ref.experiments.Experiment`); run it with
#: ``python -m spdl_ref.reproduce adjoint_orders``.
EXPERIMENT = register(
    Experiment(
        name="adjoint_orders",
        description=(
            "Theorem 3.1: observed orders of the continuous adjoint (26)-(27) for explicit "
            "Euler, Heun, Kutta-3 and RK4"
        ),
        chapter="chapters/ch3_optimal_control",
        tasks=tasks,
        run=run,
        plot=plot,
        smoke=_smoke,
    )
)
