r"""An ODE network: any vector field of Section 2.1 with any integrator of Section 2.2.

The network :math:`\Psi(x, \theta) = z^K` approximates the time-:math:`T` flow of
:math:`\dot z = f(z, \theta(t))` (eq. (7)) with :math:`K` steps of size :math:`h = T/K`; step
:math:`k` uses the parameters :math:`\theta^k` of layer :math:`k` of the field. With
:class:`~spdl_ref.ode.fields.PlainField` and ``method="explicit_euler"`` it is the ResNet (6).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _validate
from .runge_kutta import butcher_tableau, is_explicit, rk_step
from .symplectic import stormer_verlet_step, symplectic_euler_step

__all__ = ["SYMPLECTIC_METHODS", "ODENet"]

#: Integrators for Hamiltonian fields (they need ``dT`` and ``dV``), eq. (22) and Störmer–Verlet.
SYMPLECTIC_METHODS = {
    "symplectic_euler": symplectic_euler_step,
    "stormer_verlet": stormer_verlet_step,
}


class ODENet(nn.Module):
    r"""The ODE network (7) discretised by a chosen integrator (Sections 2.1-2.2).

    Parameters
    ----------
    field : torch.nn.Module
        A field of :mod:`spdl_ref.ode.fields` (or any module with ``depth``, ``field(k, z)``,
        ``lift`` and ``project``); its number of layers is the depth :math:`K`.
    method : str or tuple
        A Runge–Kutta method (a name for :func:`~spdl_ref.ode.runge_kutta.butcher_tableau`, or a
        tableau ``(A, b, c)``), or, for a :class:`~spdl_ref.ode.fields.HamiltonianField`,
        ``"symplectic_euler"`` (eq. (22)) or ``"stormer_verlet"``.
    T : float
        Final time :math:`T > 0`; :math:`h = T/K`.
    **solver_kwargs
        Passed to :func:`~spdl_ref.ode.runge_kutta.rk_step` (``solver``, ``tol``, ``max_iter``)
        for implicit methods; ``tol`` defaults to the larger of ``1e-12`` and 50 machine
        epsilons of the state's dtype.

    Notes
    -----
    ``forward(x)`` lifts the input with ``field.lift`` (for Hamiltonian fields
    :math:`(z, p) = (x, 0)`), takes :math:`K` steps and returns ``field.project`` of the result.
    Gradients flow through every step, implicit stage solves included, so the module trains like
    any :class:`torch.nn.Module`.
    """

    def __init__(self, field: nn.Module, method="rk4", T: float = 1.0, **solver_kwargs):
        super().__init__()
        if (
            not isinstance(field, nn.Module)
            or not hasattr(field, "field")
            or not hasattr(field, "depth")
        ):
            raise TypeError("field must be an nn.Module with attributes 'field(k, z)' and 'depth'")
        self.vector_field = field
        self.T = _validate.positive_real(T, "T")
        if isinstance(method, str) and method in SYMPLECTIC_METHODS:
            if not (hasattr(field, "dT") and hasattr(field, "dV")):
                raise ValueError(
                    f"method {method!r} needs a separable Hamiltonian field with dT and dV"
                )
        self._explicit = None
        if not (isinstance(method, str) and method in SYMPLECTIC_METHODS):
            A, b, c = butcher_tableau(method) if isinstance(method, str) else method
            if is_explicit(A):  # stages computed in turn, with the coefficients as Python floats
                self._explicit = (A.tolist(), b.tolist(), c.tolist())
        self.method = method
        self.solver_kwargs = solver_kwargs

    @property
    def depth(self) -> int:
        """The number of steps (layers) :math:`K`."""
        return self.vector_field.depth

    @property
    def h(self) -> float:
        """The step size :math:`h = T / K`."""
        return self.T / self.depth

    def step(self, k: int, u: torch.Tensor) -> torch.Tensor:
        """Layer ``k``: one step of the integrator from :math:`t^k = k h` with :math:`\\theta^k`."""
        h, t = self.h, k * self.h
        fld = self.vector_field
        if isinstance(self.method, str) and self.method in SYMPLECTIC_METHODS:
            M = u.shape[-1] // 2
            z, p = SYMPLECTIC_METHODS[self.method](
                lambda _t, q: fld.dT(k, q), lambda _t, q: fld.dV(k, q), t, u[..., :M], u[..., M:], h
            )
            return torch.cat([z, p], -1)
        if self._explicit is not None:
            return self._explicit_step(k, t, u, h)
        kwargs = dict(self.solver_kwargs)
        kwargs.setdefault("tol", max(1e-12, 50 * torch.finfo(u.dtype).eps))
        return rk_step(lambda _t, v: fld.field(k, v), t, u, h, self.method, **kwargs)

    def _explicit_step(self, k, t, u, h):
        # the explicit branch of rk_step, without re-validating the tableau at every layer
        A, b, c = self._explicit
        fld = self.vector_field
        stages = []
        for i in range(len(b)):
            Zi = u
            for j in range(i):
                if A[i][j] != 0.0:
                    Zi = Zi + (h * A[i][j]) * stages[j]
            stages.append(fld.field(k, Zi))
        out = u
        for bi, ki in zip(b, stages):
            if bi != 0.0:
                out = out + (h * bi) * ki
        return out

    def states(self, x: torch.Tensor) -> list:
        """The states :math:`u^0, \\dots, u^K` (lifted, not projected)."""
        u = self.vector_field.lift(x)
        out = [u]
        for k in range(self.depth):
            u = self.step(k, u)
            out.append(u)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\Psi(x, \\theta)`: the projected final state, shape of ``x``."""
        _validate.floating_tensor(x, "x")  # no finiteness check: works under torch.func.vmap
        _validate.last_dim(x, self.vector_field.dim, "x")
        return self.vector_field.project(self.states(x)[-1])

    def extra_repr(self) -> str:
        m = self.method if isinstance(self.method, str) else "tableau"
        return f"method={m}, T={self.T}, K={self.depth}, h={self.h:g}"
