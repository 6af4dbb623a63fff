r"""Measuring equivariance, eq. (50): :math:`F(T_g x) = T'_g F(x)` (Section 5 and 5.3.3).

:func:`commutation_error` compares the two sides for any map :math:`F` and any pair of actions
:math:`T_g`, :math:`T'_g`; invariance is the case :math:`T'_g = \mathrm{id}`.
:func:`equivariance_error` is the rotation case used throughout the chapter, and
:func:`group_commutation_error` the largest defect over all elements of a finite group acting on
fields (Section 5.1.2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch.types import Device

from .. import _validate
from .actions import act_on_field, rotate
from .groups import Representation

__all__ = ["commutation_error", "disc_mask", "equivariance_error", "group_commutation_error"]


def disc_mask(
    size: int,
    radius: float | None = None,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""The pixels of a ``size x size`` grid within ``radius`` of the centre (Section 5.3.3).

    The default radius :math:`(n - 1)/2` is the inscribed disc, the part of the image that a
    rotation by any angle keeps inside the image. Returns a 0/1 tensor of shape ``(size, size)``.
    """
    size = _validate.positive_int(size, "size")
    device, dtype = _validate.device(device), _validate.float_dtype(dtype)
    c = (size - 1) / 2
    radius = c if radius is None else _validate.nonnegative_real(radius, "radius")
    i = torch.arange(size, dtype=torch.float64, device=device) - c
    mask = (i[:, None] ** 2 + i[None, :] ** 2) <= radius * radius + 1e-9
    return mask.to(dtype=dtype or torch.get_default_dtype())


def commutation_error(
    F: Callable,
    x: torch.Tensor,
    T_in: Callable,
    T_out: Callable,
    mask: torch.Tensor | None = None,
) -> float:
    r"""The relative equivariance error :math:`\|F(T_g x) - T'_g F(x)\| / \|T'_g F(x)\|`, eq. (50).

    Parameters
    ----------
    F : callable
        The map, e.g. a network (call ``.eval()`` first if it has dropout or batch norm).
    x : torch.Tensor
        Inputs.
    T_in, T_out : callable
        The actions :math:`T_g` on inputs and :math:`T'_g` on outputs. ``T_out = lambda y: y``
        measures invariance.
    mask : torch.Tensor or None
        Weights broadcast against the outputs (e.g. :func:`disc_mask`); only the masked part
        enters both norms.
    """
    _validate.tensor(x, "x")
    for name, T in (("F", F), ("T_in", T_in), ("T_out", T_out)):
        _validate.function(T, name)
    if mask is not None:
        _validate.tensor(mask, "mask")
        if bool((mask < 0).any()) or not bool((mask > 0).any()):
            raise ValueError("mask must hold non-negative weights, not all zero")
    with torch.no_grad():
        fx = _result(F(x), "F(x)")
        rhs = _result(T_out(fx), "T_out(F(x))")
        lhs = _result(F(_result(T_in(x), "T_in(x)")), "F(T_in(x))")
        if lhs.shape != rhs.shape:
            raise ValueError(
                f"F(T_in(x)) and T_out(F(x)) must have the same shape, got {tuple(lhs.shape)} "
                f"and {tuple(rhs.shape)}"
            )
        if mask is not None:
            try:
                torch.broadcast_shapes(mask.shape, lhs.shape)
            except RuntimeError as err:
                raise ValueError(
                    f"mask must broadcast against the outputs {tuple(lhs.shape)}, "
                    f"got {tuple(mask.shape)}"
                ) from err
        m = 1.0 if mask is None else mask.to(device=lhs.device, dtype=lhs.dtype)
        den = float((m * rhs).norm())
        num = float((m * (lhs - rhs)).norm())
    return num / den if den > 0 else num


def equivariance_error(
    model: Callable,
    x: torch.Tensor,
    angle: float,
    *,
    invariant: bool = False,
    mask: torch.Tensor | None = None,
) -> float:
    r"""Relative rotation-equivariance error of ``model`` at ``angle`` degrees, eq. (50).

    :math:`\|F(R_\phi x) - R_\phi F(x)\| / \|R_\phi F(x)\|` with :math:`R_\phi` from
    :func:`~spdl_ref.equivariant.rotate` (exact for multiples of 90°, bilinear otherwise);
    ``invariant=True`` measures :math:`\|F(R_\phi x) - F(x)\| / \|F(x)\|` instead. ``x`` is a
    batch of images ``(B, C, n, n)``. For angles that are not multiples of 90° the comparison
    is restricted to the inscribed disc (:func:`disc_mask`) unless ``mask`` is given, since the
    corners of a rotated image are lost.
    """
    _validate.tensor(x, "x")
    if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x must have shape (B, C, n, n) with square images, got {tuple(x.shape)}")
    angle = _validate.real(angle, "angle")
    _validate.function(model, "model")
    _validate.boolean(invariant, "invariant")
    if mask is None and angle / 90.0 != round(angle / 90.0):
        mask = disc_mask(x.shape[-1], device=x.device, dtype=x.dtype)
    T_out = (lambda y: y) if invariant else (lambda y: rotate(y, angle))
    return commutation_error(model, x, lambda y: rotate(y, angle), T_out, mask)


def group_commutation_error(
    F: Callable,
    x: torch.Tensor,
    rho_in: Representation,
    rho_out: Representation | None = None,
) -> float:
    r"""The largest relative defect of (50) over a finite group acting on fields (Section 5.1.2).

    .. math:: \max_{h \in H} \frac{\|F(T_h x) - T'_h F(x)\|}{\|T'_h F(x)\|}, \qquad
              [T_h x](p) = \rho_1(h)\, x(h^{-1} p), \quad [T'_h y](p) = \rho_2(h)\, y(h^{-1} p),

    with the actions of :func:`~spdl_ref.equivariant.act_on_field` for ``rho_in`` on the inputs
    and ``rho_out`` (default: ``rho_in``) on the outputs; scalar images are fields of the
    trivial representation. Zero (up to round-off) exactly when ``F`` commutes with every
    element of :math:`H` on ``x``.

    >>> import torch
    >>> from spdl_ref.equivariant import FiniteGroup
    >>> rho = FiniteGroup("D4").representation("trivial")
    >>> x = torch.randn(2, 1, 9, 9, dtype=torch.float64)
    >>> group_commutation_error(torch.tanh, x, rho)
    0.0
    """
    _validate.function(F, "F")
    _validate.instance(rho_in, Representation, "rho_in")
    rho_out = rho_in if rho_out is None else rho_out
    _validate.instance(rho_out, Representation, "rho_out")
    if rho_out.group != rho_in.group:
        raise ValueError("rho_in and rho_out must be representations of the same group")
    return max(
        commutation_error(
            F,
            x,
            functools.partial(act_on_field, g=g, rep=rho_in),
            functools.partial(act_on_field, g=g, rep=rho_out),
        )
        for g in rho_in.group.elements
    )


def _result(t, name):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"F, T_in and T_out must return tensors, {name} is {type(t).__name__}")
    return _validate.finite_result(t, name)
