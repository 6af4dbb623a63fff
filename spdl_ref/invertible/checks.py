r"""Helpers that check invertible layers against their definitions (Sections 4.1, 4.2.1, 4.2.3).

* :func:`randomise_parameters` moves a layer away from its identity-like initialisation, so that
  a round trip :math:`f^{-1}(f(x)) = x` (Section 4.1) or a log-determinant is a real test;
* :func:`autograd_log_abs_det` is the brute-force reference for the log-determinant term of the
  change of variables (48): the full Jacobian by autograd and its ``slogdet``;
* :func:`mixed_invertible_network` stacks every kind of layer of Section 4.1 into one network,
  for comparing memory-efficient and ordinary backpropagation (Section 4.2.1).
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from .. import _validate
from ._base import check_batch, factory
from .coupling import AffineCoupling
from .linear import Invertible1x1Conv
from .orthogonal import HouseholderOrthogonal
from .residual import InvertibleResidual
from .sequential import InvertibleSequential
from .spline import SplineCoupling

__all__ = ["autograd_log_abs_det", "mixed_invertible_network", "randomise_parameters"]


def randomise_parameters(layer, scale=0.2, generator=None):
    r"""Overwrite every parameter :math:`\theta` of ``layer`` with :math:`\mathcal{N}(0,
    \mathrm{scale}^2)` draws, in place (Section 4.1).

    Coupling layers start as the identity (zero-initialised last layer); random parameters make
    invertibility and log-determinant checks of Section 4.1 non-trivial. The draws are made in
    float64 on the CPU and then copied into each parameter, so the same ``generator`` state gives
    the same values (up to rounding) for any dtype and device.

    Parameters
    ----------
    layer : torch.nn.Module
        The layer to modify; it is returned.
    scale : float
        Standard deviation of the draws (:math:`> 0`).
    generator : torch.Generator or int or None
        A CPU generator, an integer seed for a fresh one, or ``None`` for the global generator.

    Returns
    -------
    torch.nn.Module
        ``layer`` itself.
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    scale = _validate.positive_real(scale, "scale")
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        generator = torch.Generator().manual_seed(int(generator))
    elif generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator, an int seed or None, got "
            f"{type(generator).__name__}"
        )
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=generator, dtype=torch.float64))
    return layer


def autograd_log_abs_det(layer, x):
    r"""Per-sample :math:`\log|\det \partial_x f(x)|` from the full autograd Jacobian, the reference
    for eq. (48).

    The Jacobian of ``layer`` at each sample is built with
    :func:`torch.autograd.functional.jacobian` and its log-absolute-determinant taken by
    :func:`torch.linalg.slogdet`. Cost :math:`O(M^3)` per sample for :math:`M` features: use it to
    check a layer's ``log_abs_det_jacobian`` (Section 4.2.3) on small inputs.

    Parameters
    ----------
    layer : callable
        Maps a batch ``(N, *shape)`` to a batch of the same number of features per sample.
    x : torch.Tensor
        Points ``(N, *shape)``, :math:`N \ge 1`.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, the dtype and device of ``x``.
    """
    if not callable(layer):
        raise TypeError(f"layer must be callable, got {type(layer).__name__}")
    check_batch(x, "x")
    if x.shape[0] < 1:
        raise ValueError(f"x must hold at least one sample, got shape {tuple(x.shape)}")
    m = x[0].numel()
    out = []
    for xn in x:
        jac = torch.autograd.functional.jacobian(lambda a: layer(a[None]).reshape(-1), xn)
        if jac.numel() != m * m:
            raise ValueError(
                f"layer must map {m} features per sample to {m} (a square Jacobian), "
                f"got {jac.numel() // m} outputs"
            )
        out.append(torch.linalg.slogdet(jac.reshape(m, m)).logabsdet)
    return torch.stack(out)


def mixed_invertible_network(
    dim=6, n_repeats=3, hidden=16, c=0.7, memory_efficient=False, device=None, dtype=None
):
    r"""An :class:`InvertibleSequential` that repeats one layer of each kind of Section 4.1 (for
    Section 4.2.1).

    Each of the ``n_repeats`` groups is an affine coupling (42) (mask flipped from one group to the
    next), an invertible residual layer (44) with :math:`\mathrm{Lip}(f) \le c`, an invertible
    1x1 convolution, a spline coupling and a Householder orthogonal layer (Section 4.1.3), all with
    random (not identity) initialisation. Used to check that memory-efficient backpropagation
    (Section 4.2.1) gives the gradients of ordinary backpropagation; the weights come from the
    global random generator, so seed it to build two equal networks.

    Parameters
    ----------
    dim : int
        Number of features :math:`M \ge 2`.
    n_repeats : int
        Number of groups of five layers.
    hidden : int
        Width of the coupling and residual sub-networks.
    c : float
        Lipschitz coefficient of the residual layers, :math:`0 < c < 1`.
    memory_efficient : bool
        Passed to :class:`InvertibleSequential`.
    """
    dim = _validate.positive_int(dim, "dim")
    if dim < 2:
        raise ValueError(f"dim must be >= 2 for coupling layers, got {dim}")
    n_repeats = _validate.positive_int(n_repeats, "n_repeats")
    hidden = _validate.positive_int(hidden, "hidden")
    if not isinstance(memory_efficient, bool):
        raise TypeError(f"memory_efficient must be a bool, got {type(memory_efficient).__name__}")
    kw = factory(device, dtype)
    layers = []
    for i in range(n_repeats):
        layers += [
            AffineCoupling(dim, flip=bool(i % 2), hidden=hidden, zero_init=False, **kw),
            InvertibleResidual(dim, c=c, hidden=hidden, **kw),
            Invertible1x1Conv(dim, **kw),
            SplineCoupling(dim, "alternating", hidden=hidden, zero_init=False, **kw),
            HouseholderOrthogonal(dim, **kw),
        ]
    return InvertibleSequential(*layers, memory_efficient=memory_efficient)
