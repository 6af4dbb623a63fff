r"""The discrete adjoint, backpropagation written out (Theorem 3.2, eq. (28)), of layered networks.

For the ResNet (6), :math:`z^{k+1} = z^k + h f(z^k, \theta^k)`, and a loss
:math:`\ell(z^K)`, the costates

.. math::

    p^K = \partial_{z^K} \ell, \qquad
    p^k = p^{k+1} + h\, \partial_z f(z^k, \theta^k)^T p^{k+1}, \quad k = K-1, \dots, 0,

(eq. (28) solved for :math:`p^k`) are the derivatives :math:`\partial \ell / \partial z^k`, and
the gradient with respect to layer :math:`k`'s parameters is
:math:`h\, \partial_\theta f(z^k, \theta^k)^T p^{k+1}`. Sign convention: :math:`p` is the
derivative of the loss (not of minus the loss), so it runs backwards with a plus sign; this
is the discrete form of :math:`\dot p = -\partial_z H = -\partial_z f^T p` in (10) and (26), and
not the printed sign of (12) (see the book's errata, E1).

**Any explicit Runge–Kutta network.** For a layer :math:`u^{k+1} = u^k + h \sum_i b_i F_i`,
:math:`F_i = f(Z_i, \theta^k)`, :math:`Z_i = u^k + h \sum_{j<i} a_{ij} F_j`, reverse-mode
differentiation of the stages gives, from :math:`\lambda = p^{k+1}` and for
:math:`i = s, \dots, 1`,

.. math::

    W_i = b_i \lambda + \sum_{j > i} a_{ji} \mu_j, \qquad
    \mu_i = h\, \partial_z f(Z_i, \theta^k)^T W_i, \qquad
    p^k = \lambda + \sum_i \mu_i,

with the parameter gradient :math:`h \sum_i \partial_\theta f(Z_i, \theta^k)^T W_i` and the
step-size gradient :math:`\sum_i \langle W_i, F_i \rangle` (for the learnt steps of (38)). Where
every :math:`b_i \ne 0`, :math:`\Lambda_i = W_i / b_i` turns this into a Runge–Kutta method for
the adjoint equation (26) with weights :math:`b_i` and coefficients
:math:`\bar a_{ij} = b_j a_{ji} / b_i`: the forward and the adjoint method together form a
partitioned Runge–Kutta method (Hager 2000; Sanz-Serna 2016), and the pair conserves the bilinear
form :math:`\langle p^k, \delta u^k \rangle` with the linearised state, as the continuous pair
(24b), (26) does. Implicit Runge–Kutta and symplectic layers take the vector-Jacobian product of
the one layer's step by :func:`torch.func.vjp` instead.

References: W. W. Hager, Numer. Math. 87 (2000) 247-282 (the review's [56]); J. M. Sanz-Serna,
SIAM Review 58 (2016) 3-33 (the book's ``sanzserna2016symplectic``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import torch

from .. import _validate
from ..ode.layered import (
    check_layered,
    layer_field,
    layer_step,
    network_states,
    parameter_layout,
)
from ..ode.runge_kutta import ButcherTableau

__all__ = [
    "adjoint_step",
    "backward_sweep",
    "check_batch",
    "costates",
    "discrete_adjoint",
    "discrete_costates",
    "terminal_costate",
]


def check_batch(model: Any, x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Raise unless ``x`` is a finite float tensor of shape ``(N, M)`` in the model's dtype.

    The inputs :math:`x_n` of the problems (23)-(24) that the adjoints of Section 3 start from.

    ``M`` is the model's input dimension ``model.dim``; the dtype is that of its parameters.
    """
    _validate.tensor(x, name)
    if x.dim() != 2 or x.shape[1] != model.dim:
        raise ValueError(f"{name} must have shape (N, {model.dim}), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample, got shape {tuple(x.shape)}")
    param = next(iter(model.parameters()), None)
    if param is not None and x.dtype != param.dtype:
        raise TypeError(f"{name} must have the model's dtype {param.dtype}, got {x.dtype}")
    return x


def _as_tensor(h, like):
    if isinstance(h, torch.Tensor):
        return h
    return torch.as_tensor(h, dtype=like.dtype, device=like.device)


