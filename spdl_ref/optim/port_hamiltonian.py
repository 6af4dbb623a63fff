r"""Port-Hamiltonian descent with a discrete-gradient integrator (Section 6.4.1 of the review).

A port-Hamiltonian system on a state :math:`z \in \mathbb{R}^d` is

.. math::

    \dot z = (J - R)\,\nabla H(z) + B u, \qquad y = B^T \nabla H(z),

with :math:`J` skew-symmetric (the interconnection), :math:`R` symmetric positive semidefinite
(the dissipation), an input :math:`u` entering through the port matrix :math:`B` and the
conjugate output :math:`y`. Its energy obeys the power balance
:math:`\frac{d}{dt} H = -\nabla H^T R \nabla H + y^T u`: without input the energy can only
fall, and with one it can rise by no more than the power :math:`y^Tu` supplied.

Optimisation is the special case :math:`z = (\theta, p)`, :math:`H = E(\theta) + \|p\|^2/(2\mu)`,
:math:`J` the Darboux matrix of Section 2.1.2 and :math:`R = \operatorname{diag}(0, \gamma\mu I)`
(:func:`descent_structure`): without input this is the damped system (55) of Section 6.1, the
heavy ball. A port :math:`B = (0, I)^T` on the momentum equation is a force; e.g. the difference
between a minibatch gradient and the full gradient enters this way.

The discrete-gradient scheme of Celledoni and Høiseth,

.. math::

    \frac{z^{k+1} - z^k}{h} = (J - R)\,\bar\nabla H(z^k, z^{k+1}) + B u^k, \qquad
    y^k = B^T \bar\nabla H(z^k, z^{k+1}),

with a discrete gradient :math:`\bar\nabla H` (Section 2.2.2,
:func:`spdl_ref.ode.gonzalez_gradient`), keeps the balance exactly: since
:math:`H(z^{k+1}) - H(z^k) = \bar\nabla H^T(z^{k+1} - z^k)` and :math:`J` is skew,

.. math::

    H(z^{k+1}) - H(z^k) = -h\,\bar\nabla H^T R\,\bar\nabla H + h\,(y^k)^T u^k

for every step size :math:`h`, up to round-off and the tolerance of the implicit solve. The
conformal symplectic scheme of Section 6.1 (:class:`~spdl_ref.optim.ConformalHamiltonian`)
discretises the same equation (55) and keeps another structure, the contraction
:math:`M^TJM = e^{-\gamma h}J` of the symplectic form, but not this balance.

References: A. van der Schaft and D. Jeltsema, an introductory overview of port-Hamiltonian
systems theory (2014); E. Celledoni and E. H. Høiseth, arXiv:1706.08621 (2017), on
discretisations of port-Hamiltonian systems by discrete gradients and splitting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .. import _validate
from ..ode.discrete_gradient import avf_gradient, canonical_J, gonzalez_gradient

__all__ = [
    "PortHamiltonianRun",
    "PortHamiltonianStep",
    "descent_structure",
    "port_hamiltonian_descent",
    "port_hamiltonian_step",
]

_DISCRETE_GRADIENTS = ("gonzalez", "avf")


def descent_structure(
    n: int,
    gamma: float,
    mass: float = 1.0,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The structure matrices :math:`(J, R)` of the damped system (55) as a port-Hamiltonian
    system on :math:`z = (\theta, p) \in \mathbb{R}^{2n}` (Section 6.4.1).

    :math:`J = \begin{bmatrix} 0 & I \\ -I & 0 \end{bmatrix}` and
    :math:`R = \begin{bmatrix} 0 & 0 \\ 0 & \gamma\mu I \end{bmatrix}`: with
    :math:`H = E(\theta) + \|p\|^2/(2\mu)`, :math:`(J - R)\nabla H` is
    :math:`(p/\mu,\ -\nabla E(\theta) - \gamma p)`, the right-hand side of (55).

    >>> J, R = descent_structure(1, gamma=2.0, mass=0.5)
    >>> J.tolist(), R.tolist()
    ([[0.0, 1.0], [-1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]])
    """
    n = _validate.positive_int(n, "n")
    gamma = _validate.nonnegative_real(gamma, "gamma")
    mass = _validate.positive_real(mass, "mass")
    J = canonical_J(2 * n, dtype=dtype, device=device)
    R = torch.zeros_like(J)
    R[n:, n:] = gamma * mass * torch.eye(n, dtype=J.dtype, device=J.device)
    return J, R


