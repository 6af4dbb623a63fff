r"""Test problems for the integrators of Section 2.2: separable Hamiltonians (18)-(19).

A :class:`SeparableHamiltonian` holds the kinetic and potential energies :math:`T(t, p)` and
:math:`V(t, z)` of :math:`H(t, z, p) = T(t, p) + V(t, z)` together with their gradients, in the
forms the integrators of :mod:`spdl_ref.ode` take: ``dT(t, p)`` and ``dV(t, z)`` for
:func:`~spdl_ref.ode.symplectic_euler` and :func:`~spdl_ref.ode.stormer_verlet`, the energies
``T(t, p)`` and ``V(t, z)`` for :func:`~spdl_ref.ode.extended_phase_space_run`, and the stacked
field ``field(t, u)`` of :math:`u = (z, p)` for :func:`~spdl_ref.ode.rk_step` and
:func:`~spdl_ref.ode.odeint`.

The time may be a float or a tensor of shape ``(..., 1)`` (one time per sample, as the extended
phase space (20) passes it). The named problems are the ones the chapters use:

* :func:`pendulum` -- :math:`H = \tfrac12|p|^2 - \sum_i \cos z_i`;
* :func:`harmonic_oscillator` -- :math:`H = \tfrac12|p|^2 + \tfrac12|z|^2`;
* :func:`coupled_anharmonic` -- two coupled quartic oscillators;
* :func:`modulated_pendulum` -- a pendulum whose mass and gravity change in time;
* :func:`tanh_potential_model` -- the second-order Hamiltonian network of Section 2.1.2 with
  smoothly varying weights :math:`A_2(t) = A + tB`, :math:`b_2(t) = b\cos t`;
* :func:`layer_hamiltonian` -- one layer of a :class:`~spdl_ref.ode.HamiltonianField`;
* :func:`softplus_ridge_potential` -- a convex potential for Theorem 2.1 (1).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from .. import _validate

if TYPE_CHECKING:
    from .fields import HamiltonianField

__all__ = [
    "SeparableHamiltonian",
    "coupled_anharmonic",
    "harmonic_oscillator",
    "layer_hamiltonian",
    "modulated_pendulum",
    "pendulum",
    "softplus_ridge_potential",
    "tanh_potential_model",
]


def _time(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The time as a tensor on ``like``'s device and dtype, shape ``()`` or ``(..., 1)``."""
    if isinstance(t, torch.Tensor):
        return t.to(dtype=like.dtype, device=like.device)
    return torch.tensor(_validate.real(t, "t"), dtype=like.dtype, device=like.device)


def _autograd_gradient(energy: Callable) -> Callable:
    """The gradient of a batched energy ``energy(t, x)`` in ``x``, by autograd."""

    def gradient(t, x):
        with torch.enable_grad():
            xv = x if x.requires_grad else x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(energy(t, xv).sum(), xv, create_graph=x.requires_grad)
        return g

    return gradient


