"""Time of one optimiser step: spdl_ref.optim against torch.optim (Chapter 6, Section 6.1).

Compares, on the parameters of an MLP with 1.3 M parameters (10 tensors), one step of
  * spdl_ref.optim.ConformalHamiltonian: quadratic kinetic energy (heavy ball), with Nesterov's
    look-ahead, and the relativistic kinetic energy, each with the non-finite check on (the
    default) and off;
  * torch.optim.SGD(momentum=0.9) with foreach=True (the baseline), with Nesterov, and
    foreach=False;
  * spdl_ref.optim.Adam (Kingma-Ba form), check on and off, against torch.optim.Adam(foreach);
  * the non-finite check alone (spdl_ref.optim._checks.check_finite), and two alternatives: one
    torch._foreach_norm over all gradients, and one isfinite(g).all() per tensor.
Gradients are fixed random tensors, so only the update is timed. Every case keeps its own
parameters; the cases are interleaved in a new random order in every repeat (so a change of
machine load affects them alike) and each reports the median over the repeats of the mean time
of a block of steps. The load average is written with the table.

Run: python benchmarks/optimiser_step.py  (writes benchmarks/results/optimiser_step.md;
--quick for a smoke run that writes nothing)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time

import _report
import torch

from spdl_ref.optim import Adam, ConformalHamiltonian, heavy_ball_parameters
from spdl_ref.optim._checks import check_finite


def make_params(device, dtype, widths=(512, 1024, 512, 256, 10)):
    gen = torch.Generator().manual_seed(0)
    shapes = []
    w_in = 256
    for w in widths:
        shapes += [(w, w_in), (w,)]
        w_in = w
    params = []
    for s in shapes:
        p = torch.randn(s, generator=gen, dtype=dtype).to(device).requires_grad_(True)
        p.grad = torch.randn(s, generator=gen, dtype=dtype).to(device) * 1e-3
        params.append(p)
    return params


class CheckOnly:
    """Times a check of the gradients alone, in the interface of an optimiser."""

    def __init__(self, params, how):
        self.grads, self.how = [p.grad for p in params], how

    def step(self):
        if self.how == "ours":
            check_finite(self.grads, "check")
        elif self.how == "foreach_norm":
            assert bool(torch.isfinite(torch.stack(torch._foreach_norm(self.grads))).all())
        else:
            assert all(bool(torch.isfinite(g).all()) for g in self.grads)


def time_steps(cases, device, dtype, repeats, block, seed=0):
    """Median time per step of each case (see the module docstring)."""
    opts = {}
    for name, (_, make) in cases.items():
        opts[name] = make(make_params(device, dtype))
        for _ in range(3):
            opts[name].step()
    times = {name: [] for name in opts}
    order = list(opts)
    rng = random.Random(seed)
    for _ in range(repeats):
        rng.shuffle(order)
        for name in order:
            opt = opts[name]
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(block):
                opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) / block)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (default 1: stable timings on a shared machine)",
    )
    parser.add_argument("--quick", action="store_true", help="small smoke run; writes nothing")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.block = 3, 2
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    hb = heavy_ball_parameters(lr=0.01, momentum=0.9)
    rel = dict(lr=0.1, gamma=1.0, kinetic="relativistic")
    # name: (baseline name, constructor)
    sgd, sgd_n, adam = (
        "torch.optim.SGD(momentum=0.9, foreach=True)",
        "torch.optim.SGD(momentum=0.9, nesterov=True, foreach=True)",
        "torch.optim.Adam(foreach=True)",
    )
    cases = {
        sgd: (sgd, lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True)),
        sgd_n: (
            sgd_n,
            lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, foreach=True),
        ),
        "torch.optim.SGD(momentum=0.9, foreach=False)": (
            sgd,
            lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=False),
        ),
        "ConformalHamiltonian (heavy ball)": (sgd, lambda p: ConformalHamiltonian(p, **hb)),
        "ConformalHamiltonian (heavy ball, check_finite=False)": (
            sgd,
            lambda p: ConformalHamiltonian(p, **hb, check_finite=False),
        ),
        "ConformalHamiltonian (Nesterov)": (
            sgd_n,
            lambda p: ConformalHamiltonian(p, **hb, nesterov=True),
        ),
        "ConformalHamiltonian (Nesterov, check_finite=False)": (
            sgd_n,
            lambda p: ConformalHamiltonian(p, **hb, nesterov=True, check_finite=False),
        ),
        "ConformalHamiltonian (relativistic)": (sgd, lambda p: ConformalHamiltonian(p, **rel)),
        "ConformalHamiltonian (relativistic, check_finite=False)": (
            sgd,
            lambda p: ConformalHamiltonian(p, **rel, check_finite=False),
        ),
        adam: (adam, lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
        "spdl_ref.optim.Adam (Kingma-Ba)": (adam, lambda p: Adam(p, lr=1e-3)),
        "spdl_ref.optim.Adam (Kingma-Ba, check_finite=False)": (
            adam,
            lambda p: Adam(p, lr=1e-3, check_finite=False),
        ),
        "non-finite check alone (check_finite)": (sgd, lambda p: CheckOnly(p, "ours")),
        "one torch._foreach_norm + isfinite": (sgd, lambda p: CheckOnly(p, "foreach_norm")),
        "isfinite(g).all() per tensor": (sgd, lambda p: CheckOnly(p, "per tensor")),
    }
    load = os.getloadavg()
    results = time_steps(cases, device, dtype, args.repeats, args.block)
    for name in results:
        print(f"{name:58s} {1e3 * results[name]:8.3f} ms")
    params = make_params("cpu", dtype)
    n_params = sum(p.numel() for p in params)
    lines = [
        "# One optimiser step (Chapter 6)",
        "",
        f"Model: {n_params:,} parameters in {len(params)} tensors, {args.dtype}, device "
        f"{device.type}, {torch.get_num_threads()} CPU thread(s), torch {torch.__version__}; "
        f"fixed random gradients; median over {args.repeats} interleaved repeats of "
        f"{args.block} steps; load average {load[0]:.1f} (1 min) at the start and "
        f"{os.getloadavg()[0]:.1f} at the end. By default our optimisers check every gradient "
        "for NaN/inf before touching the parameters (one fused reduction over all gradients and "
        "one host synchronisation per step); `check_finite=False` rows show the update alone. "
        "The last rows time a check of the gradients alone, ours and two alternatives.",
        "",
        f"| step | time (ms) | / `{sgd}` | / its torch counterpart |",
        "| --- | --- | --- | --- |",
    ]
    for name, (base, _) in cases.items():
        lines.append(
            f"| {name} | {1e3 * results[name]:.3f} | {results[name] / results[sgd]:.2f} | "
            f"{results[name] / results[base]:.2f} |"
        )
    if args.quick:
        print("\n".join(lines))
        return
    _report.write("optimiser_step", lines, plot)


def plot(rows):
    """Time per step relative to torch's SGD with momentum, one bar per row of the table."""
    import matplotlib.pyplot as plt

    names = [r["step"] for r in rows]
    ratio_key = next(k for k in rows[0] if k.startswith("/ `"))
    ratios = [_report.number(r[ratio_key]) for r in rows]
    colours = ["0.6" if "torch.optim" in n else "C0" for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.0))
    ax.barh(names, ratios, color=colours)
    ax.axvline(1.0, color="0.3", lw=0.8)
    ax.invert_yaxis()
    ax.set(xlabel="time per step relative to torch.optim.SGD(momentum) (grey: torch.optim)")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