@dataclass(frozen=True)
class PortHamiltonianStep:
    r"""The result of one :func:`port_hamiltonian_step` (Section 6.4.1).

    ``z``: the new state :math:`z^{k+1}`; ``discrete_gradient``: :math:`\bar\nabla
    H(z^k, z^{k+1})`; ``output``: :math:`y^k = B^T\bar\nabla H` (empty without a port);
    ``dissipated``: :math:`h\,\bar\nabla H^T R\,\bar\nabla H \ge 0`; ``supplied``:
    :math:`h\,(y^k)^Tu^k`; ``iterations``: Newton iterations of the implicit solve.
    """

    z: torch.Tensor
    discrete_gradient: torch.Tensor
    output: torch.Tensor
    dissipated: float
    supplied: float
    iterations: int


def _structure(J, R, d, ref):
    for name, M in (("J", J), ("R", R)):
        _validate.tensor(M, name)
        if M.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}) to match z, got {tuple(M.shape)}")
    J = J.to(dtype=ref.dtype, device=ref.device)
    R = R.to(dtype=ref.dtype, device=ref.device)
    scale = 1e-12 * (1 + float(J.abs().max()) + float(R.abs().max()))
    if not bool(((J + J.mT).abs() <= scale).all()):
        raise ValueError("J must be skew-symmetric (J^T = -J)")
    if not bool(((R - R.mT).abs() <= scale).all()):
        raise ValueError("R must be symmetric (R^T = R)")
    if float(torch.linalg.eigvalsh(0.5 * (R + R.mT)).min()) < -scale:
        raise ValueError("R must be positive semidefinite (no negative eigenvalue)")
    return J, R


def _port(B, u, d, ref):
    if B is None and u is None:
        return None, None
    if B is None or u is None:
        raise ValueError("B and u go together: give both (a port) or neither")
    _validate.tensor(B, "B")
    _validate.tensor(u, "u")
    if B.dim() != 2 or B.shape[0] != d:
        raise ValueError(f"B must have shape ({d}, m), got {tuple(B.shape)}")
    if u.shape != (B.shape[1],):
        raise ValueError(f"u must have shape ({B.shape[1]},) to match B, got {tuple(u.shape)}")
    return B.to(dtype=ref.dtype, device=ref.device), u.to(dtype=ref.dtype, device=ref.device)


def _check_energy(H, z):
    e = H(z)
    if not isinstance(e, torch.Tensor) or e.shape != ():
        got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
        raise ValueError(f"H must map a state of shape (d,) to a scalar tensor, got {got}")
    if not bool(torch.isfinite(e)):
        raise ValueError(f"H(z) must be finite, got {float(e)}")
    return e


def _gradient(H, x):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(H(x), x)
    return g


