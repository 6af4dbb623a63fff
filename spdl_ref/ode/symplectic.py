r"""Symplectic integrators for separable, non-autonomous Hamiltonian systems (Section 2.2.2).

For :math:`H(t, z, p) = T(t, p) + V(t, z)` the equations (18)-(19) read
:math:`\dot z = \partial_p T`, :math:`\dot p = -\partial_z V`. The step maps here take the
gradients ``dT(t, p)`` :math:`= \partial_p T` and ``dV(t, z)`` :math:`= \partial_z V`; states are
batched, shape ``(N, M)`` (or any ``(..., M)``).

* :func:`symplectic_euler` -- eq. (22);
* :func:`stormer_verlet` -- the Störmer–Verlet (leapfrog) method, second order;
* :func:`extended_symplectic_euler` -- the same method applied to the autonomous system (20) on
  the extended phase space :math:`(z, t, p, p_t)` with :math:`K = H + p_t`.

Each step at fixed times is a composition of two shears whose increments are gradients
(Section 2.2.3), hence symplectic in :math:`(z, p)`.
"""

from __future__ import annotations

from typing import Callable

import torch

from .. import _validate

__all__ = [
    "extended_symplectic_euler",
    "stormer_verlet",
    "stormer_verlet_step",
    "symplectic_euler",
    "symplectic_euler_step",
]


def _check_state(z0, p0):
    _validate.tensor(z0, "z0")
    _validate.tensor(p0, "p0")
    if z0.shape != p0.shape:
        raise ValueError(f"z0 and p0 must have the same shape, got {tuple(z0.shape)} and {tuple(p0.shape)}")
    if z0.dim() == 0:
        raise ValueError("z0 and p0 must have at least one dimension (..., M)")


def _check_callables(dT, dV):
    if not callable(dT) or not callable(dV):
        raise TypeError("dT and dV must be callables dT(t, p) and dV(t, z)")


def symplectic_euler_step(dT, dV, t, z, p, h):
    r"""One step of symplectic Euler (22) from time ``t``:

    .. math::

        z^{k+1} = z^k + h\,\partial_p T(t^{k+1}, p^k), \qquad
        p^{k+1} = p^k - h\,\partial_z V(t^{k+1}, z^{k+1}).
    """
    t1 = t + h
    z1 = z + h * dT(t1, p)
    return z1, p - h * dV(t1, z1)


def stormer_verlet_step(dT, dV, t, z, p, h):
    r"""One Störmer–Verlet step (Section 2.2.2) for non-autonomous separable :math:`H`.

    The composition of the two symplectic Euler variants with step :math:`h/2` applied to the
    extended system (20):

    .. math::

        p^{k+1/2} = p^k - \tfrac h2 \partial_z V(t^k, z^k), \quad
        z^{k+1} = z^k + \tfrac h2\big(\partial_p T(t^k, p^{k+1/2})
        + \partial_p T(t^{k+1}, p^{k+1/2})\big), \quad
        p^{k+1} = p^{k+1/2} - \tfrac h2 \partial_z V(t^{k+1}, z^{k+1}).

    For autonomous :math:`T` this is the familiar leapfrog method.
    """
    t1 = t + h
    p_half = p - 0.5 * h * dV(t, z)
    z1 = z + 0.5 * h * (dT(t, p_half) + dT(t1, p_half))
    return z1, p_half - 0.5 * h * dV(t1, z1)


def _integrate(step, dT, dV, z0, p0, h, steps, t0):
    _check_callables(dT, dV)
    _check_state(z0, p0)
    h = _validate.positive_real(h, "h")
    steps = _validate.nonnegative_int(steps, "steps")
    t = _validate.real(t0, "t0")
    z, p = z0, p0
    for n in range(steps):
        z, p = step(dT, dV, t + n * h, z, p, h)
    return z, p


