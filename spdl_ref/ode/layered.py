r"""The layered-network protocol: one recursion for every ODE network of Sections 1-3.

A network of the review is a composition of layers, eq. (2). The ODE networks of this package
are all of one kind: layer :math:`k` is one step, of size :math:`h_k`, of an integrator for the
ODE (7) with parameters :math:`\theta^k` held constant on the layer,

.. math::

    u^0 = \operatorname{lift}(x), \qquad
    u^{k+1} = \Phi_{h_k}(u^k; \theta^k), \quad k = 0, \dots, K-1, \qquad
    \Psi(x, \theta) = \operatorname{project}(u^K),

where :math:`\Phi_h` is a Runge–Kutta step (a :class:`~spdl_ref.ode.ButcherTableau`) or a
symplectic step (a :class:`~spdl_ref.ode.SymplecticStepper`) for :math:`\dot u = f(u, \theta^k)`.
The ResNet (5)-(6) is explicit Euler with the field (8) and :math:`h_k = T/K`; the ResNet with
learnt steps (38) has :math:`h_k` among its parameters; an :class:`~spdl_ref.ode.ODENet` takes any
field of :mod:`spdl_ref.ode.fields` and any of these integrators.

:class:`LayeredNetwork` states what such a network provides (the protocol) and supplies the
shared parts; :func:`network_states` is the one function that computes :math:`u^0, \dots, u^K`,
and :func:`layer_step` the one that takes a layer's step. Every forward pass of the package (a
network's ``forward``, ``states`` and ``trajectory``, the adjoints, the method of successive
approximations, SGD and the objectives of Section 3) goes through them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from .. import _validate
from .runge_kutta import ButcherTableau
from .symplectic import SymplecticStepper

__all__ = [
    "FIELD_PROTOCOL",
    "LAYERED_PROTOCOL",
    "LayeredNetwork",
    "check_field",
    "check_layered",
    "layer_field",
    "layer_step",
    "network_states",
    "parameter_layout",
]

#: The members a network must provide to satisfy the protocol (:class:`LayeredNetwork`).
LAYERED_PROTOCOL = (
    "depth",
    "dim",
    "integrator",
    "step_size",
    "layer_parameters",
    "field",
    "vjp",
    "lift",
    "project",
)


#: The members a vector field must provide to be integrated by :class:`~spdl_ref.ode.ODENet`:
#: those of a layered network that concern the field (its parameters stacked by layer).
FIELD_PROTOCOL = ("depth", "dim", "field", "layer_parameters", "lift", "project")

_Checked = TypeVar("_Checked")


class LayeredNetwork(nn.Module):
    r"""The layered-network protocol (eqs. (2), (6), (7), (38)), and the base class of its networks.

    A layered network provides

    ``depth``
        The number of layers :math:`K`.
    ``dim``
        The dimension :math:`M` of the input features :math:`x`.
    ``integrator``
        The step :math:`\Phi_h` of every layer: a :class:`~spdl_ref.ode.ButcherTableau` (an
        explicit or implicit Runge–Kutta method) or a :class:`~spdl_ref.ode.SymplecticStepper`
        (then also ``dT(k, p, theta)`` and ``dV(k, z, theta)``, the gradients
        :math:`\partial_p T` and :math:`\partial_z V` of a separable Hamiltonian, eq. (18)-(19)).
    ``step_size(k)``
        The step :math:`h_k` of layer :math:`k`: a float, or a 0-d tensor when the steps are
        learnt (38).
    ``step_parameter``
        The name of the parameter of shape ``(K,)`` that holds learnt steps, or ``None``.
    ``layer_parameters(k)``
        :math:`\theta^k` as ``{name: tensor}``, the names those of ``named_parameters()``. Every
        parameter other than the step parameter is stacked along a first axis of length
        :math:`K`, and layer :math:`k` owns the slice ``[k]``.
    ``field(k, u, theta=None)``
        The vector field :math:`f(u, \theta^k)` of layer :math:`k` for states of shape
        ``(..., D)``, at the slices ``theta`` (default: the network's own).
    ``vjp(k, u, p, theta=None)``
        :math:`\big(\partial_u f^T p, \{\text{name}: \partial_{\theta^k} f^T p\}\big)`, the
        vector-Jacobian products the adjoints (26)-(28) need, parameter products summed over the
        batch: in closed form for the field (8), otherwise :func:`torch.func.vjp` of the one
        layer's field (this class's default).
    ``lift(x)`` and ``project(u)``
        Input features to the state the field acts on and back (identity, except for
        Hamiltonian fields, whose momentum starts at zero).

    Any :class:`torch.nn.Module` with these members is accepted by Section 3
    (:func:`check_layered`); subclassing gives ``lift``, ``project``, ``vjp``, ``field_vjp``,
    ``states``, ``trajectory``, ``forward`` and ``costates`` built on :func:`network_states` and
    the discrete adjoint of :mod:`spdl_ref.control.adjoint`.
    """

    #: Name of the parameter holding learnt step sizes (38), or ``None`` for fixed steps.
    step_parameter: str | None = None
    #: Options for the stage equations of an implicit Runge–Kutta integrator (see ``rk_step``).
    solver_options: dict | None = None

    # Members of the protocol that every network defines itself, declared for the type checker
    # (no value here, so hasattr in check_layered still tells a network that lacks one; depth
    # and dim are left out, an attribute in some networks and a property in others).
    integrator: ButcherTableau | SymplecticStepper
    step_size: Callable[[int], float | torch.Tensor]
    layer_parameters: Callable[[int], dict[str, torch.Tensor]]
    field: Callable[..., torch.Tensor]

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """Map input features to the state the field acts on (identity here)."""
        return x

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """Map a state back to features (identity here)."""
        return u

    def vjp(
        self, k: int, u: torch.Tensor, p: torch.Tensor, theta: dict | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r""":math:`(\partial_u f^T p, \{\text{name}: \partial_{\theta^k} f^T p\})` at ``u``.

        This default takes :func:`torch.func.vjp` of the one layer's field (so it composes with
        :func:`torch.func.vmap` and with ordinary autograd); parameter products are summed over
        the batch dimensions.
        """
        theta = self.layer_parameters(k) if theta is None else theta
        # [1]: the pullback (torch annotates vjp's result as a 2- or 3-tuple, for has_aux)
        pullback = torch.func.vjp(lambda v, th: self.field(k, v, th), u, theta)[1]
        return pullback(p)

    def field_vjp(self, k: int, z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        r"""The costate product :math:`(\partial_z f(z, \theta^k))^T p` of eqs. (10) and (12)."""
        return self.vjp(k, z, p)[0]

    def states(self, x: torch.Tensor) -> list:
        """The states :math:`[u^0, \\dots, u^K]` after each layer, by :func:`network_states`.

        The entries are the tensors of the autograd graph, so the derivative of a loss with
        respect to each :math:`u^k` (the discrete costate) can be taken with
        :func:`torch.autograd.grad`.
        """
        return network_states(self, x)

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        """Every state :math:`u^0, \\dots, u^K` stacked, shape ``(K + 1, ...)``.

        For inputs of shape ``(N, M)`` the result has shape ``(K + 1, N, D)``, ``D`` the state
        dimension; ``project`` of its last entry is :meth:`forward`.
        """
        return torch.stack(network_states(self, x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\Psi(x, \\theta)`: ``project`` of the last state of :func:`network_states`."""
        return self.project(network_states(self, x)[-1])

    def costates(self, x: torch.Tensor, p_K: torch.Tensor, *, printed_sign: bool = False) -> list:
        r"""Discrete costates :math:`p^0, \dots, p^K` of the adjoint equation (Theorem 3.2).

        With ``p_K`` the derivative of a loss with respect to the last state, :math:`p^k` is the
        derivative of that loss with respect to :math:`u^k`, as backpropagation computes it; for
        the ResNet the recursion is :math:`p^k = p^{k+1} + h\,\partial_z f(z^k, \theta^k)^T
        p^{k+1}`, the sign of :math:`\dot p = -\partial_z H` in (10). ``printed_sign=True`` runs
        it with the sign printed in the review's (12) instead (see the errata, E1). This method is
        :func:`spdl_ref.control.discrete_costates`; ``x`` has shape ``(N, M)``.
        """
        from ..control.adjoint import discrete_costates

        return discrete_costates(self, x, p_K, printed_sign=printed_sign, name="p_K")


