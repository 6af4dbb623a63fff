r"""Symplectic integrators for separable, non-autonomous Hamiltonian systems (Section 2.2.2).

For :math:`H(t, z, p) = T(t, p) + V(t, z)` the equations (18)-(19) read
:math:`\dot z = \partial_p T`, :math:`\dot p = -\partial_z V`. The step maps here take the
gradients ``dT(t, p)`` :math:`= \partial_p T` and ``dV(t, z)`` :math:`= \partial_z V`; states are
batched, shape ``(N, M)`` (or any ``(..., M)``).

* :func:`symplectic_euler` -- eq. (22);
* :func:`stormer_verlet` -- the Störmer–Verlet (leapfrog) method, second order;
* :func:`extended_symplectic_euler` -- the same method applied to the autonomous system (20) on
  the extended phase space :math:`(z, t, p, p_t)` with :math:`K = H + p_t`;
  :func:`extended_phase_space_run` also records :math:`t`, :math:`H` and :math:`K` along the way;
* :func:`separable_step_map`, :func:`step_jacobian` and :func:`symplecticity_defect` -- the test
  :math:`M^T J M = J` for the Jacobian :math:`M` of one step (Section 2.2.2);
* :data:`SYMPLECTIC_METHODS` -- the two steppers as :class:`SymplecticStepper` objects, the
  integrators an :class:`~spdl_ref.ode.ODENet` of a Hamiltonian field can use.

Each step at fixed times is a composition of two shears whose increments are gradients
(Section 2.2.3), hence symplectic in :math:`(z, p)`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple

import torch

from .. import _validate
from .discrete_gradient import canonical_J

__all__ = [
    "SYMPLECTIC_METHODS",
    "ExtendedPhaseSpaceRun",
    "SymplecticStepper",
    "extended_phase_space_run",
    "extended_symplectic_euler",
    "separable_step_map",
    "step_jacobian",
    "stormer_verlet",
    "stormer_verlet_step",
    "symplectic_euler",
    "symplectic_euler_step",
    "symplecticity_defect",
]


def _check_state(z0, p0):
    _validate.tensor(z0, "z0")
    _validate.tensor(p0, "p0")
    if z0.shape != p0.shape:
        raise ValueError(
            f"z0 and p0 must have the same shape, got {tuple(z0.shape)} and {tuple(p0.shape)}"
        )
    if z0.dim() == 0:
        raise ValueError("z0 and p0 must have at least one dimension (..., M)")


def _check_callables(dT, dV):
    if not callable(dT) or not callable(dV):
        raise TypeError("dT and dV must be callables dT(t, p) and dV(t, z)")


def symplectic_euler_step(
    dT: Callable[..., torch.Tensor],
    dV: Callable[..., torch.Tensor],
    t: float | torch.Tensor,
    z: torch.Tensor,
    p: torch.Tensor,
    h: float | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step of symplectic Euler (22) from time ``t``:

    .. math::

        z^{k+1} = z^k + h\,\partial_p T(t^{k+1}, p^k), \qquad
        p^{k+1} = p^k - h\,\partial_z V(t^{k+1}, z^{k+1}).
    """
    t1 = t + h
    z1 = z + h * dT(t1, p)
    return z1, p - h * dV(t1, z1)


