r"""Spectral normalisation by power iteration, eq. (47), Section 4.1.2.

A linear map :math:`A_\theta` that depends linearly on :math:`\theta` is rescaled to
:math:`A_{\bar\theta}`, :math:`\bar\theta = c\,\theta / \|A_\theta\|_2`, so that
:math:`\mathrm{Lip}(A_{\bar\theta}) = c`. The norm :math:`\|A_\theta\|_2` is estimated by the
power method; as in invertible ResNets, the singular-vector estimates :math:`u, v` are buffers
kept between training steps, and each step performs ``n_power_iterations`` more iterations.
With few iterations :math:`\hat\sigma = u^\top A_\theta v \le \|A_\theta\|_2`, so the true
Lipschitz constant :math:`c\,\|A_\theta\|_2 / \hat\sigma` can exceed :math:`c` (see
:meth:`SpectralNormLinear.operator_norm`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.types import Device

from .. import _validate
from ._base import check_batch, factory

__all__ = ["SpectralNormConv2d", "SpectralNormLinear"]


def _unit(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm().clamp_min(torch.finfo(t.dtype).tiny)


class _SpectralNorm(nn.Module):
    """Shared power-iteration logic (eq. (47))."""

    # Set by the subclasses: the weight, the singular-vector estimates (buffers), the operator
    # A_theta v, its adjoint A_theta^T u and its matrix.
    weight: torch.Tensor
    bias: torch.Tensor | None
    u: torch.Tensor
    v: torch.Tensor
    _apply_op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    _adjoint: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    _matrix: Callable[[torch.Tensor], torch.Tensor]

    def _init_coefficient(self, c: float, n_power_iterations: int) -> None:
        self.c = _validate.positive_real(c, "c")
        self.n_power_iterations = _validate.nonnegative_int(
            n_power_iterations, "n_power_iterations"
        )

    @torch.no_grad()
    def power_iteration(self, n: int | None = None) -> None:
        r"""Run ``n`` (default ``n_power_iterations``) power iterations on :math:`A_\theta`,
        updating :math:`u, v`."""
        n = self.n_power_iterations if n is None else _validate.nonnegative_int(n, "n")
        u, v = self.u, self.v
        for _ in range(n):
            v = _unit(self._adjoint(u, self.weight))
            u = _unit(self._apply_op(v, self.weight))
        self.u.copy_(u)
        self.v.copy_(v)

    def sigma(self) -> torch.Tensor:
        r""":math:`\hat\sigma = u^\top A_\theta v`, the power-method estimate of
        :math:`\|A_\theta\|_2` (differentiable in :math:`\theta`)."""
        return (self.u * self._apply_op(self.v, self.weight)).sum()

    def normalised_weight(self) -> torch.Tensor:
        r""":math:`\bar\theta = c\,\theta / \hat\sigma`, eq. (47)."""
        return self.c * self.weight / self.sigma()

    @torch.no_grad()
    def operator_norm(self, normalised: bool = True) -> torch.Tensor:
        r"""The exact :math:`\|A\|_2` (of :math:`A_{\bar\theta}` if ``normalised``), from an SVD of
        the operator's matrix."""
        w = self.normalised_weight() if normalised else self.weight
        return torch.linalg.matrix_norm(self._matrix(w), ord=2)


