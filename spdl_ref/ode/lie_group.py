r"""Lie-group integrators on SO(3) and the sphere (Sections 2.3 and 2.4.3).

For a field on a manifold :math:`\mathcal M` written as :math:`\dot z = \xi(z) z` with
:math:`\xi(z) \in \mathfrak{so}(3)` (skew-symmetric), the Lie–Euler method

.. math::

    z^{k+1} = \exp\big(h\,\xi(z^k)\big)\, z^k

keeps :math:`z^k` on :math:`\mathrm{SO}(3)` (for :math:`z` a rotation matrix) or on the sphere
:math:`S^2` (for :math:`z` a unit vector) up to round-off, because :math:`\exp` maps
:math:`\mathfrak{so}(3)` into :math:`\mathrm{SO}(3)`. Forward Euler
:math:`z^{k+1} = z^k + h\,\xi(z^k) z^k` drifts off the manifold.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import _validate

__all__ = ["hat", "lie_euler", "so3_curve", "so3_exp", "so3_log", "vee"]


def hat(w: torch.Tensor) -> torch.Tensor:
    r"""The skew matrix :math:`\hat w \in \mathfrak{so}(3)` with :math:`\hat w v = w \times v`
    (Section 2.3)."""
    _validate.traced_tensor(w, "w")
    _validate.last_dim(w, 3, "w")
    zero = torch.zeros_like(w[..., 0])
    x, y, z = w[..., 0], w[..., 1], w[..., 2]
    return torch.stack(
        [
            torch.stack([zero, -z, y], -1),
            torch.stack([z, zero, -x], -1),
            torch.stack([-y, x, zero], -1),
        ],
        -2,
    )


def vee(W: torch.Tensor) -> torch.Tensor:
    r"""Inverse of :func:`hat`: the vector of a skew ``(..., 3, 3)`` matrix (Section 2.3)."""
    _validate.traced_tensor(W, "W")
    if W.shape[-2:] != (3, 3):
        raise ValueError(f"W must have shape (..., 3, 3), got {tuple(W.shape)}")
    return torch.stack([W[..., 2, 1], W[..., 0, 2], W[..., 1, 0]], -1)


def so3_exp(W: torch.Tensor) -> torch.Tensor:
    r"""The exponential :math:`\mathfrak{so}(3) \to \mathrm{SO}(3)` (matrix exponential, Section
    2.3)."""
    _validate.traced_tensor(W, "W")
    if W.shape[-2:] != (3, 3):
        raise ValueError(f"W must have shape (..., 3, 3), got {tuple(W.shape)}")
    return torch.linalg.matrix_exp(W)


def so3_log(R: torch.Tensor) -> torch.Tensor:
    r"""The principal matrix logarithm :math:`\mathrm{SO}(3) \to \mathfrak{so}(3)` (Section 2.3).

    Uses :math:`\log R = \frac{\vartheta}{2\sin\vartheta}(R - R^T)` with
    :math:`\cos\vartheta = (\operatorname{tr} R - 1)/2`, valid for rotation angles
    :math:`\vartheta < \pi`; near :math:`\vartheta = 0` the series
    :math:`\vartheta/\sin\vartheta \approx 1 + \vartheta^2/6` is used.
    """
    _validate.traced_tensor(R, "R")
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"R must have shape (..., 3, 3), got {tuple(R.shape)}")
    cos = ((R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    small = theta < 1e-4
    safe = torch.where(small, torch.ones_like(theta), theta)
    factor = torch.where(small, 1 + theta**2 / 6, safe / torch.sin(safe))
    return 0.5 * factor[..., None, None] * (R - R.mT)


def so3_curve(increments: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
    r"""A curve :math:`c_0, \dots, c_m` in :math:`\mathrm{SO}(3)` from its increments (Section 2.3).

    Left multiplication by the exponentials of the increments :math:`s_k \in \mathbb R^3`:

    .. math::

        c_0 = \text{start}, \qquad c_{k} = \exp(\hat s_k)\, c_{k-1}, \quad k = 1, \dots, m,

    the kind of rotation curve (motion-capture data) that the curve distance of Section 2.3,
    :func:`spdl_ref.ode.so3_curve_distance`, compares.

    Parameters
    ----------
    increments : torch.Tensor
        The increments :math:`s_1, \dots, s_m`, shape ``(m, 3)`` (``m >= 0``).
    start : torch.Tensor, optional
        The first point :math:`c_0`, shape ``(3, 3)``; default the identity.

    Returns
    -------
    torch.Tensor
        The curve, shape ``(m + 1, 3, 3)``, in the dtype and on the device of ``increments``.
    """
    _validate.tensor(increments, "increments")
    if increments.dim() != 2 or increments.shape[-1] != 3:
        raise ValueError(f"increments must have shape (m, 3), got {tuple(increments.shape)}")
    if start is None:
        start = torch.eye(3, dtype=increments.dtype, device=increments.device)
    else:
        _validate.tensor(start, "start")
        if start.shape != (3, 3):
            raise ValueError(f"start must have shape (3, 3), got {tuple(start.shape)}")
    out = [start]
    for s in increments:
        out.append(so3_exp(hat(s)) @ out[-1])
    return torch.stack(out)


MANIFOLDS = ("SO3", "sphere")


def lie_euler(
    xi: Callable,
    z0: torch.Tensor,
    h: float,
    steps: int,
    method: str = "lie",
    *,
    manifold: str | None = None,
) -> torch.Tensor:
    r"""Integrate :math:`\dot z = \xi(z) z` with the Lie–Euler method of Section 2.3.

    Parameters
    ----------
    xi : callable
        Maps the state to a skew ``(..., 3, 3)`` matrix :math:`\xi(z) \in \mathfrak{so}(3)`, one
        per rotation or vector of the batch.
    z0 : torch.Tensor
        Rotation matrices ``(..., 3, 3)`` (``manifold="SO3"``) or vectors ``(..., 3)``
        (``manifold="sphere"``).
    h : float
        Step size :math:`h > 0`.
    steps : int
        Number of steps :math:`\ge 0`.
    method : {"lie", "euler"}
        ``"lie"``: :math:`z^{k+1} = \exp(h\xi(z^k)) z^k`; ``"euler"``: forward Euler
        :math:`z^{k+1} = z^k + h \xi(z^k) z^k`, for comparison.
    manifold : {"SO3", "sphere"} or None
        Whether ``z0`` holds rotation matrices or vectors on spheres. A shape ``(..., 3, 3)``
        fits both (three 3-vectors, or one rotation), so it must be named; ``None`` is accepted
        only for vectors whose shape cannot be read as rotations.

    Returns
    -------
    torch.Tensor
        The trajectory, shape ``(steps + 1, *z0.shape)``.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    >>> R = lie_euler(
    ...     lambda R: hat(w).expand_as(R), torch.eye(3, dtype=torch.float64), 0.1, 5, manifold="SO3"
    ... )
    >>> R.shape, bool((R[-1].T @ R[-1] - torch.eye(3, dtype=torch.float64)).abs().max() < 1e-14)
    (torch.Size([6, 3, 3]), True)
    """
    _validate.function(xi, "xi")
    _validate.tensor(z0, "z0")
    h = _validate.positive_real(h, "h")
    steps = _validate.nonnegative_int(steps, "steps")
    _validate.choice(method, ("lie", "euler"), "method")
    square = z0.dim() >= 2 and tuple(z0.shape[-2:]) == (3, 3)
    if manifold is None:
        if square:
            raise ValueError(
                f"manifold must be given for z0 of shape {tuple(z0.shape)}: it may hold rotation "
                "matrices (manifold='SO3') or 3-vectors (manifold='sphere')"
            )
        manifold = "sphere"
    _validate.choice(manifold, MANIFOLDS, "manifold")
    if manifold == "SO3":
        if not square:
            raise ValueError(
                f"z0 must have shape (..., 3, 3) for manifold='SO3', got {tuple(z0.shape)}"
            )
        defect = float((z0.mT @ z0 - torch.eye(3, dtype=z0.dtype, device=z0.device)).abs().max())
        if defect > 1e3 * torch.finfo(z0.dtype).eps or bool((torch.linalg.det(z0) < 0).any()):
            raise ValueError(
                f"z0 must hold rotation matrices for manifold='SO3' (R^T R = I, det R = 1); "
                f"max |R^T R - I| = {defect:.1e}"
            )
        batch = tuple(z0.shape[:-2])
    else:
        _validate.last_dim(z0, 3, "z0")
        batch = tuple(z0.shape[:-1])
    out = [z0]
    z = z0
    for _ in range(steps):
        W = xi(z)
        _check_skew(W, batch, z)
        if method == "lie":
            E = torch.linalg.matrix_exp(h * W)
        else:
            E = torch.eye(3, dtype=z.dtype, device=z.device) + h * W
        z = E @ z if manifold == "SO3" else (E @ z.unsqueeze(-1)).squeeze(-1)
        out.append(z)
    return torch.stack(out)


def _check_skew(W, batch, z):
    if not isinstance(W, torch.Tensor) or tuple(W.shape) != (*batch, 3, 3):
        got = tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__
        raise ValueError(
            f"xi must return one 3 x 3 matrix per state, shape {(*batch, 3, 3)}, got {got}"
        )
    _validate.like(W, z, "xi(z)", "the state z")
    scale = 1 + float(W.detach().abs().max()) if _validate.all_finite(W) else float("nan")
    if not float((W + W.mT).detach().abs().max()) <= 100 * torch.finfo(W.dtype).eps * scale:
        raise ValueError(
            "xi must return finite skew-symmetric matrices (elements of so(3)), so that "
            "exp(h xi) is a rotation"
        )