def symplectic_euler(
    dT: Callable, dV: Callable, z0: torch.Tensor, p0: torch.Tensor, h: float, steps: int, t0: float = 0.0
):
    r"""Symplectic Euler, eq. (22), for ``steps`` steps of size ``h`` from ``t0``.

    Parameters
    ----------
    dT, dV : callable
        ``dT(t, p)`` :math:`= \partial_p T(t, p)` and ``dV(t, z)`` :math:`= \partial_z V(t, z)`,
        each returning a tensor of the shape of its second argument.
    z0, p0 : torch.Tensor
        Initial positions and momenta, same shape ``(N, M)`` (or ``(..., M)``).
    h : float
        Step size, :math:`h > 0`.
    steps : int
        Number of steps, :math:`\ge 0`.
    t0 : float
        Initial time.

    Returns
    -------
    (z, p) : the state after ``steps`` steps, at time ``t0 + steps * h``.
    """
    return _integrate(symplectic_euler_step, dT, dV, z0, p0, h, steps, t0)


def stormer_verlet(
    dT: Callable, dV: Callable, z0: torch.Tensor, p0: torch.Tensor, h: float, steps: int, t0: float = 0.0
):
    r"""Störmer–Verlet (Section 2.2.2, a composition of shears, Section 2.2.3), second order.

    Same arguments and result as :func:`symplectic_euler`; each step is
    :func:`stormer_verlet_step`.
    """
    return _integrate(stormer_verlet_step, dT, dV, z0, p0, h, steps, t0)


def extended_symplectic_euler(T: Callable, V: Callable, z0, p0, h, steps, t0=0.0, pt0=0.0):
    r"""Symplectic Euler on the extended phase space, eq. (20).

    The extended Hamiltonian :math:`K(z, t, p, p_t) = T(t, p) + V(t, z) + p_t` is autonomous;
    with positions :math:`(z, t)` and momenta :math:`(p, p_t)` the symplectic Euler variant that
    updates positions first is explicit:

    .. math::

        t^{k+1} = t^k + h, \quad z^{k+1} = z^k + h\,\partial_p T(t^{k+1}, p^k), \quad
        p^{k+1} = p^k - h\,\partial_z V(t^{k+1}, z^{k+1}), \quad
        p_t^{k+1} = p_t^k - h\,\partial_t\big(T(t^{k+1}, p^k) + V(t^{k+1}, z^{k+1})\big).

    Its :math:`(z, p)` components are exactly those of eq. (22), and :math:`p_t` records how
    :math:`H` changes (:math:`K` is conserved by the exact flow).

    Parameters
    ----------
    T, V : callable
        Energies ``T(t, p)`` and ``V(t, z)`` returning one value per sample, shape
        ``p.shape[:-1]``; ``t`` is passed as a tensor of shape ``(..., 1)`` (one time per
        sample, broadcastable against ``p``), and the derivatives are taken by autograd.
    z0, p0 : torch.Tensor
        Initial state, shape ``(..., M)``.
    h, steps, t0 :
        As for :func:`symplectic_euler`.
    pt0 : float or torch.Tensor
        Initial :math:`p_t` (broadcast to ``z0.shape[:-1]``).

    Returns
    -------
    (z, p, t, p_t) : the extended state after ``steps`` steps; ``t`` is a float.
    """
    if not callable(T) or not callable(V):
        raise TypeError("T and V must be callables T(t, p) and V(t, z)")
    _check_state(z0, p0)
    h = _validate.positive_real(h, "h")
    steps = _validate.nonnegative_int(steps, "steps")
    t0 = _validate.real(t0, "t0")
    pt = torch.as_tensor(pt0, dtype=z0.dtype, device=z0.device).expand(z0.shape[:-1]).clone()
    z, p = z0, p0
    for n in range(steps):
        # one time variable per sample, shape (..., 1), so that d/dt is taken sample by sample
        t1 = torch.full((*z.shape[:-1], 1), t0 + (n + 1) * h, dtype=z.dtype, device=z.device)
        with torch.enable_grad():
            t1.requires_grad_(True)
            pv = p.detach().requires_grad_(True)
            Ts = T(t1, pv)
            gp, gtT = torch.autograd.grad(Ts.sum(), (pv, t1), allow_unused=True)
            z = (z + h * gp).detach()
            zv = z.detach().requires_grad_(True)
            Vs = V(t1, zv)
            gz, gtV = torch.autograd.grad(Vs.sum(), (zv, t1), allow_unused=True)
        dtE = sum(g for g in (gtT, gtV) if g is not None)
        p = (p - h * gz).detach()
        if not isinstance(dtE, int):
            pt = pt - h * dtE.squeeze(-1)
    return z, p, t0 + steps * h, pt
