r"""Invertible channel-mixing layers, Section 4.1.3.

After a coupling layer (Section 4.1.1) the two groups of channels have been processed
separately; an invertible matrix :math:`W \in \mathbb{R}^{C \times C}` applied to the channel
axis of every pixel (a 1x1 convolution) mixes them again. Inputs are ``(N, C)`` or
``(N, C, *spatial)``; the log-determinant is :math:`(\text{number of pixels}) \cdot \log|\det W|`.
This module holds the base class and the LU-parametrised layer of Glow; the orthogonal
parametrisations are in :mod:`spdl_ref.invertible.orthogonal`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.types import Device

from .. import _validate
from ._base import InvertibleModule, check_batch, factory, reference_tensor

__all__ = ["ActNorm", "ChannelLinear", "Invertible1x1Conv"]


def _random_orthogonal(n: int, **kw: Any) -> torch.Tensor:
    g = torch.Generator().manual_seed(n)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64, device="cpu"))
    return (q * torch.sign(torch.diagonal(r))).to(**kw)


class ChannelLinear(InvertibleModule):
    r"""Base class: :math:`y_{:, \cdot, p} = W x_{:, \cdot, p}` at every pixel :math:`p` (Section
    4.1.3).

    Subclasses define :meth:`weight`, and may override :meth:`weight_inverse` and
    :meth:`log_abs_det_weight`.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = _validate.positive_int(channels, "channels")

    def weight(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def weight_inverse(self) -> torch.Tensor:
        """:math:`W^{-1}` (by a linear solve unless a subclass knows better)."""
        w = self.weight()
        return torch.linalg.inv(w)

    def log_abs_det_weight(self) -> torch.Tensor:
        r""":math:`\log|\det W|`."""
        return torch.linalg.slogdet(self.weight()).logabsdet

    def _check(self, x: torch.Tensor, name: str) -> torch.Tensor:
        check_batch(x, name, like=reference_tensor(self), owner=type(self).__name__)
        if x.shape[1] != self.channels:
            raise ValueError(
                f"{name} must have {self.channels} channels in dimension 1, "
                f"got shape {tuple(x.shape)}"
            )
        return x

    def _mix(self, x: torch.Tensor, w: torch.Tensor, name: str) -> torch.Tensor:
        self._check(x, name)
        return torch.einsum("ij,nj...->ni...", w, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The channel mix :math:`W x` at every pixel."""
        return self._mix(x, self.weight(), "x")

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        r"""The inverse mix :math:`W^{-1} y` at every pixel."""
        return self._mix(y, self.weight_inverse(), "y")

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        r"""The number of pixels times :math:`\log|\det W|`, the same for every sample."""
        self._check(x, "x")
        pixels = math.prod(x.shape[2:])
        return (pixels * self.log_abs_det_weight()).to(x.dtype).expand(x.shape[0])

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


class Invertible1x1Conv(ChannelLinear):
    r"""Invertible 1x1 convolution with an LU-parametrised matrix (Glow), Section 4.1.3.

    :math:`W = P L (U + \operatorname{diag}(\operatorname{sign} \odot |s|))` with a fixed
    permutation :math:`P`, unit lower-triangular :math:`L`, strictly upper-triangular :math:`U`
    and diagonal magnitudes :math:`|s_i| = \varepsilon + \operatorname{softplus}(\rho_i) >
    \varepsilon`, the floor the review suggests for stable inversion. Then
    :math:`\log|\det W| = \sum_i \log|s_i|` and :math:`W^{-1}` follows from two triangular
    solves. Starts from a random orthogonal matrix.

    Parameters
    ----------
    channels : int
        :math:`C`.
    eps : float
        The floor :math:`\varepsilon > 0` on :math:`|s_i|`.
    """

    perm: torch.Tensor
    sign: torch.Tensor
    _tril: torch.Tensor

    def __init__(
        self,
        channels: int,
        eps: float = 1e-3,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(channels)
        self.eps = _validate.positive_real(eps, "eps")
        kw = factory(device, dtype)
        kw["dtype"] = kw["dtype"] or torch.get_default_dtype()
        p, lower, upper = torch.linalg.lu(_random_orthogonal(self.channels, dtype=torch.float64))
        s = torch.diagonal(upper)
        mag = (s.abs() - self.eps).clamp_min(1e-6)
        self.register_buffer("perm", p.to(**kw))
        self.register_buffer("sign", torch.sign(s).to(**kw))
        self.lower = nn.Parameter(torch.tril(lower, -1).to(**kw))
        self.upper = nn.Parameter(torch.triu(upper, 1).to(**kw))
        self.rho = nn.Parameter((mag + torch.log(-torch.expm1(-mag))).to(**kw))  # softplus^-1
        n = self.channels
        self.register_buffer("_tril", torch.tril(torch.ones(n, n, **kw), -1))

    def diagonal(self) -> torch.Tensor:
        r"""The diagonal :math:`s` of the upper factor, with :math:`|s_i| > \varepsilon`."""
        return self.sign * (self.eps + F.softplus(self.rho))

    def _factors(self):
        eye = torch.eye(self.channels, dtype=self.rho.dtype, device=self.rho.device)
        lower = self.lower * self._tril + eye
        upper = self.upper * self._tril.T + torch.diag(self.diagonal())
        return lower, upper

    def weight(self) -> torch.Tensor:
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def weight_inverse(self) -> torch.Tensor:
        lower, upper = self._factors()
        eye = torch.eye(self.channels, dtype=lower.dtype, device=lower.device)
        linv = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
        uinv = torch.linalg.solve_triangular(upper, eye, upper=True)
        return uinv @ linv @ self.perm.T

    def log_abs_det_weight(self) -> torch.Tensor:
        return torch.log(self.eps + F.softplus(self.rho)).sum()


class ActNorm(InvertibleModule):
    r"""Per-channel affine map :math:`y = e^{s} \odot x + b` (Glow's activation normalisation),
    Section 4.1.3.

    The simplest linear invertible layer: a diagonal matrix with positive entries and a shift,
    :math:`\log|\det| = (\text{pixels}) \sum_i s_i`. Useful between invertible residual blocks,
    whose Lipschitz bound (47) limits how far each can rescale the data.

    Parameters
    ----------
    channels : int
        :math:`C` (inputs ``(N, C)`` or ``(N, C, *spatial)``).
    """

    def __init__(
        self, channels: int, device: Device = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.channels = _validate.positive_int(channels, "channels")
        kw = factory(device, dtype)
        self.log_scale = nn.Parameter(torch.zeros(self.channels, **kw))
        self.shift = nn.Parameter(torch.zeros(self.channels, **kw))

    def _view(self, t, x):
        return t.reshape(1, -1, *([1] * (x.dim() - 2))).to(x.dtype)

    def _check(self, x, name):
        check_batch(x, name, like=self.log_scale, owner="ActNorm")
        if x.shape[1] != self.channels:
            raise ValueError(
                f"{name} must have {self.channels} channels in dimension 1, got shape "
                f"{tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""The map :math:`y = e^{s} \odot x + b`, channel by channel."""
        self._check(x, "x")
        return x * torch.exp(self._view(self.log_scale, x)) + self._view(self.shift, x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        r"""The inverse :math:`x = e^{-s} \odot (y - b)`."""
        self._check(y, "y")
        return (y - self._view(self.shift, y)) * torch.exp(-self._view(self.log_scale, y))

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        r"""The number of pixels times :math:`\sum_i s_i`, the same for every sample."""
        self._check(x, "x")
        pixels = math.prod(x.shape[2:])
        return (pixels * self.log_scale.sum()).to(x.dtype).expand(x.shape[0])
