r"""Memory-efficient backpropagation against depth (Section 4.2.1).

For networks of :math:`K` additive coupling layers (42)
(:func:`~spdl_ref.invertible.coupling_stack`) one training step is run with ordinary
backpropagation, which stores every layer's input :math:`z^k`, and with the memory-efficient
backward of :class:`~spdl_ref.invertible.InvertibleSequential`, which stores only the output and
rebuilds :math:`z^k = f_k^{-1}(z^{k+1})` on the way back. Each depth is one task; it reports the
peak activation memory of a step in both modes
(:func:`~spdl_ref.invertible.coupling_step_memory`: the CUDA allocator's peak, or the profiler's
allocation trace on a CPU; deterministic), the median time of a step in both modes (wall clock:
varies from machine to machine and run to run) and the largest relative difference between the
two modes' gradients (they must agree: the memory-efficient backward is exact).

Sizes. ``"ci"``: depths 2 to 32, width 64, batch 256, 3 timing repeats. ``"paper"``: depths 4 to
128, width 256, batch 1024, 7 repeats.

The chapter (``chapters/ch4_invertible``) runs the same tasks through :func:`run` and draws
:func:`figure`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import torch
from torch import nn

from ..invertible import coupling_stack, coupling_step, coupling_step_memory
from ._registry import Experiment, register, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EXPERIMENT", "SETTINGS", "figure", "plot", "run", "smoke", "step_seconds", "tasks"]


class _Settings(TypedDict):
    depths: tuple[int, ...]
    width: int
    hidden: int
    batch: int
    repeats: int


#: Sizes per budget.
SETTINGS: dict[str, _Settings] = {
    "ci": {"depths": (2, 4, 8, 16, 32), "width": 64, "hidden": 64, "batch": 256, "repeats": 3},
    "paper": {
        "depths": (4, 8, 16, 32, 64, 128),
        "width": 256,
        "hidden": 256,
        "batch": 1024,
        "repeats": 7,
    },
}


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per depth and seed, with the budget's sizes (Section 4.2.1)."""
    s = SETTINGS[budget]
    sizes = {
        "width": s["width"],
        "hidden": s["hidden"],
        "batch": s["batch"],
        "repeats": s["repeats"],
    }
    return [{"seed": seed + r, "depth": d, **sizes} for d in s["depths"] for r in range(runs)]


def smoke(seed: int) -> dict:
    """Depth 2 at tiny sizes: every step of :func:`run` (Section 4.2.1)."""
    return {"seed": seed, "depth": 2, "width": 4, "hidden": 4, "batch": 8, "repeats": 1}


def step_seconds(net: nn.Module, xb: torch.Tensor, repeats: int) -> float:
    """The median wall-clock time of ``repeats`` training steps (after one warm-up step).

    See Section 4.2.1 of the review."""
    sync: Callable[[], None] = (
        torch.cuda.synchronize if xb.device.type == "cuda" else (lambda: None)
    )
    coupling_step(net, xb)
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        coupling_step(net, xb)
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _grad(p: torch.Tensor) -> torch.Tensor:
    assert p.grad is not None  # every parameter of a coupling stack takes part in a step
    return p.grad


def run(task: dict, *, budget: str, device: torch.device | str) -> dict:
    """Memory, time and gradient agreement of one depth in both modes (Section 4.2.1)."""
    device = torch.device(device)
    sizes = dict(width=task["width"], hidden=task["hidden"], batch=task["batch"], seed=task["seed"])
    out: dict[str, float] = {}
    nets: dict[str, tuple[nn.Module, torch.Tensor]] = {}
    for mode, me in (("autograd", False), ("efficient", True)):
        out[f"memory_{mode}"] = coupling_step_memory(task["depth"], me, device=device, **sizes)
        nets[mode] = coupling_stack(task["depth"], me, device=device, **sizes)
        out[f"seconds_{mode}"] = step_seconds(*nets[mode], task["repeats"])
    out["time_ratio"] = out["seconds_efficient"] / out["seconds_autograd"]
    grads: dict[str, list[torch.Tensor]] = {}
    for mode, (net, xb) in nets.items():
        net.zero_grad()
        coupling_step(net, xb)
        grads[mode] = [_grad(p) for p in net.parameters()]
    out["gradient_difference"] = max(
        float((a - b).norm() / b.norm())
        for a, b in zip(grads["efficient"], grads["autograd"], strict=True)
    )
    out["parameter_bytes"] = sum(
        p.numel() * p.element_size() for p in nets["autograd"][0].parameters()
    )
    return out


def figure(tasks: list[dict], results: list[dict]) -> Figure:
    """Activation memory against depth in both modes (log-log), and the time ratio.

    See Section 4.2.1 of the review."""
    import matplotlib.pyplot as plt

    from ..plotting import plain_log_ticks, use_style

    use_style()
    by_depth: dict[int, list[dict]] = {}
    for t, r in zip(tasks, results, strict=True):
        by_depth.setdefault(t["depth"], []).append(r)
    depths = sorted(by_depth)

    def mean(key):
        return [statistics.fmean(r[key] for r in by_depth[d]) for d in depths]

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.0, 3.2))
    ax.plot(depths, [m / 2**20 for m in mean("memory_autograd")], "o-", label="autograd")
    ax.plot(depths, [m / 2**20 for m in mean("memory_efficient")], "s-", label="memory-efficient")
    ax.set(xlabel="depth K", ylabel="peak activation memory (MiB)", xscale="log", yscale="log")
    plain_log_ticks(ax, "x", depths)
    plain_log_ticks(ax, "y")
    ax.legend()
    bx.plot(depths, mean("time_ratio"), "o-", color="C2")
    bx.set(xlabel="depth K", ylabel="time of a step: memory-efficient / autograd", xscale="log")
    plain_log_ticks(bx, "x", depths)
    fig.tight_layout()
    return fig


def plot(tasks: list[dict], results: list[dict], out_dir: Path) -> list[Path]:
    """Write ``memory_efficient.png`` (:func:`figure`) into ``out_dir`` (Section 4.2.1)."""

    fig = figure(tasks, results)
    return save_figure(fig, out_dir, "memory_efficient.png")


#: The registered experiment (:class:`~spdl_ref.experiments.Experiment`); run it with
#: ``python -m spdl_ref.reproduce memory_efficient``.
EXPERIMENT = register(
    Experiment(
        name="memory_efficient",
        description="Section 4.2.1: activation memory and time of a training step against "
        "depth, autograd vs memory-efficient backpropagation",
        chapter="chapters/ch4_invertible",
        tasks=tasks,
        run=run,
        plot=plot,
        smoke=smoke,
    )
)
