r"""The Fisher--Rao gradient flow of a two-layer network's particle measure (Section 6.4.3).

Section 6.3 writes the two-layer ReLU network (61) as an integral against a measure
:math:`\mu` of neurons :math:`\theta = (a, b, c)`, :math:`\Phi(\mu, x) = \int f(\theta, x)\,
d\mu(\theta)` with :math:`f(\theta, x) = c\max\{a^Tx + b, 0\}`, and training as a gradient flow
of the energy (63) over measures. *Which* gradient flow depends on the metric put on the
measures. With the first variation

.. math::

    V_\mu(\theta) = \frac{\delta E}{\delta \mu}(\theta)
    = \frac1N\sum_{n=1}^N L'\big(\Phi(\mu, x_n), y_n\big)\, f(\theta, x_n) + \lambda\|\theta\|^2,

* the **Wasserstein** flow :math:`\partial_t\mu = \nabla\cdot(\mu\nabla V_\mu)` moves the mass:
  each particle follows :math:`\dot\theta_j = -\nabla V_\mu(\theta_j)` with its weight fixed
  (Theorem 6.1; :func:`~spdl_ref.optim.train_mean_field`);
* the **Fisher--Rao** flow :math:`\partial_t\mu = -\mu\,(V_\mu - \int V_\mu\,d\mu)` keeps every
  particle where it is and moves weight between them: for
  :math:`\mu = \sum_j w_j\delta_{\theta_j}`, :math:`\dot w_j = -w_j\big(V_\mu(\theta_j) -
  \sum_i w_iV_\mu(\theta_i)\big)`, the replicator equation on the probability simplex.

Since :math:`\partial E/\partial w_j = V_\mu(\theta_j)` when the energy is written in the weights,
the Fisher--Rao flow is the natural-gradient flow (60) of :math:`E(w)` for the Fisher information
metric of the categorical distribution :math:`w` (Section 6.2.2). :class:`FisherRaoDescent`
discretises it by the multiplicative (exponentiated-gradient, entropic mirror-descent) step
:math:`w_j \leftarrow w_j e^{-h V_j} / \sum_i w_i e^{-hV_i}`, which keeps the weights positive and
summing to one exactly, as the flow does, and agrees with it to first order in :math:`h`.
:class:`ReweightedReLU` is the network with fixed particles and learnable weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar, overload

import torch
from torch import nn

from .. import _validate
from ._checks import CheckedOptimizer, Loss, begin_step
from .mean_field import MeanFieldReLU

__all__ = ["FisherRaoDescent", "ReweightedReLU"]


class ReweightedReLU(nn.Module):
    r"""The two-layer ReLU network (61) with fixed particles and weights on the simplex
    (Section 6.4.3): :math:`\Phi(w, x) = \sum_{j=1}^J w_j\, c_j\max\{a_j^Tx + b_j, 0\}`.

    Parameters
    ----------
    particles : torch.Tensor
        The particles :math:`\theta_j = (a_j, b_j, c_j)` as the rows of a ``(J, M + 2)`` matrix
        (the layout of :meth:`MeanFieldReLU.particles`), kept as a buffer: they do not train.
    weights : torch.Tensor or None
        The initial weights :math:`w`, shape ``(J,)``, positive and summing to one; uniform
        :math:`1/J` by default, so that the network starts equal to :class:`MeanFieldReLU`
        with the same particles.

    Examples
    --------
    >>> mf = MeanFieldReLU(1, 8, generator=torch.Generator().manual_seed(0))
    >>> net = ReweightedReLU(mf.particles())
    >>> x = torch.linspace(-1, 1, 5)[:, None]
    >>> bool(torch.allclose(net(x), mf(x))), round(net.effective_size(), 6)
    (True, 8.0)
    """

    particles: torch.Tensor

    def __init__(self, particles: torch.Tensor, weights: torch.Tensor | None = None):
        super().__init__()
        _validate.tensor(particles, "particles")
        if particles.dim() != 2 or particles.shape[1] < 3:
            raise ValueError(
                f"particles must be a (J, M + 2) matrix with M >= 1, got {tuple(particles.shape)}"
            )
        J = particles.shape[0]
        if weights is None:
            weights = torch.full((J,), 1.0 / J, dtype=particles.dtype, device=particles.device)
        else:
            _validate.tensor(weights, "weights")
            if weights.shape != (J,):
                raise ValueError(f"weights must have shape ({J},), got {tuple(weights.shape)}")
            if bool((weights <= 0).any()) or abs(float(weights.sum()) - 1) > 1e-6:
                raise ValueError("weights must be positive and sum to one (a probability vector)")
        self.M, self.J = particles.shape[1] - 2, J
        self.register_buffer("particles", particles.detach().clone())
        self.weights = nn.Parameter(weights.detach().clone().to(particles))

    @classmethod
    def from_mean_field(cls, model: MeanFieldReLU) -> ReweightedReLU:
        """The network with the particles of ``model`` and uniform weights (equal to ``model``)."""
        if not isinstance(model, MeanFieldReLU):
            raise TypeError(f"model must be a MeanFieldReLU, got {type(model).__name__}")
        return cls(model.particles())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        r"""The neurons :math:`f(\theta_j, x_n) = c_j\max\{a_j^Tx_n + b_j, 0\}`, shape
        ``(N, J)`` (Section 6.3, eq. (61))."""
        _validate.last_dim(x, self.M, "x")
        a, b, c = self.particles[:, : self.M], self.particles[:, self.M], self.particles[:, -1]
        return torch.relu(x @ a.T + b) * c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\Phi(w, x) = \sum_j w_j f(\theta_j, x)` for ``x`` of shape ``(N, M)``; shape
        ``(N,)``."""
        return self.features(x) @ self.weights

    def effective_size(self) -> float:
        r"""The effective number of particles :math:`1/\sum_j w_j^2`: :math:`J` for uniform
        weights, 1 when all the mass sits on one particle (Section 6.4.3)."""
        with torch.no_grad():
            return float(1.0 / self.weights.pow(2).sum())


