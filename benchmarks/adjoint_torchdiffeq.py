"""Continuous adjoint (Theorem 3.1): spdl_ref.control.continuous_adjoint against torchdiffeq.

One command: ``python benchmarks/adjoint_torchdiffeq.py``. The problem is the neural ODE
dz/dt = tanh(A z + b) on [0, T] with constant parameters (one ResNet layer), a batch of N
states in R^M, the loss 0.5 * mean |z(T)|^2, fixed steps of the 3/8-rule Runge-Kutta method
(torchdiffeq's "rk4") and of forward Euler. Side by side in one run:

* spdl_ref.control.continuous_adjoint (augmented backward solve, no stored trajectory);
* torchdiffeq.odeint_adjoint (the same continuous adjoint);
* torchdiffeq.odeint + autograd (discretise-then-optimise: stores the trajectory).

Reports the gradient difference to torchdiffeq's adjoint, the median time of repeats and the
allocator's peak memory (CPU: running maximum of the summed allocation events of
torch.profiler, [memory] events and operators' own allocations; CUDA: max_memory_allocated),
and writes benchmarks/results/adjoint_torchdiffeq.md with its plot (benchmarks/_report.py).
"""

from __future__ import annotations

import pathlib
import statistics
import sys
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import _report

from spdl_ref.control import continuous_adjoint
from spdl_ref.ode import ResNet

try:
    import torchdiffeq
except ImportError:  # pragma: no cover
    torchdiffeq = None

RK38 = (
    torch.tensor(
        [[0, 0, 0, 0], [1 / 3, 0, 0, 0], [-1 / 3, 1, 0, 0], [1, -1, 1, 0]], dtype=torch.float64
    ),
    torch.tensor([1 / 8, 3 / 8, 3 / 8, 1 / 8], dtype=torch.float64),
    torch.tensor([0, 1 / 3, 2 / 3, 1], dtype=torch.float64),
)
METHODS = {"euler": ("explicit_euler", "euler"), "rk4 (3/8 rule)": (RK38, "rk4")}


