r"""Runge–Kutta methods from Butcher tableaux (Section 2.2 of the review).

An :math:`s`-stage method with tableau :math:`(a_{ij}, b_i, c_i)` advances
:math:`\dot z = f(t, z)` by

.. math::

    Z_i = z + h \sum_{j=1}^s a_{ij} f(t + c_i h, Z_j), \qquad
    z_{+} = z + h \sum_{i=1}^s b_i f(t + c_i h, Z_i).

Explicit methods (:math:`a_{ij} = 0` for :math:`j \ge i`) compute the stages in turn; implicit
ones solve the stage equations by fixed-point or Newton iteration to a stated tolerance and raise
:class:`RuntimeError` when the iteration does not converge. A tableau is checked once, when it
becomes a :class:`ButcherTableau`; the tableaux are stored in float64 and the explicit stages use
the coefficients as Python floats, so they follow the state's dtype and device.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import _validate

__all__ = [
    "TABLEAUX",
    "ButcherTableau",
    "as_tableau",
    "butcher_tableau",
    "check_solver_options",
    "fitted_order",
    "is_algebraically_stable",
    "is_explicit",
    "observed_orders",
    "odeint",
    "rk_step",
]

_S3 = 3.0**0.5

#: A tableau as nested lists of numbers, ``(A, b, c)``.
_Entries = tuple[list[list[float]], list[float], list[float]]


def _tableaux() -> dict[str, _Entries]:
    half = 0.5
    return {
        "explicit_euler": ([[0.0]], [1.0], [0.0]),
        # Heun's method (the explicit trapezoidal rule), order 2
        "heun": ([[0.0, 0.0], [1.0, 0.0]], [half, half], [0.0, 1.0]),
        # Kutta's third-order method
        "kutta3": ([[0, 0, 0], [half, 0, 0], [-1.0, 2.0, 0]], [1 / 6, 2 / 3, 1 / 6], [0, half, 1]),
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
    "heun": 2,
    "kutta3": 3,
    "rk4": 4,
    "implicit_euler": 1,
    "implicit_midpoint": 2,
    "gauss4": 4,
    "radau_iia3": 3,
    "lobatto_iiic2": 2,
}


class ButcherTableau(tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
    r"""A checked Runge–Kutta tableau :math:`(A, b, c)` (Section 2.2).

    A tuple of three float64 tensors of shapes ``(s, s)``, ``(s,)``, ``(s,)``, so
    ``A, b, c = tableau`` works, that also carries what the steppers need: the number of stages
    :attr:`stages`, whether the method is :attr:`explicit`, its :attr:`name` and classical
    :attr:`order` (``None`` for a tableau given by its entries), and the coefficients as Python
    floats. Build one with :func:`butcher_tableau` (by name) or :func:`as_tableau` (which also
    checks a tableau given as ``(A, b, c)``).
    """

    name: str | None
    order: int | None
    stages: int
    explicit: bool
    a_list: list[list[float]]
    b_list: list[float]
    c_list: list[float]

    def __new__(
        cls, A: Any, b: Any, c: Any, name: str | None = None, order: int | None = None
    ) -> ButcherTableau:
        A, b, c = _checked_entries(A, b, c, "method")
        self = super().__new__(cls, (A, b, c))
        self.name = name
        self.order = order
        self.stages = A.shape[0]
        self.explicit = is_explicit(A)
        self.a_list, self.b_list, self.c_list = A.tolist(), b.tolist(), c.tolist()
        return self

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (*self, self.name, self.order)

    @property
    def A(self) -> torch.Tensor:
        """The stage matrix :math:`(a_{ij})`, shape ``(s, s)``."""
        return self[0]

    @property
    def b(self) -> torch.Tensor:
        """The weights :math:`b_i`, shape ``(s,)``."""
        return self[1]

    @property
    def c(self) -> torch.Tensor:
        """The nodes :math:`c_i`, shape ``(s,)``."""
        return self[2]

    def stage_values(
        self,
        f: Callable[..., torch.Tensor],
        t: float,
        z: torch.Tensor,
        h: float | torch.Tensor,
        **solver_options: Any,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        r"""The stages of one step: values :math:`Z_i` and slopes :math:`f(t + c_i h, Z_i)`.

        The building block of :meth:`step` and of the adjoints of Section 3, which need the
        stages themselves. Nothing is checked here (``h`` may be a tensor, e.g. a learnt step
        size (38), and may be zero), so that a network can call it once per layer;
        ``solver_options`` (``solver``, ``tol``, ``max_iter``, see :func:`rk_step`) apply to
        implicit methods.

        Returns
        -------
        (Z, F) : two lists of ``s`` tensors of the shape of ``z``.
        """
        s = self.stages
        if self.explicit:
            a, c = self.a_list, self.c_list
            Z: list[torch.Tensor] = []
            F: list[torch.Tensor] = []
            for i in range(s):
                Zi = z
                for j in range(i):
                    if a[i][j] != 0.0:
                        Zi = Zi + (h * a[i][j]) * F[j]
                Z.append(Zi)
                F.append(f(t + c[i] * h, Zi))
            return Z, F
        solver = solver_options.get("solver", "newton")
        tol = solver_options.get("tol", 1e-12)
        max_iter = solver_options.get("max_iter", 50)
        A, _, c_t = (v.to(dtype=z.dtype, device=z.device) for v in self)
        F = _implicit_stages(f, t, z, h, A, c_t, solver, tol, max_iter)
        Z = [z + h * sum(A[i, j] * F[j] for j in range(s)) for i in range(s)]
        return Z, F

    def step(
        self,
        f: Callable[..., torch.Tensor],
        t: float,
        z: torch.Tensor,
        h: float | torch.Tensor,
        **solver_options: Any,
    ) -> torch.Tensor:
        """One step :math:`z \\mapsto z + h \\sum_i b_i f(t + c_i h, Z_i)`, unchecked.

        :func:`rk_step` without its argument checks, for integrators and networks that check
        their arguments once rather than at every step; ``h`` may be a tensor.
        """
        _, F = self.stage_values(f, t, z, h, **solver_options)
        return self.update(z, h, F)

    def update(
        self, z: torch.Tensor, h: float | torch.Tensor, F: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """:math:`z + h \\sum_i b_i F_i` for the stage slopes ``F`` of :meth:`stage_values`."""
        out = z
        for bi, Fi in zip(self.b_list, F, strict=True):
            if bi != 0.0:
                out = out + (h * bi) * Fi
        return out

    def __repr__(self) -> str:
        label = self.name or "tableau"
        return f"ButcherTableau({label}, stages={self.stages}, explicit={self.explicit})"


def _checked_entries(
    A: Any, b: Any, c: Any, name: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    parts: dict[str, torch.Tensor] = {}
    for part, value in (("A", A), ("b", b), ("c", c)):
        if isinstance(value, torch.Tensor):
            if value.is_complex() or value.dtype == torch.bool:
                raise TypeError(f"{name}: {part} must be a real tensor, got dtype {value.dtype}")
            value = value.detach().to(device="cpu", dtype=torch.float64)
        else:
            try:
                # on the CPU whatever the default device (the tableaux are shared constants)
                value = torch.as_tensor(value, dtype=torch.float64, device="cpu")
            except (TypeError, ValueError, RuntimeError) as err:
                raise TypeError(
                    f"{name}: {part} must be a tensor of real numbers, got {type(value).__name__}"
                ) from err
        parts[part] = value
    A, b, c = parts["A"], parts["b"], parts["c"]
    if A.dim() != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        raise ValueError(
            f"{name}: A must be a non-empty square matrix (s, s), got {tuple(A.shape)}"
        )
    s = A.shape[0]
    if b.shape != (s,):
        raise ValueError(
            f"{name}: b must have shape ({s},) to match A of {s} stages, got {tuple(b.shape)}"
        )
    if c.shape != (s,):
        raise ValueError(
            f"{name}: c must have shape ({s},) to match A of {s} stages, got {tuple(c.shape)}"
        )
    for part, value in parts.items():
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: {part} must contain only finite values")
    if abs(float(b.sum()) - 1.0) > 1e-12:
        raise ValueError(
            f"{name}: the weights b must sum to 1 (a consistent method), got {float(b.sum())!r}"
        )
    return A, b, c


def butcher_tableau(name: str) -> ButcherTableau:
    r"""The Butcher tableau :math:`(A, b, c)` of a named Runge–Kutta method (Section 2.2).

    Parameters
    ----------
    name : str
        One of ``"explicit_euler"``, ``"heun"`` (explicit trapezoidal rule, order 2),
        ``"kutta3"`` (Kutta's third-order method), ``"rk4"``, ``"implicit_euler"``,
        ``"implicit_midpoint"``, ``"gauss4"`` (Gauss–Legendre, order 4), ``"radau_iia3"``
        (Radau IIA, order 3), ``"lobatto_iiic2"`` (Lobatto IIIC, order 2); :data:`TABLEAUX`
        lists them with their orders.

    Returns
    -------
    ButcherTableau
        The tuple ``(A, b, c)`` of float64 tensors of shapes ``(s, s)``, ``(s,)``, ``(s,)``.

    Examples
    --------
    >>> A, b, c = butcher_tableau("heun")
    >>> A.tolist(), b.tolist(), c.tolist()
    ([[0.0, 0.0], [1.0, 0.0]], [0.5, 0.5], [0.0, 1.0])
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    table = _tableaux()
    if name not in table:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(sorted(table))}")
    return ButcherTableau(*table[name], name=name, order=TABLEAUX[name])


