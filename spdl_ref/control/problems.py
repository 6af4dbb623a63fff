r"""The reduced (23) and full-space (24) training problems, and SGD (25) with adjoint gradients (Section 3).

The reduced problem eliminates the states: :math:`E(\theta)` depends on the parameters only,
through the network :math:`\Psi(x_n, \theta)`. The full-space problem keeps the states
:math:`z_n^k` as unknowns of their own and imposes the network (here the ResNet (6), the
discretised (24b)) as an equality constraint. At states that satisfy the constraint both
objectives agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .. import _validate
from ..train import History
from ._layer import check_batch, check_model, field
from .adjoint import discrete_adjoint

__all__ = ["full_space_objective", "reduced_objective", "sgd"]


def _reg(model, regulariser):
    if regulariser is None:
        return 0.0
    if not callable(regulariser):
        raise TypeError(f"regulariser must be callable or None, got {type(regulariser).__name__}")
    return regulariser(model)


def reduced_objective(model, x: torch.Tensor, loss: Callable, regulariser: Callable | None = None):
    r"""The reduced objective (23), :math:`E(\theta) = \ell(\Psi(x, \theta)) + R(\theta)`.

    ``loss(z_K)`` is the mean data fit :math:`\frac1N \sum_n L_n(z_n^K)`, ``regulariser(model)``
    is :math:`R(\theta)` (or ``None``). Differentiable in the model's parameters.
    """
    model = check_model(model)
    x = check_batch(model, x)
    return loss(model(x)) + _reg(model, regulariser)


def full_space_objective(
    model, z: torch.Tensor, x: torch.Tensor, loss: Callable, regulariser: Callable | None = None
):
    r"""The full-space objective (24a) and the residual of its constraint (24b), discretised by (6).

    Parameters
    ----------
    model : spdl_ref.ode.ResNet
        Supplies :math:`\theta` and :math:`h`.
    z : torch.Tensor
        The states as free variables, shape ``(K + 1, N, M)``.
    x : torch.Tensor
        The inputs, shape ``(N, M)``; the constraint includes :math:`z^0 = x`.

    Returns
    -------
    (E, residual)
        ``E`` :math:`= \ell(z^K) + R(\theta)`, and ``residual`` of shape ``(K + 1, N, M)``:
        ``residual[0]`` :math:`= z^0 - x` and ``residual[k + 1]``
        :math:`= z^{k+1} - z^k - h f(z^k, \theta^k)`. Both vanish together with the reduced
        objective's difference exactly when ``z`` is the network's trajectory.
    """
    model = check_model(model)
    x = check_batch(model, x)
    _validate.tensor(z, "z")
    if z.shape != (model.depth + 1, *x.shape):
        raise ValueError(f"z must have shape {(model.depth + 1, *x.shape)}, got {tuple(z.shape)}")
    res = [z[0] - x]
    for k in range(model.depth):
        res.append(
            z[k + 1] - z[k] - model.h * field(model.A[k], model.b[k], model.activation, z[k])
        )
    return loss(z[-1]) + _reg(model, regulariser), torch.stack(res)


def sgd(
    model,
    x: torch.Tensor,
    loss: Callable,
    *,
    tau: float = 0.1,
    iterations: int = 100,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
) -> History:
    r"""Stochastic gradient descent (25) on the reduced problem, with gradients from the discrete adjoint (28).

    Each iteration draws a minibatch :math:`\mathcal S^j`, computes
    :math:`\frac{1}{|\mathcal S^j|} \sum_{n \in \mathcal S^j} (L_n \circ \Psi(x_n, \cdot))'(\theta^j)`
    with :func:`spdl_ref.control.discrete_adjoint` and steps :math:`\theta^{j+1} = \theta^j - \tau g`.
    ``loss(z_K, idx)`` is the mean data fit of samples ``idx`` given their features. Returns a
    :class:`spdl_ref.train.History` of the minibatch loss before each step.
    """
    model = check_model(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    tau = _validate.positive_real(tau, "tau")
    iterations = _validate.positive_int(iterations, "iterations")
    N = x.shape[0]
    if batch_size is not None:
        batch_size = _validate.positive_int(batch_size, "batch_size")
        if batch_size > N:
            raise ValueError(f"batch_size must be <= the number of samples {N}, got {batch_size}")
    history, start = History(), time.perf_counter()
    for _ in range(iterations):
        idx = (
            torch.arange(N)
            if batch_size is None
            else torch.randperm(N, generator=generator)[:batch_size]
        )
        idx = idx.to(x.device)
        with torch.enable_grad():
            zK = model(x[idx]).detach().requires_grad_(True)
            value = loss(zK, idx)
            (g,) = torch.autograd.grad(value, zK)
        if not bool(torch.isfinite(value)):
            raise FloatingPointError(
                f"the loss became non-finite after {len(history.loss)} iterations; lower tau"
            )
        grads = discrete_adjoint(model, x[idx], g)
        with torch.no_grad():
            model.A -= tau * grads["A"]
            model.b -= tau * grads["b"]
        history.loss.append(float(value.detach()))
        history.data_fit.append(float(value.detach()))
        history.seconds.append(time.perf_counter() - start)
    return history
