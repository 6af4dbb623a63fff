r"""Group actions :math:`T_g` on images and feature fields (Section 5, eq. (50)).

Images and feature maps are tensors of shape ``(B, C, H, W)``. The actions are

* :func:`rotate90` -- rotation by :math:`k \cdot 90°` about the image centre (exact: the pixel
  grid is mapped onto itself);
* :func:`reflect` -- the reflection :math:`(x, y) \mapsto (x, -y)` (upside down);
* :func:`translate` -- a cyclic shift, the translation action on the torus;
* :func:`rotate` -- rotation by an arbitrary angle with bilinear interpolation (approximate:
  the rotated grid misses the pixel grid, Section 5.3.3);
* :func:`act_on_image` and :func:`act_on_field` -- the action of an element
  :math:`g = r^k f^s` of a :class:`~spdl_ref.equivariant.groups.FiniteGroup`, on scalar images
  :math:`[T_g x](p) = x(g^{-1} p)` and on fields of a representation :math:`\rho`,
  :math:`[T_g x](p) = \rho(g)\, x(g^{-1} p)` (Section 5.1.2).

Angles are in degrees and counter-clockwise as displayed (row 0 at the top).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as nnf

from .. import _validate
from .groups import Element, FiniteGroup, Representation

__all__ = ["act_on_field", "act_on_image", "reflect", "rotate", "rotate90", "translate"]


def _image(x, name="x", square=False):
    _validate.tensor(x, name)
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must be square (H == W) to be rotated, got {tuple(x.shape)}")
    return x


def rotate90(x: torch.Tensor, k: int = 1) -> torch.Tensor:
    r"""Rotate square images by :math:`k \cdot 90°` counter-clockwise, :math:`[T x](p) = x(R^{-k}
    p)`.

    The exact rotation action of :math:`C_4` on the pixel grid (Section 5, eq. (50)).
    """
    _image(x, square=True)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    return torch.rot90(x, k % 4, dims=(-2, -1))


def reflect(x: torch.Tensor) -> torch.Tensor:
    r"""Reflect images upside down, :math:`[T x](x_1, x_2) = x(x_1, -x_2)` (Section 5.1.1)."""
    return torch.flip(_image(x), dims=(-2,))


def translate(x: torch.Tensor, shift: Sequence[int]) -> torch.Tensor:
    r"""Translate images cyclically by ``shift = (rows, columns)`` pixels (Section 5, eq. (50)).

    On the torus :math:`\mathbb{Z}_H \times \mathbb{Z}_W` this is the exact translation action;
    convolutions with circular padding commute with it.
    """
    _image(x)
    if (
        not isinstance(shift, (tuple, list))
        or len(shift) != 2
        or any(isinstance(s, bool) or not isinstance(s, int) for s in shift)
    ):
        raise TypeError(f"shift must be a pair of integers, got {shift!r}")
    return torch.roll(x, shifts=tuple(shift), dims=(-2, -1))


def rotate(x: torch.Tensor, angle: float) -> torch.Tensor:
    r"""Rotate images by ``angle`` degrees counter-clockwise about the centre (Section 5.3.3).

    Bilinear interpolation, zero outside the image. Multiples of 90° on square images are
    dispatched to :func:`rotate90` and are exact; any other angle is only an approximation of
    the continuous rotation :math:`[T x](p) = x(R_\phi^{-1} p)` of the underlying image.
    """
    _image(x)
    angle = _validate.real(angle, "angle")
    quarter = angle / 90.0
    if x.shape[-1] == x.shape[-2] and quarter == round(quarter):
        return rotate90(x, round(quarter))
    H, W = x.shape[-2:]
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    # Output pixel p (in centred pixel units, y up) samples the input at R^{-1} p.
    ys = (H - 1) / 2 - torch.arange(H, dtype=x.dtype, device=x.device)
    xs = torch.arange(W, dtype=x.dtype, device=x.device) - (W - 1) / 2
    Y, X = torch.meshgrid(ys, xs, indexing="ij")
    src_x, src_y = c * X + s * Y, -s * X + c * Y
    # grid_sample's normalised coordinates (align_corners=True): -1..1 over the pixel centres.
    gx = src_x / ((W - 1) / 2)
    gy = -src_y / ((H - 1) / 2)
    grid = torch.stack([gx, gy], dim=-1).expand(x.shape[0], H, W, 2)
    return nnf.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def act_on_image(x: torch.Tensor, g: Element, group: FiniteGroup) -> torch.Tensor:
    r"""The action :math:`[T_g x](p) = x(g^{-1} p)` of :math:`g = r^k f^s \in H` on images (Section
    5.1.2).

    Every channel is moved as a scalar field. ``x`` has shape ``(B, C, n, n)``.
    """
    _validate.instance(group, FiniteGroup, "group")
    k, s = group.check_element(g)
    _image(x, square=group.N == 4)
    y = reflect(x) if s else x
    return torch.rot90(y, (k * 4 // group.N) % 4, dims=(-2, -1)) if k else y


def act_on_field(x: torch.Tensor, g: Element, rep: Representation) -> torch.Tensor:
    r"""The induced action :math:`[T_g x](p) = \rho(g)\, x(g^{-1} p)` on fields (Section 5.1.2).

    ``x`` has shape ``(B, c d, n, n)``: ``c`` fields of the representation ``rep`` of dimension
    ``d``, stacked along the channel axis.
    """
    _validate.instance(rep, Representation, "rep")
    _image(x)
    d = rep.dim
    if x.shape[1] % d:
        raise ValueError(f"x must have a multiple of rep.dim = {d} channels, got {x.shape[1]}")
    y = act_on_image(x, g, rep.group)
    B, C, H, W = y.shape
    rho = rep(g).to(dtype=x.dtype, device=x.device)
    return torch.einsum("ij,bcjhw->bcihw", rho, y.reshape(B, C // d, d, H, W)).reshape(B, C, H, W)