class SeparableHamiltonian:
    r"""A separable Hamiltonian :math:`H(t, z, p) = T(t, p) + V(t, z)`, eqs. (18)-(19).

    Parameters
    ----------
    T, V : callable
        The energies ``T(t, p)`` and ``V(t, z)``, each returning one value per sample (shape
        ``p.shape[:-1]``); ``t`` is a float or a tensor of shape ``(..., 1)``.
    dT, dV : callable or None
        Their gradients :math:`\partial_p T(t, p)` and :math:`\partial_z V(t, z)` (shape of the
        second argument); ``None`` takes them by automatic differentiation.
    name : str
        A label for tables and plots.

    Examples
    --------
    >>> H = pendulum()
    >>> u = torch.tensor([[0.0, 1.0]], dtype=torch.float64)  # z = 0, p = 1
    >>> H.energy(u).tolist(), H.field(0.0, u).tolist()
    ([-0.5], [[1.0, -0.0]])
    """

    def __init__(
        self,
        T: Callable,
        V: Callable,
        dT: Callable | None = None,
        dV: Callable | None = None,
        name: str = "",
    ) -> None:
        self.T = _validate.function(T, "T")
        self.V = _validate.function(V, "V")
        self.dT = _autograd_gradient(T) if dT is None else _validate.function(dT, "dT")
        self.dV = _autograd_gradient(V) if dV is None else _validate.function(dV, "dV")
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {type(name).__name__}")
        self.name = name

    @staticmethod
    def _split(u):
        _validate.floating_tensor(u, "u")
        if u.dim() == 0 or u.shape[-1] % 2:
            raise ValueError(
                f"u must have an even last dimension 2M (z then p), got shape {tuple(u.shape)}"
            )
        m = u.shape[-1] // 2
        return u[..., :m], u[..., m:]

    def energy(self, u: torch.Tensor, t: float | torch.Tensor = 0.0) -> torch.Tensor:
        """:math:`H(t, z, p)` at the stacked states ``u = (z, p)``, shape ``u.shape[:-1]``."""
        z, p = self._split(u)
        return self.T(t, p) + self.V(t, z)

    def gradient(self, t: float | torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        r""":math:`\nabla_u H = (\partial_z V, \partial_p T)` at stacked states ``u = (z, p)``."""
        z, p = self._split(u)
        return torch.cat([self.dV(t, z), self.dT(t, p)], -1)

    def field(self, t: float | torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        r"""The Hamiltonian field :math:`(\partial_p T, -\partial_z V)` of (18)-(19) at ``u``."""
        z, p = self._split(u)
        return torch.cat([self.dT(t, p), -self.dV(t, z)], -1)

    def __repr__(self) -> str:
        return f"SeparableHamiltonian({self.name or 'unnamed'})"


def _half_square(t, p):
    return 0.5 * (p * p).sum(-1)


def _identity_gradient(t, p):
    return p


def pendulum() -> SeparableHamiltonian:
    r"""The pendulum :math:`H = \tfrac12|p|^2 - \sum_i \cos z_i` (Section 2.2.2's test problem)."""

    def V(t, z):
        return -torch.cos(z).sum(-1)

    def dV(t, z):
        return torch.sin(z)

    return SeparableHamiltonian(_half_square, V, _identity_gradient, dV, name="pendulum")


def harmonic_oscillator() -> SeparableHamiltonian:
    r"""The harmonic oscillator :math:`H = \tfrac12|p|^2 + \tfrac12|z|^2`, :math:`\dot u = Ju`.

    Its field has eigenvalues :math:`\pm i` (Section 2.2.1: explicit Euler expands it for every
    step size) and its flow is the rotation :math:`\exp(tJ)`.
    """
    return SeparableHamiltonian(
        _half_square, _half_square, _identity_gradient, _identity_gradient, name="oscillator"
    )


def coupled_anharmonic() -> SeparableHamiltonian:
    r"""Two coupled quartic oscillators (Section 2.2.2), positions :math:`z \in \mathbb R^2`.

    .. math::

        H = \tfrac12|p|^2 + \tfrac12|z|^2 + \tfrac14(z_1^4 + z_2^4) + \tfrac12 z_1 z_2,

    a quartic polynomial, so the two-node Gauss rule of the average-vector-field discrete
    gradient is exact for it.
    """

    def V(t, z):
        _validate.last_dim(z, 2, "z")
        return 0.5 * (z * z).sum(-1) + 0.25 * (z**4).sum(-1) + 0.5 * z[..., 0] * z[..., 1]

    def dV(t, z):
        _validate.last_dim(z, 2, "z")
        return z + z**3 + 0.5 * z.flip(-1)

    return SeparableHamiltonian(_half_square, V, _identity_gradient, dV, name="anharmonic")


def modulated_pendulum(mass: float = 0.3, gravity: float = 0.2) -> SeparableHamiltonian:
    r"""A non-autonomous pendulum for the orders of Section 2.2.2 (:math:`H` depends on :math:`t`).

    .. math::

        H(t, z, p) = \tfrac12\big(1 + a \sin t\big)|p|^2 - \big(1 + g\cos t\big)\sum_i \cos z_i,

    with :math:`a` = ``mass`` and :math:`g` = ``gravity`` (both in :math:`[0, 1)`).
    """
    a = _validate.nonnegative_real(mass, "mass")
    g = _validate.nonnegative_real(gravity, "gravity")
    if a >= 1 or g >= 1:
        raise ValueError(f"mass and gravity must be below 1, got {a} and {g}")

    def factor_T(t, p):
        return 1.0 + a * torch.sin(_time(t, p))

    def factor_V(t, z):
        return 1.0 + g * torch.cos(_time(t, z))

    def T(t, p):
        return 0.5 * (factor_T(t, p) * p * p).sum(-1)

    def V(t, z):
        return -(factor_V(t, z) * torch.cos(z)).sum(-1)

    def dT(t, p):
        return factor_T(t, p) * p

    def dV(t, z):
        return factor_V(t, z) * torch.sin(z)

    return SeparableHamiltonian(T, V, dT, dV, name="modulated pendulum")


def tanh_potential_model(A: torch.Tensor, B: torch.Tensor, b: torch.Tensor) -> SeparableHamiltonian:
    r"""The second-order Hamiltonian network of Section 2.1.2 with smooth weights.

    .. math::

        T = \tfrac12|p|^2, \qquad V(t, z) = \log\cosh\big(A_2(t) z + b_2(t)\big)\cdot\mathbf 1,
        \qquad A_2(t) = A + tB, \quad b_2(t) = b\cos t,

    so that :math:`\ddot z = -A_2(t)^T\tanh(A_2(t)z + b_2(t))`. ``A`` and ``B`` are ``(M, M)``,
    ``b`` is ``(M,)``.
    """
    for v, n in ((A, "A"), (B, "B")):
        _validate.tensor(v, n)
        if v.dim() != 2 or v.shape[0] != v.shape[1]:
            raise ValueError(f"{n} must be a square matrix (M, M), got {tuple(v.shape)}")
    _validate.tensor(b, "b")
    if A.shape != B.shape or b.shape != A.shape[:1]:
        raise ValueError(
            f"A, B and b must have shapes (M, M), (M, M) and (M,), got {tuple(A.shape)}, "
            f"{tuple(B.shape)} and {tuple(b.shape)}"
        )

    def weights(t, z):
        tt = _time(t, z)
        return A + tt[..., None] * B, b * torch.cos(tt)

    def pre(t, z):
        A2, b2 = weights(t, z)
        return (A2 @ z.unsqueeze(-1)).squeeze(-1) + b2, A2

    def V(t, z):
        s = pre(t, z)[0].abs()
        return (s + torch.log1p(torch.exp(-2 * s)) - math.log(2.0)).sum(-1)

    def dV(t, z):
        s, A2 = pre(t, z)
        return (A2.mT @ torch.tanh(s).unsqueeze(-1)).squeeze(-1)

    return SeparableHamiltonian(_half_square, V, _identity_gradient, dV, name="tanh model")


def layer_hamiltonian(field: HamiltonianField, k: int) -> SeparableHamiltonian:
    r"""Layer ``k`` of a :class:`~spdl_ref.ode.HamiltonianField` as a separable Hamiltonian.

    Section 2.1.2: :math:`T = \gamma_1(A_1^k p + b_1^k)\cdot\mathbf 1` (or
    :math:`\tfrac12|p|^2` for the second-order variant) and
    :math:`V = \gamma_2(A_2^k z + b_2^k)\cdot\mathbf 1`, frozen at the layer's parameters (the
    time argument is ignored).
    """
    from .fields import HamiltonianField

    _validate.instance(field, HamiltonianField, "field")
    k = field._k(k)
    gamma = field.gamma  # bound here, so that the closures below see it is not None
    if gamma is None:
        raise ValueError(f"field has no antiderivative for activation {field.activation_name!r}")
    A2, b2 = field.A2[k], field.b2[k]

    def V(t, z):
        return gamma(z @ A2.mT + b2).sum(-1)

    def dT(t, p):
        return field.dT(k, p)

    def dV(t, z):
        return field.dV(k, z)

    if field.variant == "second_order":
        T = _half_square
    else:
        A1, b1 = field.A1[k], field.b1[k]

        def T(t, p):
            return gamma(p @ A1.mT + b1).sum(-1)

    return SeparableHamiltonian(T, V, dT, dV, name=f"layer {k}")


def softplus_ridge_potential(B: torch.Tensor, c: torch.Tensor, quartic: float = 0.25) -> Callable:
    r"""A convex potential :math:`V(z) = \mathrm{softplus}(Bz + c)\cdot\mathbf 1 + q|z|^4`.

    For Theorem 2.1 (1): a sum of convex ridges and a convex quartic (:math:`q` = ``quartic``
    :math:`\ge 0`), twice differentiable, so :math:`-\nabla V` satisfies (14) with
    :math:`\nu \le 0`. ``B`` is ``(R, M)`` and ``c`` is ``(R,)``; the result maps ``(..., M)`` to
    ``(...)``.
    """
    _validate.tensor(B, "B")
    _validate.tensor(c, "c")
    if B.dim() != 2 or c.shape != B.shape[:1]:
        raise ValueError(
            f"B and c must have shapes (R, M) and (R,), got {tuple(B.shape)} and {tuple(c.shape)}"
        )
    q = _validate.nonnegative_real(quartic, "quartic")

    def V(z):
        return torch.nn.functional.softplus(z @ B.mT + c).sum(-1) + q * (z * z).sum(-1) ** 2

    return V
