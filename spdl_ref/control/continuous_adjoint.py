r"""The continuous adjoint of a neural ODE: optimise-then-discretise (Theorem 3.1, eqs. (26)-(27)).

The ResNet's parameters define a piecewise-constant control :math:`\theta(t) = (A^k, b^k)` for
:math:`t \in [t^k, t^{k+1})`, :math:`t^k = k T / K`, and with it the ODE (24b),
:math:`\dot z = \sigma(A(t) z + b(t))`. Theorem 3.1 gives the derivative of
:math:`\ell(z(T))` through the adjoint equation (26),
:math:`\dot p = -\partial_z f(z, \theta)^T p`, :math:`p(T) = \ell'(z(T))`, and the integral
(27): the gradient with respect to :math:`\theta^k` is
:math:`\int_{t^k}^{t^{k+1}} \partial_\theta f(z(t), \theta^k)^T p(t)\,dt`.

:func:`continuous_adjoint` discretises these continuous formulas (optimise, then discretise):
it solves (24b) forwards keeping only :math:`z(T)`, then solves backwards in time, with the
same Runge–Kutta method, the augmented system of :math:`z` (recomputed), :math:`p` and the
running integral (27). No trajectory is stored, so memory does not grow with the number of
steps. The result is the gradient of the *continuous* problem up to the method's error; it is
not the exact gradient of the discretised network (compare :func:`spdl_ref.control.discrete_adjoint`).
"""

from __future__ import annotations

import torch

from .. import _validate
from ..ode import butcher_tableau, rk_step
from ._layer import check_batch, check_model, field, field_vjps

__all__ = ["continuous_adjoint", "ode_flow"]


def _grid(model, steps_per_layer):
    steps_per_layer = _validate.positive_int(steps_per_layer, "steps_per_layer")
    return steps_per_layer, model.T / model.depth / steps_per_layer


def _method(method):
    if isinstance(method, str):
        return butcher_tableau(method)
    if not (isinstance(method, tuple) and len(method) == 3):
        raise TypeError(
            "method must be a name for spdl_ref.ode.butcher_tableau or a tableau (A, b, c)"
        )
    return method


def ode_flow(
    model, x: torch.Tensor, method="rk4", steps_per_layer: int = 1, **rk_kwargs
) -> torch.Tensor:
    r"""The time-:math:`T` state :math:`z(T)` of the ODE (24b) with the ResNet's piecewise-constant control.

    Each layer interval :math:`[t^k, t^{k+1}]` is split into ``steps_per_layer`` steps of the
    Runge–Kutta ``method`` (a name or a tableau, see :func:`spdl_ref.ode.rk_step`); with
    ``"explicit_euler"`` and one step per layer this is the ResNet (6) itself. Differentiable
    by autograd (discretise-then-optimise); ``x`` has shape ``(N, M)``.
    """
    model = check_model(model)
    x = check_batch(model, x)
    tableau = _method(method)
    n, h = _grid(model, steps_per_layer)
    z = x
    for k in range(model.depth):
        A, b = model.A[k], model.b[k]
        for _ in range(n):
            z = rk_step(
                lambda t, v: field(A, b, model.activation, v), 0.0, z, h, tableau, **rk_kwargs
            )
    return z


