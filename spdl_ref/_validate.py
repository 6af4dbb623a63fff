"""Argument checks shared by the package.

Every public entry point validates its input with these helpers so that bad input fails
early with a :class:`ValueError` or :class:`TypeError` that names the argument and the rule
it broke, rather than producing a silently wrong result.
"""

from __future__ import annotations

import math
import numbers

import torch


def positive_int(value, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 1, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def nonnegative_int(value, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def real(value, name: str) -> float:
    """Return ``value`` as a finite ``float``, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def positive_real(value, name: str) -> float:
    """Return ``value`` as a finite ``float`` > 0, else raise."""
    value = real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def nonnegative_real(value, name: str) -> float:
    """Return ``value`` as a finite ``float`` >= 0, else raise."""
    value = real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def tensor(value, name: str) -> torch.Tensor:
    """Raise unless ``value`` is a floating-point tensor with finite entries."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must contain only finite values")
    return value


def last_dim(value: torch.Tensor, size: int, name: str) -> torch.Tensor:
    """Raise unless the last dimension of ``value`` has length ``size``."""
    if value.dim() == 0 or value.shape[-1] != size:
        raise ValueError(f"{name} must have last dimension {size}, got shape {tuple(value.shape)}")
    return value


def floating_tensor(value, name: str) -> torch.Tensor:
    """Raise unless ``value`` is a floating-point tensor (no finiteness check).

    For code that must also run under :func:`torch.func.vmap`, where the data-dependent
    finiteness test of :func:`tensor` is not allowed.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    return value