def _require(obj, members, name, what):
    if not isinstance(obj, nn.Module):
        raise TypeError(
            f"{name} must be a torch.nn.Module that satisfies {what}, got {type(obj).__name__}"
        )
    missing = [m for m in members if not hasattr(obj, m)]
    if missing:
        raise TypeError(
            f"{name} ({type(obj).__name__}) does not satisfy {what}: "
            f"it has no {', '.join(repr(m) for m in missing)}"
        )
    return obj


def check_field(field: _Checked, name: str = "field") -> _Checked:
    """Return ``field`` if it is a layered field that :class:`~spdl_ref.ode.ODENet` can integrate.

    The fields of Section 2.1 all are.

    A layered field is a module with the members of :data:`FIELD_PROTOCOL` (those of
    :mod:`spdl_ref.ode.fields` have them); otherwise raises :class:`TypeError` naming them.
    """
    return _require(
        field, FIELD_PROTOCOL, name, "the layered-field protocol of spdl_ref.ode.fields"
    )


def check_layered(model: _Checked, name: str = "model") -> _Checked:
    """Return ``model`` if it satisfies the protocol of :class:`LayeredNetwork`, else raise.

    Every algorithm of Section 3 checks its network with it.

    Raises :class:`TypeError` naming the argument and the members it lacks (or an integrator
    of the wrong kind), e.g. for a :class:`torch.nn.Linear`.
    """
    checked: Any = _require(
        model, LAYERED_PROTOCOL, name, "the layered-network protocol spdl_ref.ode.LayeredNetwork"
    )
    integrator = checked.integrator
    if isinstance(integrator, SymplecticStepper):
        lacking = [m for m in ("dT", "dV") if not hasattr(model, m)]
        if lacking:
            raise TypeError(
                f"{name} ({type(model).__name__}) steps with the symplectic integrator "
                f"{integrator.name!r}, which needs {' and '.join(lacking)} of a separable "
                "Hamiltonian"
            )
    elif not isinstance(integrator, ButcherTableau):
        raise TypeError(
            f"{name}.integrator must be a spdl_ref.ode.ButcherTableau or SymplecticStepper, "
            f"got {type(integrator).__name__}"
        )
    return model


