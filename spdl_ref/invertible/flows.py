r"""Normalising flows, Section 4.2.3, eqs. (48)-(49).

A flow is an invertible network :math:`\Psi(\cdot, \theta)` mapping data :math:`x` to a latent
:math:`z = \Psi(x)` with a simple density :math:`q` (standard normal). By the change of
variables,

.. math:: \log p(x) = \log q(\Psi(x)) + \log|\det \partial_x \Psi(x)|, \qquad (48)

and training minimises the negative log-likelihood (49) of the data. Samples are
:math:`\Psi^{-1}(z)`, :math:`z \sim q`. This module also builds the two flows of the book's
Figure 2: a coupling flow and a residual flow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.types import Device

from .. import _validate
from ..loop import History, train_loop
from ._base import InvertibleLike, check_batch, factory, reference_tensor
from .coupling import AdditiveCoupling, AffineCoupling
from .linear import ActNorm
from .residual import InvertibleResidual
from .sequential import InvertibleSequential
from .spline import SplineCoupling

__all__ = ["NormalisingFlow", "coupling_flow", "fit_flow", "log_density_grid", "residual_flow"]


class NormalisingFlow(nn.Module):
    r"""A normalising flow :math:`p(x) = q(\Psi(x))\,|\det \partial_x \Psi(x)|`, eq. (48), with
    :math:`q = \mathcal{N}(0, I)`.

    Parameters
    ----------
    transform : InvertibleModule
        The invertible network :math:`\Psi` (e.g. an
        :class:`~spdl_ref.invertible.InvertibleSequential`), mapping ``(N, M)`` to ``(N, M)``.
    dim : int
        :math:`M`.
    """

    def __init__(self, transform: nn.Module, dim: int) -> None:
        super().__init__()
        if not isinstance(transform, nn.Module) or not all(
            hasattr(transform, a) for a in ("inverse", "log_abs_det_jacobian")
        ):
            raise TypeError(
                "transform must be an invertible nn.Module with inverse and "
                f"log_abs_det_jacobian, got {type(transform).__name__}"
            )
        self.transform = transform
        self.dim = _validate.positive_int(dim, "dim")

    def _transform(self) -> InvertibleLike:
        # __init__ checked that the module has inverse and log_abs_det_jacobian (duck-typed)
        return cast(InvertibleLike, self.transform)

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        r""":math:`\log q(z)` of the standard normal, summed over features."""
        check_batch(z, "z", (self.dim,))
        return _standard_normal_log_prob(z)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x) = \log q(\Psi(x)) + \log|\det \partial_x \Psi(x)|`, eq. (48), per
        sample."""
        check_batch(x, "x", (self.dim,), like=reference_tensor(self), owner="NormalisingFlow")
        t = self._transform()
        if hasattr(t, "forward_and_log_det"):
            z, logdet = t.forward_and_log_det(x)
        else:
            z, logdet = t(x), t.log_abs_det_jacobian(x)
        _validate.finite_result(z, "Psi(x), the output of the transform")
        _validate.finite_result(logdet, "log|det dPsi(x)|, the transform's log-determinant")
        return _standard_normal_log_prob(z) + logdet

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        r"""The objective :math:`E(\theta)` of eq. (49): the mean of :math:`-\log p(x_n)`."""
        return -self.log_prob(x).mean()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Draw :math:`x = \Psi^{-1}(z)`, :math:`z \sim q`, shape ``(n, M)`` (Section 4.2.3)."""
        n = _validate.positive_int(n, "n")
        _validate.generator(generator)
        p = reference_tensor(self)
        # drawn in float64 where the generator lives, so a seed gives the same points in any dtype
        where = generator.device if generator is not None else (p.device if p is not None else None)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64, device=where)
        z = z.to(torch.get_default_dtype()) if p is None else z.to(p)
        return self._transform().inverse(z)


def _standard_normal_log_prob(z):
    return -0.5 * (z**2).flatten(1).sum(1) - 0.5 * z[0].numel() * math.log(2 * math.pi)


def coupling_flow(
    dim: int = 2,
    n_layers: int = 8,
    kind: str = "affine",
    hidden: int = 64,
    memory_efficient: bool = False,
    device: Device = None,
    dtype: torch.dtype | None = None,
    **kwargs: Any,
) -> NormalisingFlow:
    r"""A flow of ``n_layers`` coupling layers (42) with alternating masks (Sections 4.1.1, 4.2.3).

    Parameters
    ----------
    dim : int
        :math:`M \ge 2`.
    n_layers : int
        Number of coupling layers; the mask flips from one to the next.
    kind : str
        ``"affine"`` (:class:`AffineCoupling`), ``"additive"`` or ``"spline"``.
    hidden : int
        Width of each sub-network.
    memory_efficient : bool
        Passed to :class:`InvertibleSequential`.
    kwargs :
        Further keyword arguments of the coupling layer (e.g. ``bins`` for splines).
    """
    classes = {"affine": AffineCoupling, "additive": AdditiveCoupling, "spline": SplineCoupling}
    _validate.choice(kind, tuple(classes), "kind")
    dim = _validate.positive_int(dim, "dim")
    if dim < 2:
        raise ValueError(f"dim must be >= 2 for coupling layers (two parts), got {dim}")
    n_layers = _validate.positive_int(n_layers, "n_layers")
    _validate.boolean(memory_efficient, "memory_efficient")
    layers = [
        classes[kind](
            dim,
            mask="alternating",
            flip=bool(i % 2),
            hidden=hidden,
            **factory(device, dtype),
            **kwargs,
        )
        for i in range(n_layers)
    ]
    return NormalisingFlow(InvertibleSequential(*layers, memory_efficient=memory_efficient), dim)


def residual_flow(
    dim: int = 2,
    n_blocks: int = 8,
    c: float = 0.9,
    hidden: int = 64,
    n_layers: int = 3,
    logdet: str = "exact",
    actnorm: bool = True,
    memory_efficient: bool = False,
    beta: float = 3.0,
    learn_beta: bool = True,
    device: Device = None,
    dtype: torch.dtype | None = None,
    **kwargs: Any,
) -> NormalisingFlow:
    r"""A flow of ``n_blocks`` invertible residual layers (44) with :math:`\mathrm{Lip}(f) \le c`
    (Sections 4.1.2, 4.2.3).

    The activations are :class:`LipSwish` with a trainable slope :math:`\beta` (initially
    ``beta``), as in Residual Flows: with :math:`\beta` fixed at 1 the spectrally normalised
    branches stay nearly affine and the flow does not get past a Gaussian fit of two moons.

    With ``actnorm`` each block is preceded by an :class:`ActNorm` (as in Residual Flows), since a
    Lipschitz-bounded block alone can rescale the data only a little. ``logdet`` picks how each
    block's :math:`\log|\det(I + J_f)|` is computed: ``"exact"`` (affordable in two dimensions),
    ``"series"`` or ``"roulette"``.
    """
    n_blocks = _validate.positive_int(n_blocks, "n_blocks")
    dim = _validate.positive_int(dim, "dim")
    _validate.boolean(actnorm, "actnorm")
    _validate.boolean(memory_efficient, "memory_efficient")
    layers: list[nn.Module] = []
    for _ in range(n_blocks):
        if actnorm:
            layers.append(ActNorm(dim, **factory(device, dtype)))
        layers.append(
            InvertibleResidual(
                dim,
                c=c,
                hidden=hidden,
                n_layers=n_layers,
                logdet=logdet,
                beta=beta,
                learn_beta=learn_beta,
                **factory(device, dtype),
                **kwargs,
            )
        )
    return NormalisingFlow(InvertibleSequential(*layers, memory_efficient=memory_efficient), dim)


def fit_flow(
    flow: NormalisingFlow,
    x: torch.Tensor,
    iterations: int = 1000,
    batch_size: int = 256,
    lr: float = 1e-3,
    generator: torch.Generator | None = None,
    callback: Callable[[int, NormalisingFlow], Any] | None = None,
    monitor: Callable[[NormalisingFlow], Any] | None = None,
    monitor_every: int = 1,
) -> History:
    r"""Minimise the negative log-likelihood (49) of ``x`` with Adam on minibatches.

    A driver of :func:`spdl_ref.train.train_loop`. The step size follows a cosine schedule from
    ``lr`` to 0. Minibatches are drawn with ``generator`` (on its device; put it on the data's
    device to keep the loop on one device). ``callback(i, flow)``, if given, runs after step
    ``i``. ``monitor(flow)``, if given, is recorded after every step ``i`` with
    ``i % monitor_every == 0`` (e.g.
    :func:`~spdl_ref.invertible.largest_lipschitz_bound`, to watch the constraint (47) during
    training). The flow is in training mode while it trains and in evaluation mode afterwards.

    Returns
    -------
    spdl_ref.train.History
        ``loss`` (and ``data_fit``): the minibatch objective (49) per iteration; ``seconds``;
        ``series["monitor"]``: the recorded values of ``monitor`` (only when it is given).

    Examples
    --------
    >>> import torch
    >>> from spdl_ref import data
    >>> from spdl_ref.invertible import coupling_flow, fit_flow
    >>> _ = torch.manual_seed(0)
    >>> x, _ = data.two_moons(256, seed=0)
    >>> flow = coupling_flow(2, n_layers=2, hidden=8)
    >>> history = fit_flow(flow, x, iterations=20, batch_size=64, lr=1e-2)
    >>> history.loss[-1] < history.loss[0]
    True
    """
    if not isinstance(flow, NormalisingFlow):
        raise TypeError(f"flow must be a NormalisingFlow, got {type(flow).__name__}")
    check_batch(x, "x", (flow.dim,))
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample, got shape {tuple(x.shape)}")
    iterations = _validate.positive_int(iterations, "iterations")
    batch_size = min(_validate.positive_int(batch_size, "batch_size"), x.shape[0])
    lr = _validate.positive_real(lr, "lr")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    if monitor is not None and not callable(monitor):
        raise TypeError(f"monitor must be callable, got {type(monitor).__name__}")
    monitor_every = _validate.positive_int(monitor_every, "monitor_every")
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations)

    def after_step(i, history):
        sched.step()
        if callback is not None:
            callback(i, flow)
        if monitor is not None and i % monitor_every == 0:
            history.record(monitor=monitor(flow))

    flow.train()
    try:
        history = train_loop(
            flow,
            lambda batch: flow.nll(batch["x"]),
            iterations=iterations,
            optimizer=opt,
            batches=lambda _: {"x": x[_minibatch(x.shape[0], batch_size, generator, x.device)]},
            callbacks=[after_step],
        )
    finally:
        flow.eval()
    return history


def _minibatch(n, size, generator, device):
    # indices drawn where the generator lives (the data's device when there is none)
    where = generator.device if generator is not None else device
    idx = torch.randperm(n, generator=generator, device=where)[:size]
    return idx if idx.device == device else idx.to(device)


@torch.no_grad()
def log_density_grid(
    flow: NormalisingFlow,
    xlim: Sequence[float] = (-1.5, 2.5),
    ylim: Sequence[float] = (-1.0, 1.5),
    n: int = 100,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The learnt :math:`\log p` of eq. (48) on an ``n`` x ``n`` grid (for Figure 2).

    Returns ``(X, Y, logp)``, each of shape ``(n, n)``.
    """
    _validate.module(flow, "flow", NormalisingFlow)
    if flow.dim != 2:
        raise ValueError(f"flow must be a 2-D flow for log_density_grid, got dim={flow.dim}")
    xlim, ylim = _interval(xlim, "xlim"), _interval(ylim, "ylim")
    n = _validate.positive_int(n, "n")
    if n < 2:
        raise ValueError(f"n must be >= 2 grid points per axis, got {n}")
    p = reference_tensor(flow)
    dtype = torch.get_default_dtype() if p is None else p.dtype
    device = None if p is None else p.device
    xs = torch.linspace(*xlim, n, dtype=dtype, device=device)
    ys = torch.linspace(*ylim, n, dtype=dtype, device=device)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    with torch.enable_grad():
        logp = flow.log_prob(pts).detach()
    return gx, gy, logp.reshape(n, n)


def _interval(lim: Any, name: str) -> tuple[float, float]:
    if not isinstance(lim, (tuple, list)) or len(lim) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {lim!r}")
    lo, hi = (_validate.real(v, name) for v in lim)
    if not lo < hi:
        raise ValueError(f"{name} must satisfy low < high, got {tuple(lim)}")
    return lo, hi
