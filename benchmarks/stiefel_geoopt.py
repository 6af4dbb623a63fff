"""Riemannian steps on the Stiefel manifold: spdl_ref.optim.StiefelSGD against geoopt (Chapter 6,
Section 6.2.1).

Part 1, time per step. For points of V(n, p) (SO(n) when p = n) and a fixed Euclidean gradient,
in float64, times one step of
  * spdl_ref.optim.StiefelSGD with retraction="exp" and "cayley", in the form it picks by itself
    (low rank, through a 2p x 2p matrix, when 2p < n) and, where n is small enough, forced
    through the n x n generator (low_rank=False, the previous implementation's cost);
  * geoopt.optim.RiemannianSGD on geoopt.Stiefel(canonical=True) (a Cayley step that solves with
    an n x n matrix);
  * a Euclidean SGD step followed by the polar projection (thin SVD) back onto V(n, p);
and reports the median time per step, the ratios geoopt / ours and ours / projection, and the
constraint error ||theta^T theta - I||_F after 200 steps of each.

Part 2, the long float32 run: 10,000 steps on V(256, 32) with momentum 0.5 and random gradients,
for both retractions, with the re-orthonormalisation of StiefelSGD on (the default) and off
(threshold infinite), and geoopt with the same momentum: the final constraint error, how often
the re-orthonormalisation acted, and the time per step.

One thread; the methods are interleaved within every repeat, so a change of machine load
affects them alike; the load average is written with the table. geoopt missing: its rows are
skipped (pip install -e '.[riemannian]').

Run: python benchmarks/stiefel_geoopt.py  (writes benchmarks/results/stiefel_geoopt.md;
--quick for a smoke run that writes nothing)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import _report
import torch

import spdl_ref.optim.riemannian as riemannian
from spdl_ref.optim import StiefelSGD, project_stiefel, random_stiefel, stiefel_error

try:
    import geoopt
except ImportError:  # pragma: no cover
    geoopt = None

DENSE_UP_TO = 1024  # n above which the n x n forms (ours forced dense, geoopt) are timed once


class ProjectedSGD:
    """Euclidean SGD step followed by the polar projection onto V(n, p)."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    @torch.no_grad()
    def step(self):
        for p in self.params:
            p.copy_(project_stiefel(p - self.lr * p.grad))


def make(kind, theta0, lr, momentum=0.0):
    """A parameter at ``theta0`` and the optimiser ``kind`` for it."""
    if kind == "geoopt":
        theta = geoopt.ManifoldParameter(theta0.clone(), manifold=geoopt.Stiefel(canonical=True))
        return theta, geoopt.optim.RiemannianSGD([theta], lr=lr, momentum=momentum)
    theta = torch.nn.Parameter(theta0.clone())
    if kind == "projection":
        return theta, ProjectedSGD([theta], lr)
    retraction, _, form = kind.partition(" ")
    low_rank = False if form == "(n x n)" else None
    return theta, StiefelSGD([theta], lr=lr, momentum=momentum, retraction=retraction,
                             low_rank=low_rank)  # fmt: skip


def time_steps(runs, grad, repeats, budget):
    """Median seconds per step of each run, interleaved; each run's block of steps is sized to
    take about ``budget`` seconds (at least one step)."""
    blocks = {}
    for k, (theta, opt) in runs.items():
        theta.grad = grad.clone()
        start = time.perf_counter()
        opt.step()
        blocks[k] = max(1, min(50, round(budget / max(time.perf_counter() - start, 1e-6))))
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, (_theta, opt) in runs.items():
            start = time.perf_counter()
            for _ in range(blocks[k]):
                opt.step()
            times[k].append((time.perf_counter() - start) / blocks[k])
    return {k: statistics.median(v) for k, v in times.items()}


