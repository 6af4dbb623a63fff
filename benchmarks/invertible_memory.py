"""Peak memory and time of a training step against depth: ordinary autograd vs memory-efficient
backpropagation through an invertible network (Section 4.2.1 of the review; Chapter 4).

    python benchmarks/invertible_memory.py [--quick]

Network: K additive coupling layers (alternating halves, MLP sub-networks) on vectors, with the
sub-networks' activation tanh (the library's default) and ReLU (RealNVP's and memcnn's examples).
The activation matters for the time ratio: the memory-efficient step evaluates every sub-network
once more, and on a CPU a tanh costs several times a ReLU, so the extra forward pass weighs more.
For each depth, all versions run interleaved, repeats give medians. Memory: on CUDA the allocator's
peak (``max_memory_allocated``), on CPU the profiler's allocator trace
(spdl_ref.invertible.peak_memory), measured on a second step so that ``.grad`` buffers exist;
"activations" subtracts the parameter gradients that the memory-efficient backward returns all at
once. memcnn (if installed) runs the same network through its InvertibleModuleWrapper.
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

from spdl_ref import invertible as inv


def build(depth, dim, hidden, memory_efficient, device, activation):
    torch.manual_seed(0)
    layers = [
        inv.AdditiveCoupling(
            dim, flip=bool(i % 2), hidden=hidden, zero_init=False, activation=activation
        )
        for i in range(depth)
    ]
    return inv.InvertibleSequential(*layers, memory_efficient=memory_efficient).to(device)


def build_memcnn(depth, dim, hidden, device, activation):
    try:
        import memcnn
    except Exception as err:
        return None, f"memcnn not available ({type(err).__name__}: {err})"
    torch.manual_seed(0)
    half = dim // 2
    act = inv.coupling.ACTIVATIONS[activation]

    def fm():
        return torch.nn.Sequential(
            torch.nn.Linear(half, hidden),
            act(),
            torch.nn.Linear(hidden, hidden),
            act(),
            torch.nn.Linear(hidden, half),
        )

    blocks = [
        memcnn.InvertibleModuleWrapper(
            memcnn.AdditiveCoupling(fm()), keep_input=False, keep_input_inverse=False
        )
        for _ in range(depth)
    ]
    return torch.nn.Sequential(*blocks).to(device), None


def step_fn(net, x):
    def step():
        net(x.clone()).square().mean().backward()

    return step


def timed(step, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(1)
    dim, hidden, batch = (64, 64, 128) if args.quick else (256, 256, 1024)
    depths = [4, 8, 16] if args.quick else [4, 8, 16, 32, 64]
    x = torch.randn(batch, dim, device=device)
    rows, notes = [], []
    for activation, depth in [(a, d) for a in ("tanh", "relu") for d in depths]:
        nets = {
            "autograd": build(depth, dim, hidden, False, device, activation),
            "memory-efficient": build(depth, dim, hidden, True, device, activation),
        }
        mem_net, why = build_memcnn(depth, dim, hidden, device, activation)
        if mem_net is not None:
            nets["memcnn"] = mem_net
        elif why not in notes:
            notes.append(why)
        params = sum(p.numel() * p.element_size() for p in nets["autograd"].parameters())
        peak, times = {}, {k: [] for k in nets}
        for name, net in nets.items():
            step = step_fn(net, x)
            step()
            peak[name] = inv.peak_memory(step, device)
        for _ in range(args.repeats):
            for name, net in nets.items():
                times[name].append(timed(step_fn(net, x), device))
        med = {k: statistics.median(v) for k, v in times.items()}
        # Our memory-efficient backward returns all parameter gradients at once (they are held
        # until autograd accumulates them); autograd and memcnn accumulate layer by layer.
        act = {k: peak[k] - (params if k == "memory-efficient" else 0) for k in nets}
        rows.append((activation, depth, params, peak, act, med))
        print(
            f"{activation} depth {depth:3d}: "
            + "  ".join(
                f"{k}: peak {peak[k] / 2**20:7.2f} MiB, act {act[k] / 2**20:7.2f} MiB, "
                f"{med[k] * 1e3:7.1f} ms"
                for k in nets
            ),
            flush=True,
        )
    names = list(rows[0][3])
    lines = [
        "# Memory-efficient backpropagation: peak memory and time against depth",
        "",
        f"Device: {device.type}; {args.repeats} repeats (median); batch {batch}, width {dim}, "
        f"sub-network width {hidden}; additive coupling layers; float32. Produced by "
        "`python benchmarks/invertible_memory.py" + (" --quick" if args.quick else "") + "`.",
        "Memory is the allocator peak of one training step above what was allocated before it "
        "(`.grad` buffers already allocated); for ours, *activations* subtracts the parameter "
        "gradients, which its backward returns all at once (autograd and memcnn accumulate them "
        "layer by layer, so their peak is their activation memory).",
        "",
        "| activation | depth K | parameters (MiB) | "
        + " | ".join(f"{n}: peak (MiB) | {n}: activations (MiB) | {n}: time (ms)" for n in names)
        + " | time ratio memory-efficient / autograd |",
        "| --- | --- | --- | " + " | ".join("--- | --- | ---" for _ in names) + " | --- |",
    ]
    for activation, depth, params, peak, act, med in rows:
        cells = " | ".join(
            f"{peak[n] / 2**20:.2f} | {act[n] / 2**20:.2f} | {med[n] * 1e3:.1f}" for n in names
        )
        ratio = med["memory-efficient"] / med["autograd"]
        lines.append(f"| {activation} | {depth} | {params / 2**20:.2f} | {cells} | {ratio:.2f} |")
    lines.append("")
    for activation in ("tanh", "relu"):
        sub = [r for r in rows if r[0] == activation]
        a_first, a_last = sub[0][4], sub[-1][4]
        ratios = [r[5]["memory-efficient"] / r[5]["autograd"] for r in sub]
        lines.append(
            f"{activation}: activation memory, depth {sub[-1][1]} over depth {sub[0][1]}: "
            f"autograd {a_last['autograd'] / a_first['autograd']:.2f}x, memory-efficient "
            f"{a_last['memory-efficient'] / a_first['memory-efficient']:.2f}x; time ratio "
            f"(memory-efficient / autograd) median {statistics.median(ratios):.2f}, "
            f"largest {max(ratios):.2f}."
        )
    lines += [""] + [f"Note: {n}." for n in notes]
    _report.write("invertible_memory", lines, plot)


def plot(rows):
    """Activation memory against depth, and time relative to autograd (from the table)."""
    import matplotlib.pyplot as plt

    from spdl_ref.plotting import plain_log_ticks

    names = [c.split(":")[0] for c in rows[0] if c.endswith(": activations (MiB)")]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.2))
    for activation, style in (("tanh", "-"), ("relu", ":")):
        sub = [r for r in rows if r.get("activation", "tanh") == activation]
        if not sub:
            continue
        depths = [_report.number(r["depth K"]) for r in sub]
        for name, marker in zip(names, "os^", strict=False):
            if activation == "tanh":  # the activation memory does not depend on it
                act = [_report.number(r[f"{name}: activations (MiB)"]) for r in sub]
                ax0.plot(depths, act, f"{marker}-", label=name)
            if name != "autograd":
                ratio = [
                    _report.number(r[f"{name}: time (ms)"])
                    / _report.number(r["autograd: time (ms)"])
                    for r in sub
                ]
                ax1.plot(
                    depths, ratio, f"{marker}{style}", label=f"{name} / autograd, {activation}"
                )
    ax0.set(xscale="log", yscale="log", xlabel="depth K", ylabel="activation memory (MiB)")
    ax0.set_title("memory of one training step")
    ax1.axhline(1.0, color="0.6", lw=0.8)
    ax1.set(xscale="log", xlabel="depth K", ylabel="time relative to autograd")
    ax1.set_title("time of one training step")
    for ax in (ax0, ax1):
        plain_log_ticks(ax, "x", depths)
        ax.legend(frameon=False, fontsize="small")
    plain_log_ticks(ax0, "y")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
