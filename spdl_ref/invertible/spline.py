r"""Monotone rational-quadratic spline coupling, Section 4.1.1.

The coupling law :math:`\gamma(\cdot, f(x_1))` of eq. (42) is a strictly increasing
rational-quadratic spline on :math:`[-B, B]` with :math:`K` bins (the identity outside), whose
bin widths, heights and knot derivatives are produced by the sub-network :math:`f`
(Durkan et al., neural spline flows, cited in the review as a more expressive coupling law).
Within bin :math:`k`, with :math:`\xi = (x - x_k)/w_k` and slope :math:`s_k = h_k / w_k`,

.. math:: \gamma(x) = y_k + \frac{h_k\,[s_k \xi^2 + d_k \xi (1-\xi)]}
          {s_k + (d_{k+1} + d_k - 2 s_k)\,\xi(1-\xi)},

and the inverse solves a quadratic in :math:`\xi`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.types import Device

from .. import _validate
from .coupling import _Coupling

__all__ = ["SplineCoupling", "rational_quadratic_spline"]

MIN_BIN = 1e-2  # bounds every slope below by ~1e-2: the inverse amplifies round-off by at most ~100
MIN_DERIVATIVE = 1e-2
_SHIFT = math.log(math.expm1(1 - MIN_DERIVATIVE))


def _knots(raw, bound):
    """Normalised bin sizes -> knot positions on [-bound, bound], shape (..., K + 1)."""
    k = raw.shape[-1]
    size = MIN_BIN + (1 - MIN_BIN * k) * torch.softmax(raw, dim=-1)
    knots = F.pad(torch.cumsum(size, dim=-1), (1, 0))
    knots = 2 * bound * knots - bound
    lo = torch.full_like(knots[..., :1], -bound)
    knots = torch.cat([lo, knots[..., 1:-1], -lo], dim=-1)
    return knots, knots[..., 1:] - knots[..., :-1]


def rational_quadratic_spline(
    x: torch.Tensor,
    widths: torch.Tensor,
    heights: torch.Tensor,
    derivatives: torch.Tensor,
    bound: float = 3.0,
    inverse: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Evaluate the monotone rational-quadratic spline (Section 4.1.1) entrywise.

    Parameters
    ----------
    x : torch.Tensor
        Points, any shape ``S``.
    widths, heights : torch.Tensor
        Unnormalised bin widths and heights, shape ``S + (K,)`` (softmax-normalised here).
    derivatives : torch.Tensor
        Unnormalised derivatives at the ``K - 1`` inner knots, shape ``S + (K - 1,)`` (made positive
        by a softplus shifted so that 0 gives 1, the identity); the derivative at :math:`\pm B` is
        1, matching the identity tails.
    bound : float
        :math:`B`; outside :math:`[-B, B]` the map is the identity.
    inverse : bool
        Evaluate :math:`\gamma^{-1}` instead of :math:`\gamma`.

    Computed in float64 for lower precisions (the inverse's quadratic loses digits in steep
    bins) and returned in the input's dtype.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The values and :math:`\log \gamma'` at ``x`` (for ``inverse``, :math:`\log (\gamma^{-1})'`).
    """
    _validate.tensor(x, "x")
    for name, t in (("widths", widths), ("heights", heights), ("derivatives", derivatives)):
        _validate.tensor(t, name)
        _validate.like(t, x, name, "x")
    bound = _validate.positive_real(bound, "bound")
    _validate.boolean(inverse, "inverse")
    S = tuple(x.shape)
    if widths.dim() != x.dim() + 1 or tuple(widths.shape[:-1]) != S or widths.shape[-1] < 2:
        raise ValueError(
            f"widths must have shape S + (K,) with S = x.shape = {S} and K >= 2 bins, "
            f"got {tuple(widths.shape)}"
        )
    K = widths.shape[-1]
    if heights.shape != widths.shape:
        raise ValueError(
            f"heights must have the shape of widths {tuple(widths.shape)}, got "
            f"{tuple(heights.shape)}"
        )
    if tuple(derivatives.shape) != (*S, K - 1):
        raise ValueError(
            f"derivatives must have shape S + (K - 1,) = {(*S, K - 1)}, got "
            f"{tuple(derivatives.shape)}"
        )
    if K * MIN_BIN >= 1:
        raise ValueError(f"widths must describe K < {round(1 / MIN_BIN)} bins, got K = {K}")
    return _spline_any_dtype(x, widths, heights, derivatives, bound, inverse)