def as_tableau(method: str | Sequence[Any], name: str = "method") -> ButcherTableau:
    """Check a Runge–Kutta method given by name or by its tableau (Section 2.2).

    ``method`` is a name for :func:`butcher_tableau`, a :class:`ButcherTableau`, or a tuple
    ``(A, b, c)`` of tensors (or nested lists of numbers). Raises :class:`TypeError` or
    :class:`ValueError` naming ``name`` and the rule broken: A square, b and c of one entry per
    stage, all entries finite, the weights summing to one.
    """
    if isinstance(method, ButcherTableau):
        return method
    if isinstance(method, str):
        return butcher_tableau(method)
    if not isinstance(method, (tuple, list)) or len(method) != 3:
        raise TypeError(
            f"{name} must be a method name ({', '.join(TABLEAUX)}) or a Butcher tableau "
            f"(A, b, c), got {type(method).__name__}"
            + (f" of length {len(method)}" if isinstance(method, (tuple, list)) else "")
        )
    A, b, c = method
    return ButcherTableau(*_checked_entries(A, b, c, name))


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
    """Whether a tableau's stage matrix is strictly lower triangular (an explicit method).

    Explicit Runge–Kutta methods are those of Section 2.2 that a ResNet layer can be."""
    return bool((torch.triu(A) == 0).all())


