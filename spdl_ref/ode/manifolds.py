r"""Distances for manifold-valued features (Section 2.3).

* :math:`\mathrm{Sym}^+(3)` (diffusion tensors) with the affine-invariant metric
  :math:`\langle X, Y\rangle_A = \operatorname{trace}(A^{-1/2} X A^{-1} Y A^{-1/2})`
  (:func:`spd_inner`) and its geodesic distance
  :math:`d(A, B) = \|\log(A^{-1/2} B A^{-1/2})\|_F` (:func:`spd_distance`);
* the circle :math:`S^1` (InSAR phases): :func:`circle_distance`;
* curves in :math:`\mathrm{SO}(3)` sampled at :math:`m` points (activity recognition):
  :func:`so3_curve_distance`, the distance of Section 2.3 built from the matrix logarithm of
  consecutive increments.
"""

from __future__ import annotations

import math

import torch

from .. import _validate
from .lie_group import so3_log, vee

__all__ = ["circle_distance", "so3_curve_distance", "spd_distance", "spd_inner", "spd_power"]


def _spd(A, name):
    _validate.tensor(A, name)
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(
            f"{name} must be a batch of square matrices (..., n, n), got {tuple(A.shape)}"
        )
    if not torch.allclose(A, A.mT, atol=1e-10 * (1 + float(A.abs().max()))):
        raise ValueError(f"{name} must be symmetric")
    lam = torch.linalg.eigvalsh(A)
    if bool((lam <= 0).any()):
        raise ValueError(
            f"{name} must be positive definite (smallest eigenvalue {float(lam.min()):.3g})"
        )
    return A


def spd_power(A: torch.Tensor, s: float) -> torch.Tensor:
    r""":math:`A^s` of a symmetric positive definite matrix by eigendecomposition (Section 2.3)."""
    _spd(A, "A")
    s = _validate.real(s, "s")
    lam, U = torch.linalg.eigh(A)
    return (U * lam.pow(s).unsqueeze(-2)) @ U.mT


def spd_inner(A: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    r"""The affine-invariant metric :math:`\operatorname{trace}(A^{-1/2} X A^{-1} Y A^{-1/2})`
    (Section 2.3).

    ``A`` is symmetric positive definite, ``X`` and ``Y`` symmetric tangent vectors, all
    ``(..., n, n)``.
    """
    _spd(A, "A")
    for v, n in ((X, "X"), (Y, "Y")):
        _validate.tensor(v, n)
        if v.shape[-2:] != A.shape[-2:]:
            raise ValueError(
                f"{n} must have the matrix shape of A {tuple(A.shape[-2:])}, got {tuple(v.shape)}"
            )
    Ainv_half = spd_power(A, -0.5)
    Ainv = spd_power(A, -1.0)
    return (Ainv_half @ X @ Ainv @ Y @ Ainv_half).diagonal(dim1=-2, dim2=-1).sum(-1)


def spd_distance(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    r"""Geodesic distance :math:`\|\log(A^{-1/2} B A^{-1/2})\|_F` of the metric :func:`spd_inner`.

    Section 2.3, :math:`\mathrm{Sym}^+(n)`; invariant under :math:`A, B \mapsto G A G^T, G B G^T`
    for invertible :math:`G`. Computed from the eigenvalues :math:`\lambda_i` of
    :math:`A^{-1/2} B A^{-1/2}` as :math:`(\sum_i \log^2 \lambda_i)^{1/2}`.
    """
    _spd(A, "A")
    _spd(B, "B")
    Ainv_half = spd_power(A, -0.5)
    C = Ainv_half @ B @ Ainv_half
    lam = torch.linalg.eigvalsh(0.5 * (C + C.mT))
    return torch.log(lam).pow(2).sum(-1).sqrt()


def circle_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Arc-length distance on :math:`S^1` between angles ``a`` and ``b`` (Section 2.3), in
    :math:`[0, \pi]`."""
    _validate.tensor(a, "a")
    _validate.tensor(b, "b")
    d = torch.remainder(a - b, 2 * math.pi)
    return torch.minimum(d, 2 * math.pi - d)


def so3_curve_distance(c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    r"""The distance of Section 2.3 between curves in :math:`\mathrm{SO}(3)` sampled at :math:`m`
    points.

    .. math::

        d(c_1, c_2) = \sum_{i=1}^{m-1} \big\| q_{1,i} - q_{2,i} \big\|_{\mathfrak g}, \qquad q_{j,i}
        = \frac{\log(c_{j,i+1} c_{j,i}^{-1})}{\|\log(c_{j,i+1} c_{j,i}^{-1})\|_{\mathfrak g}^{1/2}},

    with :math:`\|W\|_{\mathfrak g} = (\tfrac12 \operatorname{trace}(W^T W))^{1/2}` (the length of
    the rotation vector) and :math:`q = 0` where the increment is the identity. ``c1`` and ``c2``
    have shape ``(..., m, 3, 3)``. It does not change when either curve is multiplied from the
    right by a fixed rotation, or both from the left by the same rotation.
    """
    for c, n in ((c1, "c1"), (c2, "c2")):
        _validate.tensor(c, n)
        if c.dim() < 3 or c.shape[-2:] != (3, 3) or c.shape[-3] < 2:
            raise ValueError(
                f"{n} must have shape (..., m, 3, 3) with m >= 2, got {tuple(c.shape)}"
            )
    if c1.shape != c2.shape:
        raise ValueError(
            f"c1 and c2 must have the same shape, got {tuple(c1.shape)} and {tuple(c2.shape)}"
        )

    def q(c):
        w = vee(so3_log(c[..., 1:, :, :] @ c[..., :-1, :, :].mT))
        n = w.norm(dim=-1, keepdim=True)
        return torch.where(
            n > 0, w / n.clamp_min(torch.finfo(w.dtype).tiny).sqrt(), torch.zeros_like(w)
        )

    return (q(c1) - q(c2)).norm(dim=-1).sum(-1)
