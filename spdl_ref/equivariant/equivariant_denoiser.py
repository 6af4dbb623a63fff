r"""The rotation-equivariant denoiser of Figure 3, built with escnn (Section 5.2).

See :mod:`spdl_ref.equivariant.denoisers` for the architecture. This module imports escnn (the
``equivariant`` extra; without it the import raises an :class:`ImportError` that names it).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.types import Device

from .. import _validate
from .._optional import optional_dependency
from ._checks import denoiser_sizes, image_batch
from .escnn_bridge import escnn_precision

with (
    optional_dependency("equivariant", "make_denoiser('equivariant') (EquivariantDenoiser)"),
    warnings.catch_warnings(),
):
    warnings.simplefilter("ignore")  # py3nj is only needed for SO(3), not for the 2-D groups
    from escnn import gspaces
    from escnn import nn as enn

__all__ = ["EquivariantDenoiser"]

FIELDS = ("regular", "trivial", "harmonic")


class EquivariantDenoiser(nn.Module):
    r"""Lifting, a ResNet (5) of steerable convolutions, projection; escnn layers (Section 5.2).

    ``fields="regular"``: the hidden state is ``width // N`` regular fields of the cyclic group
    :math:`C_N` (``group_order``), :math:`\sigma` is the pointwise ReLU, which commutes with
    the permutation matrices of the regular representation (Section 5.1.3).
    ``fields="trivial"``: ``width`` scalar fields of :math:`C_N` (so every kernel is
    :math:`C_N`-invariant, "isotropic") and the pointwise ReLU; a baseline for Section 5.3.2.
    ``fields="harmonic"``: ``width // (2M + 1)`` blocks of :math:`SO(2)` fields of rotation
    orders :math:`0, \dots, M` (``max_order``) and the norm-ReLU of Section 5.1.3, as in
    harmonic networks (the review's [121]).

    Each residual layer is :math:`z^{k+1} = z^k + \sigma(A^k z^k + b^k)` with :math:`A^k` an
    escnn ``R2Conv`` (whose kernels solve the constraint of Section 5.1.2; biases only where
    they are invariant). Input and output are single scalar fields: one-channel images.
    escnn's He initialisation is multiplied by ``init_scale``, which brings the untrained
    network's output to the scale of the ordinary denoiser's (PyTorch's default initialisation).
    ``bias=False`` drops the convolutions' biases (the norm nonlinearity keeps its own); then a
    harmonic network is an odd map, :math:`\Psi(-x) = -\Psi(x)` (Section 5.3.2).

    With ``dtype=torch.float64`` (given, or the default dtype) escnn samples its kernel bases in
    float64 (:func:`~spdl_ref.equivariant.escnn_bridge.escnn_float64`; escnn alone would keep
    them in float32), so rotations by multiples of 90 degrees commute with the network to float64
    round-off. With ``device`` given, escnn builds its bases and parameters there (inside
    ``with torch.device(device)``).
    """

    def __init__(
        self,
        width: int,
        depth: int,
        kernel_size: int = 3,
        fields: str = "regular",
        group_order: int = 8,
        max_order: int = 3,
        init_scale: float = 0.4,
        bias: bool = True,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.width, self.depth, k = denoiser_sizes(width, depth, kernel_size)
        self.fields = _validate.choice(fields, FIELDS, "fields")
        init_scale = _validate.positive_real(init_scale, "init_scale")
        bias = _validate.boolean(bias, "bias")
        device = _validate.device(device)
        dtype = _validate.float_dtype(dtype) or torch.get_default_dtype()
        # escnn makes its own tensors (bases, filters, weights): with a device given, they are
        # made there, as torch layers make theirs with device=; nothing is built and then moved.
        with escnn_precision(dtype, device):
            self._build(width, depth, k, fields, group_order, max_order, init_scale, bias)

    def _build(self, width, depth, k, fields, group_order, max_order, init_scale, bias):
        if fields in ("regular", "trivial"):
            N = _validate.positive_int(group_order, "group_order")
            gs = gspaces.rot2dOnR2(N=N)
            block, reps = (N, [gs.regular_repr]) if fields == "regular" else (1, [gs.trivial_repr])
        else:
            M = _validate.nonnegative_int(max_order, "max_order")
            block = 2 * M + 1
            gs = gspaces.rot2dOnR2(N=-1, maximum_frequency=2 * max(M, 1))
            reps = [gs.irrep(m) for m in range(M + 1)]
        if width % block:
            raise ValueError(
                f"width must be a multiple of {block} (the channels of one block of {fields} "
                f"fields), got {width}"
            )
        self.in_type = enn.FieldType(gs, [gs.trivial_repr])
        hidden = enn.FieldType(gs, reps * (width // block))
        pad = k // 2
        kw = dict(padding=pad, bias=bias)
        self.lift = enn.R2Conv(self.in_type, hidden, k, **kw)
        self.convs = nn.ModuleList(enn.R2Conv(hidden, hidden, k, **kw) for _ in range(depth))
        if fields in ("regular", "trivial"):
            self.nonlins = nn.ModuleList(enn.ReLU(hidden) for _ in range(depth))
        else:
            self.nonlins = nn.ModuleList(
                enn.NormNonLinearity(hidden, "n_relu", bias=True) for _ in range(depth)
            )
        self.project = enn.R2Conv(hidden, self.in_type, k, **kw)
        with torch.no_grad():
            for conv in [self.lift, *self.convs, self.project]:
                conv.weights.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The denoised image: lifting, residual steerable layers, projection."""
        image_batch(x)
        _validate.like(x, self.lift.weights, "x", "EquivariantDenoiser")
        z = self.lift(enn.GeometricTensor(x, self.in_type))
        for conv, sigma in zip(self.convs, self.nonlins, strict=True):
            z = z + sigma(conv(z))
        return self.project(z).tensor