def layer_field(
    model: Any, k: int, theta: dict | None = None
) -> Callable[[float, torch.Tensor], torch.Tensor]:
    r"""Layer ``k``'s field as a function ``f(t, u)`` for the integrators (Section 1.2).

    :math:`\theta(t) = \theta^k` is constant on the layer, so the field does not depend on the
    time ``t`` the integrator passes; ``theta`` defaults to the network's own parameters.
    """
    theta = model.layer_parameters(k) if theta is None else theta

    def field(_t, u):
        return model.field(k, u, theta)

    return field


def layer_step(
    model: Any,
    k: int,
    u: torch.Tensor,
    theta: dict | None = None,
    h: float | torch.Tensor | None = None,
) -> torch.Tensor:
    r"""One layer, :math:`u^{k+1} = \Phi_{h_k}(u^k; \theta^k)`, with the network's integrator.

    For the ResNet it is the step (5); for other networks, the integrators of Section 2.2.

    A Runge–Kutta step (:meth:`~spdl_ref.ode.ButcherTableau.step`) or a symplectic step of the
    separable Hamiltonian given by ``dT`` and ``dV``. ``theta`` and ``h`` default to the layer's
    own :math:`\theta^k` and :math:`h_k`; passing them evaluates the step map at other values
    (the method of successive approximations maximises over :math:`\theta^k`, the adjoint
    differentiates with respect to :math:`h_k`).
    """
    integrator = model.integrator
    theta = model.layer_parameters(k) if theta is None else theta
    h = model.step_size(k) if h is None else h
    if isinstance(integrator, SymplecticStepper):
        m = u.shape[-1] // 2
        z, p = integrator.step(
            lambda _t, q: model.dT(k, q, theta),
            lambda _t, q: model.dV(k, q, theta),
            0.0,
            u[..., :m],
            u[..., m:],
            h,
        )
        return torch.cat([z, p], -1)
    options: dict[str, Any] = {}
    if not integrator.explicit:
        options = dict(getattr(model, "solver_options", None) or {})
        options.setdefault("tol", max(1e-12, 50 * torch.finfo(u.dtype).eps))
    return integrator.step(layer_field(model, k, theta), 0.0, u, h, **options)


def network_states(model: Any, x: torch.Tensor) -> list:
    r"""The states :math:`u^0 = \operatorname{lift}(x), \dots, u^K` of a layered network.

    The one place where the recursion :math:`u^{k+1} = \Phi_{h_k}(u^k; \theta^k)` is run: every
    network's ``forward``, ``states`` and ``trajectory`` and every algorithm of Section 3 call it.
    ``x`` is a floating-point tensor of shape ``(..., M)``; no finiteness check is made, so that
    it runs under :func:`torch.func.vmap`.

    Examples
    --------
    >>> from spdl_ref.ode import ResNet
    >>> net = ResNet(2, depth=3, init_std=0.0)  # zero parameters: every step adds h tanh(0) = 0
    >>> [tuple(u.shape) for u in network_states(net, torch.ones(5, 2))]
    [(5, 2), (5, 2), (5, 2), (5, 2)]
    """
    _validate.floating_tensor(x, "x")
    _validate.last_dim(x, model.dim, "x")
    u = model.lift(x)
    out = [u]
    for k in range(model.depth):
        u = layer_step(model, k, u)
        out.append(u)
    return out


def parameter_layout(model: Any) -> tuple[list, str | None]:
    """The names of the per-layer parameters and of the step parameter of a layered network.

    Checks what the protocol of :class:`LayeredNetwork` asks of the parameters: every name of
    ``layer_parameters`` is a parameter stacked by layer (first axis ``depth``), and every other
    parameter is the step parameter of (38); otherwise raises :class:`TypeError` (a gradient
    computed layer by layer would miss that parameter).
    """
    params = dict(model.named_parameters())
    step_name = getattr(model, "step_parameter", None)
    per_layer = list(model.layer_parameters(0))
    for name in per_layer:
        if name not in params:
            raise TypeError(
                f"model.layer_parameters names {name!r}, which is not in model.named_parameters()"
            )
        if params[name].dim() == 0 or params[name].shape[0] != model.depth:
            raise TypeError(
                f"parameter {name!r} must be stacked by layer (first axis {model.depth}), "
                f"got shape {tuple(params[name].shape)}"
            )
    others = set(params) - set(per_layer) - {step_name}
    if others:
        raise TypeError(
            "a layered network needs every parameter to belong to one layer (or to be the "
            f"step parameter); {sorted(others)} do not"
        )
    return per_layer, step_name
