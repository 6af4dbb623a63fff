r"""Regularisers for training (Section 3.2) and their proximal maps.

* :math:`\|\theta\|_1` and :math:`\|\theta\|_2^2` (sparse or small parameters), with their
  proximal maps (soft thresholding for the 1-norm, a shrinking for the squared 2-norm);
* the squared :math:`H^1` norm (37), :math:`\|\theta(0)\|^2 + \int_0^T \|\dot\theta\|^2 dt`, in
  its discrete form from (40) for a piecewise-constant :math:`\theta`;
* the total variation across layers, :math:`\sum_k \|\theta^{k+1} - \theta^k\|_1` (the
  topology that Section 3.4.3 asks about), with its exact proximal map :func:`tv_denoise`;
* the indicator (39) of admissible time steps :math:`\{h \ge 0, \sum_k h^k = T\}` for the
  variable-step ResNet (38), whose proximal map is the Euclidean projection
  :func:`project_simplex`.

The norms of a network act on its layer parameters :math:`\theta^k` (every parameter of a
:class:`spdl_ref.ode.LayeredNetwork` but learnt step sizes); :func:`h1_discrete` also needs fixed
step sizes, the spacing of its time grid. The proximal maps are made by :func:`l1_prox`,
:func:`squared_l2_prox`, :func:`tv_prox` and :func:`simplex_prox` in the form
:func:`spdl_ref.control.proximal_gradient` calls, ``prox(theta, tau)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import _validate
from ..ode.layered import check_layered, parameter_layout

__all__ = [
    "h1_discrete",
    "l1_norm",
    "l1_prox",
    "project_simplex",
    "simplex_prox",
    "soft_threshold",
    "squared_l2_norm",
    "squared_l2_prox",
    "time_step_indicator",
    "tv_denoise",
    "tv_norm",
    "tv_prox",
]


def _layer_params(model: Any) -> list:
    model = check_layered(model)
    params = dict(model.named_parameters())
    return [params[name] for name in parameter_layout(model)[0]]


def l1_norm(model: Any) -> torch.Tensor:
    r""":math:`\|\theta\|_1 = \sum_i |\theta_i|` over a network's layer parameters (Section 3.2).

    For the ResNet the entries of :math:`A` and :math:`b`; ``model`` is any
    :class:`~spdl_ref.ode.LayeredNetwork`.
    """
    return sum(p.abs().sum() for p in _layer_params(model))


def squared_l2_norm(model: Any) -> torch.Tensor:
    r""":math:`\|\theta\|_2^2 = \sum_i \theta_i^2` over a network's layer parameters (Section 3.2).

    For the ResNet the entries of :math:`A` and :math:`b`; ``model`` is any
    :class:`~spdl_ref.ode.LayeredNetwork`.
    """
    return sum(p.pow(2).sum() for p in _layer_params(model))


def soft_threshold(theta: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Proximal map of :math:`\tau \|\cdot\|_1` (Section 3.2), entry by entry.

    :math:`\operatorname{sign}(\theta)\max(|\theta| - \tau, 0)`.
    """
    _validate.tensor(theta, "theta")
    tau = _validate.nonnegative_real(tau, "tau")
    return torch.sign(theta) * torch.clamp(theta.abs() - tau, min=0)


def l1_prox(lam: float) -> Callable[[torch.Tensor, float], torch.Tensor]:
    r"""The proximal map of :math:`R = \lambda \|\cdot\|_1` for a step :math:`\tau` (Section 3.2).

    Returns ``prox(theta, tau)`` :math:`= \operatorname{prox}_{\tau R}(\theta)`, soft
    thresholding at :math:`\lambda \tau` (:func:`soft_threshold`), for
    :func:`spdl_ref.control.proximal_gradient`.

    Examples
    --------
    >>> l1_prox(0.5)(torch.tensor([-2.0, 0.2, 1.0]), 1.0)
    tensor([-1.5000,  0.0000,  0.5000])
    """
    lam = _validate.nonnegative_real(lam, "lam")

    def prox(theta: torch.Tensor, tau: float) -> torch.Tensor:
        return soft_threshold(theta, lam * _validate.nonnegative_real(tau, "tau"))

    return prox


