r"""Orthogonal channel-mixing layers, Section 4.1.3.

Orthogonal matrices are invertible at no cost (:math:`W^{-1} = W^\top`), perfectly conditioned
and volume preserving (:math:`\log|\det W| = 0`). The review lists four parametrisations, all
here: products of Householder reflections, the exponential of a skew-symmetric matrix, the
Cayley transform of a skew-symmetric matrix, and products of Givens rotations. Each maps
unconstrained parameters to :math:`W` with :math:`W^\top W = I`; see Section 6 and (59) for
optimising on the orthogonal group directly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.types import Device

from .. import _validate
from ._base import factory
from .linear import ChannelLinear

__all__ = [
    "CayleyOrthogonal",
    "ExpSkewOrthogonal",
    "GivensOrthogonal",
    "HouseholderOrthogonal",
    "skew",
]


def skew(a: torch.Tensor) -> torch.Tensor:
    r"""The skew-symmetric part :math:`A - A^\top` of the strictly lower triangle of ``a`` (Section
    4.1.3).

    ``a`` has shape ``(..., n, n)``.
    """
    _validate.traced_tensor(a, "a")
    if a.dim() < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"a must be a batch of square matrices (..., n, n), got {tuple(a.shape)}")
    low = torch.tril(a, -1)
    return low - low.transpose(-1, -2)


class _Orthogonal(ChannelLinear):
    def weight_inverse(self) -> torch.Tensor:
        return self.weight().T

    def log_abs_det_weight(self) -> torch.Tensor:
        return self.weight().new_zeros(())

    def _init(self, shape, device, dtype, scale=0.5):
        kw = factory(device, dtype)
        kw["dtype"] = kw["dtype"] or torch.get_default_dtype()
        g = torch.Generator().manual_seed(self.channels)
        return nn.Parameter(
            (scale * torch.randn(shape, generator=g, dtype=torch.float64, device="cpu")).to(**kw)
        )


class HouseholderOrthogonal(_Orthogonal):
    r""":math:`W = H_1 \cdots H_k`, :math:`H_j = I - 2 v_j v_j^\top / \|v_j\|^2` (Section 4.1.3).

    With ``k = C`` reflections every orthogonal matrix is reachable; :math:`\det W = (-1)^k`.

    Parameters
    ----------
    channels : int
        :math:`C`.
    n_reflections : int or None
        :math:`k` (default :math:`C`).
    """

    def __init__(
        self,
        channels: int,
        n_reflections: int | None = None,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(channels)
        k = (
            self.channels
            if n_reflections is None
            else _validate.positive_int(n_reflections, "n_reflections")
        )
        self.vectors = self._init((k, self.channels), device, dtype, scale=1.0)

    def weight(self) -> torch.Tensor:
        n = self.channels
        w = torch.eye(n, dtype=self.vectors.dtype, device=self.vectors.device)
        for v in self.vectors:
            v = v / v.norm().clamp_min(torch.finfo(v.dtype).tiny)
            w = w - 2 * torch.outer(w @ v, v)
        return w


class ExpSkewOrthogonal(_Orthogonal):
    r""":math:`W = \exp(A)` with :math:`A = -A^\top` (Section 4.1.3); covers :math:`SO(C)`.

    Parameters
    ----------
    channels : int
        :math:`C`.
    """

    def __init__(
        self, channels: int, device: Device = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__(channels)
        self.param = self._init((self.channels, self.channels), device, dtype)

    def weight(self) -> torch.Tensor:
        return torch.linalg.matrix_exp(skew(self.param))


class CayleyOrthogonal(_Orthogonal):
    r""":math:`W = (I - A)^{-1}(I + A)` with :math:`A = -A^\top` (Cayley transform, Section 4.1.3).

    Covers the orthogonal matrices without eigenvalue :math:`-1`.

    Parameters
    ----------
    channels : int
        :math:`C`.
    """

    def __init__(
        self, channels: int, device: Device = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__(channels)
        self.param = self._init((self.channels, self.channels), device, dtype)

    def weight(self) -> torch.Tensor:
        a = skew(self.param)
        eye = torch.eye(self.channels, dtype=a.dtype, device=a.device)
        return torch.linalg.solve(eye - a, eye + a)


class GivensOrthogonal(_Orthogonal):
    r""":math:`W = \prod_{i<j} G_{ij}(\phi_{ij})`, a product of Givens rotations (Section 4.1.3).

    :math:`G_{ij}(\phi)` rotates the :math:`(i, j)` coordinate plane by :math:`\phi`; with all
    :math:`C(C-1)/2` planes every matrix of :math:`SO(C)` is reachable.

    Parameters
    ----------
    channels : int
        :math:`C`.
    """

    def __init__(
        self, channels: int, device: Device = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__(channels)
        n = self.channels
        self.pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        self.angles = self._init((len(self.pairs),), device, dtype, scale=1.0)

    def weight(self) -> torch.Tensor:
        n = self.channels
        w = torch.eye(n, dtype=self.angles.dtype, device=self.angles.device)
        for (i, j), phi in zip(self.pairs, self.angles, strict=True):
            c, s = torch.cos(phi), torch.sin(phi)
            wi, wj = w[:, i], w[:, j]
            w = w.clone()
            w[:, i] = c * wi + s * wj
            w[:, j] = -s * wi + c * wj
        return w
