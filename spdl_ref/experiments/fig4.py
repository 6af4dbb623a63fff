r"""Figure 4 of the review: optimisers on the camelback function (Section 6.1).

Five optimisers with the caption's settings run on the camelback function
:math:`V(x, y) = 2x^2 - 1.05x^4 + x^6/6 + xy + y^2` (:func:`spdl_ref.optim.camelback`):
gradient descent (the explicit Euler step of (54)), the heavy ball (55) and Nesterov's method as
conformal Hamiltonian steps (56), relativistic gradient descent (57) and Adam (53, the Kingma--Ba
form). Each task is one optimiser from one start: the review's :math:`(-0.5, 0.8)`, and
:math:`(2.2, 0)`, a start in the basin of a local minimum from which the limit depends on the
method. The runs are deterministic and cheap, so both budgets run the same 1000 iterations.

How the caption's parameters are read (see Chapter 6): :math:`\mu` is the momentum factor of the
usual implementations (:func:`spdl_ref.optim.heavy_ball_parameters`), and RGD is the scaled
recursion of França et al. with :math:`\delta = 1` (:func:`spdl_ref.optim.relativistic_parameters`).

>>> from spdl_ref import experiments
>>> fig4 = experiments.get("fig4")
>>> task = fig4.smoke(0)
>>> result = fig4.run(task, budget="ci", device="cpu")
>>> result["method"], len(result["path"]) == task["steps"] + 1
('HB', True)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import _validate
from ..config import BUDGETS
from ..optim import (
    Adam,
    ConformalHamiltonian,
    camelback,
    camelback_stationary_points,
    heavy_ball_parameters,
    nearest_stationary_point,
    optimise_path,
    relativistic_parameters,
)
from ._registry import Experiment, register, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["METHODS", "STARTS", "figure", "make_optimizer", "run"]

#: The optimisers of Figure 4 with the caption's settings: name -> label.
METHODS = {
    "GD": "GD (h = 0.01)",
    "HB": "HB (mu = 0.9, h = 0.01)",
    "NAG": "NAG (mu = 0.012, h = 0.01)",
    "RGD": "RGD (mu = 0.9259, h = 1e-4)",
    "Adam": "Adam (alpha = 0.1)",
}
#: The starts: the review's, and one in the basin of the local minimum at (1.7476, -0.8738).
STARTS = {"review": (-0.5, 0.8), "local basin": (2.2, 0.0)}
#: The delta of relativistic gradient descent (not in the caption; see the module text).
RGD_DELTA = 1.0
#: Iterations at either budget (the runs take well under a second each).
STEPS = 1000


def make_optimizer(method: str, params: list) -> torch.optim.Optimizer:
    """The optimiser ``method`` (a key of :data:`METHODS`) of Figure 4 on ``params``."""
    method = _validate.choice(method, tuple(METHODS), "method")
    if method == "GD":
        return torch.optim.SGD(params, lr=0.01)
    if method == "HB":
        return ConformalHamiltonian(params, **heavy_ball_parameters(0.01, 0.9))
    if method == "NAG":
        return ConformalHamiltonian(params, **heavy_ball_parameters(0.01, 0.012), nesterov=True)
    if method == "RGD":
        return ConformalHamiltonian(params, **relativistic_parameters(1e-4, 0.9259, RGD_DELTA))
    return Adam(params, lr=0.1)


def _tasks(budget: str, runs: int, seed: int) -> list[dict]:
    return [
        {"seed": seed + r, "method": m, "start": s, "steps": STEPS}
        for s in STARTS
        for m in METHODS
        for r in range(runs)
    ]


def run(task: dict, *, budget: str, device: torch.device | str) -> dict:
    r"""One optimiser from one start (a task of ``fig4``): its path and what Figure 4 reads off.

    Returns JSON-serialisable metrics: ``path`` (the iterates, a list of :math:`(x, y)`),
    ``losses`` (:math:`V` along it), ``end`` and ``final_loss``, the nearest stationary point
    ``nearest`` and the ``distance`` to it, ``loss_200`` (:math:`V` after 200 iterations, or the
    last), and ``max_delta_v2``: :math:`\max_k \delta\|v_k\|^2` along the run for RGD (the
    size of the relativistic correction; ``None`` for the others). The run is deterministic:
    ``seed`` changes nothing. Computed in float64 on ``device``.
    """
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    method = _validate.choice(task.get("method"), tuple(METHODS), "task['method']")
    start = task.get("start")
    if start not in STARTS:
        raise ValueError(f"task['start'] must be one of {tuple(STARTS)}, got {start!r}")
    steps = _validate.positive_int(task.get("steps", STEPS), "task['steps']")
    momenta = []

    def momentum(_i, opt):
        momenta.append(max(float(s["momentum"].pow(2).sum()) for s in opt.state.values()))

    path, losses, _ = optimise_path(
        camelback,
        lambda p: make_optimizer(method, p),
        steps,
        start=STARTS[start],
        device=torch.device(device),
        dtype=torch.float64,
        callbacks=[momentum] if method == "RGD" else (),
    )
    name, distance = nearest_stationary_point(path[-1])
    return {
        "method": method,
        "start": start,
        "path": path.cpu().tolist(),
        "losses": losses.tolist(),
        "end": path[-1].cpu().tolist(),
        "final_loss": float(losses[-1]),
        "loss_200": float(losses[min(200, steps)]),
        "nearest": name,
        "distance": distance,
        "max_delta_v2": RGD_DELTA * max(momenta) if momenta else None,
    }


def figure(tasks: list[dict], results: list[dict]) -> Figure:
    """Figure 4 from the results of ``fig4``: the loss from the review's start, and the paths
    from each start on the contours of :math:`V`, with a legend on the trajectory panels.

    Returns the :class:`matplotlib.figure.Figure` (matplotlib is imported here).
    """
    import matplotlib.pyplot as plt

    starts = list(dict.fromkeys(t["start"] for t in tasks))
    fig, axes = plt.subplots(1, 1 + len(starts), figsize=(5.2 * (1 + len(starts)), 4.2))
    colours = dict(zip(METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    seen = set()
    grid = torch.linspace(-2.2, 2.4, 240, dtype=torch.float64)
    X, Y = torch.meshgrid(grid, torch.linspace(-1.5, 1.5, 160, dtype=torch.float64), indexing="xy")
    V = camelback(torch.stack([X, Y], -1))
    for ax in axes[1:]:
        ax.contour(X, Y, V, levels=torch.logspace(-2, 1, 15).tolist(), cmap="Greys", linewidths=0.6)
        for name, pt in camelback_stationary_points().items():
            ax.plot(*pt.tolist(), "r*" if name == "global" else "k*", ms=9)
    for task, res in zip(tasks, results, strict=True):
        key = (task["method"], task["start"])
        if key in seen:  # further seeds repeat the deterministic path
            continue
        seen.add(key)
        label, colour = METHODS[task["method"]], colours[task["method"]]
        path = torch.tensor(res["path"])
        ax = axes[1 + starts.index(task["start"])]
        ax.plot(path[:, 0], path[:, 1], lw=1.4, color=colour, label=label)
        ax.plot(*path[0].tolist(), "ko", ms=5)
        if task["start"] == starts[0]:
            losses = torch.tensor(res["losses"]).clamp_min(1e-30)
            axes[0].semilogy(losses, color=colour, label=label)
    axes[0].set(xlabel="iteration", ylabel="V(x, y)", title=f"loss, start {STARTS[starts[0]]}")
    axes[0].legend(fontsize=7)
    for ax, start in zip(axes[1:], starts, strict=True):
        ends = torch.tensor(
            [r["path"] for t, r in zip(tasks, results, strict=True) if t["start"] == start]
        ).reshape(-1, 2)
        lo, hi = ends.min(0).values - 0.3, ends.max(0).values + 0.3
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="x", ylabel="y")
        ax.set_title(f"paths from {STARTS[start]} ({start})")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _plot(tasks: list[dict], results: list[dict], out_dir: Path) -> list[Path]:

    fig = figure(tasks, results)
    return save_figure(fig, out_dir, "fig4.png", dpi=120)


EXPERIMENT = register(
    Experiment(
        name="fig4",
        description="Figure 4: GD, heavy ball, Nesterov, RGD and Adam on the camelback function",
        chapter="chapters/ch6_optimisation",
        tasks=_tasks,
        run=run,
        plot=_plot,
        smoke=lambda seed: {"seed": seed, "method": "HB", "start": "review", "steps": 5},
    )
)
