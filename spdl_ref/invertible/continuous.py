r"""ODE flows as invertible maps: continuous normalising flows and the inverse of a ResNet step.

Section 4 notes that flows of ODEs are invertible and, with Chen et al. (ref. [24]), that the
change of variables (48) has a continuous version. This module builds both on the layered
networks of :mod:`spdl_ref.ode` (one Runge–Kutta step per layer, :func:`~spdl_ref.ode.layer_step`),
with no integrator of its own:

* :class:`ContinuousFlow` -- the time-:math:`T` flow :math:`\Psi` of
  :math:`\dot z = f(z, \theta(t))` as an invertible layer. Its log-determinant is the
  instantaneous change of variables

  .. math:: \frac{d}{dt} \log p_t(z(t)) = -\operatorname{tr} \partial_z f(z(t), \theta(t)),
            \qquad \log|\det \partial_x \Psi(x)| = \int_0^T \operatorname{tr}
            \partial_z f(z(t), \theta(t))\, dt,

  integrated by the same Runge–Kutta method as the state (:class:`TraceAugmentedField`), and its
  inverse integrates the ODE backwards in time. Both are exact for the ODE's flow and equal the
  discrete map's log-determinant and inverse up to the method's global error :math:`O(h^p)`.
* :func:`euler_step_inverse` -- the inverse of one ResNet layer
  :math:`y = z + h f(z, \theta^k)` (eq. (6)) or of a residual layer (44): one implicit Euler
  step of the backward ODE :math:`\dot z = -f(z)`, which exists and is unique when
  :math:`h\,\mathrm{Lip}(f) < 1` (solved with ``solver="fixed_point"`` it is the iteration
  (46)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .. import _validate
from ..ode.layered import check_field, layer_field, network_states
from ..ode.network import ODENet
from ..ode.runge_kutta import ButcherTableau, as_tableau, butcher_tableau, check_solver_options
from ..ode.symplectic import SYMPLECTIC_METHODS
from ._base import InvertibleModule, check_batch, reference_tensor

__all__ = [
    "ContinuousFlow",
    "TraceAugmentedField",
    "discretisation_errors",
    "euler_step_inverse",
]


def _check_plain_field(field: nn.Module, name: str = "field") -> nn.Module:
    check_field(field, name)
    if getattr(field, "phase_space", False) or getattr(field, "state_dim", field.dim) != field.dim:
        raise ValueError(
            f"{name} must act on the features themselves (state dimension = dim); a phase-space "
            f"field such as {type(field).__name__} lifts x to (x, 0), which has no inverse"
        )
    return field


class TraceAugmentedField(nn.Module):
    r"""The field of the instantaneous change of variables: :math:`\dot z = f(z, \theta^k)`,
    :math:`\dot\ell = \operatorname{tr}\partial_z f(z, \theta^k)` (Section 4.2.3, ref. [24]).

    A layered field (the protocol of :class:`~spdl_ref.ode.ODENet`) on the augmented state
    :math:`u = (z, \ell) \in \mathbb{R}^{M+1}`: ``lift(x)`` is :math:`(x, 0)` and ``project(u)``
    is :math:`z`; after integrating from :math:`0` to :math:`T`, :math:`\ell(T)` is
    :math:`\log|\det \partial_x \Psi(x)|` of the ODE's flow :math:`\Psi` (Liouville's formula).
    The trace is exact: :math:`M` vector-Jacobian products per evaluation, differentiable when
    grad mode is on (so a flow trains through it). The parameters are those of ``field``.

    Parameters
    ----------
    field : torch.nn.Module
        A layered field of :mod:`spdl_ref.ode.fields` (or any module with the members of
        :data:`~spdl_ref.ode.layered.FIELD_PROTOCOL`) acting on the features themselves.
    """

    base: Any  # a layered field: any module with the members of FIELD_PROTOCOL (duck-typed)

    def __init__(self, field: nn.Module):
        super().__init__()
        self.base = _check_plain_field(field)

    @property
    def depth(self) -> int:
        """The number of layers :math:`K` of the base field."""
        return self.base.depth

    @property
    def dim(self) -> int:
        """The feature dimension :math:`M` (the state has :math:`M + 1` entries)."""
        return self.base.dim

    @property
    def state_dim(self) -> int:
        """:math:`M + 1`: the features and the accumulated log-determinant."""
        return self.base.dim + 1

    def layer_parameters(self, k: int) -> dict:
        r"""The base field's :math:`\theta^k`."""
        return self.base.layer_parameters(k)

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`(x, 0)`: the log-determinant starts at zero."""
        return torch.cat([x, x.new_zeros(*x.shape[:-1], 1)], dim=-1)

    def project(self, u: torch.Tensor) -> torch.Tensor:
        r"""The features :math:`z` of :math:`u = (z, \ell)`."""
        return u[..., :-1]

    def field(self, k: int, u: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        r""":math:`(f(z, \theta^k), \operatorname{tr}\partial_z f(z, \theta^k))` at
        :math:`u = (z, \ell)`, shape of ``u``."""
        if not isinstance(u, torch.Tensor) or not u.is_floating_point():
            raise TypeError(f"u must be a floating-point torch.Tensor, got {type(u).__name__}")
        _validate.last_dim(u, self.state_dim, "u")
        create_graph = torch.is_grad_enabled()
        z = u[..., :-1]
        with torch.enable_grad():
            zg = z if z.requires_grad else z.detach().requires_grad_(True)
            fz = self.base.field(k, zg, theta)
            trace = torch.zeros_like(fz[..., 0])
            for i in range(self.dim):
                (row,) = torch.autograd.grad(
                    fz[..., i].sum(), zg, retain_graph=True, create_graph=create_graph
                )
                trace = trace + row[..., i]
        out = torch.cat([fz, trace.unsqueeze(-1)], dim=-1)
        return out if create_graph else out.detach()


class _Substeps(nn.Module):
    """A layered field whose every layer is taken in ``s`` equal steps (same theta(t))."""

    inner: Any  # a layered field: any module with the members of FIELD_PROTOCOL (duck-typed)

    def __init__(self, field: nn.Module, substeps: int):
        super().__init__()
        self.inner = field
        self.substeps = substeps

    @property
    def depth(self) -> int:
        return self.inner.depth * self.substeps

    @property
    def dim(self) -> int:
        return self.inner.dim

    def layer_parameters(self, k: int) -> dict:
        return self.inner.layer_parameters(k // self.substeps)

    def field(self, k: int, u: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        return self.inner.field(k // self.substeps, u, theta)

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.lift(x)

    def project(self, u: torch.Tensor) -> torch.Tensor:
        return self.inner.project(u)


class ContinuousFlow(InvertibleModule):
    r"""A continuous normalising flow (Section 4.2.3, ref. [24]): the ODE network (7) as an
    invertible layer with the instantaneous change of variables.

    :math:`\Psi(x) = z(T)` for :math:`\dot z = f(z, \theta(t))`, :math:`z(0) = x`, with
    :math:`\theta(t) = \theta^k` on the :math:`k`-th of the field's :math:`K` layers, integrated
    by an explicit or implicit Runge–Kutta method with ``substeps`` steps per layer
    (:math:`h = T / (K\,\mathrm{substeps})`). The state goes through
    :func:`~spdl_ref.ode.network_states` of an :class:`~spdl_ref.ode.ODENet`, so this is the ODE
    network of Chapters 1-2 (and trains with the discrete adjoint of Chapter 3, i.e. ordinary
    backpropagation through the steps).

    * :meth:`log_abs_det_jacobian` integrates :math:`\dot\ell = \operatorname{tr}\partial_z f`
      alongside (:class:`TraceAugmentedField`); the result is :math:`\log|\det\partial_x\Psi|`
      of the ODE's flow, and differs from the log-determinant of the discrete map
      :meth:`forward` by the method's global error :math:`O(h^p)`.
    * :meth:`inverse` integrates backwards in time: the same steps with :math:`-h` (that is,
      steps of :math:`h` for :math:`\dot z = -f`), layers in reverse order. It inverts the
      ODE's flow exactly and the discrete map up to :math:`O(h^p)`, or :math:`O(h^{p+1})` when
      the method and its adjoint share their leading error term (:math:`p` even, e.g. RK4); a
      symmetric method such as the implicit midpoint rule inverts its own steps exactly.

    Parameters
    ----------
    field : torch.nn.Module
        A layered field acting on the features (e.g. :class:`~spdl_ref.ode.ReLUField` with
        ``activation="tanh"``).
    method : str or tuple
        A Runge–Kutta method (name or tableau, as for :class:`~spdl_ref.ode.ODENet`).
    T : float
        Final time :math:`T > 0`.
    substeps : int
        Integrator steps per layer of the field (:math:`\ge 1`).
    **solver_kwargs
        Options of the stage solver of an implicit method (see :func:`~spdl_ref.ode.rk_step`).

    Examples
    --------
    >>> import torch
    >>> from spdl_ref.ode import ReLUField
    >>> _ = torch.manual_seed(0)
    >>> flow = ContinuousFlow(ReLUField(2, 2, width=8, activation="tanh"), "rk4").double()
    >>> x = torch.randn(5, 2, dtype=torch.float64)
    >>> z, logdet = flow.forward_and_log_det(x)
    >>> bool((flow.inverse(z) - x).abs().max() < 1e-4)  # backward integration, error O(h^4)
    True
    """

    vector_field: Any  # a layered field: any module with the members of FIELD_PROTOCOL

    def __init__(
        self,
        field: nn.Module,
        method: str | Sequence[Any] = "rk4",
        T: float = 1.0,
        substeps: int = 1,
        **solver_kwargs: Any,
    ) -> None:
        super().__init__()
        self.vector_field = _check_plain_field(field)
        if isinstance(method, str) and method in SYMPLECTIC_METHODS:
            raise ValueError(
                f"method must be a Runge-Kutta method (a name or a tableau), got {method!r}: the "
                "symplectic steppers act on a phase space"
            )
        # A tableau is metadata of the integrator: float64 coefficients on the CPU, which the
        # steps read as Python numbers (whatever torch's default device is).
        with torch.device("cpu"):
            self.tableau = as_tableau(method)
        self.method = method
        self.T = _validate.positive_real(T, "T")
        self.substeps = _validate.positive_int(substeps, "substeps")
        self.solver_options = check_solver_options(
            solver_kwargs, "keyword arguments of ContinuousFlow"
        )

    @property
    def h(self) -> float:
        """The step :math:`h = T / (K\\,\\mathrm{substeps})`."""
        return self.T / (self.vector_field.depth * self.substeps)

    @property
    def order(self) -> int | None:
        """The classical order :math:`p` of the method (``None`` for a tableau given by entries)."""
        return self.tableau.order

    def network(self, augmented: bool = False) -> ODENet:
        r"""The :class:`~spdl_ref.ode.ODENet` that computes :math:`\Psi` (with
        ``augmented=True``: the state :math:`(z, \ell)` of :class:`TraceAugmentedField`)."""
        field = TraceAugmentedField(self.vector_field) if augmented else self.vector_field
        return ODENet(_Substeps(field, self.substeps), self.tableau, self.T, **self.solver_options)

    def with_substeps(self, substeps: int) -> ContinuousFlow:
        """The same flow (shared field and parameters) integrated with ``substeps`` steps per
        layer: for measuring how the discretisation error falls with :math:`h`."""
        return ContinuousFlow(
            self.vector_field, self.tableau, self.T, substeps, **self.solver_options
        )

    def _check(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return check_batch(
            x,
            name,
            (self.vector_field.dim,),
            like=reference_tensor(self),
            owner="ContinuousFlow",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\Psi(x) = z(T)`, the discrete flow of :math:`K\,\mathrm{substeps}` steps."""
        self._check(x, "x")
        return self.network()(x)

    def forward_and_log_det(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""``(z(T), ℓ(T))``: the flow and :math:`\int_0^T \operatorname{tr}\partial_z f\,dt`,
        integrated together."""
        self._check(x, "x")
        u = network_states(self.network(augmented=True), x)[-1]
        return u[..., :-1], u[..., -1]

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        r"""Per-sample :math:`\log|\det\partial_x\Psi(x)|` by the instantaneous change of
        variables (the trace integral), shape ``(N,)``."""
        return self.forward_and_log_det(x)[1]

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`\Psi^{-1}(y)` by integrating :math:`\dot z = f(z, \theta(t))` backwards from
        :math:`T` to :math:`0` (steps of :math:`-h`, layers in reverse order)."""
        self._check(y, "y")
        net = self.network()
        options = dict(self.solver_options)
        if not self.tableau.explicit:
            options.setdefault("tol", max(1e-12, 50 * torch.finfo(y.dtype).eps))
        u = y
        for k in reversed(range(net.depth)):
            # The step of z' = f with -h is the step of the backward ODE z' = -f with +h (the
            # field is autonomous on a layer); the solver of implicit stages expects h > 0.
            field = layer_field(net, k)
            u = self.tableau.step(
                lambda t, v, f=field: -f(t, v), 0.0, u, net.step_size(k), **options
            )
        return u

    def extra_repr(self) -> str:
        m = self.method if isinstance(self.method, str) else "tableau"
        return f"method={m}, T={self.T}, K={self.vector_field.depth}, substeps={self.substeps}"


def discretisation_errors(
    flow: ContinuousFlow, x: torch.Tensor, substeps: Sequence[int] = (1, 2, 4, 8)
) -> dict[str, list[float]]:
    r"""How far the trace integral and the backward integration of a :class:`ContinuousFlow` are
    from exact for its discrete map, as the step shrinks (Section 4.2.3, ref. [24]).

    For each ``s`` in ``substeps`` the flow is integrated with ``s`` steps per layer (the same
    :math:`\theta(t)`, :func:`ContinuousFlow.with_substeps`) and two errors are taken, the
    largest over the samples of ``x``:

    * ``"log_det"``: :math:`|\ell(T) - \log|\det\partial_x\Psi_h(x)||`, the instantaneous change
      of variables against the exact change of variables of the discrete map
      :math:`\Psi_h` (the autograd Jacobian, :func:`~spdl_ref.invertible.autograd_log_abs_det`);
    * ``"inverse"``: :math:`\|\Psi_h^{-1}(\Psi_h(x)) - x\|_\infty` with the inverse by backward
      integration.

    Both fall like :math:`h^p` for a method of order :math:`p` (the inverse like
    :math:`h^{p+1}` when :math:`p` is even). Use float64.

    Returns
    -------
    dict
        ``"h"``, ``"log_det"`` and ``"inverse"``: lists, one entry per ``substeps`` value.
    """
    from .checks import autograd_log_abs_det

    _validate.module(flow, "flow", ContinuousFlow)
    flow._check(x, "x")
    if not isinstance(substeps, (list, tuple)) or not substeps:
        raise TypeError(f"substeps must be a non-empty list of ints, got {substeps!r}")
    substeps = [_validate.positive_int(s, "substeps") for s in substeps]
    out: dict[str, list[float]] = {"h": [], "log_det": [], "inverse": []}
    for s in substeps:
        f = flow.with_substeps(s)
        exact = autograd_log_abs_det(f, x).detach()
        with torch.no_grad():
            z, trace_integral = f.forward_and_log_det(x)
            back = f.inverse(z)
        out["h"].append(f.h)
        out["log_det"].append(float((trace_integral - exact).abs().max()))
        out["inverse"].append(float((back - x).abs().max()))
    return out


def euler_step_inverse(
    model: nn.Module, y: torch.Tensor, k: int = 0, solver: str = "newton", **options: Any
) -> torch.Tensor:
    r"""Invert an explicit Euler step :math:`y = z + h f(z)` by one implicit Euler step of the
    backward ODE :math:`\dot z = -f(z)` (Sections 1.2 and 4.1.2).

    The step solves :math:`z = y - h f(z)`, which is the definition of the preimage; it has exactly
    one solution when :math:`h\,\mathrm{Lip}(f) < 1`. Two kinds of ``model``:

    * layer ``k`` of a ResNet, :math:`y = z + h_k f(z, \theta^k)` (eq. (6)): any layered network
      whose integrator is explicit Euler (:class:`~spdl_ref.ode.ResNet`, or
      :class:`~spdl_ref.ode.ODENet` with ``method="explicit_euler"``);
    * an :class:`~spdl_ref.invertible.InvertibleResidual` :math:`g(x) = x + f(x)` (44): an Euler
      step with :math:`h = 1` of :math:`\dot z = f(z)` (``k`` must be 0).

    ``solver="fixed_point"`` solves the step by the iteration (46),
    :math:`z^{i} = y - h f(z^{i-1})`, which converges at the rate :math:`h\,\mathrm{Lip}(f)`;
    ``solver="newton"`` (default) converges in a few iterations whatever that rate, at the price
    of a Jacobian solve per iteration. The step is :meth:`~spdl_ref.ode.ButcherTableau.step` of
    the implicit Euler tableau: no new integrator. This is the view in which invertible ResNets
    motivate their inverse.

    Parameters
    ----------
    model : LayeredNetwork or InvertibleResidual
        The network (explicit Euler) or the residual layer.
    y : torch.Tensor
        The step's outputs, shape ``(N, M)`` (``(N, *shape)`` for a residual layer).
    k : int
        The layer, :math:`0 \le k < K` (0 for a residual layer).
    solver : str
        ``"newton"`` or ``"fixed_point"``.
    **options
        ``tol`` and ``max_iter`` of the stage solver (see :func:`~spdl_ref.ode.rk_step`);
        ``tol`` defaults to 50 machine epsilons of ``y``'s dtype (at least ``1e-12``).

    Returns
    -------
    torch.Tensor
        :math:`z` with :math:`z + h f(z) = y`.

    Raises
    ------
    RuntimeError
        When the stage solver does not converge within ``max_iter`` (e.g. the fixed-point
        iteration for :math:`h\,\mathrm{Lip}(f) > 1`).

    Examples
    --------
    >>> import torch
    >>> from spdl_ref.ode import ResNet
    >>> _ = torch.manual_seed(0)
    >>> net = ResNet(2, depth=3, T=1.0).double()
    >>> z = torch.randn(4, 2, dtype=torch.float64)
    >>> y = net.states(z)[1]  # one explicit Euler step
    >>> bool((euler_step_inverse(net, y, k=0) - z).abs().max() < 1e-12)
    True
    """
    from .residual import InvertibleResidual

    options = check_solver_options(dict(options, solver=solver), "options")
    options.setdefault("tol", max(1e-12, 50 * torch.finfo(y.dtype).eps))
    with torch.device("cpu"):  # integrator metadata, as in ContinuousFlow
        step = butcher_tableau("implicit_euler").step
    if not isinstance(model, InvertibleResidual):
        field, h = _euler_layer(model, k, y)

        def backward_field(t, z):
            return -field(t, z)

        with torch.no_grad():
            return step(backward_field, 0.0, y, h, **options)
    if k != 0:
        raise ValueError(f"k must be 0 for an InvertibleResidual (one step), got {k!r}")
    model._check(y, "y")
    shape = y.shape[1:]

    def backward_branch(_t, z):  # one sample, flattened: the branch validates its input,
        return -model.branch(z.reshape(1, *shape)).reshape(-1)  # which vmap cannot trace

    with torch.no_grad():
        if solver == "fixed_point":  # the whole batch at once
            return step(lambda t, z: -model.branch(z), 0.0, y, 1.0, **options)
        rows = [step(backward_branch, 0.0, yn.reshape(-1), 1.0, **options) for yn in y]
        return torch.stack(rows).reshape(y.shape)


def _euler_layer(
    model: object, k: int, y: torch.Tensor
) -> tuple[Callable[[float, torch.Tensor], torch.Tensor], float | torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise TypeError(
            "model must be a layered network with explicit Euler or an InvertibleResidual, got "
            f"{type(model).__name__}"
        )
    for member in ("integrator", "step_size", "depth", "dim", "field", "layer_parameters"):
        if not hasattr(model, member):
            raise TypeError(
                f"model must be a layered network (spdl_ref.ode.LayeredNetwork) or an "
                f"InvertibleResidual; {type(model).__name__} has no {member!r}"
            )
    net: Any = model  # checked above: it has the members of a layered network (duck-typed)
    with torch.device("cpu"):
        euler = butcher_tableau("explicit_euler")
    integrator = net.integrator
    if not (
        isinstance(integrator, ButcherTableau)
        and integrator.a_list == euler.a_list
        and integrator.b_list == euler.b_list
    ):
        raise ValueError(
            f"model must step with explicit Euler (a ResNet (6)), got integrator {integrator!r}"
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < net.depth:
        raise ValueError(f"k must be a layer index in [0, {net.depth - 1}], got {k!r}")
    _validate.tensor(y, "y")
    _validate.last_dim(y, net.dim, "y")
    return layer_field(net, k), net.step_size(k)
