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
    if not all_finite(value):
        raise ValueError(f"{name} must contain only finite values")
    return value


def all_finite(value: torch.Tensor) -> bool:
    """Whether a floating tensor holds no NaN or infinity.

    Reads only its smallest and largest entry (NaN propagates to both), so no temporary of the
    tensor's size is allocated: the check costs no activation memory (Section 4.2.1).
    """
    if value.numel() == 0:
        return True
    lo, hi = torch.aminmax(value.detach())
    if value.device.type == "cpu":  # reading two numbers costs no synchronisation on a CPU,
        return math.isfinite(lo.item()) and math.isfinite(hi.item())  # and 8 fewer small ops
    return bool(torch.isfinite(lo) & torch.isfinite(hi))  # one synchronisation


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


# ---------------------------------------------------------------------------------------------
# Further kinds of argument (added for the bad-input audit; the helpers above keep their names).


def boolean(value, name: str) -> bool:
    """Return ``value`` if it is a ``bool``, else raise (``0``/``1`` and strings are refused)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def choice(value, choices, name: str):
    """Return ``value`` if it is one of ``choices`` (compared with ``==``), else raise."""
    if not isinstance(value, str) or value not in choices:
        names = [repr(c) for c in choices]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        raise ValueError(f"{name} must be {listed}, got {value!r}")
    return value


def open_unit_interval(value, name: str) -> float:
    """Return ``value`` as a ``float`` in the open interval (0, 1), else raise."""
    value = real(value, name)
    if not 0 < value < 1:
        raise ValueError(f"{name} must satisfy 0 < {name} < 1, got {value}")
    return value


def function(value, name: str):
    """Return ``value`` if it is callable, else raise."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}")
    return value


def instance(value, cls, name: str):
    """Return ``value`` if it is an instance of ``cls``, else raise."""
    if not isinstance(value, cls):
        names = {torch.Tensor: "torch.Tensor", torch.nn.Module: "torch.nn.Module"}
        raise TypeError(
            f"{name} must be a {names.get(cls, cls.__name__)}, got {type(value).__name__}"
        )
    return value


def module(value, name: str, cls=None):
    """Return ``value`` if it is a :class:`torch.nn.Module` (an instance of ``cls`` if given)."""
    return instance(value, torch.nn.Module if cls is None else cls, name)


def float_dtype(value, name: str = "dtype"):
    """Return ``value`` if it is ``None`` or a floating-point :class:`torch.dtype`, else raise."""
    if value is not None and not (isinstance(value, torch.dtype) and value.is_floating_point):
        raise TypeError(f"{name} must be a floating-point torch.dtype, got {value!r}")
    return value


def generator(value, name: str = "generator"):
    """Return ``value`` if it is ``None`` or a :class:`torch.Generator`, else raise."""
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {type(value).__name__}")
    return value


def same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise unless the tensors ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def like(value: torch.Tensor, reference, name: str, owner: str) -> torch.Tensor:
    """Raise unless ``value`` has the dtype and device of ``reference`` (a parameter of
    ``owner``).

    ``reference`` may be ``None`` (an owner without parameters): then nothing is checked. The
    message says how to convert, instead of the dtype mismatch torch reports deep inside.
    """
    if reference is None:
        return value
    if value.dtype != reference.dtype:
        raise TypeError(
            f"{name} must have the dtype of {owner}, {reference.dtype}, got {value.dtype} "
            f"(convert {name} with .to({reference.dtype}) or the module with .to({value.dtype}))"
        )
    if value.device != reference.device:
        raise ValueError(
            f"{name} must be on the device of {owner}, {reference.device}, got {value.device}"
        )
    return value


def finite_result(value: torch.Tensor, what: str) -> torch.Tensor:
    """Raise :class:`FloatingPointError` if a value computed from finite inputs is not finite.

    For intermediate results (a layer's output, a sub-network's parameters): the message blames
    the computation that overflowed, not an argument the caller passed.
    """
    if not all_finite(value):
        raise FloatingPointError(
            f"{what} is not finite although its inputs were: an overflow or an invalid operation "
            "inside the computation (scale the input down or check the parameters)"
        )
    return value


def traced_tensor(value, name: str) -> torch.Tensor:
    """Like :func:`tensor`, but inside :func:`torch.func.vmap`/``grad``/``jacrev`` (where a
    data-dependent test is not allowed) only the type and dtype are checked."""
    floating_tensor(value, name)
    if not torch._C._functorch.is_functorch_wrapped_tensor(value):
        tensor(value, name)
    return value


def device(value, name: str = "device"):
    """Return ``value`` as a :class:`torch.device` (``None`` stays ``None``), else raise."""
    if value is None or isinstance(value, torch.device):
        return value
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a torch.device, a string or None, got {value!r}")
    try:
        return torch.device(value)
    except RuntimeError as err:
        raise ValueError(f"{name} must name a torch device, got {value!r}") from err
