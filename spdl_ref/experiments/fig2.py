r"""Figure 2 of the review: normalising flows on two moons (Section 4.2.3, eqs. (48)-(49)).

Three flows are fitted by maximum likelihood (49) to the same two-moons sample and compared on a
test sample: a coupling flow (affine coupling layers, Section 4.1.1), a residual flow (invertible
residual blocks with :math:`\mathrm{Lip}(f) \le c`, Section 4.1.2) and a continuous normalising
flow (an ODE network with the instantaneous change of variables, ref. [24];
:class:`~spdl_ref.invertible.ContinuousFlow`). Each (model, seed) is one task.

Sizes. ``"ci"``: 1000 training points; 8 coupling layers (500 Adam steps), 8 residual blocks
with exact log-determinants (1000 steps), a 4-layer ODE flow with two RK4 steps per layer
(300 steps). ``"paper"``:
10 000 points; the residual flow at the size of the Residual Flows code that drew the review's
figure (100 blocks of width 128 with four hidden layers, :math:`c = 0.9`, five power iterations
per step, the Russian-roulette log-determinant estimator, batch 500, Adam at :math:`10^{-3}`;
that code trains 50 000 steps, here 5000), and larger coupling and ODE flows. Test NLLs use exact
log-determinants (affordable in two dimensions).

The chapter (``chapters/ch4_invertible``) calls :func:`train_flow`, :func:`evaluate` and
:func:`figure` itself, so it and ``python -m spdl_ref.reproduce fig2`` run the same code.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .. import _validate, data
from ..invertible import (
    ContinuousFlow,
    InvertibleResidual,
    NormalisingFlow,
    coupling_flow,
    fit_flow,
    largest_lipschitz_bound,
    log_density_grid,
    residual_flow,
)
from ..loop import History
from ..ode import ReLUField
from ._registry import Experiment, register, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "EXPERIMENT",
    "MODELS",
    "SETTINGS",
    "estimate",
    "evaluate",
    "figure",
    "gaussian_nll",
    "plot",
    "run",
    "smoke",
    "tasks",
    "train_flow",
]

#: The three flows, in the order of the figure.
MODELS = ("coupling", "residual", "cnf")

_DATA: dict[str, dict[str, Any]] = {
    "ci": dict(n_train=1000, n_test=2000, noise=0.05, grid=90, n_samples=1000),
    "paper": dict(n_train=10_000, n_test=10_000, noise=0.05, grid=90, n_samples=1000),
}

#: Sizes per budget and model; a task holds all of them, so a task can also be made smaller.
SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "ci": {
        "coupling": dict(_DATA["ci"], layers=8, hidden=64, iterations=500, batch_size=256, lr=3e-3),
        "residual": dict(
            _DATA["ci"],
            blocks=8,
            hidden=64,
            n_layers=2,
            c=0.97,
            power_iterations=1,
            logdet="exact",
            iterations=1000,
            batch_size=256,
            lr=3e-2,
            monitor_every=10,
        ),
        "cnf": dict(
            _DATA["ci"],
            layers=4,
            hidden=32,
            method="rk4",
            T=1.0,
            substeps=2,
            iterations=300,
            batch_size=256,
            lr=1e-2,
        ),
    },
    "paper": {
        "coupling": dict(
            _DATA["paper"], layers=8, hidden=128, iterations=5000, batch_size=500, lr=1e-3
        ),
        "residual": dict(
            _DATA["paper"],
            blocks=100,
            hidden=128,
            n_layers=5,
            c=0.9,
            power_iterations=5,
            logdet="roulette",
            iterations=5000,
            batch_size=500,
            lr=1e-3,
            monitor_every=100,
        ),
        "cnf": dict(
            _DATA["paper"],
            layers=8,
            hidden=64,
            method="rk4",
            T=1.0,
            substeps=2,
            iterations=3000,
            batch_size=500,
            lr=3e-3,
        ),
    },
}


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per model and seed, with the budget's sizes (:data:`SETTINGS`).

    See Figure 2 in Section 4.2.3 of the review."""
    return [
        {"seed": seed + r, "model": m, **SETTINGS[budget][m]} for m in MODELS for r in range(runs)
    ]


def smoke(seed: int) -> dict:
    """A residual flow with the Russian-roulette estimator at the smallest sizes (every step of
    :func:`run`: data, training with a monitored Lipschitz bound, grid, samples).
    See Figure 2 in Section 4.2.3 of the review."""
    return dict(
        SETTINGS["ci"]["residual"],
        seed=seed,
        model="residual",
        n_train=64,
        n_test=64,
        grid=6,
        n_samples=16,
        blocks=2,
        hidden=8,
        logdet="roulette",
        iterations=3,
        batch_size=32,
        monitor_every=1,
    )


