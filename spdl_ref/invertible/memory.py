r"""Measuring peak memory of a training step (Section 4.2.1, memory-efficient backpropagation).

On CUDA the allocator's own peak (``torch.cuda.max_memory_allocated``); on a CPU the running
maximum, in time order, of the sum of the memory that the events recorded by ``torch.profiler``
with ``profile_memory=True`` allocate themselves (operators' self memory and the ``[memory]``
events of allocations outside operators) (the process RSS is distorted by the allocator, which does
not return freed memory).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.types import Device

from .. import _validate
from ._base import factory
from .coupling import AdditiveCoupling
from .sequential import InvertibleSequential

__all__ = ["coupling_stack", "coupling_step", "coupling_step_memory", "peak_memory"]

# libkineto, the profiler's back end, logs every start and stop of a profile on stderr at its
# highest severity ("USDT: ... profiler_start"), which would fill a notebook's output. It reads
# KINETO_LOG_LEVEL once, when the process first starts a profile; a level above every severity
# keeps it quiet (its error messages included). A value that the user set is kept.
_KINETO_QUIET = "99"


def peak_memory(fn: Callable[[], Any], device: Device = None) -> int:
    r"""Peak bytes allocated while ``fn()`` runs, above what was allocated before (Section 4.2.1).

    Parameters
    ----------
    fn : callable
        The step to measure (e.g. forward, loss and backward).
    device : torch.device or str or None
        ``"cuda"`` devices use the CUDA allocator statistics; anything else the profiler.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    device = _validate.device(device) or torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    from torch.profiler import ProfilerActivity, profile

    os.environ.setdefault("KINETO_LOG_LEVEL", _KINETO_QUIET)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # Each event's self memory is what it allocated minus what it freed itself; "[memory]"
    # events are allocations and frees outside any operator (e.g. tensors dying in Python).
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    current = peak = 0
    for e in events:
        current += e.self_cpu_memory_usage
        peak = max(peak, current)
    return int(peak)


def coupling_stack(
    depth: int,
    memory_efficient: bool,
    width: int = 64,
    hidden: int = 64,
    batch: int = 256,
    seed: int = 0,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> tuple[InvertibleSequential, torch.Tensor]:
    r"""A stack of ``depth`` additive couplings (42) and a random batch: the network whose training
    step Section 4.2.1's memory measurement times and measures.

    :class:`InvertibleSequential` of :class:`AdditiveCoupling` layers (mask flipped from one to
    the next, random initialisation) and a batch ``(batch, width)``, both made on ``device`` from
    ``seed`` (the global generators' state is restored afterwards), so that the same ``seed``
    gives the same network in both modes.

    Parameters
    ----------
    depth : int
        Number of layers :math:`K`.
    memory_efficient : bool
        Passed to :class:`InvertibleSequential`.
    width, hidden, batch : int
        Features :math:`M`, width of the coupling sub-networks, batch size.
    seed : int
        Seed of the weights and the batch.

    Returns
    -------
    (InvertibleSequential, torch.Tensor)
    """
    depth = _validate.positive_int(depth, "depth")
    if not isinstance(memory_efficient, bool):
        raise TypeError(f"memory_efficient must be a bool, got {type(memory_efficient).__name__}")
    width = _validate.positive_int(width, "width")
    if width < 2:
        raise ValueError(f"width must be >= 2 for coupling layers, got {width}")
    hidden = _validate.positive_int(hidden, "hidden")
    batch = _validate.positive_int(batch, "batch")
    seed = _validate.nonnegative_int(seed, "seed")
    kw = factory(device, dtype)
    where = kw["device"] or torch.device("cpu")
    with torch.random.fork_rng(devices=[where] if where.type == "cuda" else []):
        torch.manual_seed(seed)
        net = InvertibleSequential(
            *[
                AdditiveCoupling(width, flip=bool(i % 2), hidden=hidden, zero_init=False, **kw)
                for i in range(depth)
            ],
            memory_efficient=memory_efficient,
        )
        gen = torch.Generator(device=where).manual_seed(seed)
        xb = torch.randn(batch, width, generator=gen, **kw)
    return net, xb


def coupling_step(net: nn.Module, xb: torch.Tensor) -> None:
    """One training step of :func:`coupling_stack`'s network: forward, mean-square loss,
    backward (Section 4.2.1)."""
    _validate.module(net, "net")
    _validate.tensor(xb, "xb")
    net(xb).square().mean().backward()


def coupling_step_memory(
    depth: int,
    memory_efficient: bool,
    width: int = 64,
    hidden: int = 64,
    batch: int = 256,
    seed: int = 0,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> int:
    r"""Peak activation memory (bytes) of one training step of a stack of ``depth`` additive
    couplings (42) (Section 4.2.1).

    Builds the network and batch of :func:`coupling_stack` and measures with :func:`peak_memory`
    one :func:`coupling_step` ("forward, mean-square loss, backward"), after a first step has
    allocated the ``.grad`` buffers. With ``memory_efficient`` the backward pass collects every
    parameter's gradient before handing them back, which costs one copy of the parameters
    independent of the activations; that amount is subtracted, so both modes report what the
    stored activations cost: growing linearly in ``depth`` for ordinary backpropagation, constant
    for the memory-efficient one.

    Parameters
    ----------
    depth : int
        Number of layers :math:`K`.
    memory_efficient : bool
        Passed to :class:`InvertibleSequential`.
    width, hidden, batch : int
        Features :math:`M`, width of the coupling sub-networks, batch size.
    seed : int
        Seed of the weights and the batch (the global generator's state is restored afterwards).
    """
    net, xb = coupling_stack(depth, memory_efficient, width, hidden, batch, seed, device, dtype)
    coupling_step(net, xb)  # allocate .grad once
    params = sum(p.numel() * p.element_size() for p in net.parameters())
    peak = peak_memory(lambda: coupling_step(net, xb), device=xb.device)
    return peak - (params if memory_efficient else 0)
