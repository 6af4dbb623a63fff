"""Riemannian steps on the Stiefel manifold: StiefelSGD against geoopt (Chapter 6, Section 6.2.1).

For points of V(n, p) (SO(n) when p = n) and a fixed Euclidean gradient, times one step of
  * spdl_ref.optim.StiefelSGD with retraction="exp" and "cayley" (n x n generator in so(n));
  * geoopt.optim.RiemannianSGD on geoopt.Stiefel(canonical=True) (Cayley-type retraction);
  * a Euclidean SGD step followed by the polar projection (thin SVD) back onto V(n, p);
and reports the median time per step, the ratio to our Cayley step, and the constraint error
||theta^T theta - I||_F after 200 steps of each (float64). geoopt missing: its rows are skipped.

Run: python benchmarks/stiefel_geoopt.py  (writes benchmarks/results/stiefel_geoopt.md and .png)
"""

from __future__ import annotations

import argparse
import statistics
import time

import _report
import torch

from spdl_ref.optim import StiefelSGD, project_stiefel, random_stiefel, stiefel_error

try:
    import geoopt
except ImportError:  # pragma: no cover
    geoopt = None


class ProjectedSGD:
    """Euclidean SGD step followed by the polar projection onto V(n, p)."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    @torch.no_grad()
    def step(self):
        for p in self.params:
            p.copy_(project_stiefel(p - self.lr * p.grad))


def make(kind, theta0, grad, lr):
    if kind == "geoopt":
        theta = geoopt.ManifoldParameter(theta0.clone(), manifold=geoopt.Stiefel(canonical=True))
        opt = geoopt.optim.RiemannianSGD([theta], lr=lr)
    else:
        theta = torch.nn.Parameter(theta0.clone())
        opt = (
            ProjectedSGD([theta], lr)
            if kind == "projection"
            else StiefelSGD([theta], lr=lr, retraction=kind)
        )
    theta.grad = grad.clone()
    return theta, opt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if geoopt is None:
        print("geoopt is not installed (pip install -e '.[riemannian]'): skipping its rows")
    kinds = ["exp", "cayley", "projection"] + (["geoopt"] if geoopt else [])
    shapes = [(64, 64), (256, 256), (256, 16), (1024, 8), (512, 1)]
    lines = [
        "# Riemannian SGD on the Stiefel manifold (Chapter 6)",
        "",
        f"float64, CPU, {torch.get_num_threads()} thread(s); median over {args.repeats} repeats of "
        f"{args.block} steps with a fixed gradient (lr 1e-3); ratio to our Cayley step; constraint "
        "error after 200 steps. `projection` is a Euclidean step followed by the polar projection "
        "(thin SVD), which keeps the constraint but is not a Riemannian update.",
        "",
        "| shape (n, p) | method | time per step (ms) | ratio to cayley | constraint error |",
        "| --- | --- | --- | --- | --- |",
    ]
    gen = torch.Generator().manual_seed(0)
    for n, p in shapes:
        theta0 = random_stiefel(n, p, generator=gen, dtype=torch.float64)
        grad = torch.randn(n, p, generator=gen, dtype=torch.float64)
        runs = {k: make(k, theta0, grad, 1e-3) for k in kinds}
        times = {k: [] for k in kinds}
        for _ in range(args.repeats):
            for k, (_, opt) in runs.items():
                start = time.perf_counter()
                for _ in range(args.block):
                    opt.step()
                times[k].append((time.perf_counter() - start) / args.block)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k in kinds:
            theta, opt = make(k, theta0, grad, 1e-3)
            for _ in range(200):
                opt.step()
            err = stiefel_error(theta.detach()).item()
            ratio = med[k] / med["cayley"]
            lines.append(f"| ({n}, {p}) | {k} | {1e3 * med[k]:.3f} | {ratio:.2f} | {err:.1e} |")
            print(lines[-1])
    _report.write("stiefel_geoopt", lines, plot)


def plot(rows):
    """Time per step relative to the Cayley step, and constraint error, per shape (the table)."""
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape (n, p)"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cell = {(r["shape (n, p)"], r["method"]): r for r in rows}
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.2))
    for method, marker in zip(methods, "os^vD", strict=False):
        have = [s for s in shapes if (s, method) in cell]
        x = [shapes.index(s) for s in have]
        ratio = [
            _report.number(cell[s, method]["time per step (ms)"])
            / _report.number(cell[s, "cayley"]["time per step (ms)"])
            for s in have
        ]
        ax0.plot(x, ratio, f"{marker}-", label=method)
        errors = [_report.number(cell[s, method]["constraint error"]) for s in have]
        ax1.plot(x, [max(e, 1e-17) for e in errors], f"{marker}-", label=method)
    for ax in (ax0, ax1):
        ax.set_xticks(range(len(shapes)), shapes)
        ax.set_xlabel("shape (n, p)")
        ax.set_yscale("log")
    ax0.axhline(1.0, color="0.6", lw=0.8)
    ax0.set(ylabel="time per step relative to cayley", title="time")
    ax1.set(ylabel="||θᵀθ - I||_F after 200 steps", title="constraint error (0 drawn at 1e-17)")
    ax0.legend(frameon=False)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