def two_moons_data(task: dict, device: torch.device | str | None) -> dict[str, torch.Tensor]:
    """The training and test samples of ``task`` on ``device`` (seeds ``1000 + seed`` and
    ``2000 + seed``)."""
    # The points are drawn with a CPU generator, so that they are the same on every device, and
    # moved to the device once.
    with torch.device("cpu"):
        x_train, _ = data.two_moons(
            task["n_train"], noise=task["noise"], seed=1000 + task["seed"], device=device
        )
        x_test, _ = data.two_moons(
            task["n_test"], noise=task["noise"], seed=2000 + task["seed"], device=device
        )
    return {"train": x_train, "test": x_test}


def build_flow(task: dict, device: torch.device | str | None) -> NormalisingFlow:
    """The untrained flow of ``task`` (model ``"coupling"``, ``"residual"`` or ``"cnf"``), on
    ``device``, with weights from the global generator."""
    model = _validate.choice(task["model"], MODELS, "model")
    if model == "coupling":
        return coupling_flow(2, task["layers"], "affine", hidden=task["hidden"], device=device)
    if model == "residual":
        return residual_flow(
            2,
            n_blocks=task["blocks"],
            c=task["c"],
            hidden=task["hidden"],
            n_layers=task["n_layers"],
            logdet=task["logdet"],
            actnorm=False,
            n_power_iterations=task["power_iterations"],
            device=device,
        )
    field = ReLUField(2, task["layers"], width=task["hidden"], activation="tanh", device=device)
    cnf = ContinuousFlow(field, task["method"], T=task["T"], substeps=task["substeps"])
    return NormalisingFlow(cnf, 2)


def train_flow(
    task: dict, *, device: torch.device | str | None = None
) -> tuple[NormalisingFlow, History, dict[str, torch.Tensor]]:
    r"""Build and fit the flow of ``task`` by (49); returns ``(flow, history, samples)``.

    ``samples`` holds the training and test points (``two_moons_data``). The global
    generators are seeded with the task's seed first. For the residual flow, the largest
    exact Lipschitz bound of its blocks, as the next training step normalises them
    (``largest_lipschitz_bound(flow, refresh=True)``), is recorded every ``monitor_every`` steps
    (in ``history.series["monitor"]``): it shows whether ``power_iterations`` power iterations
    per step keep :math:`\mathrm{Lip}(f) \le c` (47).
    """
    device = _device(device)
    torch.manual_seed(task["seed"])
    samples = two_moons_data(task, device)
    flow = build_flow(task, device)
    gen = torch.Generator(device=device).manual_seed(task["seed"])
    monitor = task["model"] == "residual"
    history = fit_flow(
        flow,
        samples["train"],
        iterations=task["iterations"],
        batch_size=task["batch_size"],
        lr=task["lr"],
        generator=gen,
        monitor=functools.partial(largest_lipschitz_bound, refresh=True) if monitor else None,
        monitor_every=task.get("monitor_every", 1),
    )
    return flow, history, samples


def gaussian_nll(x: torch.Tensor) -> float:
    """The negative log-likelihood per point of the best single Gaussian fitted to ``x``
    (``(N, M)``): the baseline a flow must beat.
    See Figure 2 in Section 4.2.3 of the review."""
    cov = torch.cov(x.T.double())
    m = x.shape[1]
    return 0.5 * m * math.log(2 * math.pi * math.e) + 0.5 * float(torch.logdet(cov))


def evaluate(
    task: dict, flow: NormalisingFlow, history: History, samples: dict[str, torch.Tensor]
) -> dict:
    """The metrics of a trained flow: test NLL (exact log-determinants), the Gaussian baseline,
    training time, the density on a grid, samples, and (residual flow) the Lipschitz record.
    See Figure 2 in Section 4.2.3 of the review."""
    for m in flow.modules():
        if isinstance(m, InvertibleResidual):
            m.logdet = "exact"  # two dimensions: the exact log-determinant is cheap
    with torch.no_grad():
        test_nll = float(flow.nll(samples["test"]))
    gx, gy, logp = log_density_grid(flow, XLIM, YLIM, n=task["grid"])
    gen = torch.Generator(device=samples["test"].device).manual_seed(task["seed"])
    drawn = flow.sample(task["n_samples"], generator=gen)
    out = {
        "test_nll": test_nll,
        "gaussian_nll": gaussian_nll(samples["train"]),
        "train_seconds": float(history.seconds[-1]),
        "final_loss": float(history.loss[-1]),
        "grid_x": gx[0].tolist(),
        "grid_y": gy[:, 0].tolist(),
        "grid_logp": logp.tolist(),
        "samples": drawn.tolist(),
    }
    if "monitor" in history.series:
        lip = [float(v) for v in history.series["monitor"]]
        out.update(
            lipschitz_max=max(lip),
            lipschitz_final=lip[-1],
            lipschitz_share_above_c=sum(v > task["c"] + 1e-6 for v in lip) / len(lip),
        )
    return out


