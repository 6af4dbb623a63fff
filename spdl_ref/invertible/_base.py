r"""Common interface of the invertible layers of Section 4.1.

Every invertible layer :math:`f_k` of a network :math:`\Psi = f_K \circ \dots \circ f_1`
(Section 4) is an :class:`InvertibleModule`: besides ``forward`` it has ``inverse`` and
``log_abs_det_jacobian``, the per-sample :math:`\log |\det \partial_x f_k(x)|` that the change of
variables (48) needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypedDict

import torch
from torch import nn
from torch.types import Device

from .. import _validate


class InvertibleModule(nn.Module):
    r"""Base class of the bijective layers of Section 4.1.

    Subclasses implement :meth:`forward` (:math:`y = f(x)`), :meth:`inverse`
    (:math:`x = f^{-1}(y)`) and :meth:`log_abs_det_jacobian`, which returns one value
    :math:`\log|\det \partial_x f(x)|` per sample (shape ``(N,)``), as needed by eq. (48).
    :meth:`forward_and_log_det` returns both at once; subclasses override it when the two
    share work. A layer may also provide ``reconstruct(y)``, returning ``(x, leaves, f(x),
    log_det)`` rebuilt from its output with a graph, which :class:`InvertibleSequential`'s
    memory-efficient backward (Section 4.2.1) then uses instead of ``inverse`` and ``forward``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        r"""The layer :math:`y = f(x)`; every layer implements it."""
        raise NotImplementedError

    def inverse(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        r"""The inverse :math:`x = f^{-1}(y)`; every layer implements it."""
        raise NotImplementedError

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        r"""One value :math:`\log|\det \partial_x f(x)|` per sample (shape ``(N,)``), for (48)."""
        raise NotImplementedError

    def forward_and_log_det(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Return ``(f(x), log|det ∂f(x)|)``; the pair that eq. (48) accumulates layer by layer."""
        check_batch(x, "x", like=reference_tensor(self), owner=type(self).__name__)
        return self(x), self.log_abs_det_jacobian(x)


class InvertibleLike(Protocol):
    """What the containers of Section 4 check that a layer or transform has (it may be any
    ``nn.Module`` with these methods, not only an :class:`InvertibleModule`)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def inverse(self, y: torch.Tensor) -> torch.Tensor: ...

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor: ...


def reference_tensor(module: nn.Module) -> torch.Tensor | None:
    """The first floating-point parameter or buffer of ``module`` (``None`` if it has none): the
    dtype and device that its inputs must have."""
    for t in module.parameters():
        if t.is_floating_point():
            return t
    for b in module.buffers():
        if b.is_floating_point():
            return b
    return None


def check_batch(
    x: torch.Tensor,
    name: str,
    feature_shape: Sequence[int | None] | None = None,
    min_dim: int = 2,
    like: torch.Tensor | None = None,
    owner: str = "the layer",
) -> torch.Tensor:
    """Raise unless ``x`` is a finite floating tensor ``(N, *feature_shape)``.

    ``feature_shape`` entries that are ``None`` match any size. With ``like`` (a parameter of the
    layer ``owner``) ``x`` must also have its dtype and device.
    """
    _validate.tensor(x, name)
    _validate.like(x, like, name, owner)
    if x.dim() < min_dim:
        raise ValueError(
            f"{name} must have a batch dimension and at least {min_dim - 1} feature dimension(s), "
            f"got shape {tuple(x.shape)}"
        )
    if feature_shape is not None:
        fs = tuple(feature_shape)
        got = tuple(x.shape[1:])
        if len(got) != len(fs) or any(
            f is not None and f != g for f, g in zip(fs, got, strict=True)
        ):
            want = "(N, " + ", ".join("*" if f is None else str(f) for f in fs) + ")"
            raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")
    return x


def feature_shape(size: int | Sequence[int], name: str = "dim") -> tuple[int, ...]:
    """Normalise a layer size: an int ``M`` (vectors) or a tuple ``(C, H, W)`` (images)."""
    if isinstance(size, (tuple, list, torch.Size)):
        if len(size) not in (1, 3):
            raise ValueError(f"{name} must be an int M or a tuple (C, H, W), got {tuple(size)}")
        return tuple(_validate.positive_int(s, name) for s in size)
    return (_validate.positive_int(size, name),)


class FactoryKwargs(TypedDict):
    """The ``device``/``dtype`` keyword arguments of torch's tensor factories and modules."""

    device: torch.device | None
    dtype: torch.dtype | None


def factory(device: Device, dtype: torch.dtype | None) -> FactoryKwargs:
    """The ``device``/``dtype`` factory keyword arguments, as torch modules take them."""
    return {"device": _validate.device(device), "dtype": _validate.float_dtype(dtype)}
