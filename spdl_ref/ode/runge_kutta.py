r"""Runge–Kutta methods from Butcher tableaux (Section 2.2 of the review).

An :math:`s`-stage method with tableau :math:`(a_{ij}, b_i, c_i)` advances
:math:`\dot z = f(t, z)` by

.. math::

    Z_i = z + h \sum_{j=1}^s a_{ij} f(t + c_i h, Z_j), \qquad
    z_{+} = z + h \sum_{i=1}^s b_i f(t + c_i h, Z_i).

Explicit methods (:math:`a_{ij} = 0` for :math:`j \ge i`) compute the stages in turn; implicit
ones solve the stage equations by fixed-point or Newton iteration to a stated tolerance and raise
:class:`RuntimeError` when the iteration does not converge. The tableaux are stored in float64 and
cast to the state's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import _validate

__all__ = [
    "TABLEAUX",
    "butcher_tableau",
    "is_algebraically_stable",
    "is_explicit",
    "odeint",
    "rk_step",
]

_S3 = 3.0**0.5


def _tableaux():
    half = 0.5
    return {
        "explicit_euler": ([[0.0]], [1.0], [0.0]),
        "rk4": (
            [[0, 0, 0, 0], [half, 0, 0, 0], [0, half, 0, 0], [0, 0, 1, 0]],
            [1 / 6, 1 / 3, 1 / 3, 1 / 6],
            [0, half, half, 1],
        ),
        "implicit_euler": ([[1.0]], [1.0], [1.0]),
        "implicit_midpoint": ([[half]], [1.0], [half]),
        # Gauss-Legendre, 2 stages, order 4
        "gauss4": (
            [[0.25, 0.25 - _S3 / 6], [0.25 + _S3 / 6, 0.25]],
            [half, half],
            [half - _S3 / 6, half + _S3 / 6],
        ),
        # Radau IIA, 2 stages, order 3
        "radau_iia3": ([[5 / 12, -1 / 12], [3 / 4, 1 / 4]], [3 / 4, 1 / 4], [1 / 3, 1.0]),
        # Lobatto IIIC, 2 stages, order 2
        "lobatto_iiic2": ([[half, -half], [half, half]], [half, half], [0.0, 1.0]),
    }


#: Names accepted by :func:`butcher_tableau`, with the classical order of each method.
TABLEAUX = {
    "explicit_euler": 1,
    "rk4": 4,
    "implicit_euler": 1,
    "implicit_midpoint": 2,
    "gauss4": 4,
    "radau_iia3": 3,
    "lobatto_iiic2": 2,
}


def butcher_tableau(name: str):
    r"""The Butcher tableau :math:`(A, b, c)` of a named Runge–Kutta method (Section 2.2).

    Parameters
    ----------
    name : str
        One of ``"explicit_euler"``, ``"rk4"``, ``"implicit_euler"``, ``"implicit_midpoint"``,
        ``"gauss4"`` (Gauss–Legendre, order 4), ``"radau_iia3"`` (Radau IIA, order 3),
        ``"lobatto_iiic2"`` (Lobatto IIIC, order 2).

    Returns
    -------
    (A, b, c) : tuple of float64 tensors of shapes ``(s, s)``, ``(s,)``, ``(s,)``.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    table = _tableaux()
    if name not in table:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(sorted(table))}")
    A, b, c = table[name]
    return tuple(torch.tensor(v, dtype=torch.float64) for v in (A, b, c))


