r"""Sample complexity of the two denoisers of Figure 3, the open problem of Section 5.3.1.

A sweep of seeds x kinds x training-set sizes, one task each: a denoiser of one kind is trained
on the first :math:`n` images of a training set drawn with the task's seed (so the sets of one
seed are nested), each image with one fixed noise draw, and tested on a fixed set of held-out
images (:func:`spdl_ref.equivariant.sample_complexity` does the training and testing). Across
seeds the training images, the noise, the initialisation and the minibatches all change, so the
spread over seeds is the spread of the whole procedure, and the mean over seeds estimates the
expected test error at each :math:`n`.

Sizes by budget (:data:`SETTINGS`). The review prescribes no such experiment; ``"paper"``
uses the denoisers of its Figure 3 (60 x 60 images, width 64, depth 20) with :math:`n` up to
2048. ``"ci"`` stops at :math:`n = 32` with three seeds: 300 steps of two images fit 32 images
but not 128 (each of 128 images would be seen fewer than five times), and the sweep must fit
the chapter's time on a CPU (18 trainings of about a second of one core each).

>>> from spdl_ref.experiments import sample_complexity as sc
>>> len(sc.EXPERIMENT.make_tasks("ci", runs=3))  # 2 kinds x 3 sizes x 3 seeds
18
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _validate
from ..config import BUDGETS
from ..data import random_rectangles
from ..equivariant import sample_complexity
from ._registry import Experiment, aggregate, register, save_figure
from .fig3 import COLOURS, KINDS

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

__all__ = ["EXPERIMENT", "RUNS", "SETTINGS", "figure", "run", "settings", "table", "tasks"]

#: Sizes at each budget: images, training-set sizes, test and validation sets, denoiser width
#: and depth, Adam iterations and minibatch.
SETTINGS: dict[str, dict[str, Any]] = {
    "ci": dict(
        size=16,
        n_train=[2, 8, 32],
        n_val=16,
        n_test=64,
        width=16,
        depth=2,
        iterations=300,
        batch=2,
    ),
    "paper": dict(
        size=60,
        n_train=[2, 8, 32, 128, 512, 2048],
        n_val=64,
        n_test=256,
        width=64,
        depth=20,
        iterations=3000,
        batch=16,
    ),
}
#: Shared by both budgets: kernel size, noise, (52)'s lambda and epsilon, Adam's step size, the
#: seeds of the validation and test images (fixed) and the offset of the training images' seed.
COMMON: dict[str, Any] = dict(
    kernel_size=3,
    noise=0.15,
    lam=0.02,
    eps=0.01,
    lr=3e-3,
    val_seed=22,
    test_seed=23,
    train_seed_offset=1000,
)
#: Seeds per (kind, size) at each budget.
RUNS = {"ci": 3, "paper": 5}
_OVERRIDES = set(SETTINGS["ci"]) - {"n_train"}


def settings(budget: str, task: dict | None = None) -> dict[str, Any]:
    """The sizes of ``budget``, overridden by ``task``'s (Section 5.3.1)."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    out = {**COMMON, **SETTINGS[budget]}
    for key, value in (task or {}).items():
        if key in _OVERRIDES:
            out[key] = value
    return out


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per kind, training-set size and seed (Section 5.3.1)."""
    return [
        {"kind": kind, "n": n, "seed": seed + r}
        for kind in KINDS
        for n in settings(budget)["n_train"]
        for r in range(runs)
    ]


def smoke(seed: int) -> dict:
    """The smallest task that runs every code path of :func:`run`."""
    return {
        "kind": "equivariant",
        "n": 2,
        "seed": seed,
        "size": 9,
        "n_val": 2,
        "n_test": 2,
        "width": 8,
        "depth": 1,
        "iterations": 2,
        "batch": 2,
    }


def run(task: dict, *, budget: str, device: torch.device | str | None) -> dict[str, float]:
    """Train one denoiser on :math:`n` images and test it (Section 5.3.1).

    Returns ``test_objective`` (the objective (52) on the noisy test images), ``test_psnr`` and
    ``rotated_psnr`` (mean PSNR in dB on the test images and on the same images rotated by 45
    degrees, inscribed disc), from :func:`spdl_ref.equivariant.sample_complexity`.
    """
    _validate.choice(task.get("kind"), KINDS, 'task["kind"]')
    seed = _validate.nonnegative_int(task.get("seed"), 'task["seed"]')
    n = _validate.positive_int(task.get("n"), 'task["n"]')
    device = _validate.device(device)
    s = settings(budget, task)
    n_max = max(n, *settings(budget)["n_train"])  # nested sets: one pool per seed
    clean = random_rectangles(
        n_max, size=s["size"], seed=s["train_seed_offset"] + seed, device=device
    )
    clean_val = random_rectangles(s["n_val"], size=s["size"], seed=s["val_seed"], device=device)
    clean_test = random_rectangles(s["n_test"], size=s["size"], seed=s["test_seed"], device=device)
    (row,) = sample_complexity(
        clean,
        clean_val,
        clean_test,
        [n],
        kinds=[task["kind"]],
        width=s["width"],
        depth=s["depth"],
        kernel_size=s["kernel_size"],
        noise=s["noise"],
        iterations=s["iterations"],
        batch_size=min(s["batch"], n),
        lr=s["lr"],
        lam=s["lam"],
        eps=s["eps"],
        runs=1,
        seed=seed,
    )
    return {k: row[k] for k in ("test_objective", "test_psnr", "rotated_psnr")}


def table(task_list: Sequence[dict], results: Sequence[dict]) -> dict[tuple[str, int], dict]:
    """Mean and spread over seeds per ``(kind, n)``: ``{(kind, n): {metric: {mean, std, ...},
    "runs": r}}`` (:func:`spdl_ref.experiments.aggregate`, Section 5.3.1)."""
    return {(row["kind"], row["n"]): row for row in aggregate(task_list, results)}


def figure(task_list: Sequence[dict], results: Sequence[dict]) -> Figure:
    """Test objective (52) and PSNR against the number of training images, mean ± one standard
    deviation over seeds, for each kind (Section 5.3.1). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    from ..plotting import plain_log_ticks, use_style

    use_style()
    rows = table(task_list, results)
    ns = sorted({n for _, n in rows})
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    for kind in KINDS:
        if not any(k == kind for k, _ in rows):
            continue
        for ax, key, style, label in (
            (axes[0], "test_objective", "o-", kind),
            (axes[1], "test_psnr", "o-", f"{kind}, on the grid"),
            (axes[1], "rotated_psnr", "s--", f"{kind}, rotated 45°"),
        ):
            mean = [rows[kind, n][key]["mean"] for n in ns]
            std = [rows[kind, n][key]["std"] for n in ns]
            ax.errorbar(ns, mean, yerr=std, fmt=style, color=COLOURS[kind], capsize=3, label=label)
    axes[0].set(xlabel="training images n", ylabel="test objective (52)", title="test error")
    axes[1].set(xlabel="training images n", ylabel="test PSNR (dB)", title="test PSNR")
    for ax in axes:
        ax.set_xscale("log")
        plain_log_ticks(ax, "x", ns)
    axes[0].legend(frameon=False)
    axes[1].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def plot(task_list: list[dict], results: list[dict], out_dir: Path) -> list[Path]:
    """Write the sample-complexity curves to ``out_dir/sample_complexity.png``."""

    fig = figure(task_list, results)
    return save_figure(fig, out_dir, "sample_complexity.png")


#: The registered experiment (:class:`~spdl_ref.experiments.Experiment`); run it with
#: ``python -m spdl_ref.reproduce sample_complexity``.
EXPERIMENT = register(
    Experiment(
        name="sample_complexity",
        description="Section 5.3.1: test error of both denoisers against the training-set size",
        chapter="chapters/ch5_equivariant",
        tasks=tasks,
        run=run,
        plot=plot,
        peers=("escnn",),
        smoke=smoke,
    )
)