def adjoint_step(
    model: Any,
    k: int,
    u: torch.Tensor,
    lam: torch.Tensor,
    theta: dict | None = None,
    *,
    printed_sign: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    r"""One layer of the discrete adjoint, :math:`p^{k+1} \mapsto p^k`, with the layer's gradients.

    For an explicit Runge–Kutta layer the recursion of this module's introduction, written out
    with the network's vector-Jacobian products; for any other layer the vector-Jacobian product
    of the one layer's step map by :func:`torch.func.vjp`.

    Parameters
    ----------
    model : spdl_ref.ode.LayeredNetwork
        The network.
    k : int
        The layer.
    u : torch.Tensor
        The state :math:`u^k` entering the layer, shape ``(N, D)``.
    lam : torch.Tensor
        The costate :math:`p^{k+1}` (the derivative of the loss with respect to
        :math:`u^{k+1}`), shape ``(N, D)``.
    theta : dict or None
        Evaluate at these layer parameters instead of the network's own.
    printed_sign : bool
        Run the costate part with the sign printed in the review's (12),
        :math:`\dot p = +\partial_z f^T p` (explicit layers only; errata E1). The gradients are
        not meaningful then.

    Returns
    -------
    (p_k, grads, dh)
        The costate :math:`p^k`, ``{name: gradient with respect to layer k's slice}`` (summed
        over the batch), and the derivative with respect to the step :math:`h_k` (a 0-d tensor).
    """
    model = check_layered(model)
    if _validate.nonnegative_int(k, "k") >= model.depth:
        raise ValueError(f"k must be a layer, 0 <= k < {model.depth}, got {k}")
    _validate.boolean(printed_sign, "printed_sign")
    _validate.floating_tensor(u, "u")
    _validate.same_shape(u, _validate.floating_tensor(lam, "lam"), "u", "lam")
    theta = model.layer_parameters(k) if theta is None else theta
    h = model.step_size(k)
    integrator = model.integrator
    if isinstance(integrator, ButcherTableau) and integrator.explicit:
        return _explicit_adjoint_step(model, k, u, lam, theta, h, integrator, printed_sign)
    if printed_sign:
        raise ValueError("printed_sign is defined for explicit Runge-Kutta layers only")
    h = _as_tensor(h, u)
    # [1]: the pullback (torch annotates vjp's result as a 2- or 3-tuple, for has_aux)
    pullback = torch.func.vjp(lambda v, th, hh: layer_step(model, k, v, th, hh), u, theta, h)[1]
    return pullback(lam)


def _explicit_adjoint_step(model, k, u, lam, theta, h, tableau, printed_sign):
    a, b = tableau.a_list, tableau.b_list
    s = tableau.stages
    Z, F = tableau.stage_values(layer_field(model, k, theta), 0.0, u, h)
    mu: dict[int, torch.Tensor] = {}  # mu[i], set for i = s-1, ..., 0 in turn
    grads: dict[str, torch.Tensor] = {}
    dh: float | torch.Tensor = 0.0
    p = lam
    for i in reversed(range(s)):
        terms = [(b[i], lam)] + [(a[j][i], mu[j]) for j in range(i + 1, s)]
        W = None
        for coefficient, vector in terms:
            if coefficient != 0.0:
                W = coefficient * vector if W is None else W + coefficient * vector
        if W is None:  # stage i does not reach the output
            mu[i] = torch.zeros_like(u)
            continue
        dz, dtheta = model.vjp(k, Z[i], h * W, theta)
        mu[i] = -dz if printed_sign else dz
        p = p + mu[i]
        for name, g in dtheta.items():
            grads[name] = g if name not in grads else grads[name] + g
        dh = dh + (W * F[i]).sum()
    return p, grads, _as_tensor(dh, u)


def _prepare(model, x, grad_zK, name):
    model = check_layered(model)
    x = check_batch(model, x)
    _validate.tensor(grad_zK, name)
    if grad_zK.shape != x.shape:
        raise ValueError(
            f"{name} must have the shape of the network's output {tuple(x.shape)}, "
            f"got {tuple(grad_zK.shape)}"
        )
    if grad_zK.dtype != x.dtype:
        raise TypeError(f"{name} must have dtype {x.dtype}, got {grad_zK.dtype}")
    with torch.no_grad():
        states = network_states(model, x)
        pullback = torch.func.vjp(model.project, states[-1])[1]  # [1]: as in adjoint_step
        (lam,) = pullback(grad_zK)
    return model, states, lam


def backward_sweep(
    model: Any, states: list, lam: torch.Tensor, *, printed_sign: bool = False
) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    r"""The backward pass of (28) from given states: costates and gradients, few checks.

    ``states`` are :math:`u^0, \dots, u^K` from :func:`spdl_ref.ode.network_states` and
    ``lam`` is the terminal costate :math:`p^K` of the lifted state. Runs :func:`adjoint_step`
    from layer :math:`K - 1` down to 0 and returns ``(grads, costates)``: ``{name: gradient}``
    for every parameter of the model (zeros for one the field does not use; the learnt steps of
    (38) under their name) and the list :math:`[p^0, \dots, p^K]`. A parameter that no layer
    owns keeps a zero gradient (:func:`discrete_adjoint` refuses such a model first).

    This is the body of :func:`discrete_adjoint`, for the training drivers that check their
    arguments once (:func:`spdl_ref.control.sgd`, :func:`spdl_ref.control.msa`): only the
    model's protocol and the number of states are checked, and a non-finite ``lam`` gives
    non-finite gradients, which the guard of
    :func:`spdl_ref.loop.train_loop` then reports before any parameter changes.
    """
    check_layered(model, "model")  # cheap: attribute look-ups, no pass over the data
    if not isinstance(states, (list, tuple)) or len(states) != model.depth + 1:
        raise TypeError(
            f"states must be the list u^0, ..., u^K of the model's {model.depth + 1} states "
            f"(spdl_ref.ode.network_states), got {type(states).__name__}"
            + (f" of length {len(states)}" if isinstance(states, (list, tuple)) else "")
        )
    per_layer = list(model.layer_parameters(0))
    step_name = getattr(model, "step_parameter", None)
    with torch.no_grad():
        grads = {n: torch.zeros_like(v) for n, v in model.named_parameters()}
        out = [lam]
        for k in reversed(range(model.depth)):
            lam, layer_grads, dh = adjoint_step(model, k, states[k], lam, printed_sign=printed_sign)
            for name in per_layer:
                if name in layer_grads:  # a parameter the field does not use keeps zero
                    grads[name][k] = layer_grads[name]
            if step_name is not None:
                grads[step_name][k] = dh
            out.append(lam)
    return grads, out[::-1]


def discrete_costates(
    model: Any,
    x: torch.Tensor,
    grad_zK: torch.Tensor,
    *,
    printed_sign: bool = False,
    name: str = "grad_zK",
) -> list:
    r"""The costates :math:`p^0, \dots, p^K` of the discrete adjoint (28), without the gradients.

    :math:`p^k` is the derivative of a loss with respect to the state :math:`u^k`, given
    ``grad_zK`` :math:`= \partial \ell / \partial z^K` of shape ``(N, M)``, for any layered
    network (:func:`adjoint_step`). ``printed_sign=True`` runs the recursion with the sign
    printed in the review's (12) (errata E1); ``name`` is the argument named in error messages.
    :meth:`spdl_ref.ode.LayeredNetwork.costates` (e.g. ``ResNet.costates``) is this function.
    """
    model, states, lam = _prepare(model, x, grad_zK, name)
    return backward_sweep(model, states, lam, printed_sign=printed_sign)[1]


_Loss = Callable[[torch.Tensor], torch.Tensor]
_States = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
_StatesGradients = tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]