def _discrete_gradient_jacobian(kind, H, u, v):
    r"""The derivative of :math:`\bar\nabla H(u, v)` in :math:`v`, shape ``(d, d)``.

    Gonzalez: with :math:`m = (u + v)/2`, :math:`\delta = v - u` and the coefficient
    :math:`c = (H(v) - H(u) - \nabla H(m)^T\delta)/\|\delta\|^2`,
    :math:`\frac12\nabla^2H(m) + \delta\,\nabla_v c^T + cI`; AVF: the quadrature of
    :math:`\int_0^1 s\,\nabla^2 H(u + s\delta)\,ds` at the Gauss nodes of
    :func:`~spdl_ref.ode.avf_gradient`.
    """
    delta = v - u
    if kind == "avf":
        import numpy as np

        nodes, weights = np.polynomial.legendre.leggauss(4)
        out = torch.zeros(u.shape[0], u.shape[0], dtype=u.dtype, device=u.device)
        for x, w in zip(nodes, weights, strict=True):
            s = 0.5 * (x + 1.0)
            out = out + 0.5 * w * s * torch.autograd.functional.hessian(H, u + s * delta)
        return out
    m = 0.5 * (u + v)
    hess = torch.autograd.functional.hessian(H, m)
    dd = float(delta @ delta)
    if dd <= torch.finfo(u.dtype).eps ** 2 * (1 + float(u @ u)):
        return 0.5 * hess
    gm = _gradient(H, m)
    c = (H(v) - H(u) - gm @ delta).detach() / dd
    grad_c = (_gradient(H, v) - gm - 0.5 * hess @ delta) / dd - 2 * c * delta / dd
    eye = torch.eye(u.shape[0], dtype=u.dtype, device=u.device)
    return 0.5 * hess + torch.outer(delta, grad_c) + c * eye


def port_hamiltonian_step(
    H: Callable[[torch.Tensor], torch.Tensor],
    z: torch.Tensor,
    h: float,
    J: torch.Tensor,
    R: torch.Tensor,
    B: torch.Tensor | None = None,
    u: torch.Tensor | None = None,
    *,
    discrete_gradient: str = "gonzalez",
    tol: float | None = None,
    max_iter: int = 50,
) -> PortHamiltonianStep:
    r"""One discrete-gradient step of a port-Hamiltonian system (Section 6.4.1).

    Solves :math:`z^{k+1} = z^k + h\big((J - R)\bar\nabla H(z^k, z^{k+1}) + Bu\big)` by a
    Newton's method from :math:`z^k` (the exact Jacobian of the discrete gradient, from the
    Hessian of :math:`H`, and a step halved until the residual decreases), so the step size is
    not limited by the contraction that a fixed-point iteration needs; for very large steps the
    implicit equation may have no solution near :math:`z^k`, and the step then fails. Whatever
    :math:`h`, the result satisfies the discrete power balance
    :math:`H(z^{k+1}) - H(z^k) = -\text{dissipated} + \text{supplied}` (see the module text) to
    the tolerance of the solve.

    Parameters
    ----------
    H : callable
        The energy, mapping a state of shape ``(d,)`` to a scalar; twice differentiable by
        autograd (its Hessian builds the Newton matrix).
    z : torch.Tensor
        The state :math:`z^k`, shape ``(d,)``, floating point.
    h : float
        Step size, :math:`h > 0`.
    J, R : torch.Tensor
        ``(d, d)``: :math:`J` skew-symmetric, :math:`R` symmetric positive semidefinite.
    B, u : torch.Tensor or None
        A port: ``B`` of shape ``(d, m)`` and the input ``u`` of shape ``(m,)``, held over the
        step; both or neither.
    discrete_gradient : {"gonzalez", "avf"}
        :func:`~spdl_ref.ode.gonzalez_gradient` (exact for any :math:`H`) or
        :func:`~spdl_ref.ode.avf_gradient` (exact for polynomial :math:`H` of degree
        :math:`\le 8`, its four Gauss nodes).
    tol : float or None
        Stop when the Newton update is below ``tol * (1 + max|z|)``, or when it stops shrinking
        below ``16 * tol * (1 + max|z|)`` (round-off reached); ``None``: 4 machine epsilons.
    max_iter : int
        :class:`RuntimeError` when the solve has not converged after this many iterations.

    Returns
    -------
    PortHamiltonianStep

    Examples
    --------
    The damped oscillator :math:`H = \frac12(\theta^2 + p^2)` with :math:`\gamma = 1` and a
    step far beyond explicit stability: the energy still falls by exactly what is dissipated.

    >>> J, R = descent_structure(1, gamma=1.0)
    >>> H = lambda z: 0.5 * (z * z).sum()
    >>> z0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    >>> step = port_hamiltonian_step(H, z0, 10.0, J, R)
    >>> balance = H(step.z) - H(z0) + step.dissipated
    >>> bool(H(step.z) < H(z0)), abs(float(balance)) < 1e-14
    (True, True)
    """
    _validate.function(H, "H")
    _validate.tensor(z, "z")
    if z.dim() != 1:
        raise ValueError(f"z must be a vector of shape (d,), got {tuple(z.shape)}")
    h = _validate.positive_real(h, "h")
    _validate.choice(discrete_gradient, _DISCRETE_GRADIENTS, "discrete_gradient")
    tol = 4 * torch.finfo(z.dtype).eps if tol is None else _validate.positive_real(tol, "tol")
    max_iter = _validate.positive_int(max_iter, "max_iter")
    d = z.shape[0]
    J, R = _structure(J, R, d, z)
    B, u = _port(B, u, d, z)
    z = z.detach()
    _check_energy(H, z)
    dg = gonzalez_gradient if discrete_gradient == "gonzalez" else avf_gradient
    S = J - R
    force = h * (B @ u) if B is not None else torch.zeros_like(z)

    def residual(v):
        g = dg(H, z, v)
        return v - z - h * (S @ g) - force, g

    # Newton's method from z on F(v) = 0 with the exact Jacobian I - h S d(DG)/dv, and a step
    # halved until |F| decreases
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    scale = 1.0 + float(z.abs().max())
    v = z.clone()
    F, _ = residual(v)
    previous = math.inf
    for it in range(1, max_iter + 1):
        jac = _discrete_gradient_jacobian(discrete_gradient, H, z, v)
        dv = torch.linalg.solve(eye - h * S @ jac, -F)
        norm = float(F.norm())
        for _ in range(30):
            F_new, _ = residual(v + dv)
            if bool(torch.isfinite(F_new).all()) and float(F_new.norm()) <= norm:
                break
            dv = 0.5 * dv
        v = v + dv
        F = F_new
        delta = float(dv.abs().max())
        if delta <= tol * scale or (delta >= previous and delta <= 16 * tol * scale):
            g = dg(H, z, v)
            y = B.mT @ g if B is not None else g.new_zeros(0)
            dissipated = h * float(g @ (R @ g))
            supplied = h * float(y @ u) if B is not None else 0.0
            return PortHamiltonianStep(v, g, y, dissipated, supplied, it)
        previous = delta
    raise RuntimeError(
        f"port-Hamiltonian step did not converge to tol={tol:g} in max_iter={max_iter} Newton "
        f"iterations (h={h:g}); reduce h or raise max_iter"
    )


