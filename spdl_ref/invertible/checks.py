r"""Helpers that check invertible layers against their definitions (Sections 4.1, 4.2.1, 4.2.3).

* :func:`randomise_parameters` moves a layer away from its identity-like initialisation, so that
  a round trip :math:`f^{-1}(f(x)) = x` (Section 4.1) or a log-determinant is a real test;
* :func:`autograd_log_abs_det` is the brute-force reference for the log-determinant term of the
  change of variables (48): the full Jacobian by autograd and its ``slogdet``;
* :func:`finite_difference_log_abs_det` is a reference that shares no code with autograd: the
  Jacobian by central differences of the layer's forward map in float64 (for layers whose own
  log-determinant is computed by autograd, such as the residual layer (44));
* :func:`example_layers` builds one of each layer of Section 4.1, with random parameters, for
  the round-trip and log-determinant table of Chapter 4;
* :func:`mixed_invertible_network` stacks every kind of layer of Section 4.1 into one network,
  for comparing memory-efficient and ordinary backpropagation (Section 4.2.1).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import nn
from torch.types import Device

from .. import _validate
from ._base import check_batch, factory
from .coupling import AdditiveCoupling, AffineCoupling
from .downsampling import OrthogonalDownsampling, PixelShuffleDown
from .linear import Invertible1x1Conv
from .orthogonal import (
    CayleyOrthogonal,
    ExpSkewOrthogonal,
    GivensOrthogonal,
    HouseholderOrthogonal,
)
from .residual import InvertibleResidual
from .sequential import InvertibleSequential
from .spline import SplineCoupling

_M = TypeVar("_M", bound=nn.Module)

__all__ = [
    "autograd_log_abs_det",
    "example_layers",
    "finite_difference_log_abs_det",
    "mixed_invertible_network",
    "randomise_parameters",
]


def randomise_parameters(
    layer: _M, scale: float = 0.2, generator: torch.Generator | int | None = None
) -> _M:
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
            draw = torch.randn(p.shape, generator=generator, dtype=torch.float64, device="cpu")
            p.copy_(scale * draw)
    return layer


def autograd_log_abs_det(
    layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
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


def example_layers(
    dim: int = 6,
    image: Sequence[int] = (2, 4, 4),
    seed: int = 1,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    r"""One layer of each kind of Section 4.1, with random parameters, in ``eval`` mode.

    Returns ``{name: (layer, shape)}``, ``shape`` the feature shape the layer takes: ``(dim,)``
    for the vector layers (additive, affine and spline couplings (42), the residual layer (44)
    with :math:`c = 0.9`, the invertible 1x1 convolution and the four orthogonal
    parametrisations of Section 4.1.3) and ``image`` for the image layers (couplings with
    checkerboard and channel masks, the convolutional residual layer, pixel shuffle and
    orthogonal downsampling). Parameters are drawn by :func:`randomise_parameters` from a
    generator seeded with ``seed``, so the same ``seed`` gives the same layers in any dtype; the
    residual layers keep their spectral normalisation (47) and the orthogonal layers their
    random initialisation (global generator: seed it for reproducibility).

    Examples
    --------
    >>> layers = example_layers(dtype=torch.float64)
    >>> layer, shape = layers["AffineCoupling"]
    >>> x = torch.randn(3, *shape, dtype=torch.float64)
    >>> bool((layer.inverse(layer(x)) - x).abs().max() < 1e-12)
    True
    """
    dim = _validate.positive_int(dim, "dim")
    if dim < 2:
        raise ValueError(f"dim must be >= 2 for coupling layers, got {dim}")
    if not isinstance(image, (tuple, list)) or len(image) != 3:
        raise ValueError(f"image must be a shape (C, H, W), got {image!r}")
    c, h, w = (_validate.positive_int(s, "image") for s in image)
    if c % 2 or h % 2 or w % 2:
        raise ValueError(f"image must have even C, H and W (masks, 2x2 downsampling), got {image}")
    seed = _validate.nonnegative_int(seed, "seed")
    kw = factory(device, dtype)

    def rand(layer):
        return randomise_parameters(layer, generator=seed)

    vec, img = (dim,), (c, h, w)
    layers: dict[str, tuple[nn.Module, tuple[int, ...]]] = {
        "AdditiveCoupling": (rand(AdditiveCoupling(dim, **kw)), vec),
        "AffineCoupling": (rand(AffineCoupling(dim, "alternating", **kw)), vec),
        "SplineCoupling": (rand(SplineCoupling(dim, "alternating", bins=6, **kw)), vec),
        "InvertibleResidual": (InvertibleResidual(dim, c=0.9, **kw), vec),
        "Invertible1x1Conv": (rand(Invertible1x1Conv(dim, **kw)), vec),
        "HouseholderOrthogonal": (HouseholderOrthogonal(dim, **kw), vec),
        "ExpSkewOrthogonal": (ExpSkewOrthogonal(dim, **kw), vec),
        "CayleyOrthogonal": (CayleyOrthogonal(dim, **kw), vec),
        "GivensOrthogonal": (GivensOrthogonal(dim, **kw), vec),
        "AffineCoupling (checkerboard)": (
            rand(AffineCoupling(img, "checkerboard", hidden=8, **kw)),
            img,
        ),
        "AdditiveCoupling (channels)": (
            rand(AdditiveCoupling(img, "channels", hidden=8, **kw)),
            img,
        ),
        "InvertibleResidual (conv)": (InvertibleResidual(img, c=0.9, hidden=4, **kw), img),
        "PixelShuffleDown": (PixelShuffleDown(c), img),
        "OrthogonalDownsampling": (OrthogonalDownsampling(c, **kw), img),
    }
    for layer, _ in layers.values():
        layer.eval()
    return layers


def finite_difference_log_abs_det(
    layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    r"""Per-sample :math:`\log|\det \partial_x f(x)|` from a central-difference Jacobian, a
    reference for eq. (48) independent of autograd.

    Column :math:`j` of the Jacobian at each sample is
    :math:`(f(x + \varepsilon e_j) - f(x - \varepsilon e_j)) / (2\varepsilon)`, from evaluations
    of ``layer`` alone (no derivative of it is taken), and the log-absolute-determinant is that of
    :func:`torch.linalg.slogdet`. The truncation error is :math:`O(\varepsilon^2)` and the
    round-off :math:`O(\epsilon_{64}/\varepsilon)` per entry, so only float64 is accepted; with
    the default :math:`\varepsilon = 10^{-5}` a smooth layer's value is good to about
    :math:`10^{-9}`. Use it to check a log-determinant that is itself computed by autograd (the
    residual layer (44), :func:`logdet_exact`), where a comparison with
    :func:`autograd_log_abs_det` would compare a computation with itself.

    Parameters
    ----------
    layer : callable
        Maps a batch ``(N, *shape)`` to a batch of the same shape, sample by sample (put a
        layer with random or data-dependent behaviour in ``eval`` mode first).
    x : torch.Tensor
        Points ``(N, *shape)`` in float64, :math:`N \ge 1`.
    eps : float
        The difference step :math:`\varepsilon > 0`.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, float64, on the device of ``x``.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    >>> x = torch.zeros(1, 2, dtype=torch.float64)
    >>> finite_difference_log_abs_det(lambda v: torch.sin(v) @ A.T, x)  # log 6
    tensor([1.7918], dtype=torch.float64)
    """
    if not callable(layer):
        raise TypeError(f"layer must be callable, got {type(layer).__name__}")
    check_batch(x, "x")
    if x.dtype != torch.float64:
        raise ValueError(
            f"x must be float64 for finite differences (round-off would swamp the step in "
            f"{x.dtype}), got {x.dtype}"
        )
    if x.shape[0] < 1:
        raise ValueError(f"x must hold at least one sample, got shape {tuple(x.shape)}")
    eps = _validate.positive_real(eps, "eps")
    shape = x.shape[1:]
    m = x[0].numel()
    eye = torch.eye(m, dtype=x.dtype, device=x.device).reshape(m, *shape)
    out = []
    with torch.no_grad():
        for xn in x:
            plus = layer(xn.unsqueeze(0) + eps * eye)
            minus = layer(xn.unsqueeze(0) - eps * eye)
            if not isinstance(plus, torch.Tensor) or plus.shape[0] != m or plus[0].numel() != m:
                got = tuple(plus.shape) if isinstance(plus, torch.Tensor) else type(plus).__name__
                raise ValueError(
                    f"layer must map each sample of {m} features to {m} features, got {got} "
                    f"from a batch of shape {(m, *shape)}"
                )
            jac = ((plus - minus) / (2 * eps)).reshape(m, m).T  # column j: d f / d x_j
            out.append(torch.linalg.slogdet(jac).logabsdet)
    return _validate.finite_result(torch.stack(out), "the finite-difference log-determinant")


def mixed_invertible_network(
    dim: int = 6,
    n_repeats: int = 3,
    hidden: int = 16,
    c: float = 0.7,
    memory_efficient: bool = False,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> InvertibleSequential:
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
