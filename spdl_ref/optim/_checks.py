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

    Fast path: one fused 2-norm per tensor (a NaN or inf entry makes the norm non-finite). Only
    when a norm is not finite are the entries checked one by one, since the norm of huge but finite
    entries can overflow; such gradients pass.
    """
    if not grads:
        return
    by_device: dict = {}
    for g in grads:
        by_device.setdefault(g.device, []).append(g)
    for gs in by_device.values():
        norms = torch.stack(torch._foreach_norm(gs))
        if bool(torch.isfinite(norms).all()):
            continue
        suspects = [g for g, ok in zip(gs, torch.isfinite(norms).tolist()) if not ok]
        if any(not bool(torch.isfinite(g).all()) for g in suspects):
            raise NonFiniteGradientError(
                f"{name}: a gradient holds NaN or inf; the parameters and the optimiser state "
                "were left unchanged"
            )
