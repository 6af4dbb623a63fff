r"""The continuous adjoint of a neural ODE: optimise-then-discretise (Theorem 3.1, eqs. (26)-(27)).

A layered network's parameters define a piecewise-constant control: :math:`\theta(t) =
\theta^k` on the :math:`k`-th layer interval, of length :math:`h_k` (:math:`T/K` for the ResNet,
the learnt steps for (38)), and with it the ODE (24b), :math:`\dot u = f(u, \theta(t))` (for
the ResNet :math:`\dot z = \sigma(A(t) z + b(t))`). Theorem 3.1 gives the derivative of
:math:`\ell(z(T))` through the adjoint equation (26),
:math:`\dot p = -\partial_z f(z, \theta)^T p`, :math:`p(T) = \ell'(z(T))`, and the integral
(27): the gradient with respect to :math:`\theta^k` is
:math:`\int_{t^k}^{t^{k+1}} \partial_\theta f(z(t), \theta^k)^T p(t)\,dt`. With respect to the
length :math:`h_k` of the interval it is :math:`\langle p, f(z, \theta^k) \rangle` at
:math:`t^{k+1}` (the Hamiltonian (9), constant on the interval).

:func:`continuous_adjoint` discretises these continuous formulas (optimise, then discretise):
it solves (24b) forwards keeping only :math:`z(T)`, then solves backwards in time, with the
same Runge–Kutta method, the augmented system of :math:`z` (recomputed), :math:`p` and the
running integral (27). No trajectory is stored, so memory does not grow with the number of
steps. The result is the gradient of the *continuous* problem up to the method's error; it is
not the exact gradient of the discretised network (compare
:func:`spdl_ref.control.discrete_adjoint`). The network's own integrator plays no part: only its
field, its step sizes and its parameters do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import _validate
from ..ode.layered import check_layered, layer_field, parameter_layout
from ..ode.runge_kutta import as_tableau, check_solver_options
from .adjoint import check_batch

__all__ = ["continuous_adjoint", "ode_flow"]


def _setup(model, x, method, steps_per_layer, rk_kwargs):
    model = check_layered(model)
    x = check_batch(model, x)
    tableau = as_tableau(method)
    n = _validate.positive_int(steps_per_layer, "steps_per_layer")
    options = check_solver_options(rk_kwargs, "keyword arguments (solver options)")
    return model, x, tableau, n, options


def ode_flow(
    model: Any,
    x: torch.Tensor,
    method: str | Sequence[Any] = "rk4",
    steps_per_layer: int = 1,
    **rk_kwargs: Any,
) -> torch.Tensor:
    r"""The state :math:`z(T)` of the ODE (24b) with the network's piecewise-constant control.

    Each layer interval, of length :math:`h_k`, is split into ``steps_per_layer`` steps of the
    Runge–Kutta ``method`` (a name or a tableau, see :func:`spdl_ref.ode.rk_step`); with
    ``"explicit_euler"`` and one step per layer this is the ResNet (6) itself. ``model`` is any
    :class:`~spdl_ref.ode.LayeredNetwork` (the result is ``project`` of the final state);
    differentiable by autograd (discretise-then-optimise); ``x`` has shape ``(N, M)``.
    """
    model, x, tableau, n, options = _setup(model, x, method, steps_per_layer, rk_kwargs)
    u = model.lift(x)
    for k in range(model.depth):
        f, h = layer_field(model, k), model.step_size(k) / n
        for _ in range(n):
            u = tableau.step(f, 0.0, u, h, **options)
    return model.project(u)


def _reverse_field(model, k, theta, D, record):
    """The augmented field of (24b) and (26) in reversed time, recording the products (27)."""

    def field(_t, v):
        # time s = T - t: du/ds = -f, dp/ds = +d_u f^T p; the integrand of (27) is recorded
        u, p = v[..., :D], v[..., D:]
        du, dtheta = model.vjp(k, u, p, theta)
        record.append(dtheta)
        return torch.cat([-model.field(k, u, theta), du], -1)

    return field


def continuous_adjoint(
    model: Any,
    x: torch.Tensor,
    loss: Callable[[torch.Tensor], torch.Tensor],
    *,
    method: str | Sequence[Any] = "rk4",
    steps_per_layer: int = 1,
    adjoint: str = "rk",
    return_costates: bool = False,
    **rk_kwargs: Any,
) -> dict[str, torch.Tensor]:
    r"""Gradient of :math:`\ell(z(T))` by the continuous adjoint of Theorem 3.1, eqs. (24b)-(27).

    Parameters
    ----------
    model : spdl_ref.ode.LayeredNetwork
        Supplies the control :math:`\theta(t) = \theta^k` on the :math:`k`-th interval, the
        interval lengths :math:`h_k`, the field :math:`f` and its vector-Jacobian products (for
        the ResNet: :math:`(A^k, b^k)`, :math:`h = T/K` and :math:`\sigma`).
    x : torch.Tensor
        Initial states :math:`x_n`, shape ``(N, M)``.
    loss : callable
        ``loss(z_T)`` returning the scalar :math:`\ell(z(T))` (e.g. a mean over samples); only
        its derivative :math:`p(T) = \ell'(z(T))` is taken by autograd.
    method : str or tuple
        Runge–Kutta method for the forward solve and for the backward augmented solve (a name
        for :func:`spdl_ref.ode.butcher_tableau` or a tableau ``(A, b, c)``).
    steps_per_layer : int
        Steps of the method per layer interval, step size :math:`h_k / \text{steps}`.
    adjoint : {"rk", "rectangle"}
        How (26)-(27) are discretised. ``"rk"``: the augmented system of :math:`z`,
        :math:`p` and the integral (27) is solved backwards with ``method``, recomputing
        :math:`z`, so no trajectory is stored (Chen et al.'s neural-ODE adjoint).
        ``"rectangle"``: the forward states :math:`z_i` at the step nodes are stored and
        (26)-(27) are discretised with functions constant on each step, :math:`z` taken at the
        left node and :math:`p` at the right one, eqs. (29)-(30):
        :math:`p_i = p_{i+1} + h\,\partial_z f(z_i)^T p_{i+1}`,
        :math:`g \mathrel{+}= h\,\partial_\theta f(z_i)^T p_{i+1}` (first order; with
        forward Euler it equals the discrete adjoint (28) exactly, step sizes included).
    return_costates : bool
        Also return the costates :math:`p(t^k)` at the layer boundaries (of the lifted states),
        shape ``(K + 1, N, D)``, under the key ``"p"``.
    **rk_kwargs
        Passed to :func:`spdl_ref.ode.rk_step` (solver options for implicit methods).

    Returns
    -------
    dict
        ``{name: gradient}`` for every ``name`` of ``model.named_parameters()`` (for the ResNet
        ``"A"`` of shape ``(K, M, M)`` and ``"b"`` of shape ``(K, M)``, approximating
        :math:`\int_{t^k}^{t^{k+1}} \partial_\theta f^T p\,dt` (27)), plus ``"loss"`` (scalar)
        and ``"z_T"`` (shape ``(N, M)``), and ``"p"`` when ``return_costates``.
    """
    _validate.boolean(return_costates, "return_costates")
    model, x, tableau, n, options = _setup(model, x, method, steps_per_layer, rk_kwargs)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    if adjoint not in ("rk", "rectangle"):
        raise ValueError(f"adjoint must be 'rk' or 'rectangle', got {adjoint!r}")
    per_layer, step_name = parameter_layout(model)
    for key in ("loss", "z_T", "p"):
        if key in per_layer or key == step_name:
            raise ValueError(f"the result needs the key {key!r}, which names a parameter of model")
    nodes = []
    with torch.no_grad():
        u = model.lift(x)
        for k in range(model.depth):
            f, h = layer_field(model, k), model.step_size(k) / n
            for _ in range(n):
                if adjoint == "rectangle":
                    nodes.append(u)
                u = tableau.step(f, 0.0, u, h, **options)
    with torch.enable_grad():
        uT = u.detach().requires_grad_(True)
        zT = model.project(uT)
        value = loss(zT)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError("loss must return a scalar tensor")
        (pT,) = torch.autograd.grad(value, uT)
    out = {name: torch.zeros_like(param) for name, param in model.named_parameters()}
    with torch.no_grad():
        if adjoint == "rectangle":
            p = _rectangle(model, nodes, pT, n, per_layer, step_name, out)
        else:
            p = _augmented(model, u, pT, tableau, n, options, per_layer, step_name, out)
    out["loss"] = value.detach()
    out["z_T"] = zT.detach()
    if return_costates:
        out["p"] = torch.stack(p[::-1])
    return out


def _rectangle(model, nodes, p, n, per_layer, step_name, out):
    costates = [p]
    for k in reversed(range(model.depth)):
        theta, h = model.layer_parameters(k), model.step_size(k) / n
        for i in reversed(range(k * n, (k + 1) * n)):
            du, dtheta = model.vjp(k, nodes[i], p, theta)
            for name in per_layer:
                if name in dtheta:
                    out[name][k] += h * dtheta[name]
            if step_name is not None:
                out[step_name][k] += (p * model.field(k, nodes[i], theta)).sum() / n
            p = p + h * du
        costates.append(p)
    return costates


def _augmented(model, u, pT, tableau, n, options, per_layer, step_name, out):
    D = u.shape[-1]
    y = torch.cat([u, pT], -1)
    costates = [pT]
    for k in reversed(range(model.depth)):
        theta, h = model.layer_parameters(k), model.step_size(k) / n
        if step_name is not None:  # <p, f> at t^{k+1}, the derivative by the interval length
            out[step_name][k] = (y[..., D:] * model.field(k, y[..., :D], theta)).sum()
        record: list[dict[str, torch.Tensor]] = []  # the parameter products of (27), per call
        field = _reverse_field(model, k, theta, D, record)
        for _ in range(n):
            record.clear()
            Y, F = tableau.stage_values(field, 0.0, y, h, **options)
            if not tableau.explicit:  # the stage solver called the field many times
                record[:] = [model.vjp(k, Yi[..., :D], Yi[..., D:], theta)[1] for Yi in Y]
            y = tableau.update(y, h, F)
            for name in per_layer:
                if name in record[0]:
                    out[name][k] += h * sum(
                        bi * r[name] for bi, r in zip(tableau.b_list, record, strict=True)
                    )
        costates.append(y[..., D:])
    return costates
