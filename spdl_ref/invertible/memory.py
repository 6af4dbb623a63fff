r"""Measuring peak memory of a training step (Section 4.2.1, memory-efficient backpropagation).

On CUDA the allocator's own peak (``torch.cuda.max_memory_allocated``); on a CPU the running
maximum, in time order, of the sum of the memory that the events recorded by ``torch.profiler``
with ``profile_memory=True`` allocate themselves (operators' self memory and the ``[memory]``
events of allocations outside operators) (the process RSS is distorted by the allocator, which does
not return freed memory).
"""

from __future__ import annotations

import torch

__all__ = ["peak_memory"]


def peak_memory(fn, device=None) -> int:
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
    device = torch.device("cpu" if device is None else device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    from torch.profiler import ProfilerActivity, profile

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
