r"""Regularisers for training (Section 3.2) and their proximal maps.

* :math:`\|\theta\|_1` and :math:`\|\theta\|_2^2` (sparse or small parameters), with the
  proximal map of the 1-norm (soft thresholding);
* the squared :math:`H^1` norm (37), :math:`\|\theta(0)\|^2 + \int_0^T \|\dot\theta\|^2 dt`, in
  its discrete form from (40) for a piecewise-constant :math:`\theta`;
* the indicator (39) of admissible time steps :math:`\{h \ge 0, \sum_k h^k = T\}` for the
  variable-step ResNet (38), whose proximal map is the Euclidean projection
  :func:`project_simplex`.
"""

from __future__ import annotations

import torch

from .. import _validate
from ._layer import check_model

__all__ = [
    "h1_discrete",
    "l1_norm",
    "project_simplex",
    "soft_threshold",
    "squared_l2_norm",
    "time_step_indicator",
]


def _params(model):
    model = check_model(model)
    return [model.A, model.b]


def l1_norm(model) -> torch.Tensor:
    r""":math:`\|\theta\|_1 = \sum_i |\theta_i|` over the ResNet's :math:`A` and :math:`b` (Section 3.2)."""
    return sum(p.abs().sum() for p in _params(model))


def squared_l2_norm(model) -> torch.Tensor:
    r""":math:`\|\theta\|_2^2 = \sum_i \theta_i^2` over the ResNet's :math:`A` and :math:`b` (Section 3.2)."""
    return sum(p.pow(2).sum() for p in _params(model))


def soft_threshold(theta: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Proximal map of :math:`\tau \|\cdot\|_1` (Section 3.2): :math:`\operatorname{sign}(\theta)\max(|\theta| - \tau, 0)`."""
    _validate.tensor(theta, "theta")
    tau = _validate.nonnegative_real(tau, "tau")
    return torch.sign(theta) * torch.clamp(theta.abs() - tau, min=0)


def h1_discrete(model) -> torch.Tensor:
    r"""The discrete squared :math:`H^1` norm of (40) for the ResNet's piecewise-constant :math:`\theta`.

    .. math::

        \|\theta^0\|^2 + \frac{1}{h} \sum_{k=0}^{K-2} \|\theta^{k+1} - \theta^k\|^2,
        \qquad h = T/K,

    with :math:`\|\theta^k\|^2 = \|A^k\|_F^2 + \|b^k\|^2`. For :math:`T = 1` the factor is the
    :math:`K` of (40); it is the squared :math:`H^1` norm (37) of the piecewise-linear
    interpolant of the :math:`\theta^k` at the nodes :math:`t^k`. (40) writes the sum up to
    :math:`k = K - 1`, which needs a :math:`\theta^K` the ResNet does not have; the last
    difference is taken as zero.
    """
    model = check_model(model)
    A, b = model.A, model.b
    first = A[0].pow(2).sum() + b[0].pow(2).sum()
    diffs = (A[1:] - A[:-1]).pow(2).sum() + (b[1:] - b[:-1]).pow(2).sum()
    return first + diffs / model.h


def time_step_indicator(h: torch.Tensor, T: float, tol: float = 1e-10) -> float:
    r"""The indicator (39): ``0.0`` if :math:`h^k \ge 0` and :math:`\sum_k h^k = T` (up to ``tol``), else ``inf``."""
    h = _check_vector(h, "h")
    T = _validate.positive_real(T, "T")
    ok = bool((h >= -tol).all()) and abs(float(h.sum()) - T) <= tol * max(1.0, T)
    return 0.0 if ok else float("inf")


def _check_vector(h, name):
    _validate.tensor(h, name)
    if h.dim() != 1 or h.numel() == 0:
        raise ValueError(
            f"{name} must be a non-empty vector (one dimension), got shape {tuple(h.shape)}"
        )
    return h


def project_simplex(h: torch.Tensor, T: float) -> torch.Tensor:
    r"""Euclidean projection of ``h`` onto :math:`\{h \ge 0, \sum_k h^k = T\}`: the proximal map of (39).

    The projection is :math:`h^k \mapsto \max(h^k - \nu, 0)` with the unique shift :math:`\nu`
    that makes the result sum to :math:`T`; :math:`\nu` is found by sorting (Section 3.2, the
    variable time steps (38)). ``h`` must be a finite vector and ``T > 0``.
    """
    h = _check_vector(h, "h")
    T = _validate.positive_real(T, "T")
    u, _ = torch.sort(h, descending=True)
    css = torch.cumsum(u, 0) - T
    idx = torch.arange(1, h.numel() + 1, device=h.device, dtype=h.dtype)
    cond = u - css / idx > 0
    rho = int(torch.nonzero(cond).max())
    nu = css[rho] / (rho + 1)
    return torch.clamp(h - nu, min=0)
