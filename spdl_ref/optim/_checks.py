"""Checks shared by the optimisers of :mod:`spdl_ref.optim` (Section 6).

An optimiser step must never write a non-finite value into the parameters: each step first
checks every gradient and raises :class:`NonFiniteGradientError` (both a :class:`ValueError`
and a :class:`FloatingPointError`) before any parameter or state is touched.

Every optimiser of ours also validates its hyperparameters in one place,
:class:`CheckedOptimizer`: the constructor's defaults and the values of any parameter group added
later (:meth:`~torch.optim.Optimizer.add_param_group`) go through the same checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeAlias, TypeVar

import torch

#: The value a step's closure returns (in practice the loss tensor), passed back by the step.
Loss = TypeVar("Loss")

#: ``(group, params, grads)`` for every parameter group: what :func:`begin_step` hands a step.
Work: TypeAlias = list[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]


class NonFiniteGradientError(ValueError, FloatingPointError):
    """A gradient passed to an optimiser step holds NaN or inf (Section 6 optimisers)."""


def grads_of(group: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The parameters of a group that have a gradient, and those gradients."""
    params: list[torch.Tensor] = []
    grads: list[torch.Tensor] = []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise TypeError("sparse gradients are not supported")
        params.append(p)
        grads.append(p.grad)
    return params, grads


def _all_finite_flags(grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """One 0-dim boolean per device: whether every per-tensor reduction there is finite.

    The reduction is fused over the tensors of a device: ``torch._foreach_norm`` (one
    multi-tensor kernel on CUDA) everywhere but on the CPU, where the per-tensor sums are
    cheaper (a sum is a single vectorised read; see ``benchmarks/optimiser_step.py``).
    A reduction is non-finite whenever an entry is; the converse fails only by overflow.
    """
    by_device: dict = {}
    for g in grads:
        by_device.setdefault(g.device, []).append(g)
    flags = []
    for device, gs in by_device.items():
        reduced = [g.sum() for g in gs] if device.type == "cpu" else torch._foreach_norm(gs)
        if len({r.dtype for r in reduced}) > 1:
            reduced = [r.double() for r in reduced]
        flags.append(torch.isfinite(torch.stack(reduced)).all())
    return flags


def check_finite(grads: list[torch.Tensor], name: str) -> None:
    """Raise :class:`NonFiniteGradientError` if any gradient holds a NaN or an infinity.

    One fused reduction over all the gradients of a device and one host synchronisation
    (per device) decide the common case. Only when a reduction is not finite are the entries
    checked tensor by tensor, since the reduction of huge but finite entries can overflow; such
    gradients pass.
    """
    if not grads:
        return
    flags = _all_finite_flags(grads)
    ok = flags[0] if len(flags) == 1 else torch.stack([f.cpu() for f in flags]).all()
    if bool(ok):
        return
    if any(not bool(torch.isfinite(g).all()) for g in grads):
        raise NonFiniteGradientError(
            f"{name}: a gradient holds NaN or inf; the parameters and the optimiser state "
            "were left unchanged"
        )


def begin_step(
    optimizer: torch.optim.Optimizer,
    closure: Callable[[], Loss] | None = None,
    check: bool = True,
) -> tuple[Loss | None, Work]:
    """The common start of every optimiser step of :mod:`spdl_ref.optim` (Section 6).

    Re-evaluates the loss with ``closure`` (if given) under grad mode, then collects
    ``(group, params, grads)`` for every parameter group; with ``check`` the gradients of all
    groups are checked together by :func:`check_finite` (one reduction and one host
    synchronisation per step) *before* anything is returned, so a failing step changes nothing.
    Returns ``(loss, work)``.
    """
    loss: Loss | None = None
    if closure is not None:
        with torch.enable_grad():
            loss = closure()
    work: Work = [(group, *grads_of(group)) for group in optimizer.param_groups]
    if check:
        check_finite([g for _, _, grads in work for g in grads], type(optimizer).__name__)
    return loss, work


def check_hyperparameters(checks: dict[str, Callable], values: dict) -> dict:
    """``values`` with every key that ``checks`` names passed through its check.

    A check is ``check(value, name) -> value`` and raises a ``ValueError``/``TypeError`` that
    names the argument (the :mod:`spdl_ref._validate` helpers have this form).
    """
    out = dict(values)
    for key, check in checks.items():
        if key in out:
            out[key] = check(out[key], key)
    return out


class CheckedOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose parameter groups pass the constructor's checks.

    Subclasses list their hyperparameter checks in ``hyperparameter_checks`` (name to
    ``check(value, name)``) and may check the parameters themselves in :meth:`check_params`.
    The constructor validates its defaults with :func:`check_hyperparameters`; every group,
    whether given to the constructor or to :meth:`add_param_group` later, has its own values
    checked the same way before it is added, so a bad group is refused and nothing changes.
    """

    hyperparameter_checks: ClassVar[dict[str, Callable]] = {}

    def check_params(self, params: list[torch.Tensor]) -> None:
        """Raise if a parameter cannot be optimised by this optimiser (default: no check)."""

    def add_param_group(self, param_group: dict) -> None:
        """Validate ``param_group`` like the constructor's arguments, then add it."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        group = check_hyperparameters(self.hyperparameter_checks, param_group)
        params = group["params"]
        if isinstance(params, torch.Tensor):
            params = [params]
        elif not isinstance(params, set):
            params = list(params)
            tensors = [p[1] if isinstance(p, tuple) and len(p) == 2 else p for p in params]
            self.check_params([p for p in tensors if isinstance(p, torch.Tensor)])
        group["params"] = params
        super().add_param_group(group)


# Argument checks used by the optimisers' tables (same form as the spdl_ref._validate helpers).


def flag(value: Any, name: str) -> bool:
    """Return ``value`` if it is a ``bool`` (``0``/``1`` and strings are refused), else raise."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def one_of(choices: tuple[str, ...]) -> Callable:
    """A check that accepts exactly the strings in ``choices``."""

    def check(value: Any, name: str) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        return value

    return check
