r"""The two denoisers of Figure 3 (Section 5.2): an ordinary CNN and a rotation-equivariant one.

Both are a ResNet (5) between a learnable lifting layer and a learnable projection layer,

.. math:: \Psi(x) = P\big(z^K\big), \qquad z^0 = L(x), \qquad
          z^{k+1} = z^k + \sigma(A^k z^k + b^k),

where :math:`L`, :math:`A^k` and :math:`P` are convolutions with ``kernel_size x kernel_size``
kernels, :math:`L` maps the image to ``width`` channels and :math:`P` maps back to one.

* ``"ordinary"``: plain convolutions and :math:`\sigma = \mathrm{relu}`; equivariant to
  translations only.
* ``"equivariant"``: built with escnn. By default the ``width`` channels are ``width // 8``
  regular fields of the rotation group :math:`C_8` (eight channels per field, permuted by
  rotations by 45°), the convolutions solve the kernel constraint of Section 5.1.2, and
  :math:`\sigma` is the pointwise ReLU, equivariant on regular fields (Section 5.1.3). It is
  equivariant to translations and to rotations by multiples of 90° up to round-off, and
  approximately to other angles. ``fields="harmonic"`` gives the harmonic-network variant that
  the review's experiment used (its reference [121]): fields of rotation orders
  :math:`0, \dots, M` of :math:`SO(2)` with the norm-ReLU of Section 5.1.3.

Regular fields are the default: the plain ReLU is exactly equivariant on them, so the two
denoisers differ only in their convolutions, and at width 64 and depth 20 the parameter count is
close to the review's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.types import Device

from .. import _validate
from ._checks import denoiser_sizes, image_batch

__all__ = ["OrdinaryDenoiser", "make_denoiser", "parameter_count"]

KINDS = ("ordinary", "equivariant")


class OrdinaryDenoiser(nn.Module):
    r"""The ordinary denoiser of Figure 3: lifting, a ResNet (5) of ReLU convolutions, projection
    (Section 5.2).

    ``width`` channels, ``depth`` residual layers, ``kernel_size x kernel_size`` kernels with
    zero padding; ``bias=False`` drops the convolutions' biases.
    """

    def __init__(
        self,
        width: int,
        depth: int,
        kernel_size: int = 3,
        bias: bool = True,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.width, self.depth, k = denoiser_sizes(width, depth, kernel_size)
        device = _validate.device(device)
        dtype = _validate.float_dtype(dtype)
        bias = _validate.boolean(bias, "bias")
        self.lift = nn.Conv2d(1, width, k, padding=k // 2, bias=bias, device=device, dtype=dtype)
        self.layers = nn.ModuleList(
            nn.Conv2d(width, width, k, padding=k // 2, bias=bias, device=device, dtype=dtype)
            for _ in range(depth)
        )
        self.project = nn.Conv2d(width, 1, k, padding=k // 2, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The denoised image: lifting, residual convolution layers, projection."""
        image_batch(x)
        _validate.like(x, self.lift.weight, "x", "OrdinaryDenoiser")
        z = self.lift(x)
        for conv in self.layers:
            z = z + torch.relu(conv(z))
        return self.project(z)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters, the degrees of freedom compared in Section 5.2."""
    _validate.module(model, "model")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_denoiser(
    kind: str,
    width: int = 64,
    depth: int = 20,
    kernel_size: int = 3,
    *,
    fields: str = "regular",
    group_order: int = 8,
    max_order: int = 3,
    bias: bool = True,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    r"""One of the two denoisers :math:`\Psi` of Figure 3 (Section 5.2).

    The defaults are the "paper" sizes of the chapter: 739,777 parameters for the ordinary
    denoiser and 61,705 (8.3%) for the equivariant one (the review: 741,891 and 62,994).

    Parameters
    ----------
    kind : str
        ``"ordinary"`` or ``"equivariant"``.
    width : int
        Channels of the ResNet's state. For ``"equivariant"`` it must be a multiple of the
        channels of one field block: :math:`N` (``group_order``) for regular fields, one for
        trivial (scalar) ones, :math:`2M + 1` for harmonic ones.
    depth : int
        Number :math:`K` of residual layers.
    kernel_size : int
        Odd side length of the convolution kernels.
    fields, group_order, max_order
        Only for ``"equivariant"``: see
        :class:`~spdl_ref.equivariant.equivariant_denoiser.EquivariantDenoiser`.
    bias : bool
        Whether the convolutions have biases (the norm nonlinearity of ``fields="harmonic"``
        keeps its own).
    device, dtype
        Where and in which floating-point type the parameters (and escnn's bases) are made.

    Returns
    -------
    torch.nn.Module
        A module mapping images ``(B, 1, H, W)`` to images ``(B, 1, H, W)``.
    """
    _validate.choice(kind, KINDS, "kind")
    if kind == "ordinary":
        for name, value, default in (
            ("fields", fields, "regular"),
            ("group_order", group_order, 8),
            ("max_order", max_order, 3),
        ):
            if value != default:
                raise ValueError(f"{name} applies only to kind='equivariant', got {value!r}")
        return OrdinaryDenoiser(width, depth, kernel_size, bias=bias, device=device, dtype=dtype)
    from .equivariant_denoiser import EquivariantDenoiser

    return EquivariantDenoiser(
        width,
        depth,
        kernel_size,
        fields=fields,
        group_order=group_order,
        max_order=max_order,
        bias=bias,
        device=device,
        dtype=dtype,
    )
