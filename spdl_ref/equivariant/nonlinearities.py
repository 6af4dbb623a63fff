r"""Nonlinearities on feature fields and their equivariance (Section 5.1.3).

A pointwise nonlinearity :math:`\sigma` applied to every channel commutes with the action
:math:`x \mapsto \rho(h) x` exactly when :math:`\sigma(\rho(h) v) = \rho(h) \sigma(v)`: true for
permutation matrices (trivial and regular representations, Section 5.1.3), false in general
for irreducible representations that rotate the channels. The norm nonlinearity
:math:`F(x)(p) = f(\|x(p)\|)\, x(p)` commutes with every orthogonal :math:`\rho`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.types import Device

from .. import _validate

__all__ = ["NormReLU", "norm_nonlinearity"]


def _fields(x, field_dim, name="x"):
    _validate.tensor(x, name)
    field_dim = _validate.positive_int(field_dim, "field_dim")
    if x.dim() < 2 or x.shape[1] % field_dim:
        raise ValueError(
            f"{name} must have shape (B, c*field_dim, ...) with field_dim = {field_dim}, "
            f"got {tuple(x.shape)}"
        )
    return x.reshape(x.shape[0], x.shape[1] // field_dim, field_dim, *x.shape[2:]), field_dim


def norm_nonlinearity(x: torch.Tensor, field_dim: int, f: Callable) -> torch.Tensor:
    r"""The norm nonlinearity :math:`F(x)(p) = f(\|x(p)\|)\, x(p)` of Section 5.1.3.

    ``x`` has shape ``(B, c d, ...)``: ``c`` fields of dimension ``d = field_dim`` stacked along
    the channel axis; the norm is taken over each field's ``d`` components at each pixel. ``f``
    maps a tensor of norms to a tensor of factors of the same shape.
    """
    _validate.function(f, "f")
    y, _ = _fields(x, field_dim)
    norms = y.norm(dim=2, keepdim=True)
    factor = f(norms)
    if not isinstance(factor, torch.Tensor) or factor.shape != norms.shape:
        got = tuple(factor.shape) if isinstance(factor, torch.Tensor) else type(factor).__name__
        raise ValueError(
            f"f must map the norms, shape {tuple(norms.shape)}, to factors of that shape, got {got}"
        )
    return (factor * y).reshape(x.shape)


class NormReLU(nn.Module):
    r"""Norm nonlinearity with a learnable bias, :math:`f(r) = \mathrm{relu}(r + b)/r` (Section
    5.1.3).

    So :math:`F(x)(p) = \mathrm{relu}(\|x(p)\| + b)\, x(p)/\|x(p)\|`: the field keeps its
    direction and its length is shifted by :math:`b` (one bias per field) and clipped at zero,
    as in harmonic networks (the review's reference [121]).
    """

    def __init__(
        self,
        n_fields: int,
        field_dim: int,
        eps: float = 1e-6,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.n_fields = _validate.positive_int(n_fields, "n_fields")
        self.field_dim = _validate.positive_int(field_dim, "field_dim")
        self.eps = _validate.positive_real(eps, "eps")
        self.bias = nn.Parameter(
            torch.zeros(
                n_fields,
                device=_validate.device(device),
                dtype=_validate.float_dtype(dtype) or torch.get_default_dtype(),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The norm nonlinearity on each field of ``x`` (Section 5.1.3)."""
        y, _ = _fields(x, self.field_dim)
        _validate.like(x, self.bias, "x", "NormReLU")
        if y.shape[1] != self.n_fields:
            raise ValueError(f"x must have {self.n_fields} fields, got {y.shape[1]}")
        b = self.bias.reshape(1, -1, 1, *([1] * (y.dim() - 3)))
        norms = y.norm(dim=2, keepdim=True)
        return (torch.relu(norms + b) / (norms + self.eps) * y).reshape(x.shape)
