r"""Theorem 6.1 measured: the mean-field limit of two-layer ReLU networks against the NTK scaling.

Section 6.3. A task trains the networks (61) with :math:`J = J_0, 2J_0, \dots` neurons from
nested initial particles (:class:`spdl_ref.optim.MeanFieldReLU`: the first :math:`J` particles of
every wider network start where those of the narrower one do) by the particle flow (62)
(:func:`spdl_ref.optim.train_mean_field`), with either output scaling:

* ``"mean_field"``: :math:`\Phi = \frac1J\sum_j f(\theta_j, \cdot)` and the flow
  :math:`\dot\theta_j = -J\nabla_{\theta_j}E`, the setting of Theorem 6.1;
* ``"ntk"``: :math:`\Phi = \frac{1}{\sqrt J}\sum_j f(\theta_j, \cdot)` and
  :math:`\dot\theta_j = -\nabla_{\theta_j}E`, the lazy (neural tangent kernel) scaling, in which
  the function still moves at a rate independent of :math:`J` but each particle by
  :math:`O(J^{-1/2})`.

It measures, for each :math:`J` (the keys end in ``_J<J>``):

* ``move``: :math:`W_2(\mu_{T,J}, \mu_{0,J})`, how far training moves the particle measure;
* for each pair :math:`(J, 2J)`: ``dev`` and ``rel_dev``, the root-mean-square difference
  between the positions at time :math:`T` of the :math:`J` shared particles in the two runs
  (:func:`spdl_ref.optim.nested_deviation`; zero at :math:`t = 0`) and that divided by their
  root-mean-square displacement; ``w2_0`` and ``w2_T``, :math:`W_2(\mu_{t,J}, \mu_{t,2J})` at
  :math:`t = 0` and :math:`t = T`; ``l2_0`` and ``l2_T``, the :math:`L^2` distance between the
  two networks' functions on a grid at the same times;
* ``loss``: the final training loss, and ``cone``: the largest
  :math:`||c_j|^2 - \|a_j\|^2 - |b_j|^2|` at the end.

The data: 40 points of :math:`y = |x| - x^2/2 + 0.3\sin 3x` on :math:`[-1, 1]` (:math:`M = 1`).

>>> from spdl_ref import experiments
>>> mf = experiments.get("mean_field")
>>> out = mf.run(mf.smoke(0), budget="ci", device="cpu")
>>> sorted(k[: -len("_J4")] for k in out if k.endswith("_J4"))
['cone', 'dev', 'l2_0', 'l2_T', 'loss', 'move', 'rel_dev', 'w2_0', 'w2_T']
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import _validate
from ..config import BUDGETS
from ..optim import (
    MeanFieldReLU,
    nested_deviation,
    particle_distance,
    train_mean_field,
)
from ..optim.mean_field import SCALINGS
from ._registry import Experiment, register, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SIZES", "data", "figure", "run", "slopes"]

#: Widths, Euler steps and step size at each budget (the time is ``steps * lr``).
SIZES = {
    "ci": dict(widths=[16, 32, 64, 128, 256, 512], steps=1500, lr=0.05),
    "paper": dict(widths=[16, 32, 64, 128, 256, 512, 1024, 2048], steps=4000, lr=0.05),
}


def data(
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The 40 training points :math:`(x_n, y_n)` of the experiment (Section 6.3)."""
    x = torch.linspace(-1, 1, 40, dtype=dtype, device=device)[:, None]
    y = x[:, 0].abs() - 0.5 * x[:, 0] ** 2 + 0.3 * torch.sin(3 * x[:, 0])
    return x, y


def _tasks(budget: str, runs: int, seed: int) -> list[dict]:
    return [{"seed": seed + r, "scaling": s} for s in SCALINGS for r in range(runs)]