def squared_l2_prox(lam: float) -> Callable[[torch.Tensor, float], torch.Tensor]:
    r"""The proximal map of :math:`R = \lambda \|\cdot\|_2^2` for a step :math:`\tau` (Section 3.2).

    Returns ``prox(theta, tau)`` :math:`= \theta / (1 + 2 \lambda \tau)`, the minimiser of
    :math:`\tau \lambda \|v\|^2 + \frac12 \|v - \theta\|^2`.

    Examples
    --------
    >>> squared_l2_prox(0.5)(torch.tensor([3.0]), 2.0)  # 3 / (1 + 2 * 0.5 * 2)
    tensor([1.])
    """
    lam = _validate.nonnegative_real(lam, "lam")

    def prox(theta: torch.Tensor, tau: float) -> torch.Tensor:
        _validate.tensor(theta, "theta")
        return theta / (1 + 2 * lam * _validate.nonnegative_real(tau, "tau"))

    return prox


def h1_discrete(model: Any) -> torch.Tensor:
    r"""The discrete squared :math:`H^1` norm of (40), of a piecewise-constant :math:`\theta`.

    .. math::

        \|\theta^0\|^2 + \sum_{k=0}^{K-2} \frac{\|\theta^{k+1} - \theta^k\|^2}{h_k},
        \qquad h_k = T/K \text{ for the ResNet},

    with :math:`\|\theta^k\|^2` the sum of squares of layer :math:`k`'s parameters (for the
    ResNet :math:`\|A^k\|_F^2 + \|b^k\|^2`). For :math:`T = 1` the factor :math:`1/h` is the
    :math:`K` of (40); it is the squared :math:`H^1` norm (37) of the piecewise-linear
    interpolant of the :math:`\theta^k` at the nodes :math:`t^k`. (40) writes the sum up to
    :math:`k = K - 1`, which needs a :math:`\theta^K` the network does not have; the last
    difference is taken as zero. ``model`` is a :class:`~spdl_ref.ode.LayeredNetwork` with fixed
    step sizes (learnt steps (38) would make the grid itself a variable: refused).
    """
    model = check_layered(model)
    names, step_name = parameter_layout(model)
    if step_name is not None:
        raise TypeError(
            f"h1_discrete needs fixed step sizes; {type(model).__name__} learns them "
            f"({step_name!r})"
        )
    params = dict(model.named_parameters())
    first = sum(params[n][0].pow(2).sum() for n in names)
    if model.depth == 1:
        return first
    ref = params[names[0]]
    inv_h = torch.tensor(
        [1.0 / float(model.step_size(k)) for k in range(model.depth - 1)],
        dtype=ref.dtype,
        device=ref.device,
    )
    jumps = sum(
        (params[n][1:] - params[n][:-1]).pow(2).reshape(model.depth - 1, -1).sum(1) for n in names
    )
    return first + (inv_h * jumps).sum()


