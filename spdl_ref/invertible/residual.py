r"""Invertible residual layers, Section 4.1.2, eqs. (44)-(47).

:math:`g(x) = x + f(x)` (44) is invertible when :math:`\mathrm{Lip}(f) < 1`: the inverse of
:math:`y` is the unique fixed point of :math:`\Phi_y(z) = y - f(z)`, a contraction by (45), found
by the iteration :math:`x^i = y - f(x^{i-1})` (46) with error at most
:math:`\mathrm{Lip}(f)^i \|x^0 - x^*\|`. The bound is enforced by spectral normalisation (47).
"""

from __future__ import annotations

import contextlib
import math
import threading

import torch
from torch import nn

from .. import _validate
from ._base import InvertibleModule, check_batch, factory, feature_shape
from .logdet import logdet_exact, logdet_power_series, logdet_russian_roulette
from .spectral import SpectralNormConv2d, SpectralNormLinear

__all__ = ["InversionError", "InvertibleResidual", "LipSwish", "frozen_power_iteration"]

_STATE = threading.local()


@contextlib.contextmanager
def frozen_power_iteration():
    """Within this context residual layers do not advance their power iterations (eq. (47)).

    Used by the memory-efficient backward pass (Section 4.2.1), which must re-evaluate each layer
    with exactly the weights of the forward pass.
    """
    old = getattr(_STATE, "frozen", False)
    _STATE.frozen = True
    try:
        yield
    finally:
        _STATE.frozen = old


class InversionError(RuntimeError):
    """The fixed-point iteration (46) did not reach its tolerance within the iteration cap."""


class LipSwish(nn.Module):
    r""":math:`\sigma(s) = s\,\mathrm{sigmoid}(s) / 1.1`, a smooth activation with :math:`\mathrm{Lip}(\sigma) \le 1` (Section 4.1.2)."""

    def forward(self, x):
        return x * torch.sigmoid(x) / 1.1