def _spline_any_dtype(x, widths, heights, derivatives, bound, inverse):
    # Solve in float64: the inverse's quadratic loses digits in steep bins.
    if x.dtype != torch.float64 and x.device.type != "mps":
        out, logd = _spline(
            x.double(), widths.double(), heights.double(), derivatives.double(), bound, inverse
        )
        return out.to(x.dtype), logd.to(x.dtype)
    return _spline(x, widths, heights, derivatives, bound, inverse)


def _spline(x, widths, heights, derivatives, bound, inverse):
    inside = (x > -bound) & (x < bound)
    xc = x.clamp(-bound, bound)
    xk, w = _knots(widths, bound)
    yk, h = _knots(heights, bound)
    d = MIN_DERIVATIVE + F.softplus(derivatives + _SHIFT)  # raw 0 -> derivative 1
    one = torch.ones_like(d[..., :1])
    d = torch.cat([one, d, one], dim=-1)
    grid = yk if inverse else xk
    idx = (xc[..., None] >= grid[..., 1:-1]).sum(-1, keepdim=True)
    pick = lambda t: t.gather(-1, idx)[..., 0]  # noqa: E731
    x0, w0, y0, h0 = pick(xk), pick(w), pick(yk), pick(h)
    d0, d1 = pick(d[..., :-1]), pick(d[..., 1:])
    s = h0 / w0
    if not inverse:
        xi = (xc - x0) / w0
        q = xi * (1 - xi)
        den = s + (d1 + d0 - 2 * s) * q
        out = y0 + h0 * (s * xi**2 + d0 * q) / den
        dnum = s**2 * (d1 * xi**2 + 2 * s * q + d0 * (1 - xi) ** 2)
        logd = torch.log(dnum) - 2 * torch.log(den)
    else:
        dy = xc - y0
        a = h0 * (s - d0) + dy * (d1 + d0 - 2 * s)
        b = h0 * d0 - dy * (d1 + d0 - 2 * s)
        c = -s * dy
        disc = (b**2 - 4 * a * c).clamp(min=0)
        xi = (2 * c / (-b - torch.sqrt(disc))).clamp(0, 1)
        out = x0 + xi * w0
        q = xi * (1 - xi)
        den = s + (d1 + d0 - 2 * s) * q
        dnum = s**2 * (d1 * xi**2 + 2 * s * q + d0 * (1 - xi) ** 2)
        logd = 2 * torch.log(den) - torch.log(dnum)
    out = torch.where(inside, out, x)
    logd = torch.where(inside, logd, torch.zeros_like(logd))
    return out, logd


class SplineCoupling(_Coupling):
    r"""Rational-quadratic spline coupling, eq. (42) with a monotone spline as :math:`\gamma`.

    Each transformed entry :math:`x_{2,i}` goes through its own strictly increasing spline
    with ``bins`` bins on :math:`[-B, B]` (identity outside) whose shape :math:`f(x_1)`
    outputs; the inverse (43) inverts each spline in closed form. The Jacobian is triangular, so
    :math:`\log|\det| = \sum_i \log \gamma'(x_{2,i})` (Section 4.2.3).

    Parameters
    ----------
    dim, mask, flip, hidden, zero_init, activation :
        As in :class:`~spdl_ref.invertible.AdditiveCoupling`.
    bins : int
        Number of spline bins :math:`K \ge 2`.
    bound : float
        :math:`B > 0`.
    """

    def __init__(
        self,
        dim: int | Sequence[int],
        mask: str | torch.Tensor = "halves",
        flip: bool = False,
        hidden: int = 64,
        zero_init: bool = True,
        bins: int = 8,
        bound: float = 3.0,
        device: Device = None,
        dtype: torch.dtype | None = None,
        *,
        activation: str = "tanh",
    ) -> None:
        self.bins = _validate.positive_int(bins, "bins")
        if not 2 <= self.bins < round(1 / MIN_BIN):
            raise ValueError(f"bins must satisfy 2 <= bins < {round(1 / MIN_BIN)}, got {bins}")
        self.n_params = 3 * self.bins - 1
        super().__init__(dim, mask, flip, hidden, zero_init, device, dtype, activation=activation)
        self.bound = _validate.positive_real(bound, "bound")

    def _transform(self, x, p, inverse):
        k = self.bins
        out, logd = _spline_any_dtype(
            x, p[..., :k], p[..., k : 2 * k], p[..., 2 * k :], self.bound, inverse
        )
        keep = self.mask.bool().expand_as(x)
        return torch.where(keep, x, out), torch.where(keep, 0.0, logd).flatten(1).sum(1)

    def _couple(self, x, p):
        return self._transform(x, p, False)

    def _uncouple(self, y, p):
        return self._transform(y, p, True)[0]
