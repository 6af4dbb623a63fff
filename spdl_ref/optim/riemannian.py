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
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from .. import _validate
from ._checks import begin_step

__all__ = ["StiefelSGD", "cayley", "expm", "project_stiefel", "random_stiefel", "stiefel_error"]

RETRACTIONS = ("exp", "cayley")


def expm(A: torch.Tensor) -> torch.Tensor:
    r"""Matrix exponential :math:`\exp(A)` by scaling and squaring (Section 6.2.1).

    :math:`A` is scaled by :math:`2^{-s}` until its 1-norm is at most 1/2, the Taylor series is
    summed to degree 18 (truncation error below :math:`10^{-22}` relative), and the result is
    squared :math:`s` times. For :math:`A \in \mathfrak{so}(n)` the result lies in :math:`SO(n)`
    to round-off. (On small CPU matrices this is much faster than :func:`torch.linalg.matrix_exp`.)
    ``A`` has shape ``(..., n, n)``.
    """
    norm = float(torch.linalg.matrix_norm(A.detach(), ord=1).max()) if A.numel() else 0.0
    s = max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0
    B = A / 2**s
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand_as(A)
    E = eye + B / 18
    for k in range(17, 0, -1):
        E = eye + (B @ E) / k
    for _ in range(s):
        E = E @ E
    return E


def _expm_action(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """exp(A) X without forming exp(A) when A is small (truncated Taylor series applied 2^s
    times)."""
    norm = float(torch.linalg.matrix_norm(A.detach(), ord=1).max()) if A.numel() else 0.0
    s = max(0, math.ceil(math.log2(norm / 0.5))) if norm > 0.5 else 0
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
    U, _, Vh = torch.linalg.svd(theta, full_matrices=False)
    return U @ Vh


def random_stiefel(n: int, p: int, *, generator=None, device=None, dtype=None) -> torch.Tensor:
    r"""A random point of the Stiefel manifold :math:`V_{n,p}` (Section 6.2.1): the Q factor of a
    Gaussian :math:`n \times p` matrix, with signs fixed so that the law is uniform."""
    n = _validate.positive_int(n, "n")
    p = _validate.positive_int(p, "p")
    if p > n:
        raise ValueError(f"p must be <= n for V_(n,p), got n={n}, p={p}")
    dtype = dtype or torch.get_default_dtype()
    g = torch.randn(n, p, generator=generator, dtype=dtype, device="cpu").to(device or "cpu")
    Q, R = torch.linalg.qr(g)
    return Q * torch.sign(torch.diagonal(R)).where(torch.diagonal(R) != 0, torch.ones_like(Q[0]))


class StiefelSGD(torch.optim.Optimizer):
    r"""Riemannian SGD (with optional momentum) on the Stiefel manifold :math:`V_{n,p}`, Section
    6.2.1.

    Every parameter must be an :math:`n \times p` matrix (or a batch ``(..., n, p)``) with
    orthonormal columns, :math:`p \le n`; this covers SO(n) (:math:`p = n`) and the sphere (:math:`p
    = 1`). A step computes :math:`M = G\theta^T - \theta G^T \in \mathfrak{so}(n)` from the
    Euclidean gradient :math:`G`, accumulates the momentum :math:`B \leftarrow \beta B + M` in the
    Lie algebra, and sets :math:`\theta \leftarrow \phi(-hB)\theta` with :math:`\phi = \exp` or the
    Cayley transform.

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

    Notes
    -----
    A step whose gradients hold NaN or inf raises :class:`~spdl_ref.optim.NonFiniteGradientError`
    and changes nothing.
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.0, retraction: str = "exp"):
        lr = _validate.positive_real(lr, "lr")
        momentum = _validate.nonnegative_real(momentum, "momentum")
        if momentum >= 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if not isinstance(retraction, str) or retraction not in RETRACTIONS:
            raise ValueError(f"retraction must be one of {RETRACTIONS}, got {retraction!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, retraction=retraction))
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() < 2 or p.shape[-1] > p.shape[-2]:
                    raise ValueError(
                        "StiefelSGD parameters must have shape (..., n, p) with p <= n, got "
                        f"{tuple(p.shape)}"
                    )
                err = float(stiefel_error(p.detach()).max())
                if err > 1e-4 * p.shape[-1]:
                    raise ValueError(
                        f"StiefelSGD parameters must have orthonormal columns (theta^T theta = I); "
                        f"got ||theta^T theta - I|| = {err:.2e}"
                    )

    @torch.no_grad()
    def step(self, closure=None):
        """One Riemannian step :math:`\\theta \\leftarrow \\phi(-hB)\\theta`; ``closure``
        re-evaluates the loss."""
        loss, work = begin_step(self, closure)
        for group, params, grads in work:
            h, beta = group["lr"], group["momentum"]
            for theta, G in zip(params, grads, strict=True):
                M = G @ theta.mT
                M = M - M.mT
                if beta > 0:
                    state = self.state[theta]
                    if "momentum" not in state:
                        state["momentum"] = M.clone()
                    else:
                        state["momentum"].mul_(beta).add_(M)
                    M = state["momentum"]
                A = -h * M
                if group["retraction"] == "exp":
                    theta.copy_(_expm_action(A, theta))
                else:  # (I - A/2)^{-1} (I + A/2) theta: one solve with p right-hand sides
                    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
                    theta.copy_(torch.linalg.solve(eye - 0.5 * A, theta + 0.5 * (A @ theta)))
        return loss
