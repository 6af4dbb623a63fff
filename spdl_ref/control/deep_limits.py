r"""Deep limits: the :math:`H^1`-regularised training problems (40) for a growing depth (Section 3.3, Theorem 3.3).

For each depth :math:`K` the ResNet (6) on :math:`[0, T]` is trained on

.. math::

    E^{(K)}(\theta) = \frac1N \sum_n L_n(\Psi(x_n, \theta))
    + \lambda \Big( \|\theta^0\|^2 + \frac1h \sum_k \|\theta^{k+1} - \theta^k\|^2 \Big),

(40), and the minimisers are compared as piecewise-constant functions of :math:`t` in
:math:`L^2(0, T)`. Theorem 3.3 says the minimal values converge to that of the continuous
problem (41) and the minimisers accumulate at its minimisers. To follow one branch of
minimisers of this non-convex problem, each depth starts from the previous solution refined
(:func:`prolong`), which represents the same function of :math:`t`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .. import _validate
from ..ode import ResNet
from ._layer import check_batch, check_model
from .regularisers import h1_discrete

__all__ = ["deep_limit_objective", "deep_limit_sequence", "l2_distance", "minimise", "prolong"]


def deep_limit_objective(model, x: torch.Tensor, loss: Callable, lam: float) -> torch.Tensor:
    r"""The objective :math:`E^{(K)}` of (40): ``loss(model(x)) + lam * h1_discrete(model)``, :math:`\lambda > 0`."""
    lam = _validate.positive_real(lam, "lam")
    model = check_model(model)
    x = check_batch(model, x)
    return loss(model(x)) + lam * h1_discrete(model)


def prolong(model, factor: int = 2) -> ResNet:
    r"""The same piecewise-constant :math:`\theta(t)` on a grid ``factor`` times finer (Section 3.3).

    Returns a new :class:`spdl_ref.ode.ResNet` of depth ``factor * K`` whose layer
    :math:`j` carries :math:`\theta^{\lfloor j / \text{factor} \rfloor}`.
    """
    model = check_model(model)
    factor = _validate.positive_int(factor, "factor")
    new = ResNet(
        model.dim,
        model.depth * factor,
        T=model.T,
        activation=model.activation,
        init_std=0.0,
        device=model.A.device,
        dtype=model.A.dtype,
    )
    with torch.no_grad():
        new.A.copy_(model.A.repeat_interleave(factor, 0))
        new.b.copy_(model.b.repeat_interleave(factor, 0))
    return new


def l2_distance(model_a, model_b) -> float:
    r""":math:`\|\theta_a - \theta_b\|_{L^2(0, T)}` of two ResNets' parameters as piecewise-constant functions (Section 3.3).

    The depths must divide one another and the final times agree; both are refined to the finer
    grid and :math:`\big(h \sum_k \|\theta_a^k - \theta_b^k\|^2\big)^{1/2}` is returned.
    """
    a, b = check_model(model_a), check_model(model_b)
    if a.dim != b.dim or abs(a.T - b.T) > 1e-12 * a.T:
        raise ValueError("model_a and model_b must have the same dim and T")
    if a.depth > b.depth:
        a, b = b, a
    if b.depth % a.depth:
        raise ValueError(f"the depths must divide one another, got {a.depth} and {b.depth}")
    a = prolong(a, b.depth // a.depth)
    with torch.no_grad():
        d = (a.A - b.A).pow(2).sum() + (a.b - b.b).pow(2).sum()
        return float((b.h * d).sqrt())


def minimise(
    model, objective: Callable[[], torch.Tensor], *, max_iter: int = 500, tol: float = 1e-10
) -> float:
    r"""Minimise ``objective()`` over the model's parameters with full-batch L-BFGS (strong Wolfe line search).

    Used for the deep-limit problems (40) of Theorem 3.3, where minimisers (not just low loss)
    are compared. Returns the final objective value.
    """
    max_iter = _validate.positive_int(max_iter, "max_iter")
    tol = _validate.positive_real(tol, "tol")
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=tol * 1e-2,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad(set_to_none=True)
        value = objective()
        value.backward()
        return value

    opt.step(closure)
    with torch.no_grad():
        return float(objective())


def deep_limit_sequence(
    model,
    x: torch.Tensor,
    loss: Callable,
    lam: float,
    depths: Sequence[int],
    *,
    max_iter: int = 500,
) -> dict:
    r"""Minimise (40) for each depth in ``depths`` (each a multiple of the previous), Theorem 3.3.

    ``model`` gives the first depth's starting point (and :math:`M`, :math:`T`, :math:`\sigma`);
    each later depth starts from :func:`prolong` of the previous minimiser. Returns
    ``{"depths", "values": minimal values, "models": minimisers, "distances":
    \|\theta^{(K)} - \theta^{(K')}\|_{L^2} of consecutive depths}``.
    """
    model = check_model(model)
    x = check_batch(model, x)
    lam = _validate.positive_real(lam, "lam")
    depths = [_validate.positive_int(K, "depths") for K in depths]
    if not depths or depths[0] != model.depth:
        raise ValueError(f"depths must start with the model's depth {model.depth}, got {depths}")
    for K0, K1 in zip(depths, depths[1:]):
        if K1 <= K0 or K1 % K0:
            raise ValueError(
                f"each depth must be a larger multiple of the previous one, got {K0} then {K1}"
            )
    values, models = [], []
    current = model
    for i, K in enumerate(depths):
        if i:
            current = prolong(current, K // depths[i - 1])
        values.append(
            minimise(
                current, lambda m=current: deep_limit_objective(m, x, loss, lam), max_iter=max_iter
            )
        )
        models.append(current)
    distances = [l2_distance(a, b) for a, b in zip(models, models[1:])]
    return {"depths": depths, "values": values, "models": models, "distances": distances}