def part1(shapes, repeats, budget, lines):
    lines += [
        "## Time per step (float64)",
        "",
        f"Median over {repeats} interleaved repeats with a fixed gradient (lr 1e-3, no momentum); "
        "the constraint error is measured after 200 steps. `(n x n)`: our step forced through "
        "the n x n generator (`low_rank=False`), the cost of the previous implementation. "
        "`projection` is a Euclidean step followed by the polar projection (thin SVD), which "
        "keeps the constraint but is not a Riemannian update.",
        "",
        "| shape (n, p) | method | time per step (ms) | geoopt / this | this / projection "
        "| constraint error |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    targets = {}
    gen = torch.Generator().manual_seed(0)
    for n, p in shapes:
        theta0 = random_stiefel(n, p, generator=gen, dtype=torch.float64)
        grad = torch.randn(n, p, generator=gen, dtype=torch.float64)
        kinds = ["exp", "cayley"]
        if 2 * p < n and n <= DENSE_UP_TO:
            kinds += ["exp (n x n)", "cayley (n x n)"]
        kinds += ["projection"] + (["geoopt"] if geoopt else [])
        runs = {k: make(k, theta0, 1e-3) for k in kinds}
        slow = n > DENSE_UP_TO
        med = time_steps(runs, grad, 3 if slow else repeats, budget)
        for k in kinds:
            err = float("nan")
            if not (slow and k == "geoopt"):
                theta, opt = make(k, theta0, 1e-3)
                theta.grad = grad.clone()
                for _ in range(200):
                    opt.step()
                err = stiefel_error(theta.detach()).item()
            ratio_geoopt = f"{med['geoopt'] / med[k]:.1f}" if "geoopt" in med else "-"
            lines.append(
                f"| ({n}, {p}) | {k} | {1e3 * med[k]:.3f} | {ratio_geoopt} | "
                f"{med[k] / med['projection']:.2f} | {err:.1e} |"
            )
            print(lines[-1], flush=True)
        targets[(n, p)] = med
    return targets


def part2(steps, lines):
    n, p, lr, momentum = 256, 32, 0.05, 0.5
    lines += [
        "",
        f"## Long float32 run: {steps} steps on V({n}, {p}), momentum {momentum}",
        "",
        f"Random Gaussian gradients (entries of variance 1/n, the same sequence for every "
        f"method), lr {lr}. StiefelSGD re-orthonormalises (one Newton-Schulz step of the polar "
        "decomposition, applied to its 2p x p factor) when the error it measures in each step "
        "exceeds 2 eps sqrt(p) = "
        f"{riemannian.REORTHONORMALISE_AT * torch.finfo(torch.float32).eps * math.sqrt(p):.1e}; "
        "`off` sets that threshold to infinity, `every step` to zero (the cost of the "
        "correction itself).",
        "",
        "| method | final error | largest error at every 1,000th step | "
        "re-orthonormalisations | time per step (ms) |",
        "| --- | --- | --- | --- | --- |",
    ]
    kinds = [(r, mode) for r in ("exp", "cayley") for mode in ("on", "off", "every step")]
    kinds += [("geoopt", None)] if geoopt else []
    threshold = riemannian.REORTHONORMALISE_AT
    for kind, mode in kinds:
        gen = torch.Generator().manual_seed(0)
        theta, opt = make(kind, random_stiefel(n, p, generator=gen, dtype=torch.float32), lr,
                          momentum)  # fmt: skip
        riemannian.REORTHONORMALISE_AT = {"off": math.inf, "every step": 0.0}.get(mode, threshold)
        errors, seconds = [], 0.0
        try:
            for k in range(steps):
                theta.grad = torch.randn(n, p, generator=gen) / math.sqrt(n)
                start = time.perf_counter()
                opt.step()
                seconds += time.perf_counter() - start
                if (k + 1) % 1000 == 0 or k + 1 == steps:
                    errors.append(stiefel_error(theta.detach()).item())
        finally:
            riemannian.REORTHONORMALISE_AT = threshold
        state = opt.state[theta]
        label = kind if mode is None else f"{kind}, re-orthonormalisation {mode}"
        count = (
            "-" if mode in (None, "off") else f"{state['reorthonormalisations']} / {state['step']}"
        )
        lines.append(
            f"| {label} | {errors[-1]:.2e} | {max(errors):.2e} | {count} | "
            f"{1e3 * seconds / steps:.3f} |"
        )
        print(lines[-1], flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--budget", type=float, default=0.02, help="seconds per timed block")
    parser.add_argument("--steps", type=int, default=10_000, help="steps of the float32 run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small smoke run; writes nothing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if geoopt is None:
        print("geoopt is not installed (pip install -e '.[riemannian]'): skipping its rows")
    shapes = [(64, 64), (256, 256), (256, 16), (1024, 8), (512, 1), (4096, 64)]
    if args.quick:
        shapes, args.repeats, args.steps = [(64, 64), (48, 4)], 3, 200
    load = os.getloadavg()
    lines = [
        "# Riemannian SGD on the Stiefel manifold (Chapter 6)",
        "",
        f"CPU, {torch.get_num_threads()} thread(s), torch {torch.__version__}"
        + (f", geoopt {geoopt.__version__}" if geoopt else "")
        + f"; load average at the start {load[0]:.1f} (1 min), {load[1]:.1f} (5 min).",
        "",
    ]
    part1(shapes, args.repeats, args.budget, lines)
    part2(args.steps, lines)
    lines.append("")
    lines.append(f"Load average at the end: {os.getloadavg()[0]:.1f} (1 min).")
    if args.quick:
        print("\n".join(lines))
        return
    _report.write("stiefel_geoopt", lines, plot)


def plot(rows):
    """Time per step against the shape, and the ratios geoopt / ours (the first table)."""
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape (n, p)"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["shape (n, p)"], r["method"]): r for r in rows}
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.4))
    for method, marker in zip(methods, "os^vDxP", strict=False):
        have = [s for s in shapes if (s, method) in cell]
        x = [shapes.index(s) for s in have]
        ax0.plot(x, [_report.number(cell[s, method]["time per step (ms)"]) for s in have],
                 f"{marker}-", label=method)  # fmt: skip
        ratio = [cell[s, method]["geoopt / this"] for s in have]
        if method != "geoopt" and all(r != "-" for r in ratio):
            ax1.plot(x, [_report.number(r) for r in ratio], f"{marker}-", label=method)
    for ax in (ax0, ax1):
        ax.set_xticks(range(len(shapes)), shapes, rotation=30)
        ax.set_xlabel("shape (n, p)")
        ax.set_yscale("log")
    ax0.set(ylabel="time per step (ms)", title="one step, float64")
    ax1.axhline(1.0, color="0.6", lw=0.8)
    ax1.set(ylabel="geoopt's time / this method's", title="speed-up over geoopt")
    ax0.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
