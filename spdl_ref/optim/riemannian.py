r"""Riemannian gradient descent on SO(n), the Stiefel manifold and the sphere, Section 6.2.1.

A parameter :math:`\theta \in V_{n,p} = \{\theta \in \mathbb{R}^{n\times p} : \theta^T\theta =
I_p\}` (:math:`p = n`: the orthogonal group, and SO(n) on its identity component; :math:`p = 1`: the
sphere :math:`S^{n-1}`) is moved by the left action of :math:`SO(n)`,

.. math::

    \theta_{k+1} = \phi(-h M_k)\, \theta_k, \qquad
    M_k = G_k \theta_k^T - \theta_k G_k^T \in \mathfrak{so}(n),

where :math:`G_k` is the Euclidean gradient and :math:`M_k \theta_k` the Riemannian gradient of
the canonical metric. :math:`\phi = \exp` is the matrix exponential of Section 6.2.1; the Cayley
transform :math:`\phi(A) = (I - A/2)^{-1}(I + A/2)` is the rational alternative (footnote 6).
Both map :math:`\mathfrak{so}(n)` into :math:`SO(n)`, so :math:`\theta_{k+1}^T\theta_{k+1} = I`
holds to round-off however many steps are taken.

:math:`M_k` has rank at most :math:`2p`, and the review notes that on homogeneous manifolds such
as :math:`V_{n,p}` this structure cuts the cost of the exponential: :class:`StiefelSGD` takes the
step through a :math:`2p \times 2p` matrix when :math:`2p < n`, at :math:`O(np^2)` cost instead of
:math:`O(n^3)`, with the same iterates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, overload

import torch

from .. import _validate
from ._checks import CheckedOptimizer, Loss, begin_step, check_hyperparameters, one_of

__all__ = ["StiefelSGD", "cayley", "expm", "project_stiefel", "random_stiefel", "stiefel_error"]

RETRACTIONS = ("exp", "cayley")


def _squarings(A: torch.Tensor) -> int:
    """The number s of squarings that brings the 1-norm of A / 2^s to at most 1/2."""
    norm = float(torch.linalg.matrix_norm(A.detach(), ord=1).max()) if A.numel() else 0.0
    return max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0


def _square(A: Any, name: str = "A") -> torch.Tensor:
    """Raise unless ``A`` is a finite floating tensor of square matrices ``(..., n, n)``."""
    _validate.tensor(A, name)
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name} must have shape (..., n, n), got {tuple(A.shape)}")
    return A


def expm(A: torch.Tensor) -> torch.Tensor:
    r"""Matrix exponential :math:`\exp(A)` by scaling and squaring (Section 6.2.1).

    :math:`A` is scaled by :math:`2^{-s}` until its 1-norm is at most 1/2, the Taylor series is
    summed to degree 18 (truncation error below :math:`10^{-22}` relative), and the result is
    squared :math:`s` times. For :math:`A \in \mathfrak{so}(n)` the result lies in :math:`SO(n)`
    to round-off. (On small CPU matrices this is much faster than :func:`torch.linalg.matrix_exp`.)
    ``A`` has shape ``(..., n, n)``.
    """
    _square(A)
    s = _squarings(A)
    B = A / 2**s
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand_as(A)
    E = eye + B / 18
    for k in range(17, 0, -1):
        E = eye + (B @ E) / k
    for _ in range(s):
        E = E @ E
    return E


def _expm1(A: torch.Tensor) -> torch.Tensor:
    """exp(A) - I with relative accuracy when A is small (the 2p x 2p step of StiefelSGD).

    Scaling and squaring as in :func:`expm`, but the Taylor series is summed without its
    constant term, to the lowest degree m whose remainder is below the unit round-off relative to
    the scaled matrix (m = 14 in float64 and m = 8 in float32 at the largest scaled 1-norm, 1/2;
    fewer for a small step), one fused multiply-add per degree; the squarings use
    (I + D)^2 - I = 2D + D^2.
    """
    shape, m = A.shape, A.shape[-1]
    norm = float(torch.linalg.matrix_norm(A.detach(), ord=1).max()) if A.numel() else 0.0
    s = max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0
    nu, unit = norm / 2**s, torch.finfo(A.dtype).eps / 2
    degree, bound = 1, nu / 2  # relative remainder after degree k: about 2 nu^k / (k + 1)!
    while degree < 18 and 2 * bound > unit:
        degree += 1
        bound *= nu / (degree + 1)
    B = (A / 2**s).reshape(-1, m, m)
    eye = torch.eye(m, dtype=A.dtype, device=A.device).expand_as(B)
    T = eye + B / degree
    for k in range(degree - 1, 1, -1):
        T = torch.baddbmm(eye, B, T, alpha=1.0 / k)
    D = B @ T if degree > 1 else B
    for _ in range(s):
        D = torch.baddbmm(D, D, D, beta=2.0)
    return D.reshape(shape)


def _expm_action(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """exp(A) X without forming exp(A) when A is small (truncated Taylor series applied 2^s
    times)."""
    s = _squarings(A)
    if s > 3 or X.shape[-1] >= X.shape[-2]:
        return expm(A) @ X
    B = A / 2**s
    for _ in range(2**s):
        E = X + (B @ X) / 18
        for k in range(17, 0, -1):
            E = X + (B @ E) / k
        X = E
    return X


def cayley(A: torch.Tensor) -> torch.Tensor:
    r"""Cayley transform :math:`(I - A/2)^{-1}(I + A/2)`, a rational map :math:`\mathfrak{so}(n) \to
    SO(n)` (Section 6.2.1, footnote 6). ``A`` has shape ``(..., n, n)``."""
    _square(A)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    return torch.linalg.solve(eye - 0.5 * A, eye + 0.5 * A)


def stiefel_error(theta: torch.Tensor) -> torch.Tensor:
    r"""Constraint error :math:`\|\theta^T\theta - I_p\|_F` of a point of :math:`V_{n,p}` (Section
    6.2.1)."""
    _validate.tensor(theta, "theta")
    if theta.dim() < 2:
        raise ValueError(f"theta must have at least 2 dimensions, got shape {tuple(theta.shape)}")
    p = theta.shape[-1]
    eye = torch.eye(p, dtype=theta.dtype, device=theta.device)
    return torch.linalg.matrix_norm(theta.mT @ theta - eye)


def project_stiefel(theta: torch.Tensor) -> torch.Tensor:
    r"""The nearest point of :math:`V_{n,p}` in the Frobenius norm: the polar factor :math:`UV^T` of
    :math:`\theta = U\Sigma V^T` (the projection fix of Section 6.2.1 experiments)."""
    _validate.tensor(theta, "theta")
    if theta.dim() < 2 or theta.shape[-1] > theta.shape[-2]:
        raise ValueError(f"theta must have shape (..., n, p) with p <= n, got {tuple(theta.shape)}")
    U, _, Vh = torch.linalg.svd(theta, full_matrices=False)
    return U @ Vh


def random_stiefel(
    n: int,
    p: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""A random point of the Stiefel manifold :math:`V_{n,p}` (Section 6.2.1): the Q factor of a
    Gaussian :math:`n \times p` matrix, with signs fixed so that the law is uniform."""
    n = _validate.positive_int(n, "n")
    p = _validate.positive_int(p, "p")
    if p > n:
        raise ValueError(f"p must be <= n for V_(n,p), got n={n}, p={p}")
    _validate.generator(generator)
    dtype = _validate.float_dtype(dtype) or torch.get_default_dtype()
    g = torch.randn(n, p, generator=generator, dtype=dtype, device="cpu").to(device or "cpu")
    Q, R = torch.linalg.qr(g)
    return Q * torch.sign(torch.diagonal(R)).where(torch.diagonal(R) != 0, torch.ones_like(Q[0]))


