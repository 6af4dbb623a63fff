"""Time of one optimiser step: spdl_ref.optim against torch.optim (Chapter 6, Section 6.1).

Compares, on a model with about a million parameters (an MLP of several layers), one step of
  * spdl_ref.optim.ConformalHamiltonian (quadratic = heavy ball; also with Nesterov and with the
    relativistic kinetic energy) against torch.optim.SGD(momentum=0.9) (foreach and not);
  * spdl_ref.optim.Adam (Kingma-Ba form) against torch.optim.Adam (foreach).
Gradients are fixed random tensors, so only the update is timed. Each step is timed over a
block of steps, repeated, and the median reported with the ratio to the torch.optim baseline.

Run: python benchmarks/optimiser_step.py  (writes benchmarks/results/optimiser_step.md and .png)
"""

from __future__ import annotations

import argparse
import statistics
import time

import _report
import torch

from spdl_ref.optim import Adam, ConformalHamiltonian, heavy_ball_parameters


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


def time_steps(cases, device, dtype, repeats, block):
    """Median time per step of each case; the cases are interleaved within every repeat so that
    a change in machine load affects them alike."""
    opts = {}
    for name, _, make in cases:
        params = make_params(device, dtype)
        opts[name] = make(params)
        for _ in range(3):
            opts[name].step()
    times = {name: [] for name in opts}
    for _ in range(repeats):
        for name, opt in opts.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(block):
                opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) / block)
    n_params = sum(p.numel() for p in make_params("cpu", dtype))
    return {name: statistics.median(t) for name, t in times.items()}, n_params


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (default 1: stable timings on a shared machine)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    hb = heavy_ball_parameters(lr=0.01, momentum=0.9)
    cases = [
        (
            "torch.optim.SGD(momentum=0.9, foreach=True)",
            "sgd",
            lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True),
        ),
        (
            "torch.optim.SGD(momentum=0.9, foreach=False)",
            "sgd",
            lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=False),
        ),
        ("ConformalHamiltonian (heavy ball)", "sgd", lambda p: ConformalHamiltonian(p, **hb)),
        (
            "ConformalHamiltonian (heavy ball, check_finite=False)",
            "sgd",
            lambda p: ConformalHamiltonian(p, **hb, check_finite=False),
        ),
        (
            "ConformalHamiltonian (Nesterov)",
            "sgd",
            lambda p: ConformalHamiltonian(p, **hb, nesterov=True),
        ),
        (
            "ConformalHamiltonian (relativistic)",
            "sgd",
            lambda p: ConformalHamiltonian(p, lr=0.1, gamma=1.0, kinetic="relativistic"),
        ),
        (
            "torch.optim.Adam(foreach=True)",
            "adam",
            lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True),
        ),
        ("spdl_ref.optim.Adam (Kingma-Ba)", "adam", lambda p: Adam(p, lr=1e-3)),
        (
            "spdl_ref.optim.Adam (Kingma-Ba, check_finite=False)",
            "adam",
            lambda p: Adam(p, lr=1e-3, check_finite=False),
        ),
    ]
    results, n_params = time_steps(cases, device, dtype, args.repeats, args.block)
    for name in results:
        print(f"{name:48s} {1e3 * results[name]:8.3f} ms")
    base = {"sgd": results[cases[0][0]], "adam": results["torch.optim.Adam(foreach=True)"]}
    lines = [
        "# One optimiser step (Chapter 6)",
        "",
        f"Model: {n_params:,} parameters in {len(make_params('cpu', dtype))} tensors, "
        f"{args.dtype}, device {device.type}, {torch.get_num_threads()} CPU thread(s); "
        f"fixed random gradients; median over {args.repeats} repeats of {args.block} steps. "
        "Ratio to `torch.optim.SGD(momentum=0.9, foreach=True)` for the momentum methods and to "
        "`torch.optim.Adam(foreach=True)` for Adam. By default our optimisers check every "
        "gradient for NaN/inf before touching the parameters (one extra read of the gradients "
        "and a host sync); `check_finite=False` rows show the update alone.",
        "",
        "| optimiser | time per step (ms) | ratio to torch baseline |",
        "| --- | --- | --- |",
    ]
    for name, kind, _ in cases:
        lines.append(f"| {name} | {1e3 * results[name]:.3f} | {results[name] / base[kind]:.2f} |")
    _report.write("optimiser_step", lines, plot)


def plot(rows):
    """Time per step relative to the torch.optim baseline, one bar per optimiser (the table)."""
    import matplotlib.pyplot as plt

    names = [r["optimiser"] for r in rows]
    ratios = [_report.number(r["ratio to torch baseline"]) for r in rows]
    colours = ["0.6" if n.startswith("torch.optim") else "C0" for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.0))
    ax.barh(names, ratios, color=colours)
    ax.axvline(1.0, color="0.3", lw=0.8)
    ax.invert_yaxis()
    ax.set(xlabel="time per step relative to torch.optim (grey: torch.optim)")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