def run(task: dict, *, budget: str, device: torch.device | str | None) -> dict:
    """Train and evaluate one flow: ``evaluate(task, *train_flow(task))``.

    See Figure 2 in Section 4.2.3 of the review."""
    task = {**SETTINGS[budget][task["model"]], **task}
    t0 = time.perf_counter()
    flow, history, samples = train_flow(task, device=device)
    out = evaluate(task, flow, history, samples)
    out["seconds"] = time.perf_counter() - t0
    return out


def estimate(task: dict, *, budget: str, device: torch.device | str | None) -> float:
    """The seconds :func:`run` will take on ``task``: four training steps are run on ``device``;
    the last three give the time per step (the first carries the warm-up), which is scaled to the
    task's ``iterations``, and the rest of the call (data, model, first step) is added once. Used
    by ``./dev gpu-check`` to size its runs; at the ``paper`` budget on one CPU core the residual
    flow comes out near four hours.
    See Figure 2 in Section 4.2.3 of the review.

    >>> from spdl_ref.experiments import fig2
    >>> fig2.estimate(fig2.smoke(0), budget="ci", device="cpu") > 0
    True
    """
    task = {**SETTINGS[budget][task["model"]], **task}
    t0 = time.perf_counter()
    _, history, _ = train_flow(dict(task, iterations=4, monitor_every=10**9), device=device)
    total = time.perf_counter() - t0
    per_step = (history.seconds[-1] - history.seconds[0]) / 3
    return total - 3 * per_step + per_step * (task["iterations"] - 1)


#: The window of the figure.
XLIM, YLIM = (-1.5, 2.5), (-1.0, 1.5)
_TITLES = {"coupling": "coupling flow", "residual": "residual flow", "cnf": "ODE flow (CNF)"}


def figure(tasks: list[dict], results: list[dict]) -> Figure:
    """Figure 2: the training data, and for each model (first seed) its density and samples."""
    import matplotlib.pyplot as plt
    import numpy as np

    from ..plotting import use_style

    use_style()
    first: dict[str, tuple[dict, dict]] = {}
    for t, r in zip(tasks, results, strict=True):
        first.setdefault(t["model"], (t, r))
    models = [m for m in MODELS if m in first]
    fig, axes = plt.subplots(2, len(models) + 1, figsize=(2.7 * (len(models) + 1), 4.6))
    t0 = first[models[0]][0]
    x_train = two_moons_data(t0, "cpu")["train"].numpy()
    axes[0, 0].scatter(*x_train[:1000].T, s=2, c="k")
    axes[0, 0].set_title("two moons (training data)")
    axes[1, 0].axis("off")
    for j, m in enumerate(models, start=1):
        _, r = first[m]
        density = np.exp(np.asarray(r["grid_logp"]))
        axes[0, j].pcolormesh(r["grid_x"], r["grid_y"], density, shading="auto")
        axes[0, j].set_title(f"{_TITLES[m]}: density, NLL {r['test_nll']:.2f}")
        axes[1, j].scatter(*np.asarray(r["samples"]).T, s=2, c="C1")
        axes[1, j].set_title(f"{_TITLES[m]}: samples")
    for ax in axes.flat:
        ax.set(xlim=XLIM, ylim=YLIM, aspect="equal", xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def plot(tasks: list[dict], results: list[dict], out_dir: Path) -> list[Path]:
    """Write ``fig2.png`` (:func:`figure`) into ``out_dir`` (Figure 2 in Section 4.2.3)."""

    out_dir = Path(out_dir)
    fig = figure(tasks, results)
    return save_figure(fig, out_dir, "fig2.png")


def _device(device: torch.device | str | None) -> torch.device:
    if device is None:
        from ..config import device as default_device

        return default_device()
    return torch.device(device)


#: The registered experiment (:class:`~spdl_ref.experiments.Experiment`); run it with
#: ``python -m spdl_ref.reproduce fig2``.
EXPERIMENT = register(
    Experiment(
        name="fig2",
        description="Figure 2: coupling, residual (Russian roulette at paper) and ODE flows "
        "on two moons (Section 4.2.3, eqs. (48)-(49))",
        chapter="chapters/ch4_invertible",
        tasks=tasks,
        run=run,
        plot=plot,
        smoke=smoke,
        estimate=estimate,
    )
)
