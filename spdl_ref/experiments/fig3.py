r"""Figure 3 of the review (Section 5.2): an ordinary and a rotation-equivariant denoiser.

Each task trains one denoiser :math:`\Psi` (:func:`spdl_ref.equivariant.make_denoiser`) on the
denoising problem (52) with :func:`spdl_ref.equivariant.train_denoiser` and evaluates it on
held-out images: the training and validation objectives, the PSNR on the test images and on
rotated copies of them, and the equivariance error (50) against the rotation angle. The tasks
are the two kinds times the runs (seeds); a task may also name ``"group_order"`` (the :math:`N`
of the equivariant denoiser's :math:`C_N`, 8 by default), which is how the chapter compares
:math:`C_4` with :math:`C_8`.

Sizes by budget (:data:`SETTINGS`): ``"paper"`` is the review's experiment (60 x 60 images,
width 64, depth 20, 1500 Adam iterations on minibatches of 64, 5 runs per denoiser); ``"ci"``
shrinks it to run in seconds on a CPU. A task may override any of them (the smoke task does).

>>> from spdl_ref.experiments import fig3
>>> [t["kind"] for t in fig3.EXPERIMENT.make_tasks("ci", runs=2)]
['ordinary', 'ordinary', 'equivariant', 'equivariant']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .. import _validate
from ..config import BUDGETS
from ..data import random_rectangles
from ..equivariant import (
    add_noise,
    disc_mask,
    equivariance_error,
    make_denoiser,
    parameter_count,
    psnr,
    rotate,
    train_denoiser,
)
from ..loop import History
from ._registry import Experiment, register, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ANGLES",
    "COLOURS",
    "COMMON",
    "EXPERIMENT",
    "KINDS",
    "PSNR_ANGLES",
    "RUNS",
    "SETTINGS",
    "angle_key",
    "denoising_data",
    "evaluate",
    "example_figure",
    "iterations_to_reach",
    "run",
    "settings",
    "smoothed",
    "tasks",
    "train",
    "training_figure",
]

#: The two denoisers of Figure 3: the ordinary CNN and the C8-equivariant one (Section 5.2).
KINDS = ("ordinary", "equivariant")

#: Sizes of the experiment at each budget ("paper": the review's Section 5.2).
SETTINGS: dict[str, dict[str, Any]] = {
    "ci": dict(
        size=24, n_train=256, n_val=16, n_test=32, width=16, depth=4, batch=8, iterations=100
    ),
    "paper": dict(
        size=60, n_train=2048, n_val=64, n_test=256, width=64, depth=20, batch=64, iterations=1500
    ),
}
#: Settings shared by both budgets: kernel size, noise level, (52)'s lambda and epsilon, Adam's
#: step size, validation interval, the seeds of the training, validation and test images, and
#: the seed of the test noise (the same noisy test images for every run).
COMMON: dict[str, Any] = dict(
    kernel_size=3,
    noise=0.15,
    lam=0.02,
    eps=0.01,
    lr=3e-3,
    val_every=10,
    data_seeds=(1, 2, 3),
    test_noise_seed=11,
)
#: Runs per denoiser at each budget (the review: 5).
RUNS = {"ci": 2, "paper": 5}
#: Rotation angles (degrees) of the PSNR table: on the grid, a quarter turn, three off the grid.
PSNR_ANGLES = (0, 90, 15, 30, 45)
#: Rotation angles (degrees) at which the equivariance error (50) is measured.
ANGLES = (5, 15, 22.5, 30, 45, 60, 67.5, 90, 135, 180, 270)
#: The colour of each denoiser in every figure of Chapter 5.
COLOURS = {"ordinary": "#d1495b", "equivariant": "#1b6ca8"}
#: Task keys that override the budget's sizes.
_OVERRIDES = set(SETTINGS["ci"]) | {"group_order"}


def settings(budget: str, task: dict | None = None) -> dict[str, Any]:
    """The sizes of ``budget`` (:data:`SETTINGS` and :data:`COMMON`), overridden by ``task``'s
    (Figure 3)."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    out = {**COMMON, **SETTINGS[budget], "group_order": 8}
    for key, value in (task or {}).items():
        if key in _OVERRIDES:
            out[key] = value
    return out


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per denoiser kind and run: ``{"kind": ..., "seed": seed + r}`` (Figure 3)."""
    return [{"kind": kind, "seed": seed + r} for kind in KINDS for r in range(runs)]


def smoke(seed: int) -> dict:
    """The smallest task that still runs every code path of :func:`run` (escnn included)."""
    return {
        "kind": "equivariant",
        "seed": seed,
        "size": 9,
        "n_train": 4,
        "n_val": 2,
        "n_test": 2,
        "width": 8,
        "depth": 1,
        "batch": 2,
        "iterations": 2,
    }


def denoising_data(
    s: dict, device: torch.device | str | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The clean training, validation and test images :math:`x^*` of Figure 3, on ``device``."""
    n = (s["n_train"], s["n_val"], s["n_test"])
    train, val, test = (
        random_rectangles(k, size=s["size"], seed=seed, device=device)
        for k, seed in zip(n, s["data_seeds"], strict=True)
    )
    return train, val, test


