r"""An ODE network: any vector field of Section 2.1 with any integrator of Section 2.2.

The network :math:`\Psi(x, \theta) = z^K` approximates the time-:math:`T` flow of
:math:`\dot z = f(z, \theta(t))` (eq. (7)) with :math:`K` steps of size :math:`h = T/K`; step
:math:`k` uses the parameters :math:`\theta^k` of layer :math:`k` of the field. With
:class:`~spdl_ref.ode.fields.PlainField` and ``method="explicit_euler"`` it is the ResNet (6).
It is a :class:`~spdl_ref.ode.LayeredNetwork`, so Section 3's adjoints and training algorithms
accept it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .. import _validate
from .layered import LayeredNetwork, check_field, layer_step
from .runge_kutta import as_tableau, check_solver_options
from .symplectic import SYMPLECTIC_METHODS

__all__ = ["ODENet"]


class ODENet(LayeredNetwork):
    r"""The ODE network (7) discretised by a chosen integrator (Sections 2.1-2.2).

    Parameters
    ----------
    field : torch.nn.Module
        A field of :mod:`spdl_ref.ode.fields`, or any module with the members of
        :data:`~spdl_ref.ode.layered.FIELD_PROTOCOL` (``depth``, ``dim``,
        ``field(k, z, theta=None)``, ``layer_parameters(k)``, ``lift``, ``project``; a ``vjp``
        of its own is used when present); its number of layers is the depth :math:`K`.
    method : str or tuple
        A Runge–Kutta method (a name for :func:`~spdl_ref.ode.runge_kutta.butcher_tableau`, or a
        tableau ``(A, b, c)``, checked by :func:`~spdl_ref.ode.runge_kutta.as_tableau`), or, for a
        :class:`~spdl_ref.ode.fields.HamiltonianField`, ``"symplectic_euler"`` (eq. (22)) or
        ``"stormer_verlet"`` (:data:`~spdl_ref.ode.symplectic.SYMPLECTIC_METHODS`).
    T : float
        Final time :math:`T > 0`; :math:`h = T/K`.
    **solver_kwargs
        Passed to :func:`~spdl_ref.ode.runge_kutta.rk_step` (``solver``, ``tol``, ``max_iter``)
        for implicit methods; ``tol`` defaults to the larger of ``1e-12`` and 50 machine
        epsilons of the state's dtype.

    Notes
    -----
    ``forward(x)`` lifts the input with ``field.lift`` (for Hamiltonian fields
    :math:`(z, p) = (x, 0)`), takes :math:`K` steps (:func:`~spdl_ref.ode.network_states`) and
    returns ``field.project`` of the result. Gradients flow through every step, implicit stage
    solves included, so the module trains like any :class:`torch.nn.Module`. Its layer
    parameters are those of the field, named as ``named_parameters()`` names them
    (``"vector_field.A"``, ...).

    Examples
    --------
    >>> from spdl_ref.ode import PlainField
    >>> net = ODENet(PlainField(2, depth=3, init_std=0.0), "heun", T=1.5)
    >>> net(torch.ones(4, 2)).shape  # zero parameters: the flow of tanh(0) = 0 is the identity
    torch.Size([4, 2])
    """

    # Any module with the members of FIELD_PROTOCOL (checked by check_field at run time), so its
    # members (depth, field, dT, ...) are not known statically.
    vector_field: Any

    def __init__(
        self,
        field: nn.Module,
        method: str | Sequence[Any] = "rk4",
        T: float = 1.0,
        **solver_kwargs: Any,
    ) -> None:
        super().__init__()
        self.vector_field = check_field(field)
        self.T = _validate.positive_real(T, "T")
        if isinstance(method, str) and method in SYMPLECTIC_METHODS:
            if not (hasattr(field, "dT") and hasattr(field, "dV")):
                raise ValueError(
                    f"method {method!r} needs a separable Hamiltonian field with dT and dV"
                )
            self.integrator = SYMPLECTIC_METHODS[method]
        else:
            self.integrator = as_tableau(method)
        self.method = method
        self.solver_options = check_solver_options(solver_kwargs, "keyword arguments of ODENet")
        self.solver_kwargs = self.solver_options

    @property
    def depth(self) -> int:
        """The number of steps (layers) :math:`K`."""
        return self.vector_field.depth

    @property
    def dim(self) -> int:
        """The dimension :math:`M` of the input features."""
        return self.vector_field.dim

    @property
    def h(self) -> float:
        """The step size :math:`h = T / K`."""
        return self.T / self.depth

    def step_size(self, k: int) -> float:
        """The step :math:`h_k = h = T / K` of layer ``k``."""
        return self.h

    _PREFIX = "vector_field."

    def layer_parameters(self, k: int) -> dict:
        """The field's parameters :math:`\\theta^k` of layer ``k``.

        Named as ``named_parameters()`` names them, e.g. ``"vector_field.A"``.
        """
        return {self._PREFIX + n: v for n, v in self.vector_field.layer_parameters(k).items()}

    def _field_theta(self, theta):
        if theta is None:
            return None
        n = len(self._PREFIX)
        return {name[n:]: value for name, value in theta.items()}

    def field(self, k: int, u: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """The field :math:`f(u, \\theta^k)` of layer ``k`` (of the field module)."""
        return self.vector_field.field(k, u, self._field_theta(theta))

    def vjp(
        self, k: int, u: torch.Tensor, p: torch.Tensor, theta: dict | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The field's vector-Jacobian products (its own ``vjp`` when it has one)."""
        if not hasattr(self.vector_field, "vjp"):
            return super().vjp(k, u, p, theta)
        du, dtheta = self.vector_field.vjp(k, u, p, self._field_theta(theta))
        return du, {self._PREFIX + n: v for n, v in dtheta.items()}

    def dT(self, k: int, p: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """:math:`\\partial_p T` of a Hamiltonian field, eq. (18)."""
        return self.vector_field.dT(k, p, self._field_theta(theta))

    def dV(self, k: int, z: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """:math:`\\partial_z V` of a Hamiltonian field, eq. (19)."""
        return self.vector_field.dV(k, z, self._field_theta(theta))

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """The field's ``lift`` of the input features to its state."""
        return self.vector_field.lift(x)

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """The field's ``project`` of a state back to features."""
        return self.vector_field.project(u)

    def step(self, k: int, u: torch.Tensor) -> torch.Tensor:
        """Layer ``k``: one step of the integrator with :math:`\\theta^k` (:func:`layer_step`)."""
        return layer_step(self, k, u)

    def states(self, x: torch.Tensor) -> list:
        """The states :math:`u^0, \\dots, u^K` (lifted, not projected)."""
        return super().states(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\Psi(x, \\theta)`: the projected final state, shape of ``x``."""
        return super().forward(x)

    def extra_repr(self) -> str:
        m = self.method if isinstance(self.method, str) else "tableau"
        return f"method={m}, T={self.T}, K={self.depth}, h={self.h:g}"