def check_solver_options(options: dict, name: str = "solver options") -> dict:
    """Check options of the implicit stage solver (``solver``, ``tol``, ``max_iter``; Section 2.2).

    Returns a copy holding the options given, checked as :func:`rk_step` documents them; an
    unknown key raises :class:`TypeError` naming ``name``.
    """
    unknown = set(options) - {"solver", "tol", "max_iter"}
    if unknown:
        raise TypeError(f"unknown {name} {sorted(unknown)}; known: solver, tol, max_iter")
    out = dict(options)
    if "solver" in out and out["solver"] not in ("newton", "fixed_point"):
        raise ValueError(f"solver must be 'newton' or 'fixed_point', got {out['solver']!r}")
    if "tol" in out:
        out["tol"] = _validate.positive_real(out["tol"], "tol")
    if "max_iter" in out:
        out["max_iter"] = _validate.positive_int(out["max_iter"], "max_iter")
    return out


def rk_step(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    t: float,
    z: torch.Tensor,
    h: float,
    method: str | Sequence[Any] = "rk4",
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
        A name for :func:`butcher_tableau`, or a tableau ``(A, b, c)`` (checked by
        :func:`as_tableau`).
    solver : {"newton", "fixed_point"}
        How the stage equations of an implicit method are solved. Newton steps are damped by
        backtracking on the stage residual (row by row for batched states) so that the iteration
        does not cycle on saturating activations.
    tol, max_iter
        Stop when the largest stage update is below ``tol`` times ``(1 + |Z|)``; raise
        :class:`RuntimeError` if that has not happened after ``max_iter`` iterations.

    Examples
    --------
    >>> z = torch.tensor([1.0], dtype=torch.float64)
    >>> rk_step(lambda t, v: -v, 0.0, z, 0.1, "heun")  # 1 - h + h^2 / 2
    tensor([0.9050], dtype=torch.float64)
    """
    tableau = as_tableau(method)
    _validate.tensor(z, "z")
    h = _validate.positive_real(h, "h")
    t = _validate.real(t, "t")
    options = check_solver_options({"solver": solver, "tol": tol, "max_iter": max_iter})
    return tableau.step(f, t, z, h, **options)


def _stage_residual(f, t, z, h, A, c, K):
    # K: (s, *z.shape) stage derivatives; residual G(K) = K - f(t + c h, z + h A K)
    s = A.shape[0]
    Z = z.unsqueeze(0) + h * torch.einsum("ij,j...->i...", A, K)
    return K - torch.stack([f(t + float(c[i]) * h, Z[i]) for i in range(s)])


def _implicit_stages(f, t, z, h, A, c, solver, tol, max_iter):
    s = A.shape[0]
    h_value = float(h.detach()) if isinstance(h, torch.Tensor) else float(h)
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
        if float(delta) * h_value <= tol * (1.0 + float(z.detach().abs().max())):
            return list(K)
    raise RuntimeError(
        f"implicit Runge-Kutta stages did not converge to tol={tol:g} in max_iter={max_iter} "
        f"{solver} iterations (step size h={h_value:g}); reduce h or raise max_iter"
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
    f: Callable[[float, torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    t0: float,
    T: float,
    steps: int,
    method: str | Sequence[Any] = "rk4",
    **kwargs: Any,
) -> torch.Tensor:
    r"""Integrate :math:`\dot z = f(t, z)` from ``t0`` to ``T`` with ``steps`` equal steps.

    Returns the whole trajectory, shape ``(steps + 1, *z0.shape)``; keyword arguments
    (``solver``, ``tol``, ``max_iter``) are those of :func:`rk_step`. With
    ``method="explicit_euler"`` and the ResNet field (8) this is eq. (6).
    """
    steps = _validate.positive_int(steps, "steps")
    t0, T = _validate.real(t0, "t0"), _validate.real(T, "T")
    if not t0 < T:
        raise ValueError(f"T must be greater than t0, got t0={t0}, T={T}")
    tableau = as_tableau(method)
    _validate.tensor(z0, "z0")
    options = check_solver_options(kwargs, "keyword arguments of odeint")
    h = (T - t0) / steps
    out = [z0]
    for n in range(steps):
        out.append(tableau.step(f, t0 + n * h, out[-1], h, **options))
    return torch.stack(out)


def _check_convergence_data(sizes, errors):
    if not isinstance(sizes, (list, tuple)) or not isinstance(errors, (list, tuple)):
        raise TypeError("sizes and errors must be lists (or tuples) of numbers")
    if len(sizes) != len(errors) or len(sizes) < 2:
        raise ValueError(
            f"sizes and errors must have the same length >= 2, got {len(sizes)} and {len(errors)}"
        )
    sizes = [_validate.positive_real(n, "sizes") for n in sizes]
    errors = [_validate.positive_real(e, "errors") for e in errors]
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ValueError(f"sizes must increase, got {sizes}")
    return sizes, errors


def observed_orders(sizes: Sequence[float], errors: Sequence[float]) -> list[float]:
    r"""Observed orders :math:`\log(e_i / e_{i+1}) / \log(n_{i+1} / n_i)` of a convergent sequence.

    ``sizes`` :math:`n_i` are increasing numbers of steps (or layers :math:`K`), ``errors``
    :math:`e_i > 0` the errors at those sizes; an error :math:`C n^{-q}` gives :math:`q` for
    every pair (Section 2.2; the rates in :math:`K` of Section 3.3).

    Examples
    --------
    >>> observed_orders([4, 8, 16], [1.0, 0.25, 0.0625])
    [2.0, 2.0]
    """
    sizes, errors = _check_convergence_data(sizes, errors)
    pairs = itertools.pairwise(zip(sizes, errors, strict=True))
    return [math.log(e0 / e1) / math.log(n1 / n0) for (n0, e0), (n1, e1) in pairs]


def fitted_order(sizes: Sequence[float], errors: Sequence[float]) -> float:
    r"""The least-squares slope :math:`q` of :math:`\log e = c - q \log n` over all sizes.
    See Section 2.2 of the review (the rates in K of Section 3.3 are fitted the same way).

    One number for the rate of a sequence (see :func:`observed_orders` for the pairwise ones).

    Examples
    --------
    >>> round(fitted_order([4, 8, 16, 32], [3.0, 1.5, 0.75, 0.375]), 12)
    1.0
    """
    sizes, errors = _check_convergence_data(sizes, errors)
    xs = [math.log(n) for n in sizes]
    ys = [math.log(e) for e in errors]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return -sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