class Field(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.A = torch.nn.Parameter(net.A.detach()[0].clone())
        self.b = torch.nn.Parameter(net.b.detach()[0].clone())

    def forward(self, t, z):
        return torch.tanh(z @ self.A.T + self.b)


def loss(z):
    return 0.5 * z.pow(2).sum(1).mean()


def peak_memory(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        fn()
    # Allocator events in time order: the [memory] events plus the memory that operators
    # allocate or free themselves (self_cpu_memory_usage); this profiler build attributes most
    # allocations to the operators and most frees to [memory] events.
    deltas = []
    for e in prof.events():
        d = e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        if d:
            deltas.append((e.time_range.start, d))
    run, peak = 0, 0
    for _, d in sorted(deltas, key=lambda item: item[0]):
        # frees of blocks allocated before profiling started would drive the sum negative
        run = max(0, run + d)
        peak = max(peak, run)
    return peak


def gradients(net, x, T, steps, ours_method, tdq_method):
    """The three gradient evaluations of one case: ours, torchdiffeq's adjoint and autograd."""
    func = Field(net)
    tgrid = torch.tensor([0.0, T], device=x.device, dtype=x.dtype)
    opts = {"step_size": T / steps}

    def ours():
        return continuous_adjoint(net, x, loss, method=ours_method, steps_per_layer=steps)

    def tdq_adjoint():
        func.zero_grad()
        z = torchdiffeq.odeint_adjoint(func, x, tgrid, method=tdq_method, options=opts)[-1]
        loss(z).backward()
        return func.A.grad.clone(), func.b.grad.clone()

    def tdq_autograd():
        func.zero_grad()
        z = torchdiffeq.odeint(func, x, tgrid, method=tdq_method, options=opts)[-1]
        loss(z).backward()

    return ours, tdq_adjoint, tdq_autograd


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main():
    if torchdiffeq is None:
        print(
            "torchdiffeq is not installed (pip install --no-deps torchdiffeq): "
            "skipping the benchmark"
        )
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(1)  # small tensors: one thread avoids contention on shared CPUs
    dtype = torch.float64
    torch.manual_seed(0)
    M, N, T, repeats = 16, 256, 1.0, 5
    net = ResNet(M, 1, T=T, device=device, dtype=dtype)
    x = torch.randn(N, M, device=device, dtype=dtype)
    rows = []
    for label, (ours_method, tdq_method) in METHODS.items():
        for steps in (16, 64, 256):
            ours, tdq_adjoint, tdq_autograd = gradients(net, x, T, steps, ours_method, tdq_method)
            g = ours()
            gA, gb = tdq_adjoint()
            diff = float(
                ((g["A"][0] - gA).norm() ** 2 + (g["b"][0] - gb).norm() ** 2).sqrt()
                / (gA.norm() ** 2 + gb.norm() ** 2).sqrt()
            )
            t_ours, t_adj, t_ag = (timed(f, repeats) for f in (ours, tdq_adjoint, tdq_autograd))
            m_ours, m_adj, m_ag = (
                peak_memory(f, device) / 2**20 for f in (ours, tdq_adjoint, tdq_autograd)
            )
            rows.append((label, steps, diff, t_ours, t_adj, t_ag, m_ours, m_adj, m_ag))
            print(rows[-1], flush=True)
    lines = [
        "# Continuous adjoint: spdl_ref vs torchdiffeq",
        "",
        f"Neural ODE dz/dt = tanh(Az + b), M = {M}, N = {N}, T = {T}, float64, "
        f"device {device.type}; fixed steps; one CPU thread; median of {repeats} repeats; "
        "peak = allocator peak during one gradient evaluation (MiB). `rel. diff` = relative "
        "difference of the parameter gradient to torchdiffeq's `odeint_adjoint`.",
        "",
        "| method | steps | rel. diff | spdl_ref adjoint (ms) | torchdiffeq adjoint (ms) "
        "| torchdiffeq autograd (ms) | time ratio spdl/tdq adjoint | spdl_ref peak (MiB) "
        "| tdq adjoint peak (MiB) | tdq autograd peak (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, steps, diff, a, b, c, ma, mb, mc in rows:
        lines.append(
            f"| {label} | {steps} | {diff:.1e} | {1e3 * a:.1f} | {1e3 * b:.1f} | {1e3 * c:.1f} | "
            f"{a / b:.2f} | {ma:.2f} | {mb:.2f} | {mc:.2f} |"
        )
    print("\n".join(lines))
    _report.write("adjoint_torchdiffeq", lines, plot)


def plot(rows):
    """Time relative to torchdiffeq's adjoint, and peak memory, against steps (from the table)."""
    import matplotlib.pyplot as plt

    from spdl_ref.plotting import plain_log_ticks

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.2))
    memory = {
        "spdl_ref adjoint": "spdl_ref peak (MiB)",
        "torchdiffeq adjoint": "tdq adjoint peak (MiB)",
        "torchdiffeq autograd": "tdq autograd peak (MiB)",
    }
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for method, style in zip(methods, ("o-", "s--"), strict=False):
        sel = [r for r in rows if r["method"] == method]
        steps = [_report.number(r["steps"]) for r in sel]
        ratio = [_report.number(r["time ratio spdl/tdq adjoint"]) for r in sel]
        ax0.plot(steps, ratio, style, color="k", label=method)
        for j, (name, column) in enumerate(memory.items()):
            mib = [_report.number(r[column]) for r in sel]
            label = name if method == methods[0] else None
            ax1.plot(steps, mib, style, color=f"C{j}", label=label)
    ax0.axhline(1.0, color="0.6", lw=0.8)
    ax0.set(xlabel="steps", ylabel="time, spdl_ref / torchdiffeq adjoint", title="gradient time")
    ax1.set(yscale="log", xlabel="steps", ylabel="peak memory (MiB)")
    ax1.set_title("peak memory (solid: " + ", dashed: ".join(methods) + ")")
    for ax in (ax0, ax1):
        ax.set_xscale("log")
        plain_log_ticks(ax, "x", steps)
        ax.legend(frameon=False)
    plain_log_ticks(ax1, "y")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