@overload
def costates(
    model: Any, x: torch.Tensor, loss: _Loss, *, return_gradients: Literal[False] = False
) -> _States: ...
@overload
def costates(
    model: Any, x: torch.Tensor, loss: _Loss, *, return_gradients: Literal[True]
) -> _StatesGradients: ...
@overload
def costates(
    model: Any, x: torch.Tensor, loss: _Loss, *, return_gradients: bool
) -> _States | _StatesGradients: ...
def costates(
    model: Any, x: torch.Tensor, loss: _Loss, *, return_gradients: bool = False
) -> _States | _StatesGradients:
    r"""States (31) and Pontryagin costates (32) of a layered network on a batch (Section 3.1.2).

    Returns ``(z, p, value)``: ``z`` of shape ``(K + 1, N, D)`` from the forward pass, ``p`` of
    the same shape with :math:`p_n^K = -L_n'(z_n^K)` (the derivative of ``-N * loss``, so one
    costate per sample without the factor :math:`1/N`) propagated backwards by the discrete
    adjoint (28) (:func:`backward_sweep`, the recursion of :func:`discrete_costates`, with
    Pontryagin's sign), and the scalar loss. ``loss(z_K)`` is the mean data fit of the
    network's outputs. With ``return_gradients=True`` a fourth entry holds the gradient of the
    loss with respect to every parameter (``{name: tensor}``), which the same sweep yields:
    :math:`-\frac1N \sum_n \partial_\theta \langle p_n^{k+1}, \cdot \rangle`, i.e. minus the
    gradient of the layer Hamiltonians (34). No finiteness check is made on the derivative of
    the loss: a non-finite one gives non-finite costates and gradients.
    """
    model = check_layered(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    with torch.no_grad():
        states = network_states(model, x)
    with torch.enable_grad():
        uK = states[-1].detach().requires_grad_(True)
        value = loss(model.project(uK))
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError("loss must return a scalar tensor")
        (g,) = torch.autograd.grad(value, uK)
    N = x.shape[0]
    grads, p = backward_sweep(model, states, -N * g)
    out = (torch.stack(states), torch.stack(p), value.detach())
    if return_gradients:
        return (*out, {name: v / -N for name, v in grads.items()})
    return out


def terminal_costate(model: Any, x: torch.Tensor, loss: _Loss) -> torch.Tensor:
    r"""The terminal costate :math:`p^K = \partial \ell / \partial z^K` of (28), by autograd.

    :math:`\ell` = ``loss(model(x))`` is a scalar (e.g. a mean over samples); only its derivative
    with respect to the network's output is taken, not through the network. The result, of the
    shape of ``x``, is the ``grad_zK`` that :func:`discrete_adjoint` starts from.
    """
    model = check_layered(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    with torch.no_grad():
        zK = model.project(network_states(model, x)[-1])
    with torch.enable_grad():
        zK = zK.detach().requires_grad_(True)
        value = loss(zK)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ValueError("loss must return a scalar tensor")
        (g,) = torch.autograd.grad(value, zK)
    return g


def discrete_adjoint(
    model: Any, x: torch.Tensor, grad_zK: torch.Tensor, *, return_costates: bool = False
) -> dict:
    r"""Gradients of :math:`\ell(z^K)` with respect to every parameter, by eq. (28) (Theorem 3.2).

    Runs the network forward (:func:`spdl_ref.ode.network_states`), storing
    :math:`u^0, \dots, u^K`, then the adjoint recursion backwards layer by layer
    (:func:`adjoint_step`): for explicit Runge–Kutta networks the written-out adjoint Runge–Kutta
    method with the network's vector-Jacobian products (closed form for the field (8)), with no
    automatic differentiation through the network.

    Parameters
    ----------
    model : spdl_ref.ode.LayeredNetwork
        Any network of the protocol: :class:`~spdl_ref.ode.ResNet`,
        :class:`~spdl_ref.ode.VariableStepResNet`, :class:`~spdl_ref.ode.ODENet`.
    x : torch.Tensor
        Inputs :math:`x_n`, shape ``(N, M)``.
    grad_zK : torch.Tensor
        :math:`\partial \ell / \partial z^K` of the network's output, shape ``(N, M)`` (for a
        mean loss it carries the factor :math:`1/N`).
    return_costates : bool
        Also return the costates :math:`p^0, \dots, p^K` (of the states :math:`u^k`) stacked,
        shape ``(K + 1, N, D)``, under the key ``"p"``.

    Returns
    -------
    dict
        ``{name: gradient}`` for every ``name`` of ``model.named_parameters()`` (for the ResNet
        ``"A"`` of shape ``(K, M, M)`` and ``"b"`` of shape ``(K, M)``; the learnt steps of (38)
        under ``"steps"``), plus ``"p"`` when ``return_costates``.

    Examples
    --------
    >>> from spdl_ref.ode import ResNet
    >>> net = ResNet(2, depth=3, dtype=torch.float64)
    >>> x = torch.randn(4, 2, dtype=torch.float64)
    >>> g = discrete_adjoint(net, x, torch.ones(4, 2, dtype=torch.float64))
    >>> auto = torch.autograd.grad(net(x).sum(), [net.A, net.b])
    >>> bool(torch.allclose(g["A"], auto[0]) and torch.allclose(g["b"], auto[1]))
    True
    """
    _validate.boolean(return_costates, "return_costates")
    model, states, lam = _prepare(model, x, grad_zK, "grad_zK")
    parameter_layout(model)
    if return_costates and "p" in dict(model.named_parameters()):
        raise ValueError("return_costates needs the key 'p', which names a parameter of model")
    grads, costates = backward_sweep(model, states, lam)
    if return_costates:
        grads["p"] = torch.stack(costates)
    return grads