def time_step_indicator(h: torch.Tensor, T: float, tol: float = 1e-10) -> float:
    r"""The indicator (39) of admissible steps (Section 3.2).

    ``0.0`` if :math:`h^k \ge 0` and :math:`\sum_k h^k = T` (both up to ``tol``), ``inf``
    otherwise.
    """
    h = _check_vector(h, "h")
    T = _validate.positive_real(T, "T")
    tol = _validate.nonnegative_real(tol, "tol")
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
    r"""Euclidean projection of ``h`` onto :math:`\{h \ge 0, \sum_k h^k = T\}`, the prox of (39).

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


def simplex_prox(T: float) -> Callable[[torch.Tensor, float], torch.Tensor]:
    r"""The proximal map of the indicator (39) (Section 3.2), whatever the step :math:`\tau`.

    ``prox(h, tau)`` is :func:`project_simplex` ``(h, T)``, for the learnt steps of (38) in
    :func:`spdl_ref.control.proximal_gradient`.

    Examples
    --------
    >>> simplex_prox(1.0)(torch.tensor([0.9, 0.6, -0.2]), 0.1)
    tensor([0.6500, 0.3500, 0.0000])
    """
    T = _validate.positive_real(T, "T")

    def prox(h: torch.Tensor, tau: float) -> torch.Tensor:
        return project_simplex(h, T)

    return prox


def tv_norm(model: Any) -> torch.Tensor:
    r"""The total variation of :math:`\theta` across the layers (Section 3.4.3).

    :math:`\mathrm{TV}(\theta) = \sum_{k=0}^{K-2} \|\theta^{k+1} - \theta^k\|_1`. For the
    piecewise-constant :math:`\theta(t) = \theta^k` on :math:`[t^k, t^{k+1})` this is the
    (anisotropic) total variation of the function :math:`t \mapsto \theta(t)`: the sum of the
    sizes of its jumps, which, unlike the :math:`H^1` term of (40), does not depend on the grid.
    ``model`` is any :class:`~spdl_ref.ode.LayeredNetwork`.
    """
    params = _layer_params(model)
    return sum((p[1:] - p[:-1]).abs().sum() for p in params)


def tv_denoise(y: torch.Tensor, lam: float) -> torch.Tensor:
    r"""The proximal map of :math:`\lambda\,\mathrm{TV}`: 1-D total-variation denoising (§3.4.3).

    Returns the minimiser :math:`x` of
    :math:`\frac12 \sum_k (x_k - y_k)^2 + \lambda \sum_k |x_{k+1} - x_k|` along the first axis of
    ``y`` (shape ``(K, ...)``), for every other index separately. Exact, by Condat's direct
    algorithm (L. Condat, IEEE Signal Process. Lett. 20 (2013) 1054-1057), which runs in Python
    over the entries: meant for the short sequences of a network's layers.

    Examples
    --------
    A step of height 1 between two flat pieces of length 2 is lowered by :math:`\lambda / 2` on
    the high side and raised by :math:`\lambda / 2` on the low side:

    >>> tv_denoise(torch.tensor([0.0, 0.0, 1.0, 1.0]), 0.5)
    tensor([0.2500, 0.2500, 0.7500, 0.7500])
    """
    _validate.tensor(y, "y")
    lam = _validate.nonnegative_real(lam, "lam")
    if y.dim() == 0 or y.shape[0] == 0:
        raise ValueError(f"y must have a first axis of length >= 1, got shape {tuple(y.shape)}")
    columns = y.detach().reshape(y.shape[0], -1).T.tolist()
    out = [_condat(col, lam) for col in columns]
    return torch.tensor(out, dtype=y.dtype, device=y.device).T.reshape(y.shape)


def _condat(y: list, lam: float) -> list:
    """Condat's direct algorithm for 1-D TV denoising of the list ``y`` (a transcription)."""
    n = len(y)
    x = [0.0] * n
    if n == 1 or lam == 0.0:
        return list(y)
    k = k0 = kplus = kminus = 0
    umin, umax = lam, -lam
    vmin, vmax = y[0] - lam, y[0] + lam
    while True:
        while k == n - 1:  # the right end: close the last segments
            if umin < 0.0:  # vmin is too high: a negative jump
                while True:
                    x[k0] = vmin
                    k0 += 1
                    if k0 > kminus:
                        break
                k = kminus = k0
                vmin = y[k]
                umin = lam
                umax = vmin + umin - vmax
            elif umax > 0.0:  # vmax is too low: a positive jump
                while True:
                    x[k0] = vmax
                    k0 += 1
                    if k0 > kplus:
                        break
                k = kplus = k0
                vmax = y[k]
                umax = -lam
                umin = vmax + umax - vmin
            else:
                vmin += umin / (k - k0 + 1)
                while True:
                    x[k0] = vmin
                    k0 += 1
                    if k0 > k:
                        break
                return x
        umin += y[k + 1] - vmin
        if umin < -lam:  # a negative jump
            while True:
                x[k0] = vmin
                k0 += 1
                if k0 > kminus:
                    break
            k = kminus = kplus = k0
            vmin = y[k]
            vmax = vmin + 2 * lam
            umin, umax = lam, -lam
            continue
        umax += y[k + 1] - vmax
        if umax > lam:  # a positive jump
            while True:
                x[k0] = vmax
                k0 += 1
                if k0 > kplus:
                    break
            k = kminus = kplus = k0
            vmax = y[k]
            vmin = vmax - 2 * lam
            umin, umax = lam, -lam
            continue
        k += 1  # no jump: extend the segment
        if umin >= lam:
            kminus = k
            vmin += (umin - lam) / (kminus - k0 + 1)
            umin = lam
        if umax <= -lam:
            kplus = k
            vmax += (umax + lam) / (kplus - k0 + 1)
            umax = -lam


def tv_prox(lam: float) -> Callable[[torch.Tensor, float], torch.Tensor]:
    r"""The proximal map of :math:`R = \lambda\,\mathrm{TV}` for a step :math:`\tau` (§3.4.3).

    Returns ``prox(theta, tau)`` :math:`= \operatorname{prox}_{\tau R}(\theta)`:
    :func:`tv_denoise` at :math:`\lambda\tau` along the layer axis of a stacked parameter
    ``theta`` (shape ``(K, ...)``), for :func:`spdl_ref.control.proximal_gradient`.
    """
    lam = _validate.nonnegative_real(lam, "lam")

    def prox(theta: torch.Tensor, tau: float) -> torch.Tensor:
        return tv_denoise(theta, lam * _validate.nonnegative_real(tau, "tau"))

    return prox