class InvertibleResidual(InvertibleModule):
    r"""Invertible residual layer :math:`g(x) = x + f(x)`, eq. (44), with :math:`\mathrm{Lip}(f) \le c < 1`.

    :math:`f = A_L \circ \sigma \circ \dots \circ \sigma \circ A_1` with affine layers spectrally
    normalised by (47): the inner ones to norm 1, the last to :math:`c`, and
    :math:`\mathrm{Lip}(\sigma) \le 1`, so :math:`\mathrm{Lip}(f) \le c` (up to the power-method
    estimate). Dense layers for vectors, 3x3/1x1 convolutions for images. In training mode each
    call of :meth:`forward` advances the power iterations (re-using the vectors, as in
    invertible ResNets); :meth:`inverse` never does.

    Parameters
    ----------
    dim : int or tuple
        ``M`` for inputs ``(N, M)``, ``(C, H, W)`` for images.
    c : float
        Lipschitz coefficient, :math:`0 < c < 1`.
    hidden : int
        Width (units or channels) of the hidden layers.
    n_layers : int
        Number of affine layers in :math:`f` (:math:`\ge 1`).
    n_power_iterations : int
        Power iterations per training step.
    tol, max_iter :
        Defaults of :meth:`inverse`.
    logdet : str
        ``"exact"`` (Jacobian), ``"series"`` (:func:`logdet_power_series`) or ``"roulette"``
        (:func:`logdet_russian_roulette`), used by :meth:`log_abs_det_jacobian`.
    """

    def __init__(self, dim, c=0.9, hidden=64, n_layers=2, n_power_iterations=1, tol=None,
                 max_iter=2000, logdet="exact", device=None, dtype=None):
        super().__init__()
        self.shape = feature_shape(dim)
        self.c = _validate.real(c, "c")
        if not 0 < self.c < 1:
            raise ValueError(f"c must satisfy 0 < c < 1 for the fixed point (46) to exist, got {c}")
        hidden = _validate.positive_int(hidden, "hidden")
        n_layers = _validate.positive_int(n_layers, "n_layers")
        self.tol = None if tol is None else _validate.positive_real(tol, "tol")
        self.max_iter = _validate.positive_int(max_iter, "max_iter")
        if logdet not in ("exact", "series", "roulette"):
            raise ValueError(f"logdet must be 'exact', 'series' or 'roulette', got {logdet!r}")
        self.logdet = logdet
        kw = dict(n_power_iterations=n_power_iterations, **factory(device, dtype))
        sizes = [self.shape[0]] + [hidden] * (n_layers - 1) + [self.shape[0]]
        layers = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            coeff = self.c if i == n_layers - 1 else 1.0
            if len(self.shape) == 1:
                layers.append(SpectralNormLinear(a, b, c=coeff, **kw))
            else:
                k = 1 if 0 < i < n_layers - 1 else 3
                layers.append(SpectralNormConv2d(a, b, k, self.shape[1:], c=coeff, **kw))
            layers.append(LipSwish())
        self.branch = nn.Sequential(*layers[:-1])

    def spectral_layers(self):
        """The spectrally normalised layers of :math:`f`, in order."""
        return [m for m in self.branch if isinstance(m, (SpectralNormLinear, SpectralNormConv2d))]

    def _step_power_iteration(self):
        if self.training and not getattr(_STATE, "frozen", False):
            for layer in self.spectral_layers():
                layer.power_iteration()

    def lipschitz_bound(self):
        r"""The product of the exact operator norms of :math:`f`'s layers, an upper bound on :math:`\mathrm{Lip}(f)`.

        Equal to :math:`c` when the power method has converged; above :math:`c` when it
        underestimates :math:`\|A_\theta\|_2` (Section 4.1.2).
        """
        return math.prod(float(layer.operator_norm()) for layer in self.spectral_layers())

    def forward(self, x):
        check_batch(x, "x", self.shape)
        self._step_power_iteration()
        return x + self.branch(x)

    def forward_and_log_det(self, x):
        check_batch(x, "x", self.shape)
        self._step_power_iteration()
        with frozen_power_iteration():
            return x + self.branch(x), self.log_abs_det_jacobian(x)

    def log_abs_det_jacobian(self, x, method=None, **kwargs):
        r"""Per-sample :math:`\log|\det(I + J_f(x))|` (Section 4.2.3).

        ``method`` (default: the ``logdet`` given at construction) is ``"exact"``,
        ``"series"`` or ``"roulette"``; ``kwargs`` go to the estimator.
        """
        check_batch(x, "x", self.shape)
        method = self.logdet if method is None else method
        if method == "exact":
            return logdet_exact(self.branch, x)
        if method == "series":
            return logdet_power_series(self.branch, x, **kwargs)
        if method == "roulette":
            return logdet_russian_roulette(self.branch, x, **kwargs)
        raise ValueError(f"method must be 'exact', 'series' or 'roulette', got {method!r}")

    def fixed_point_iterates(self, y, iterations):
        r"""The iterates :math:`x^0 = y, x^1, \dots, x^n` of eq. (46), stacked along a new first axis."""
        check_batch(y, "y", self.shape)
        iterations = _validate.nonnegative_int(iterations, "iterations")
        xs = [y]
        with torch.no_grad():
            for _ in range(iterations):
                xs.append(y - self.branch(xs[-1]))
        return torch.stack(xs)

    def inverse(self, y, tol=None, max_iter=None):
        r"""Invert by the fixed-point iteration (46), :math:`x^i = y - f(x^{i-1})`, :math:`x^0 = y`.

        Stops when :math:`\max|x^i - x^{i-1}| \le \mathrm{tol}\,(1 + \max|y|)`; since
        :math:`\|x^i - x^*\| \le \frac{c}{1-c}\|x^i - x^{i-1}\|` this bounds the error.
        Default ``tol``: :math:`10^{-13}` in float64, :math:`10^{-6}` otherwise.

        Raises
        ------
        InversionError
            If the tolerance is not met after ``max_iter`` iterations.
        """
        check_batch(y, "y", self.shape)
        tol = self.tol if tol is None else _validate.positive_real(tol, "tol")
        if tol is None:
            tol = 1e-13 if y.dtype == torch.float64 else 1e-6
        max_iter = self.max_iter if max_iter is None else _validate.positive_int(max_iter, "max_iter")
        scale = 1 + float(y.detach().abs().max()) if y.numel() else 1.0
        x = y
        for i in range(max_iter):
            x_new = y - self.branch(x)
            change = float((x_new - x).detach().abs().max()) if y.numel() else 0.0
            x = x_new
            if change <= tol * scale:
                return x
        raise InversionError(
            f"fixed-point iteration (46) did not converge: change {change:.2e} > tol {tol:.1e} "
            f"after max_iter={max_iter} iterations (is Lip(f) < 1?)")

    def extra_repr(self):
        return f"shape={self.shape}, c={self.c}"