class SpectralNormLinear(_SpectralNorm):
    r"""A dense layer :math:`x \mapsto A_{\bar\theta} x + b` with :math:`\|A_{\bar\theta}\|_2
    \approx c`, eq. (47).

    Parameters
    ----------
    in_features, out_features : int
        Sizes of :math:`A \in \mathbb{R}^{\text{out} \times \text{in}}`.
    c : float
        Target Lipschitz constant :math:`c > 0`.
    n_power_iterations : int
        Power iterations per training step (the review: one, re-using the previous vectors).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        c: float = 1.0,
        n_power_iterations: int = 1,
        bias: bool = True,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = factory(device, dtype)
        self._init_coefficient(c, n_power_iterations)
        _validate.boolean(bias, "bias")
        lin = nn.Linear(
            _validate.positive_int(in_features, "in_features"),
            _validate.positive_int(out_features, "out_features"),
            bias=bias,
            **kw,
        )
        self.weight, self.bias = lin.weight, lin.bias
        g = torch.Generator().manual_seed(0)
        self.register_buffer(
            "u", _unit(torch.randn(out_features, generator=g, device="cpu")).to(**kw)
        )
        self.register_buffer(
            "v", _unit(torch.randn(in_features, generator=g, device="cpu")).to(**kw)
        )
        self.power_iteration(10)

    @staticmethod
    def _apply_op(v, w):
        return w @ v

    @staticmethod
    def _adjoint(u, w):
        return w.T @ u

    @staticmethod
    def _matrix(w):
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The affine map with the weight normalised by (47)."""
        _validate.tensor(x, "x")
        _validate.like(x, self.weight, "x", "SpectralNormLinear")
        if x.dim() == 0 or x.shape[-1] != self.weight.shape[1]:
            raise ValueError(
                f"x must have last dimension in_features = {self.weight.shape[1]}, "
                f"got shape {tuple(x.shape)}"
            )
        return F.linear(x, self.normalised_weight(), self.bias)


class SpectralNormConv2d(_SpectralNorm):
    r"""A stride-1 convolution with operator norm :math:`\approx c` on inputs of a fixed size, eq.
    (47).

    The power method runs on the convolution operator itself (not on the reshaped kernel), so
    :math:`u, v` have the shapes of an output and an input image. The operator, hence its norm,
    depends on the image size, so inputs of another size than ``input_size`` are refused
    (:class:`ValueError`) rather than normalised with the vectors of a different operator.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int
        Odd kernel size (padding ``kernel_size // 2`` keeps the image size).
    input_size : tuple
        ``(H, W)`` of the inputs.
    c, n_power_iterations :
        As in :class:`SpectralNormLinear`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        input_size: Sequence[int],
        c: float = 1.0,
        n_power_iterations: int = 1,
        bias: bool = True,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kw = factory(device, dtype)
        self._init_coefficient(c, n_power_iterations)
        in_channels = _validate.positive_int(in_channels, "in_channels")
        out_channels = _validate.positive_int(out_channels, "out_channels")
        k = _validate.positive_int(kernel_size, "kernel_size")
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {k}")
        if not isinstance(input_size, (tuple, list, torch.Size)) or len(input_size) != 2:
            raise ValueError(f"input_size must be a pair (H, W), got {input_size!r}")
        h, w = (_validate.positive_int(s, "input_size") for s in input_size)
        _validate.boolean(bias, "bias")
        conv = nn.Conv2d(in_channels, out_channels, k, padding=k // 2, bias=bias, **kw)
        self.weight, self.bias, self.padding = conv.weight, conv.bias, k // 2
        self.input_size = (in_channels, h, w)
        g = torch.Generator().manual_seed(0)
        self.register_buffer(
            "u", _unit(torch.randn(1, out_channels, h, w, generator=g, device="cpu")).to(**kw)
        )
        self.register_buffer(
            "v", _unit(torch.randn(1, in_channels, h, w, generator=g, device="cpu")).to(**kw)
        )
        self.power_iteration(10)

    def _apply_op(self, v, w):
        return F.conv2d(v, w, padding=self.padding)

    def _adjoint(self, u, w):
        return F.conv_transpose2d(u, w, padding=self.padding)

    def _matrix(self, w):
        n = math.prod(self.input_size)
        eye = torch.eye(n, dtype=w.dtype, device=w.device).reshape(n, *self.input_size)
        return self._apply_op(eye, w).reshape(n, -1).T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution with the weight normalised by (47), on inputs of ``input_size``."""
        # u and v live on inputs of input_size: on another size the normalisation (47) would
        # divide by the norm of a different operator, so other sizes are refused.
        check_batch(x, "x", self.input_size, like=self.weight, owner="SpectralNormConv2d")
        return F.conv2d(x, self.normalised_weight(), self.bias, padding=self.padding)