def run(task: dict, *, budget: str, device: torch.device | str) -> dict:
    """One seed of one scaling over all widths of the budget (a task of ``mean_field``).
    See Theorem 6.1 in Section 6.3 of the review.

    ``task`` may override the budget's ``widths``, ``steps`` and ``lr``. Returns the metrics of
    the module text, in float64, computed on ``device`` (distances on the CPU).
    """
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    sizes = {**SIZES[budget], **{k: task[k] for k in ("widths", "steps", "lr") if k in task}}
    scaling = _validate.choice(task.get("scaling"), SCALINGS, "task['scaling']")
    seed = _validate.nonnegative_int(task.get("seed"), "task['seed']")
    widths = [_validate.positive_int(J, "task['widths']") for J in sizes["widths"]]
    device = torch.device(device)
    x, y = data(device)
    grid = torch.linspace(-1.5, 1.5, 301, dtype=torch.float64, device=device)[:, None]
    ends = {}
    out: dict = {"scaling": scaling, "time": sizes["steps"] * sizes["lr"]}
    for J in widths:
        net = MeanFieldReLU(
            1,
            J,
            generator=torch.Generator().manual_seed(seed),
            scaling=scaling,
            device=device,
            dtype=torch.float64,
        )
        start = net.particles().cpu()
        with torch.no_grad():
            f_start = net(grid)
        record = train_mean_field(net, x, y, lr=sizes["lr"], steps=sizes["steps"])
        with torch.no_grad():
            f_end = net(grid)
        ends[J] = (start, net.particles().cpu(), f_start, f_end)
        out[f"move_J{J}"] = particle_distance(start, ends[J][1])
        out[f"loss_J{J}"] = float(record.loss[-1])
        out[f"cone_J{J}"] = float(net.cone_defect().abs().max())
    for J in widths:
        if 2 * J not in ends:
            continue
        (P0, PT, f0, fT), (Q0, QT, g0, gT) = ends[J], ends[2 * J]
        dev = nested_deviation(PT, QT)
        out[f"dev_J{J}"] = dev
        out[f"rel_dev_J{J}"] = dev / nested_deviation(PT, P0)
        out[f"w2_0_J{J}"] = particle_distance(P0, Q0)
        out[f"w2_T_J{J}"] = particle_distance(PT, QT)
        out[f"l2_0_J{J}"] = float((f0 - g0).pow(2).mean().sqrt())
        out[f"l2_T_J{J}"] = float((fT - gT).pow(2).mean().sqrt())
    return out


def _series(rows: list[dict], metric: str) -> tuple[list[int], list[float]]:
    """The widths and the per-width values of ``metric`` (keys ``<metric>_J<J>``) in ``rows``."""
    prefix = f"{metric}_J"
    widths = sorted(
        int(k[len(prefix) :])
        for k in rows[0]
        if k.startswith(prefix) and k[len(prefix) :].isdigit()
    )
    values = []
    for J in widths:
        v = [r[f"{prefix}{J}"] for r in rows]
        v = [float(e["mean"]) if isinstance(e, dict) else float(e) for e in v]
        values.append(sum(v) / len(v))
    return widths, values


def slopes(rows: list[dict], metric: str) -> float:
    r"""The least-squares slope of :math:`\log(\text{metric})` against :math:`\log J` over the
    widths, for the mean of ``metric`` over ``rows`` (results of :func:`run`, or rows of
    :func:`spdl_ref.experiments.aggregate`): the observed rate :math:`J^{\text{slope}}`.
    See Theorem 6.1 in Section 6.3 of the review."""
    widths, values = _series(rows, metric)
    if len(widths) < 2:
        raise ValueError(f"need {metric} at two widths or more, got {widths}")
    lx = torch.tensor(widths, dtype=torch.float64).log()
    ly = torch.tensor(values, dtype=torch.float64).log()
    lx = lx - lx.mean()
    return float((lx * (ly - ly.mean())).sum() / (lx * lx).sum())


def figure(tasks: list[dict], results: list[dict]) -> Figure:
    """Particle movement and relative deviation against the width, both scalings, log-log.
    See Theorem 6.1 in Section 6.3 of the review.

    Returns a :class:`matplotlib.figure.Figure` (matplotlib is imported here).
    """
    import matplotlib.pyplot as plt

    from ..plotting import plain_log_ticks

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for scaling, marker in zip(SCALINGS, "os", strict=True):
        rows = [r for t, r in zip(tasks, results, strict=True) if t["scaling"] == scaling]
        if not rows:
            continue
        for ax, metric in zip(axes, ("move", "rel_dev"), strict=True):
            widths, values = _series(rows, metric)
            slope = slopes(rows, metric)
            label = f"{scaling.replace('_', ' ')} (slope {round(slope, 2) + 0.0:.2f})"
            ax.loglog(widths, values, marker=marker, label=label)
    axes[0].set(xlabel="neurons J", ylabel="W2(mu_T,J, mu_0,J)", title="how far particles move")
    axes[1].set(
        xlabel="neurons J", ylabel="deviation / displacement", title="same particle, J vs 2J"
    )
    for ax in axes:
        widths = _series([results[0]], "move")[0]
        plain_log_ticks(ax, "x", widths)
        plain_log_ticks(ax, "y")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _plot(tasks: list[dict], results: list[dict], out_dir: Path) -> list[Path]:

    fig = figure(tasks, results)
    return save_figure(fig, out_dir, "mean_field.png", dpi=120)


EXPERIMENT = register(
    Experiment(
        name="mean_field",
        description="Theorem 6.1: mean-field vs NTK two-layer ReLU networks as the width grows",
        chapter="chapters/ch6_optimisation",
        tasks=_tasks,
        run=run,
        plot=_plot,
        smoke=lambda seed: {
            "seed": seed,
            "scaling": "mean_field",
            "widths": [4, 8, 16],
            "steps": 3,
        },
    )
)
