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

    Fast path: one reduction per tensor whose result is non-finite whenever an entry is (the sum
    on a CPU, where it is the cheapest pass; the fused 2-norm elsewhere). Only when a reduction is
    not finite are the entries checked one by one, since the reduction of huge but finite entries
    can overflow; such gradients pass.
    """
    if not grads:
        return
    by_device: dict = {}
    for g in grads:
        by_device.setdefault(g.device, []).append(g)
    for device, gs in by_device.items():
        if device.type == "cpu":
            norms = torch.stack([g.sum() for g in gs])
        else:
            norms = torch.stack(torch._foreach_norm(gs))
        if bool(torch.isfinite(norms).all()):
            continue
        suspects = [g for g, ok in zip(gs, torch.isfinite(norms).tolist(), strict=True) if not ok]
        if any(not bool(torch.isfinite(g).all()) for g in suspects):
            raise NonFiniteGradientError(
                f"{name}: a gradient holds NaN or inf; the parameters and the optimiser state "
                "were left unchanged"
            )


def begin_step(optimizer, closure=None, check: bool = True):
    """The common start of every optimiser step of :mod:`spdl_ref.optim` (Section 6).

    Re-evaluates the loss with ``closure`` (if given) under grad mode, then collects
    ``(group, params, grads)`` for every parameter group; with ``check`` every gradient is checked
    by :func:`check_finite` *before* anything is returned, so a failing step changes nothing.
    Returns ``(loss, work)``.
    """
    loss = None
    if closure is not None:
        with torch.enable_grad():
            loss = closure()
    work = []
    for group in optimizer.param_groups:
        params, grads = grads_of(group)
        if check:
            check_finite(grads, type(optimizer).__name__)
        work.append((group, params, grads))
    return loss, work
