"""A coupling flow of the same size trained on two moons with spdl_ref.invertible and with zuko
(Section 4.2.3 of the review; Chapter 4, Figure 2).

    python benchmarks/flow_peers.py [--iterations N] [--repeats R]

Both flows: 8 affine coupling layers with alternating masks, sub-networks 2 -> 64 -> 64 -> 4
(zuko's RealNVP with hidden_features=(64, 64); ours with ReLU, as zuko's, and with tanh, our
default), standard normal base, Adam (lr 3e-3, cosine
schedule), batch 256, the same 1000 training points and 2000 test points. Reports the median time
per iteration over the run (repeats: independent seeds) and the final test negative
log-likelihood (49). zuko is skipped with a message when it is not installed
(``pip install --no-deps zuko``).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import _report

from spdl_ref import data, seed_everything
from spdl_ref import invertible as inv


def ours(activation):
    def make():
        flow = inv.coupling_flow(2, n_layers=8, kind="affine", hidden=64, activation=activation)
        return flow, flow.nll

    return make


def zuko_flow():
    import zuko

    flow = zuko.flows.RealNVP(2, transforms=8, hidden_features=(64, 64))
    return flow, lambda x: -flow().log_prob(x).mean()


def train(make, x, x_test, iterations, seed):
    seed_everything(seed)
    module, nll = make()
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations)
    gen = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(iterations):
        idx = torch.randperm(x.shape[0], generator=gen)[:256]
        t = time.perf_counter()
        loss = nll(x[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
        sched.step()
    with torch.no_grad():
        test = float(nll(x_test))
    params = sum(p.numel() for p in module.parameters())
    return statistics.median(times), test, params


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x, _ = data.two_moons(1000, noise=0.05, seed=1)
    x_test, _ = data.two_moons(2000, noise=0.05, seed=2)
    peers = {
        "spdl_ref.invertible, ReLU": ours("relu"),
        "spdl_ref.invertible, tanh": ours("tanh"),
    }
    notes = []
    try:
        import zuko  # noqa: F401

        peers["zuko RealNVP"] = zuko_flow
    except Exception as err:
        notes.append(
            f"zuko not available ({type(err).__name__}: {err}); "
            "install with pip install --no-deps zuko"
        )
        print(notes[-1])
    rows = {}
    for name, make in peers.items():
        runs = [train(make, x, x_test, args.iterations, seed) for seed in range(args.repeats)]
        rows[name] = (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
            runs[0][2],
            [r[1] for r in runs],
        )
        print(
            f"{name}: {rows[name][0] * 1e3:.2f} ms/iteration, test NLL {rows[name][1]:.3f} "
            f"(runs: {', '.join(f'{v:.3f}' for v in rows[name][3])}), {rows[name][2]} parameters",
            flush=True,
        )
    ref_name = "zuko RealNVP" if "zuko RealNVP" in rows else "spdl_ref.invertible, ReLU"
    ref = rows[ref_name][0]
    lines = [
        "# Coupling flows on two moons: spdl_ref.invertible against zuko",
        "",
        f"8 affine coupling layers, MLP 64-64, batch 256, Adam 3e-3 (cosine), {args.iterations} "
        f"iterations, {args.repeats} seeds (medians), CPU, one thread. Produced by "
        f"`python benchmarks/flow_peers.py --iterations {args.iterations} "
        f"--repeats {args.repeats}`.",
        "",
        f"| library | parameters | time per iteration (ms) | time ratio to {ref_name} "
        "| test NLL (nats) | test NLL per seed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, (t, nll, params, per_seed) in rows.items():
        lines.append(
            f"| {name} | {params} | {t * 1e3:.2f} | {t / ref:.2f} | {nll:.3f} | "
            + ", ".join(f"{v:.3f}" for v in per_seed)
            + " |"
        )
    lines += [""] + [f"Note: {n}." for n in notes]
    _report.write("flow_peers", lines, plot)


def plot(rows):
    """Time per iteration relative to spdl_ref, and test NLL per seed (from the table)."""
    import matplotlib.pyplot as plt

    names = [r["library"] for r in rows]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 0.5 * len(rows) + 1.2))
    col = next(c for c in rows[0] if c.startswith("time ratio to "))
    ax0.barh(names, [_report.number(r[col]) for r in rows], color="C0")
    ax0.axvline(1.0, color="0.3", lw=0.8)
    ax0.set(xlabel=f"time per iteration relative to {col.removeprefix('time ratio to ')}")
    ax0.invert_yaxis()
    for i, r in enumerate(rows):
        seeds = [_report.number(v) for v in r["test NLL per seed"].split(",")]
        ax1.plot(seeds, [i] * len(seeds), "o", color="C1", alpha=0.6)
        ax1.plot([_report.number(r["test NLL (nats)"])], [i], "k|", ms=14)
    ax1.set_yticks(range(len(names)), names)
    ax1.set_ylim(len(names) - 0.5, -0.5)
    ax1.set(xlabel="test NLL (nats): seeds (dots), median (bar)")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
