"""Checks shared by the optimisers of :mod:`spdl_ref.optim` (Section 6).

An optimiser step must never write a non-finite value into the parameters: each step first
checks every gradient and raises :class:`NonFiniteGradientError` (both a :class:`ValueError`
and a :class:`FloatingPointError`) before any parameter or state is touched.
"""

from __future__ import annotations

import torch


class NonFiniteGradientError(ValueError, FloatingPointError):
    """A gradient passed to an optimiser step holds NaN or inf (Section 6 optimisers)."""


def grads_of(group: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The parameters of a group that have a gradient, and those gradients."""
    params, grads = [], []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise TypeError("sparse gradients are not supported")
        params.append(p)
        grads.append(p.grad)
    return params, grads


def check_finite(grads: list[torch.Tensor], name: str) -> None:
    """Raise :class:`NonFiniteGradientError` if any gradient holds a NaN or an infinity.

    One fused reduction per device (the sum of the per-tensor norms is finite exactly when every
    entry is finite), so that the check costs one extra read of the gradients.
    """
    if not grads:
        return
    by_device: dict = {}
    for g in grads:
        by_device.setdefault(g.device, []).append(g)
    for gs in by_device.values():
        norms = torch._foreach_norm(gs, ord=float("inf"))
        if not bool(torch.isfinite(torch.stack(norms)).all()):
            raise NonFiniteGradientError(
                f"{name}: a gradient holds NaN or inf; the parameters and the optimiser state "
                "were left unchanged"
            )