def train(
    task: dict, *, budget: str, device: torch.device | str | None
) -> tuple[nn.Module, History, dict]:
    """Train the denoiser of ``task`` on ``device``; return ``(model, history, sizes)``
    (Section 5.2, problem (52)).

    The model's initialisation is seeded with ``task["seed"]`` and its minibatches and noise
    with ``100 + task["seed"]`` (a generator on ``device``).
    """
    _validate.choice(task.get("kind"), KINDS, 'task["kind"]')
    seed = _validate.nonnegative_int(task.get("seed"), 'task["seed"]')
    device = _validate.device(device)
    s = settings(budget, task)
    clean, clean_val, _ = denoising_data(s, device)
    torch.manual_seed(seed)
    extra = {"group_order": s["group_order"]} if task["kind"] == "equivariant" else {}
    model = make_denoiser(
        task["kind"],
        width=s["width"],
        depth=s["depth"],
        kernel_size=s["kernel_size"],
        device=device,
        **extra,
    )
    history = train_denoiser(
        model,
        clean,
        clean_val,
        noise=s["noise"],
        iterations=s["iterations"],
        batch_size=s["batch"],
        lr=s["lr"],
        lam=s["lam"],
        eps=s["eps"],
        val_every=s["val_every"],
        generator=torch.Generator(device=device).manual_seed(100 + seed),
    )
    return model, history, s