def _check_tableau(A, b):
    if not isinstance(A, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError("A and b must be tensors")
    if A.dim() != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square matrix, got shape {tuple(A.shape)}")
    if b.shape != (A.shape[0],):
        raise ValueError(f"b must have shape ({A.shape[0]},) to match A, got {tuple(b.shape)}")


def is_algebraically_stable(A: torch.Tensor, b: torch.Tensor, tol: float = 1e-12) -> bool:
    r"""Algebraic stability of a tableau, which implies B-stability (Section 2.2.1).

    True when all weights :math:`b_i \ge 0` and :math:`M = BA + A^T B - b b^T` (with
    :math:`B = \operatorname{diag}(b)`) is positive semidefinite, both up to ``tol``.
    Such a method contracts the distance between two numerical solutions of any field with
    one-sided Lipschitz constant :math:`\nu \le 0`, for every step size :math:`h > 0`.
    """
    _check_tableau(A, b)
    A, b = A.double(), b.double()
    if bool((b < -tol).any()):
        return False
    B = torch.diag(b)
    M = B @ A + A.T @ B - torch.outer(b, b)
    return bool(torch.linalg.eigvalsh(0.5 * (M + M.T)).min() >= -tol)


def is_explicit(A: torch.Tensor) -> bool:
    """Whether a tableau's stage matrix is strictly lower triangular (an explicit method)."""
    return bool((torch.triu(A) == 0).all())


def rk_step(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    t: float,
    z: torch.Tensor,
    h: float,
    method="rk4",
    *,
    solver: str = "newton",
    tol: float = 1e-12,
    max_iter: int = 50,
) -> torch.Tensor:
    r"""One Runge–Kutta step :math:`z \mapsto z_+` for :math:`\dot z = f(t, z)` (Section 2.2).

    Parameters
    ----------
    f : callable
        The vector field ``f(t, z)``, returning a tensor of the shape of ``z``. For batched
        states ``z`` of shape ``(N, M)`` it must act row by row (as a network layer does).
    t, h : float
        Current time and step size (:math:`h > 0`).
    z : torch.Tensor
        Current state.
    method : str or tuple
        A name for :func:`butcher_tableau`, or a tableau ``(A, b, c)``.
    solver : {"newton", "fixed_point"}
        How the stage equations of an implicit method are solved. Newton steps are damped by
        backtracking on the stage residual (row by row for batched states) so that the iteration
        does not cycle on saturating activations.
    tol, max_iter
        Stop when the largest stage update is below ``tol`` times ``(1 + |Z|)``; raise
        :class:`RuntimeError` if that has not happened after ``max_iter`` iterations.
    """
    A, b, c = butcher_tableau(method) if isinstance(method, str) else method
    _check_tableau(A, b)
    _validate.tensor(z, "z")
    h = _validate.positive_real(h, "h")
    t = _validate.real(t, "t")
    if solver not in ("newton", "fixed_point"):
        raise ValueError(f"solver must be 'newton' or 'fixed_point', got {solver!r}")
    tol = _validate.positive_real(tol, "tol")
    max_iter = _validate.positive_int(max_iter, "max_iter")
    A, b, c = (v.to(dtype=z.dtype, device=z.device) for v in (A, b, c))
    s = A.shape[0]
    if is_explicit(A):
        k = []
        for i in range(s):
            Zi = z + h * sum(A[i, j] * k[j] for j in range(i)) if i else z
            k.append(f(t + float(c[i]) * h, Zi))
    else:
        k = _implicit_stages(f, t, z, h, A, c, solver, tol, max_iter)
    return z + h * sum(b[i] * k[i] for i in range(s))


def _stage_residual(f, t, z, h, A, c, K):
    # K: (s, *z.shape) stage derivatives; residual G(K) = K - f(t + c h, z + h A K)
    s = A.shape[0]
    Z = z.unsqueeze(0) + h * torch.einsum("ij,j...->i...", A, K)
    return K - torch.stack([f(t + float(c[i]) * h, Z[i]) for i in range(s)])


def _implicit_stages(f, t, z, h, A, c, solver, tol, max_iter):
    s = A.shape[0]
    K = torch.stack([f(t + float(c[i]) * h, z) for i in range(s)])
    for _ in range(max_iter):
        if solver == "fixed_point":
            Z = z.unsqueeze(0) + h * torch.einsum("ij,j...->i...", A, K)
            K_new = torch.stack([f(t + float(c[i]) * h, Z[i]) for i in range(s)])
        else:
            K_new = _damped_newton(f, t, z, h, A, c, K, _newton_update(f, t, z, h, A, c, K))
        delta = (K_new - K).detach().abs().max()
        K = K_new
        if not bool(torch.isfinite(K).all()):
            break
        if float(delta) * h <= tol * (1.0 + float(z.detach().abs().max())):
            return list(K)
    raise RuntimeError(
        f"implicit Runge-Kutta stages did not converge to tol={tol:g} in max_iter={max_iter} "
        f"{solver} iterations (step size h={h:g}); reduce h or raise max_iter"
    )


def _residual_norms(f, t, z, h, A, c, K):
    # norm of the stage residual per independent row (one row when z is a single state)
    G = _stage_residual(f, t, z, h, A, c, K).detach()
    if z.dim() <= 1:
        return G.reshape(1, -1).norm(dim=1)
    return G.movedim(1, 0).reshape(z.shape[0], -1).norm(dim=1)


def _damped_newton(f, t, z, h, A, c, K, dK, halvings=10):
    # Backtracking on the residual norm, row by row: the full Newton step when it reduces the
    # residual (so quadratic convergence is kept), else halve it. Plain Newton can cycle on
    # saturating activations such as tanh when h times the Lipschitz constant is large.
    g0 = _residual_norms(f, t, z, h, A, c, K)
    lam = torch.ones_like(g0)
    shape = (1, -1) + (1,) * (z.dim() - 1) if z.dim() > 1 else ()
    for _ in range(halvings):
        K_new = K - (lam.reshape(shape) if shape else lam[0]) * dK
        worse = _residual_norms(f, t, z, h, A, c, K_new) > g0 * (1 + 1e-12) + 1e-300
        if not bool(worse.any()):
            break
        lam = torch.where(worse, 0.5 * lam, lam)
    return K_new


def _newton_update(f, t, z, h, A, c, K):
    # Solve J dK = G(K) with the Jacobian of the stage residual, per batch row when batched.
    if z.dim() <= 1:
        G = _stage_residual(f, t, z, h, A, c, K)
        J = torch.func.jacrev(lambda KK: _stage_residual(f, t, z, h, A, c, KK))(K)
        n = G.numel()
        return torch.linalg.solve(J.reshape(n, n), G.reshape(n)).reshape(G.shape)
    # Batched states (N, M): the rows are independent, so solve N small systems.
    Kb = K.movedim(1, 0)  # (N, s, M)

    def residual_row(Kr, zr):
        return _stage_residual(lambda tt, v: f(tt, v.unsqueeze(0)).squeeze(0), t, zr, h, A, c, Kr)

    G = torch.func.vmap(residual_row)(Kb, z)
    J = torch.func.vmap(torch.func.jacrev(residual_row))(Kb, z)
    N, n = G.shape[0], G[0].numel()
    dK = torch.linalg.solve(J.reshape(N, n, n), G.reshape(N, n)).reshape(G.shape)
    return dK.movedim(0, 1)


def odeint(
    f, z0: torch.Tensor, t0: float, T: float, steps: int, method="rk4", **kwargs
) -> torch.Tensor:
    r"""Integrate :math:`\dot z = f(t, z)` from ``t0`` to ``T`` with ``steps`` equal steps.

    Returns the whole trajectory, shape ``(steps + 1, *z0.shape)``; keyword arguments go to
    :func:`rk_step`. With ``method="explicit_euler"`` and the ResNet field (8) this is eq. (6).
    """
    steps = _validate.positive_int(steps, "steps")
    t0, T = _validate.real(t0, "t0"), _validate.real(T, "T")
    if not t0 < T:
        raise ValueError(f"T must be greater than t0, got t0={t0}, T={T}")
    h = (T - t0) / steps
    out = [z0]
    for n in range(steps):
        out.append(rk_step(f, t0 + n * h, out[-1], h, method, **kwargs))
    return torch.stack(out)