def continuous_adjoint(
    model,
    x: torch.Tensor,
    loss,
    *,
    method="rk4",
    steps_per_layer: int = 1,
    adjoint: str = "rk",
    **rk_kwargs,
):
    r"""Gradient of :math:`\ell(z(T))` by the continuous adjoint, Theorem 3.1 (eqs. (24b), (26), (27)).

    Parameters
    ----------
    model : spdl_ref.ode.ResNet
        Supplies the control :math:`\theta(t) = (A^k, b^k)` on :math:`[t^k, t^{k+1})`, the
        activation :math:`\sigma` and :math:`T`.
    x : torch.Tensor
        Initial states :math:`x_n`, shape ``(N, M)``.
    loss : callable
        ``loss(z_T)`` returning the scalar :math:`\ell(z(T))` (e.g. a mean over samples); only
        its derivative :math:`p(T) = \ell'(z(T))` is taken by autograd.
    method : str or tuple
        Runge–Kutta method for the forward solve and for the backward augmented solve (a name
        for :func:`spdl_ref.ode.butcher_tableau` or a tableau ``(A, b, c)``).
    steps_per_layer : int
        Steps of the method per layer interval, step size :math:`h = T / (K \cdot \text{steps})`.
    adjoint : {"rk", "rectangle"}
        How (26)-(27) are discretised. ``"rk"``: the augmented system of :math:`z`,
        :math:`p` and the integral (27) is solved backwards with ``method``, recomputing
        :math:`z`, so no trajectory is stored (Chen et al.'s neural-ODE adjoint).
        ``"rectangle"``: the forward states :math:`z_i` at the step nodes are stored and
        (26)-(27) are discretised with functions constant on each step, :math:`z` taken at the
        left node and :math:`p` at the right one, eqs. (29)-(30):
        :math:`p_i = p_{i+1} + h\,\partial_z f(z_i)^T p_{i+1}`,
        :math:`g \mathrel{+}= h\,\partial_\theta f(z_i)^T p_{i+1}` (first order; with
        forward Euler it equals the discrete adjoint (28) exactly).
    **rk_kwargs
        Passed to :func:`spdl_ref.ode.rk_step` (solver options for implicit methods).

    Returns
    -------
    dict
        ``{"A": (K, M, M), "b": (K, M), "loss": scalar, "z_T": (N, M)}``; ``"A"`` and ``"b"``
        approximate :math:`\int_{t^k}^{t^{k+1}} \partial_\theta f^T p\,dt` (27).
    """
    model = check_model(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    if adjoint not in ("rk", "rectangle"):
        raise ValueError(f"adjoint must be 'rk' or 'rectangle', got {adjoint!r}")
    tableau = _method(method)
    n, h = _grid(model, steps_per_layer)
    sigma, K, M = model.activation, model.depth, model.dim
    nodes = []
    with torch.no_grad():
        A, b = model.A.detach(), model.b.detach()
        z = x
        for k in range(K):
            for _ in range(n):
                if adjoint == "rectangle":
                    nodes.append(z)
                z = rk_step(
                    lambda t, v, k=k: field(A[k], b[k], sigma, v), 0.0, z, h, tableau, **rk_kwargs
                )
    with torch.enable_grad():
        zT = z.detach().requires_grad_(True)
        value = loss(zT)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError("loss must return a scalar tensor")
        (pT,) = torch.autograd.grad(value, zT)
    N = x.shape[0]
    gA, gb = torch.empty_like(A), torch.empty_like(b)
    if adjoint == "rectangle":
        with torch.no_grad():
            p = pT
            for k in reversed(range(K)):
                gA[k], gb[k] = 0.0, 0.0
                for i in reversed(range(k * n, (k + 1) * n)):
                    dz, dA, db = field_vjps(A[k], b[k], sigma, nodes[i], p)
                    gA[k] += h * dA.sum(0)
                    gb[k] += h * db.sum(0)
                    p = p + h * dz
        return {"A": gA, "b": gb, "loss": value.detach(), "z_T": z}
    with torch.no_grad():
        y = torch.cat([z, pT, z.new_zeros(N, M * M + M)], dim=1)
        for k in reversed(range(K)):
            Ak, bk = A[k], b[k]

            def reverse_field(t, v, Ak=Ak, bk=bk):
                # time s = T - t: dz/ds = -f, dp/ds = +dz f^T p, dg/ds = dtheta f^T p
                zz, pp = v[:, :M], v[:, M : 2 * M]
                dz, dA, db = field_vjps(Ak, bk, sigma, zz, pp)
                return torch.cat([-field(Ak, bk, sigma, zz), dz, dA.reshape(-1, M * M), db], dim=1)

            y = torch.cat([y[:, : 2 * M], torch.zeros_like(y[:, 2 * M :])], dim=1)
            for _ in range(n):
                y = rk_step(reverse_field, 0.0, y, h, tableau, **rk_kwargs)
            g = y[:, 2 * M :].sum(0)
            gA[k], gb[k] = g[: M * M].reshape(M, M), g[M * M :]
    return {"A": gA, "b": gb, "loss": value.detach(), "z_T": z}