class FisherRaoDescent(CheckedOptimizer):
    r"""Exponentiated-gradient descent on the probability simplex: the Fisher--Rao gradient flow
    of Section 6.4.3, a ``torch.optim.Optimizer``.

    For each parameter :math:`w` (a probability vector: positive entries summing to one) with
    gradient :math:`g = \nabla_w E`, one step is

    .. math::

        w \leftarrow \frac{w \odot e^{-h g}}{\sum_i w_i e^{-h g_i}},

    the explicit multiplicative discretisation of the replicator flow
    :math:`\dot w = -w\odot(g - w^Tg)` (see the module text). The update never leaves the
    simplex: positivity is exact and the sum is one to round-off. The largest entry of
    :math:`hg` is subtracted before the exponential, so large steps do not overflow.

    Parameters
    ----------
    params : iterable of tensors or dicts
        The weight vectors :math:`w` (one-dimensional).
    lr : float
        The time step :math:`h > 0`.

    >>> w = torch.full((3,), 1 / 3, requires_grad=True)
    >>> opt = FisherRaoDescent([w], lr=1.0)
    >>> (w @ torch.tensor([0.0, 1.0, 2.0])).backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.detach().tolist()], round(float(w.detach().sum()), 6)
    ([0.6652, 0.2447, 0.09], 1.0)
    """

    hyperparameter_checks: ClassVar[dict] = {"lr": _validate.positive_real}

    def __init__(self, params: Iterable, lr: float):
        super().__init__(params, {"lr": _validate.positive_real(lr, "lr")})

    def check_params(self, params: list[torch.Tensor]) -> None:
        """Refuse a parameter that is not a probability vector (one-dimensional, positive entries
        summing to one)."""
        for w in params:
            w = w.detach()
            if w.dim() != 1:
                raise ValueError(f"each parameter must be a vector, got shape {tuple(w.shape)}")
            if bool((w <= 0).any()) or abs(float(w.sum()) - 1) > 1e-6:
                raise ValueError("each parameter must be a probability vector (w > 0, sum 1)")

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], Loss]) -> Loss: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], Loss] | None = None) -> Loss | None:
        """One multiplicative step on each weight vector; ``closure`` re-evaluates the loss."""
        loss, work = begin_step(self, closure, True)
        for group, params, grads in work:
            for w, g in zip(params, grads, strict=True):
                logits = w.log() - group["lr"] * g
                w.copy_(torch.softmax(logits, dim=0))
        return loss
