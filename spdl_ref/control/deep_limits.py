r"""Deep limits: the :math:`H^1`-regularised problems (40) for a growing depth (Section 3.3).

For each depth :math:`K` the ResNet (6) on :math:`[0, T]` is trained on

.. math::

    E^{(K)}(\theta) = \frac1N \sum_n L_n(\Psi(x_n, \theta))
    + \lambda \Big( \|\theta^0\|^2 + \frac1h \sum_{k=0}^{K-2} \|\theta^{k+1} - \theta^k\|^2 \Big),

(40), and the minimisers are compared as piecewise-constant functions of :math:`t` in
:math:`L^2(0, T)`. Theorem 3.3 says the minimal values converge to that of the continuous
problem (41) and the minimisers accumulate at its minimisers. To follow one branch of
minimisers of this non-convex problem, each depth starts from the previous solution refined
(:func:`prolong`), which represents the same function of :math:`t` (Theorem 3.3).

What each function needs: :func:`deep_limit_objective` any
:class:`spdl_ref.ode.LayeredNetwork` with fixed steps (it uses :func:`h1_discrete`);
:func:`prolong` and :func:`deep_limit_sequence` a :class:`spdl_ref.ode.ResNet` with fixed steps,
since they build the deeper ResNet that carries the same :math:`\theta(t)`. Anything else gets a
:class:`TypeError`. The distances are :func:`spdl_ref.control.l2_distance`, and the continuous
problem (41) is in :mod:`spdl_ref.control.continuous_problem`. (The sum in (40) runs to
:math:`k = K - 2`; see :func:`h1_discrete` and the book's errata, E3.2.)
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .. import _validate
from ..loop import train_loop
from ..ode.layered import check_layered, network_states
from ..ode.resnet import ResNet
from .adjoint import check_batch
from .continuous_problem import l2_distance
from .regularisers import h1_discrete

__all__ = ["deep_limit_objective", "deep_limit_sequence", "minimise", "prolong"]


def _check_resnet(model, name="model"):
    if not isinstance(model, ResNet) or model.step_parameter is not None:
        raise TypeError(
            f"{name} must be a spdl_ref.ode.ResNet with fixed steps (a finer ResNet is built "
            f"from it), got {type(model).__name__}"
        )
    return model


def deep_limit_objective(model: Any, x: torch.Tensor, loss: Callable, lam: float) -> torch.Tensor:
    r"""The objective :math:`E^{(K)} = \ell(\Psi(x, \theta)) + \lambda \|\theta\|_{H^1}^2` of (40).

    ``loss(z_K)`` is the mean data fit, :math:`\lambda` = ``lam`` :math:`> 0`, the norm
    :func:`h1_discrete`; ``model`` is a :class:`~spdl_ref.ode.LayeredNetwork` with fixed steps.
    """
    lam = _validate.positive_real(lam, "lam")
    model = check_layered(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    return loss(model.project(network_states(model, x)[-1])) + lam * h1_discrete(model)


def prolong(model: ResNet, factor: int = 2) -> ResNet:
    r"""The same piecewise-constant :math:`\theta(t)` on a grid ``factor`` times finer (§3.3).

    Returns a new :class:`spdl_ref.ode.ResNet` of depth ``factor * K`` whose layer
    :math:`j` carries :math:`\theta^{\lfloor j / \text{factor} \rfloor}`.
    """
    model = _check_resnet(model)
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


def minimise(
    model: nn.Module | dict[str, torch.Tensor],
    objective: Callable[[], torch.Tensor],
    *,
    max_iter: int = 500,
    tol: float = 1e-10,
) -> float:
    r"""Minimise ``objective()`` over the model's parameters by full-batch L-BFGS (Section 3.3).

    A strong Wolfe line search; used for the deep-limit problems (40) and (41) of Theorem 3.3,
    where minimisers (not just low loss) are compared. ``model`` is a module (its parameters
    that require gradients) or a dict ``{name: leaf tensor}`` (e.g. the node values of a
    :class:`~spdl_ref.control.PiecewiseLinearControl`). Returns the final objective value.

    It is one iteration of :func:`spdl_ref.loop.train_loop` whose step is L-BFGS with the loop's
    guarded evaluation as its closure: an objective or gradient that is not finite at any trial
    point stops it with :class:`spdl_ref.loop.NonFiniteError`, the parameters as they were.

    Examples
    --------
    >>> w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    >>> value = minimise({"w": w}, lambda: (w - 1).pow(2).sum() + (w - 1).pow(4).sum())
    >>> round(value, 12), [round(v, 6) for v in w.tolist()]
    (0.0, [1.0, 1.0])
    """
    max_iter = _validate.positive_int(max_iter, "max_iter")
    tol = _validate.positive_real(tol, "tol")
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    if isinstance(model, dict):
        tensors = list(model.values())
    elif isinstance(model, torch.nn.Module):
        tensors = [p for p in model.parameters() if p.requires_grad]
    else:
        raise TypeError(
            f"model must be a torch.nn.Module or a dict of tensors, got {type(model).__name__}"
        )
    opt = torch.optim.LBFGS(
        tensors,
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=tol * 1e-2,
        history_size=50,
        line_search_fn="strong_wolfe",
    )
    train_loop(
        model,
        lambda _: objective(),
        iterations=1,
        optimizer=opt,
        step=opt.step,
        description="L-BFGS (Section 3.3)",
    )
    with torch.no_grad():
        return float(objective())


def deep_limit_sequence(
    model: ResNet,
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
    model = _check_resnet(model)
    x = check_batch(model, x)
    lam = _validate.positive_real(lam, "lam")
    depths = [_validate.positive_int(K, "depths") for K in depths]
    if not depths or depths[0] != model.depth:
        raise ValueError(f"depths must start with the model's depth {model.depth}, got {depths}")
    for K0, K1 in itertools.pairwise(depths):
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
                current,
                functools.partial(deep_limit_objective, current, x, loss, lam),
                max_iter=max_iter,
            )
        )
        models.append(current)
    distances = [l2_distance(a, b) for a, b in itertools.pairwise(models)]
    return {"depths": depths, "values": values, "models": models, "distances": distances}