def stormer_verlet_step(
    dT: Callable[..., torch.Tensor],
    dV: Callable[..., torch.Tensor],
    t: float | torch.Tensor,
    z: torch.Tensor,
    p: torch.Tensor,
    h: float | torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
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


class SymplecticStepper(NamedTuple):
    r"""A one-step method for separable Hamiltonian systems as a network's integrator (§2.2.2).

    ``step(dT, dV, t, z, p, h)`` returns the state :math:`(z^{k+1}, p^{k+1})` after one step of
    size ``h`` from time ``t`` (:func:`symplectic_euler_step` or :func:`stormer_verlet_step`);
    ``order`` is its classical order.
    """

    name: str
    order: int
    step: Callable


#: The symplectic integrators by name: symplectic Euler (22) and Störmer–Verlet.
SYMPLECTIC_METHODS = {
    "symplectic_euler": SymplecticStepper("symplectic_euler", 1, symplectic_euler_step),
    "stormer_verlet": SymplecticStepper("stormer_verlet", 2, stormer_verlet_step),
}


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
    dT: Callable,
    dV: Callable,
    z0: torch.Tensor,
    p0: torch.Tensor,
    h: float,
    steps: int,
    t0: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
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
    dT: Callable,
    dV: Callable,
    z0: torch.Tensor,
    p0: torch.Tensor,
    h: float,
    steps: int,
    t0: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Störmer–Verlet (Section 2.2.2, a composition of shears, Section 2.2.3), second order.

    Same arguments and result as :func:`symplectic_euler`; each step is
    :func:`stormer_verlet_step`.
    """
    return _integrate(stormer_verlet_step, dT, dV, z0, p0, h, steps, t0)


def extended_symplectic_euler(
    T: Callable,
    V: Callable,
    z0: torch.Tensor,
    p0: torch.Tensor,
    h: float,
    steps: int,
    t0: float = 0.0,
    pt0: float | torch.Tensor = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
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
    (z, p, t, p_t) : the extended state after ``steps`` steps; ``t`` is a float, advanced as the
    position :math:`t^{k+1} = t^k + h` (so ``t0 + steps * h`` up to round-off).
    """
    h, steps, t0, pt = _check_extended(T, V, z0, p0, h, steps, t0, pt0)
    last = deque(_extended_steps(T, V, z0, p0, h, steps, t0, pt), maxlen=1)
    t, _, z, p, pt = last[0] if last else (t0, None, z0, p0, pt)
    return z, p, t, pt


def _check_extended(T, V, z0, p0, h, steps, t0, pt0):
    if not callable(T) or not callable(V):
        raise TypeError("T and V must be callables T(t, p) and V(t, z)")
    _check_state(z0, p0)
    h = _validate.positive_real(h, "h")
    steps = _validate.nonnegative_int(steps, "steps")
    t0 = _validate.real(t0, "t0")
    if isinstance(pt0, torch.Tensor):
        _validate.tensor(pt0, "pt0")
    else:
        _validate.real(pt0, "pt0")
    try:
        pt = torch.as_tensor(pt0, dtype=z0.dtype, device=z0.device).expand(z0.shape[:-1]).clone()
    except RuntimeError as err:
        raise ValueError(
            f"pt0 must broadcast to z0.shape[:-1] = {tuple(z0.shape[:-1])}, "
            f"got shape {tuple(torch.as_tensor(pt0).shape)}"
        ) from err
    return h, steps, t0, pt


def _extended_steps(T, V, z, p, h, steps, t0, pt):
    """Yield ``(t, t1, z, p, p_t)`` after each step of :func:`extended_symplectic_euler`.

    ``t`` is the float time, advanced as the position :math:`t^{k+1} = t^k + h` of (20);
    ``t1`` holds it once per sample, shape ``(..., 1)``.
    """
    t = t0
    for _ in range(steps):
        t = t + h
        # one time variable per sample, shape (..., 1), so that d/dt is taken sample by sample
        t1 = torch.full((*z.shape[:-1], 1), t, dtype=z.dtype, device=z.device)
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
        yield t, t1.detach(), z, p, pt


class ExtendedPhaseSpaceRun(NamedTuple):
    r"""Result of :func:`extended_phase_space_run` (extended phase space, eq. (20)).

    Fields ``z``, ``p`` (final state, shape ``(..., M)``), ``t`` (the times
    :math:`t^0, \dots, t^n`, shape ``(steps + 1,)``), ``H`` and ``K`` (the energy
    :math:`H(t^k, z^k, p^k)` and the extended energy :math:`K = H + p_t^k`, each of shape
    ``(steps + 1, ...)``) and ``p_t`` (final :math:`p_t`, shape ``(...)``).
    """

    z: torch.Tensor
    p: torch.Tensor
    t: torch.Tensor
    H: torch.Tensor
    K: torch.Tensor
    p_t: torch.Tensor


def extended_phase_space_run(
    T: Callable,
    V: Callable,
    z0: torch.Tensor,
    p0: torch.Tensor,
    h: float,
    steps: int,
    t0: float = 0.0,
    pt0: float | torch.Tensor = 0.0,
) -> ExtendedPhaseSpaceRun:
    r"""Integrate the extended system (20) and record :math:`t`, :math:`H` and :math:`K = H + p_t`.

    The steps are those of :func:`extended_symplectic_euler` (symplectic Euler on the extended
    phase space, Section 2.2.2, whose :math:`(z, p)` components are eq. (22)). Along the way the
    time-dependent energy :math:`H(t, z, p) = T(t, p) + V(t, z)` is recorded, which changes, and
    the extended Hamiltonian :math:`K = H + p_t`, which the exact flow conserves, so that its drift
    measures the error of the method.

    Parameters
    ----------
    T, V, z0, p0, h, steps, t0, pt0 :
        As for :func:`extended_symplectic_euler`.

    Returns
    -------
    ExtendedPhaseSpaceRun
        Named tuple ``(z, p, t, H, K, p_t)``: final state, the ``steps + 1`` times
        :math:`t^k` (:math:`t^{k+1} = t^k + h`, the time as a position of (20)), the energies
        :math:`H` and :math:`K` at those times (shape ``(steps + 1, ...)``), and the final
        :math:`p_t`.
    """
    h, steps, t0, pt_start = _check_extended(T, V, z0, p0, h, steps, t0, pt0)

    def energy(t, z, p):
        with torch.no_grad():
            return (T(t, p) + V(t, z)).detach()

    t_start = torch.full((*z0.shape[:-1], 1), t0, dtype=z0.dtype, device=z0.device)
    H0 = energy(t_start, z0, p0)
    ts, Hs, Ks = [t0], [H0], [H0 + pt_start]
    z, p, pt = z0, p0, pt_start
    for t, t1, z, p, pt in _extended_steps(T, V, z0, p0, h, steps, t0, pt_start):
        Hk = energy(t1, z, p)
        ts.append(t)
        Hs.append(Hk)
        Ks.append(Hk + pt)
    t = torch.tensor(ts, dtype=z0.dtype, device=z0.device)
    return ExtendedPhaseSpaceRun(z, p, t, torch.stack(Hs), torch.stack(Ks), pt)


def separable_step_map(
    method: str, dT: Callable, dV: Callable, h: float, t0: float = 0.0
) -> Callable:
    r"""One step of a separable integrator as a map :math:`u = (z, p) \mapsto \Phi_h(u)`.

    Section 2.2.2. The stacked state :math:`u = (z, p)` has shape ``(..., 2M)`` (positions
    first); the map returns the stacked state after one step from time ``t0``. This is the map
    whose Jacobian :math:`M` the symplecticity test :math:`M^T J M = J` looks at (see
    :func:`step_jacobian` and :func:`symplecticity_defect`).

    Parameters
    ----------
    method : {"symplectic_euler", "stormer_verlet"}
        Symplectic Euler, eq. (22), or Störmer–Verlet.
    dT, dV : callable
        ``dT(t, p)`` :math:`= \partial_p T` and ``dV(t, z)`` :math:`= \partial_z V`, as for
        :func:`symplectic_euler`.
    h : float
        Step size, :math:`h > 0`.
    t0 : float
        Time at which the step starts.

    Returns
    -------
    callable
        ``step(u)`` returning a tensor of the shape of ``u``.
    """
    if not isinstance(method, str) or method not in SYMPLECTIC_METHODS:
        raise ValueError(f"method must be 'symplectic_euler' or 'stormer_verlet', got {method!r}")
    _check_callables(dT, dV)
    h = _validate.positive_real(h, "h")
    t0 = _validate.real(t0, "t0")
    one = SYMPLECTIC_METHODS[method].step

    def step(u: torch.Tensor) -> torch.Tensor:
        _validate.floating_tensor(u, "u")
        if u.dim() == 0 or u.shape[-1] % 2:
            raise ValueError(
                f"u must have an even last dimension 2M (z then p), got shape {tuple(u.shape)}"
            )
        m = u.shape[-1] // 2
        z1, p1 = one(dT, dV, t0, u[..., :m], u[..., m:], h)
        return torch.cat([z1, p1], -1)

    return step


def step_jacobian(step: Callable, v: torch.Tensor) -> torch.Tensor:
    r"""The Jacobian :math:`M = \partial \Phi(v) / \partial v` of a one-step map (Section 2.2.2).

    A map :math:`\Phi` is symplectic when :math:`M^T J M = J` at every point; this function
    computes :math:`M` at one point by automatic differentiation (use float64 for the test).

    Parameters
    ----------
    step : callable
        The map ``step(v)``, from a state of shape ``(d,)`` to one of shape ``(d,)``, e.g. from
        :func:`separable_step_map`.
    v : torch.Tensor
        The point, a floating-point vector of shape ``(d,)``.

    Returns
    -------
    torch.Tensor
        :math:`M`, shape ``(d, d)``.
    """
    if not callable(step):
        raise TypeError(f"step must be callable, got {type(step).__name__}")
    _validate.tensor(v, "v")
    if v.dim() != 1:
        raise ValueError(f"v must be a vector of shape (d,), got shape {tuple(v.shape)}")
    M = torch.autograd.functional.jacobian(step, v)
    if M.shape != (v.shape[0], v.shape[0]):
        raise ValueError(
            f"step must map shape (d,) to (d,), got a Jacobian of shape {tuple(M.shape)}"
        )
    return M


def symplecticity_defect(M: torch.Tensor, J: torch.Tensor | None = None) -> torch.Tensor:
    r"""The defect :math:`\max_{ij} |(M^T J M - J)_{ij}|` of a Jacobian :math:`M` (Section 2.2.2).

    Zero (to round-off) exactly when the map with Jacobian :math:`M` is symplectic at that point,
    :math:`M^T J M = J`, for the Darboux matrix :math:`J` of Section 2.1.2.

    Parameters
    ----------
    M : torch.Tensor
        Jacobian(s), shape ``(..., d, d)`` with :math:`d = 2M` even, e.g. from
        :func:`step_jacobian`.
    J : torch.Tensor, optional
        Skew matrix of shape ``(d, d)``; default :func:`canonical_J` ``(d)``.

    Returns
    -------
    torch.Tensor
        The defect, shape ``M.shape[:-2]`` (a 0-d tensor for one matrix).
    """
    _validate.tensor(M, "M")
    if M.dim() < 2 or M.shape[-1] != M.shape[-2]:
        raise ValueError(f"M must have shape (..., d, d), got {tuple(M.shape)}")
    d = M.shape[-1]
    if J is None:
        J = canonical_J(d, dtype=M.dtype, device=M.device)
    else:
        _validate.tensor(J, "J")
        if J.shape != (d, d):
            raise ValueError(f"J must have shape ({d}, {d}) to match M, got {tuple(J.shape)}")
        J = J.to(dtype=M.dtype, device=M.device)
    return (M.mT @ J @ M - J).abs().amax(dim=(-2, -1))