def _momentum(value: Any, name: str) -> float:
    value = _validate.nonnegative_real(value, name)
    if value >= 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return value


def _low_rank(value: Any, name: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be True, False or None, got {type(value).__name__}")
    return value


# A step re-orthonormalises theta when ||theta^T theta - I||_F exceeds this many units of
# eps * sqrt(p) (eps the machine epsilon of theta's dtype): about the error with which the
# product theta^T theta itself is computed, so the correction acts only on accumulated drift.
REORTHONORMALISE_AT = 2.0


def _tolerance(theta: torch.Tensor, units: float | None) -> float:
    units = REORTHONORMALISE_AT if units is None else units
    return units * torch.finfo(theta.dtype).eps * math.sqrt(theta.shape[-1])


def _units(value: Any, name: str) -> float | None:
    """``None``, ``math.inf`` or a finite real >= 0 (the re-orthonormalisation threshold)."""
    if value is None or (isinstance(value, float) and value == math.inf):
        return value
    return _validate.nonnegative_real(value, name)


def _low_rank_step(
    theta: torch.Tensor, X: torch.Tensor, h: float, retraction: str, transport: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The step through the :math:`2p \times 2p` matrix :math:`S = -hV^TU` (see
    :class:`StiefelSGD`): returns ``(U, D, E)`` with :math:`U = [X, \theta]`,
    :math:`D = \phi(S) - I` (only its :math:`\theta` columns unless ``transport``), so that the
    new :math:`[\tilde X, \theta]` is :math:`U + UD`, and :math:`E = \theta^T\theta - I`."""
    p = theta.shape[-1]
    U = torch.cat([X, theta], dim=-1)
    gram = U.mT @ U  # [[X^T X, X^T theta], [theta^T X, theta^T theta]]
    S = torch.cat([gram[..., p:, :], -gram[..., :p, :]], dim=-2).mul_(-h)  # -h V^T U
    if retraction == "exp":
        D = _expm1(S)
        D = D if transport else D[..., p:]
    else:  # (I - S/2)^{-1}(I + S/2) - I = (I - S/2)^{-1} S
        eye = torch.eye(2 * p, dtype=S.dtype, device=S.device)
        D = torch.linalg.solve(eye - 0.5 * S, S if transport else S[..., p:])
    eye = torch.eye(p, dtype=theta.dtype, device=theta.device)
    return U, D, gram[..., p:, p:] - eye


def _dense_step(
    theta: torch.Tensor, X: torch.Tensor, h: float, retraction: str, transport: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(phi(-hB) Y, theta^T theta - I)`` with :math:`Y = [X, \theta]` (or :math:`\theta`) and
    the :math:`n \times n` matrix :math:`B = X\theta^T - \theta X^T` formed explicitly."""
    n, p = theta.shape[-2:]
    M = X @ theta.mT
    A = -h * (M - M.mT)
    Y = torch.cat([X, theta], dim=-1) if transport else theta
    if retraction == "exp":
        out = _expm_action(A, Y)
    else:  # (I - A/2)^{-1}(I + A/2) Y = Y + (I - A/2)^{-1} A Y: one solve, p or 2p columns
        eye = torch.eye(n, dtype=A.dtype, device=A.device)
        out = Y + torch.linalg.solve(eye - 0.5 * A, A @ Y)
    eye = torch.eye(p, dtype=theta.dtype, device=theta.device)
    return out, theta.mT @ theta - eye


class StiefelSGD(CheckedOptimizer):
    r"""Riemannian SGD (with optional momentum) on the Stiefel manifold :math:`V_{n,p}`, Section
    6.2.1.

    Every parameter must be an :math:`n \times p` matrix (or a batch ``(..., n, p)``) with
    orthonormal columns, :math:`p \le n`; this covers SO(n) (:math:`p = n`) and the sphere
    (:math:`p = 1`). With the Euclidean gradients :math:`G_k` a step is

    .. math::

        X_k = \beta\, \tilde X_{k-1} + G_k, \qquad
        B_k = X_k\theta_k^T - \theta_k X_k^T \in \mathfrak{so}(n), \qquad
        \theta_{k+1} = \phi(-hB_k)\,\theta_k, \qquad \tilde X_k = \phi(-hB_k)\, X_k,

    with :math:`\phi = \exp` or the Cayley transform (:math:`\tilde X_{-1} = 0`; without
    momentum :math:`X_k = G_k` and :math:`B_k = G_k\theta_k^T - \theta_kG_k^T`, whose action
    :math:`B_k\theta_k` is the Riemannian gradient of the canonical metric).

    **Momentum.** The momentum is kept as the :math:`n \times p` factor :math:`\tilde X` in
    ``state[theta]["momentum_factor"]``, the past Euclidean gradients summed with weights
    :math:`\beta^j` and each carried along by the rotations applied since. This is *the same
    method* as accumulating the momentum :math:`\mathcal{B}_k = \beta \mathcal{B}_{k-1} + (G_k
    \theta_k^T - \theta_k G_k^T)` in :math:`\mathfrak{so}(n)` as an :math:`n \times n` matrix and
    stepping with :math:`\phi(-h\mathcal{B}_k)`: by induction :math:`\mathcal{B}_{k-1} = X_{k-1}
    \theta_{k-1}^T - \theta_{k-1} X_{k-1}^T`, and :math:`Q = \phi(-h\mathcal{B}_{k-1})` is a
    function of :math:`\mathcal{B}_{k-1}`, so it commutes with it and :math:`\mathcal{B}_{k-1} =
    Q\mathcal{B}_{k-1}Q^T = (QX_{k-1})\theta_k^T - \theta_k(QX_{k-1})^T` with :math:`\theta_k =
    Q\theta_{k-1}`; adding :math:`G_k\theta_k^T - \theta_kG_k^T` gives :math:`\mathcal{B}_k =
    B_k`. The iterates agree in exact arithmetic, and to round-off in floating point
    (``tests/test_optim_riemannian.py`` checks this against the :math:`n \times n` recursion).

    **Low-rank form.** :math:`B = UV^T` with :math:`U = [X, \theta]` and :math:`V = [\theta, -X]`
    (:math:`n \times 2p`), and :math:`(UV^T)^k U = U(V^TU)^k` for every :math:`k`. Hence, with the
    :math:`2p \times 2p` matrix :math:`S = -hV^TU`,

    .. math::

        \exp(-hUV^T)\,U = U \exp(S), \qquad
        \Big(I + \tfrac h2 UV^T\Big)^{-1}\Big(I - \tfrac h2 UV^T\Big) U
        = U \Big(I - \tfrac S2\Big)^{-1}\Big(I + \tfrac S2\Big),

    the second being the Woodbury form of the Cayley step of Wen & Yin (2013),
    :math:`\theta - hU(I + \tfrac h2 V^TU)^{-1}V^T\theta`. Since :math:`\theta` and :math:`X` are
    the columns of :math:`U`, one step costs one Gram matrix :math:`U^TU` (which holds
    :math:`V^TU` and :math:`\theta^T\theta`), a :math:`2p \times 2p` exponential or solve and one
    product :math:`U\Phi`: :math:`O(np^2)` operations and :math:`O(np)` memory, against
    :math:`O(n^3)` and :math:`O(n^2)` for the :math:`n \times n` generator. It is used when
    :math:`2p < n`; otherwise (the square case) forming :math:`B` is cheaper and the dense path is
    taken. ``low_rank`` overrides the choice; both give the same iterates to round-off.

    **Constraint.** :math:`\phi` maps :math:`\mathfrak{so}(n)` into :math:`SO(n)`, so
    :math:`\theta^T\theta = I` holds up to the rounding of each step, which accumulates slowly
    over many steps. The step measures :math:`E = \theta^T\theta - I` (free in the low-rank form:
    a block of :math:`U^TU`) and, when :math:`\|E\|_F` exceeds
    ``reorthonormalise_at`` :math:`\cdot\,\epsilon\sqrt p` (:math:`\epsilon` the machine epsilon),
    applies one Newton--Schulz step of the polar decomposition to the result,
    :math:`\theta_{k+1} \leftarrow \theta_{k+1}(I - E/2)`, which leaves an error of order
    :math:`\|E\|^2`: a :math:`p \times p` product on the :math:`2p \times p` block of
    :math:`\Phi`, :math:`O(p^3)`. ``state[theta]["reorthonormalisations"]`` counts them (and
    ``state[theta]["step"]`` the steps).

    Parameters
    ----------
    params : iterable
        Parameters with orthonormal columns (checked to a tolerance of 1e-4, float32-safe).
    lr : float
        The step :math:`h > 0`.
    momentum : float
        :math:`\beta \in [0, 1)`.
    retraction : {"exp", "cayley"}
        The map :math:`\phi : \mathfrak{so}(n) \to SO(n)`.
    low_rank : bool or None
        Step through the :math:`2p \times 2p` matrix (``True``), the :math:`n \times n` one
        (``False``), or choose by shape (``None``: low rank when :math:`2p < n`).
    reorthonormalise_at : float or None
        The threshold of the re-orthonormalisation in units of :math:`\epsilon\sqrt p`:
        ``None`` for the module default ``REORTHONORMALISE_AT`` (2), ``math.inf`` never to
        re-orthonormalise, ``0`` to do it in every step.

    Notes
    -----
    A step whose gradients hold NaN or inf raises :class:`~spdl_ref.optim.NonFiniteGradientError`
    and changes nothing. Groups added by :meth:`add_param_group` are checked like the
    constructor's arguments.

    References: Z. Wen and W. Yin, *A feasible method for optimization with orthogonality
    constraints*, Math. Program. 142 (2013) 397--434.

    >>> theta = torch.nn.Parameter(random_stiefel(6, 2, generator=torch.Generator().manual_seed(0)))
    >>> opt = StiefelSGD([theta], lr=0.1, momentum=0.5, retraction="cayley")
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     theta[0].sum().backward()
    ...     opt.step()
    >>> bool(stiefel_error(theta.detach()) < 1e-5)
    True
    """

    hyperparameter_checks: ClassVar[dict] = {
        "lr": _validate.positive_real,
        "momentum": _momentum,
        "retraction": one_of(RETRACTIONS),
        "low_rank": _low_rank,
        "reorthonormalise_at": _units,
    }

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.0,
        retraction: str = "exp",
        low_rank: bool | None = None,
        reorthonormalise_at: float | None = None,
    ):
        defaults = check_hyperparameters(
            self.hyperparameter_checks,
            dict(
                lr=lr,
                momentum=momentum,
                retraction=retraction,
                low_rank=low_rank,
                reorthonormalise_at=reorthonormalise_at,
            ),
        )
        super().__init__(params, defaults)

    def check_params(self, params: list[torch.Tensor]) -> None:
        """Every parameter is a ``(..., n, p)`` matrix, :math:`p \\le n`, with orthonormal
        columns."""
        for p in params:
            if p.dim() < 2 or p.shape[-1] > p.shape[-2]:
                raise ValueError(
                    "params of StiefelSGD must have shape (..., n, p) with p <= n, got "
                    f"{tuple(p.shape)}"
                )
            err = float(stiefel_error(p.detach()).max())
            if err > 1e-4 * p.shape[-1]:
                raise ValueError(
                    f"params of StiefelSGD must have orthonormal columns (theta^T theta = I); "
                    f"got ||theta^T theta - I|| = {err:.2e}"
                )

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], Loss]) -> Loss: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], Loss] | None = None) -> Loss | None:
        """One Riemannian step :math:`\\theta \\leftarrow \\phi(-hB)\\theta`; ``closure``
        re-evaluates the loss."""
        loss, work = begin_step(self, closure)
        for group, params, grads in work:
            h, beta = group["lr"], group["momentum"]
            for theta, G in zip(params, grads, strict=True):
                state = self.state[theta]
                if not state:
                    state["step"] = 0
                    state["reorthonormalisations"] = 0
                if beta > 0:
                    X = state.get("momentum_factor")
                    if X is None:
                        X = state["momentum_factor"] = G.clone()
                    else:
                        X.mul_(beta).add_(G)
                else:
                    X = G
                n, p = theta.shape[-2:]
                low = group["low_rank"] if group["low_rank"] is not None else 2 * p < n
                if low:
                    U, D, E = _low_rank_step(theta, X, h, group["retraction"], beta > 0)
                else:
                    out, E = _dense_step(theta, X, h, group["retraction"], beta > 0)
                tol = _tolerance(theta, group["reorthonormalise_at"])
                if tol < math.inf and float(torch.linalg.matrix_norm(E).max()) > tol:
                    # one Newton-Schulz step of the polar decomposition: theta (I - E/2)
                    half = 0.5 * E
                    if low:  # on the theta columns of D: (e + D)(I - E/2) - e, e = [0; I]
                        Dt = D[..., -p:] - D[..., -p:] @ half
                        Dt[..., p:, :] -= half
                        D = torch.cat([D[..., :-p], Dt], dim=-1)
                    else:
                        out = torch.cat([out[..., :-p], out[..., -p:] - out[..., -p:] @ half], -1)
                    state["reorthonormalisations"] += 1
                if low:
                    out = U[..., -D.shape[-1] :] + U @ D
                theta.copy_(out[..., -p:])
                if beta > 0:
                    state["momentum_factor"].copy_(out[..., :p])
                state["step"] += 1
        return loss