def evaluate(model: nn.Module, history: History, s: dict) -> dict[str, Any]:
    """The metrics of one trained denoiser (Figure 3 and Sections 5.2, 5.3.3).

    ``parameters``; ``loss`` (the objective (52) on each minibatch); ``validation`` (pairs of
    iteration and validation objective); ``final_validation``; ``final_loss`` (the mean
    training objective over the last tenth of the iterations); ``psnr_at_A`` and
    ``noisy_psnr_at_A`` (mean PSNR in dB over the test images rotated by ``A`` degrees, on the
    inscribed disc, for :data:`PSNR_ANGLES`; multiples of 90 degrees rotate the same noisy
    images, other angles draw fresh noise); ``equivariance_error_at_A`` (relative error (50) on
    the clean test images, :func:`~spdl_ref.equivariant.equivariance_error`, for
    :data:`ANGLES`). Angles in keys are written with ``p`` for the point: ``22p5``.
    """
    device = next(model.parameters()).device
    _, _, clean_test = denoising_data(s, device)
    g = torch.Generator(device=device).manual_seed(s["test_noise_seed"])
    noisy0 = add_noise(clean_test, s["noise"], g)
    mask = disc_mask(s["size"], device=device, dtype=clean_test.dtype)
    loss = [float(v) for v in history.loss]
    tail = max(1, len(loss) // 10)
    out: dict[str, Any] = {
        "parameters": parameter_count(model),
        "loss": loss,
        "validation": [[int(i), float(v)] for i, v in history.series["validation"]],
        "final_validation": float(history.series["validation"][-1][1]),
        "final_loss": sum(loss[-tail:]) / tail,
    }
    model.eval()
    with torch.no_grad():
        for angle in PSNR_ANGLES:
            target = rotate(clean_test, float(angle))
            noisy = (
                rotate(noisy0, float(angle))
                if angle % 90 == 0
                else add_noise(target, s["noise"], g)
            )
            key = angle_key(angle)
            out[f"noisy_psnr_at_{key}"] = float(psnr(noisy, target, mask=mask).mean())
            out[f"psnr_at_{key}"] = float(psnr(model(noisy), target, mask=mask).mean())
    for eq_angle in ANGLES:
        err = equivariance_error(model, clean_test, float(eq_angle))
        out[f"equivariance_error_at_{angle_key(eq_angle)}"] = err
    return out


def run(task: dict, *, budget: str, device: torch.device | str | None) -> dict[str, Any]:
    """Train and evaluate one denoiser: :func:`train` then :func:`evaluate` (Figure 3)."""
    model, history, s = train(task, budget=budget, device=device)
    return evaluate(model, history, s)


def angle_key(angle: float) -> str:
    """How an angle in degrees is written in the metrics' keys of :func:`evaluate` (Figure 3):
    ``p`` for the decimal point.

    >>> angle_key(22.5), angle_key(90)
    ('22p5', '90')
    """
    return f"{_validate.real(angle, 'angle'):g}".replace(".", "p")


def smoothed(loss: Sequence[float], window: int = 10) -> list[float]:
    """Moving average of a training curve over ``window`` iterations (Figure 3, left).

    Entry ``i`` is the mean of ``loss[i : i + window]``; the result has
    ``len(loss) - window + 1`` entries.

    >>> smoothed([4.0, 2.0, 0.0, 2.0], window=2)
    [3.0, 1.0, 1.0]
    """
    window = _validate.positive_int(window, "window")
    values = [float(v) for v in loss]
    if len(values) < window:
        raise ValueError(f"loss must have at least window = {window} entries, got {len(values)}")
    return [sum(values[i : i + window]) / window for i in range(len(values) - window + 1)]


def iterations_to_reach(loss: Sequence[float], level: float, window: int = 10) -> float:
    """How many iterations a training curve needs to reach ``level`` (Figure 3, "converges in
    fewer iterations").

    The first iteration (counted from 1) at which the :func:`smoothed` curve is at or below
    ``level``: the moving average ending there. ``math.inf`` if it never gets there.

    >>> iterations_to_reach([5.0, 4.0, 3.0, 2.0, 1.0], 2.5, window=2)
    4
    >>> iterations_to_reach([5.0, 4.0], 1.0, window=1)
    inf
    """
    level = _validate.real(level, "level")
    for i, v in enumerate(smoothed(loss, window)):
        if v <= level:
            return i + window
    return math.inf


def training_figure(task_list: Sequence[dict], results: Sequence[dict], window: int = 10) -> Figure:
    """Figure 3, left: the training objective (moving average over ``window`` iterations, or
    over the shortest run if that is shorter) and the validation objective of every run,
    coloured by kind. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    from ..plotting import plain_log_ticks, use_style

    use_style()
    # a run shorter than the window (a smoke task) is averaged over its whole length
    window = min(_validate.positive_int(window, "window"), *(len(r["loss"]) for r in results))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    seen = set()
    for task, res in zip(task_list, results, strict=True):
        kind = task["kind"]
        label = None if kind in seen else kind
        seen.add(kind)
        curve = smoothed(res["loss"], window)
        its = range(window, window + len(curve))
        axes[0].semilogy(its, curve, color=COLOURS[kind], alpha=0.8, label=label)
        at, vals = zip(*res["validation"], strict=True)
        axes[1].semilogy(at, vals, color=COLOURS[kind], alpha=0.8, label=label)
    axes[0].set(xlabel="iteration", ylabel="objective (52), moving average", title="training")
    axes[1].set(xlabel="iteration", ylabel="objective (52)", title="validation")
    for ax in axes:
        plain_log_ticks(ax, "y")
        ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def example_figure(models: dict, s: dict, angle: float = 30.0, seed: int = 7) -> Figure:
    """Figure 3, right: a test image on the grid and rotated by ``angle`` degrees, the noisy
    inputs and each model's output, with its PSNR. ``models`` maps a title to a denoiser."""
    import matplotlib.pyplot as plt

    from ..plotting import use_style

    use_style()
    device = next(next(iter(models.values())).parameters()).device
    _, _, clean_test = denoising_data(s, device)
    example = clean_test[:1]
    mask = disc_mask(s["size"], device=device, dtype=example.dtype)
    g = torch.Generator(device=device).manual_seed(seed)
    rows = {"on-grid": example, f"rotated by {angle:g}°": rotate(example, angle) * mask}
    fig, axes = plt.subplots(len(rows), 2 + len(models), figsize=(2 * (2 + len(models)), 4.3))
    for row, (name, target) in zip(axes, rows.items(), strict=True):
        noisy = add_noise(target, s["noise"], g)
        with torch.no_grad():
            outs = {k: m.eval()(noisy) for k, m in models.items()}
        panels = {f"{name}: clean": target, "noisy": noisy, **outs}
        for ax, (title, img) in zip(row, panels.items(), strict=True):
            ax.imshow(img[0, 0].cpu(), cmap="gray", vmin=0, vmax=1)
            db = "" if img is target else f"\n{float(psnr(img, target)):.1f} dB"
            ax.set_title(f"{title}{db}")
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot(task_list: list[dict], results: list[dict], out_dir: Path) -> list[Path]:
    """Write Figure 3's training curves to ``out_dir/fig3_training.png``."""

    fig = training_figure(task_list, results)
    return save_figure(fig, out_dir, "fig3_training.png")


#: The registered experiment (:class:`~spdl_ref.experiments.Experiment`); run it with
#: ``python -m spdl_ref.reproduce fig3``.
EXPERIMENT = register(
    Experiment(
        name="fig3",
        description="Figure 3 (Section 5.2): ordinary vs rotation-equivariant denoiser, (52)",
        chapter="chapters/ch5_equivariant",
        tasks=tasks,
        run=run,
        plot=plot,
        peers=("escnn",),
        smoke=smoke,
    )
)