@dataclass(frozen=True)
class PortHamiltonianRun:
    r"""A run of :func:`port_hamiltonian_descent` (Section 6.4.1).

    ``theta``, ``p``: the iterates, shape ``(steps + 1, n)``; ``energy``: :math:`H_k =
    E(\theta_k) + \|p_k\|^2/(2\mu)`, shape ``(steps + 1,)``; ``dissipated``, ``supplied``:
    per step, shape ``(steps,)``; ``iterations``: Newton iterations per step.
    """

    theta: torch.Tensor
    p: torch.Tensor
    energy: torch.Tensor
    dissipated: torch.Tensor
    supplied: torch.Tensor
    iterations: list

    def balance_defect(self) -> float:
        r"""The largest :math:`|H_{k+1} - H_k + \text{dissipated}_k - \text{supplied}_k|` over the
        run, relative to :math:`1 + |H_0|` (round-off for an exact scheme)."""
        gap = self.energy[1:] - self.energy[:-1] + self.dissipated - self.supplied
        return float(gap.abs().max()) / (1.0 + abs(float(self.energy[0])))


def port_hamiltonian_descent(
    E: Callable[[torch.Tensor], torch.Tensor],
    theta0: torch.Tensor,
    h: float,
    gamma: float,
    steps: int,
    mass: float = 1.0,
    *,
    p0: torch.Tensor | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
    discrete_gradient: str = "gonzalez",
) -> PortHamiltonianRun:
    r"""Minimise :math:`E` by the discrete-gradient scheme for (55) as a port-Hamiltonian system
    (Section 6.4.1).

    Runs ``steps`` of :func:`port_hamiltonian_step` on :math:`z = (\theta, p)` with
    :math:`H = E(\theta) + \|p\|^2/(2\mu)` and the structure of :func:`descent_structure`.
    With ``inputs`` (one tensor of shape ``(n,)`` per step) a force acts on the momentum
    equation through the port :math:`B = (0, I)^T`; its output is the velocity
    :math:`\bar\nabla_p H`, so the supplied energy is :math:`h\,u^T\bar\nabla_p H`. Without
    inputs the energy :math:`H_k` is non-increasing for every :math:`h`.

    Parameters
    ----------
    E : callable
        The objective, mapping :math:`\theta` of shape ``(n,)`` to a scalar (twice
        differentiable by autograd).
    theta0 : torch.Tensor
        The start, shape ``(n,)``.
    h, gamma, mass : float
        Step :math:`h > 0`, friction :math:`\gamma \ge 0`, mass :math:`\mu > 0`.
    steps : int
        Number of steps, :math:`\ge 1`.
    p0 : torch.Tensor or None
        The initial momentum (zero by default).
    inputs : sequence of torch.Tensor or None
        Port inputs :math:`u^k`, one per step.
    discrete_gradient : {"gonzalez", "avf"}
        See :func:`port_hamiltonian_step`.

    Returns
    -------
    PortHamiltonianRun

    Examples
    --------
    >>> E = lambda th: (th**2).sum() + 0.25 * (th**4).sum()
    >>> run = port_hamiltonian_descent(E, torch.tensor([2.0, -1.0]).double(), 0.5, 1.0, 40)
    >>> bool((run.energy.diff() <= 0).all()), run.balance_defect() < 1e-13
    (True, True)
    """
    _validate.function(E, "E")
    _validate.tensor(theta0, "theta0")
    if theta0.dim() != 1:
        raise ValueError(f"theta0 must be a vector of shape (n,), got {tuple(theta0.shape)}")
    steps = _validate.positive_int(steps, "steps")
    mass = _validate.positive_real(mass, "mass")
    n = theta0.shape[0]
    if p0 is None:
        p0 = torch.zeros_like(theta0)
    else:
        _validate.tensor(p0, "p0")
        _validate.same_shape(p0, theta0, "p0", "theta0")
    B = None
    if inputs is not None:
        inputs = list(inputs)
        if len(inputs) != steps:
            raise ValueError(f"inputs must hold one tensor per step ({steps}), got {len(inputs)}")
        B = torch.cat([torch.zeros(n, n), torch.eye(n)]).to(theta0)
    J, R = descent_structure(n, gamma, mass, dtype=theta0.dtype, device=theta0.device)

    def H(z):
        return E(z[:n]) + 0.5 * (z[n:] * z[n:]).sum() / mass

    z = torch.cat([theta0.detach(), p0.detach().to(theta0)])
    states, energy, dissipated, supplied, iterations = [z], [float(H(z))], [], [], []
    for k in range(steps):
        u = inputs[k] if inputs is not None else None
        step = port_hamiltonian_step(H, z, h, J, R, B, u, discrete_gradient=discrete_gradient)
        z = step.z
        states.append(z)
        energy.append(float(H(z)))
        dissipated.append(step.dissipated)
        supplied.append(step.supplied)
        iterations.append(step.iterations)
    Z = torch.stack(states)
    f64 = torch.float64
    return PortHamiltonianRun(
        theta=Z[:, :n],
        p=Z[:, n:],
        energy=torch.tensor(energy, dtype=f64),
        dissipated=torch.tensor(dissipated, dtype=f64),
        supplied=torch.tensor(supplied, dtype=f64),
        iterations=iterations,
    )
