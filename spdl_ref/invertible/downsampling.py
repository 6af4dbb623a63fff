r"""Invertible down- and upsampling of images, Section 4.1.3.

Halving the height and width of an image must multiply its channels by :math:`s^2` to stay
invertible. :class:`PixelShuffleDown` (the squeeze of RealNVP, Section 4.1.1) only reorders
pixels; :class:`OrthogonalDownsampling` (iUNets) applies a learnable orthogonal
:math:`\tau \times \tau` matrix, :math:`\tau = s_1 s_2`, to each :math:`s_1 \times s_2` patch: the
matrix is reshaped into the kernel of a stride-:math:`s` convolution, which is then an orthogonal
operator whose inverse is the transposed convolution. Orthogonal matrices come from the
exponential of skew-symmetric ones; the identity gives the pixel shuffle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.types import Device

from .. import _validate
from ._base import InvertibleModule, check_batch, factory, reference_tensor
from .orthogonal import skew

__all__ = ["OrthogonalDownsampling", "PixelShuffleDown"]


def _stride(stride):
    if isinstance(stride, (tuple, list)):
        if len(stride) != 2:
            raise ValueError(f"stride must be an int or a pair, got {stride}")
        return tuple(_validate.positive_int(s, "stride") for s in stride)
    s = _validate.positive_int(stride, "stride")
    return (s, s)


class _Down(InvertibleModule):
    def __init__(self, channels: int | None, stride: int | Sequence[int]) -> None:
        super().__init__()
        self.channels = None if channels is None else _validate.positive_int(channels, "channels")
        self.stride = _stride(stride)
        self.tau = math.prod(self.stride)

    def _check_in(self, x, name="x"):
        check_batch(
            x,
            name,
            (self.channels, None, None),
            like=reference_tensor(self),
            owner=type(self).__name__,
        )
        s1, s2 = self.stride
        if x.shape[2] % s1 or x.shape[3] % s2:
            raise ValueError(
                f"{name} height and width must be divisible by the stride {self.stride}, "
                f"got shape {tuple(x.shape)}"
            )
        return x

    def _check_out(self, y, name="y"):
        c = None if self.channels is None else self.channels * self.tau
        check_batch(
            y, name, (c, None, None), like=reference_tensor(self), owner=type(self).__name__
        )
        if y.shape[1] % self.tau:
            raise ValueError(
                f"{name} must have a multiple of {self.tau} channels, got {tuple(y.shape)}"
            )
        return y

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """Zero for every sample: the map permutes or rotates pixel values."""
        self._check_in(x)
        return x.new_zeros(x.shape[0])

    def extra_repr(self) -> str:
        return f"channels={self.channels}, stride={self.stride}"


class PixelShuffleDown(_Down):
    r"""Invertible downsampling by reordering (pixel shuffle / squeeze), Sections 4.1.1 and 4.1.3.

    ``(N, C, H, W)`` :math:`\to` ``(N, C s_1 s_2, H/s_1, W/s_2)``: the pixel at offset
    :math:`(i, j)` of each :math:`s_1 \times s_2` patch goes to channel
    :math:`c\,s_1 s_2 + i s_2 + j`. A permutation, so :math:`\log|\det| = 0`; the inverse is
    invertible upsampling.

    Parameters
    ----------
    channels : int or None
        :math:`C` (``None``: any).
    stride : int or tuple
        :math:`s` (default 2).
    """

    def __init__(self, channels: int | None = None, stride: int | Sequence[int] = 2) -> None:
        super().__init__(channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Move each patch of pixels into channels."""
        self._check_in(x)
        n, c, h, w = x.shape
        s1, s2 = self.stride
        x = x.reshape(n, c, h // s1, s1, w // s2, s2).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(n, c * self.tau, h // s1, w // s2)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Move the channels back into patches of pixels."""
        self._check_out(y)
        n, ct, h, w = y.shape
        s1, s2 = self.stride
        c = ct // self.tau
        y = y.reshape(n, c, s1, s2, h, w).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(n, c, h * s1, w * s2)


class OrthogonalDownsampling(_Down):
    r"""Learnable orthogonal downsampling of iUNets, Section 4.1.3.

    For each channel an orthogonal :math:`Q_c = \exp(A_c) \in SO(\tau)`, :math:`\tau = s_1 s_2`,
    is reshaped into :math:`\tau` kernels of size :math:`s_1 \times s_2` (row :math:`k` of
    :math:`Q_c` becomes kernel :math:`k`); the stride-:math:`s` convolution with these kernels maps
    each patch :math:`p` to :math:`Q_c p` and is orthogonal, so the inverse is the transposed
    convolution and :math:`\log|\det| = 0`. :math:`Q_c = I` is :class:`PixelShuffleDown`.

    Parameters
    ----------
    channels : int
        :math:`C`.
    stride : int or tuple
        :math:`s` (default 2).
    """

    channels: int  # never None here: __init__ requires a positive int

    def __init__(
        self,
        channels: int,
        stride: int | Sequence[int] = 2,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(_validate.positive_int(channels, "channels"), stride)
        kw = factory(device, dtype)
        kw["dtype"] = kw["dtype"] or torch.get_default_dtype()
        g = torch.Generator().manual_seed(self.tau)
        init = 0.5 * torch.randn(
            self.channels, self.tau, self.tau, generator=g, dtype=torch.float64
        )
        self.param = torch.nn.Parameter(init.to(**kw))

    def matrices(self) -> torch.Tensor:
        r"""The orthogonal matrices :math:`Q_c`, shape ``(C, τ, τ)``."""
        return torch.linalg.matrix_exp(skew(self.param))

    def kernel(self) -> torch.Tensor:
        """The convolution kernel, shape ``(C τ, 1, s_1, s_2)``."""
        return self.matrices().reshape(self.channels * self.tau, 1, *self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Downsample: a strided convolution with the orthogonal kernels."""
        self._check_in(x)
        return F.conv2d(x, self.kernel(), stride=self.stride, groups=self.channels)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """Upsample: the transposed convolution, the inverse of an orthogonal map."""
        self._check_out(y)
        return F.conv_transpose2d(y, self.kernel(), stride=self.stride, groups=self.channels)
