r"""Invertible residual layers, Section 4.1.2, eqs. (44)-(47).

:math:`g(x) = x + f(x)` (44) is invertible when :math:`\mathrm{Lip}(f) < 1`: the inverse of
:math:`y` is the unique fixed point of :math:`\Phi_y(z) = y - f(z)`, a contraction by (45), found
by the iteration :math:`x^i = y - f(x^{i-1})` (46) with error at most
:math:`\mathrm{Lip}(f)^i \|x^0 - x^*\|`. The bound is enforced by spectral normalisation (47).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.types import Device

from .. import _validate
from ._base import InvertibleModule, check_batch, factory, feature_shape, reference_tensor
from .logdet import logdet_exact, logdet_power_series, logdet_russian_roulette
from .spectral import SpectralNormConv2d, SpectralNormLinear

__all__ = [
    "InversionError",
    "InvertibleResidual",
    "LipSwish",
    "contractive_residual",
    "fixed_point_errors",
    "frozen_power_iteration",
    "largest_lipschitz_bound",
    "observed_contraction_rate",
]

_STATE = threading.local()
LOGDET_METHODS = ("exact", "series", "roulette")


@contextlib.contextmanager
def frozen_power_iteration() -> Iterator[None]:
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
    r""":math:`\sigma(s) = s\,\mathrm{sigmoid}(\beta s) / 1.1`, a smooth activation with
    :math:`\mathrm{Lip}(\sigma) \le 1` (Section 4.1.2).

    For every :math:`\beta > 0` the derivative :math:`\mathrm{sigmoid}(u) +
    u\,\mathrm{sigmoid}'(u)`, :math:`u = \beta s`, stays below 1.1, so the bound holds whatever
    :math:`\beta` is. With ``learnable=True``, :math:`\beta = \mathrm{softplus}(\beta_0)` is
    trained: a larger :math:`\beta` sharpens the bend, which a spectrally normalised branch (whose
    pre-activations are small) needs to be more than nearly affine.

    Parameters
    ----------
    beta : float
        Initial (or fixed) :math:`\beta > 0`.
    learnable : bool
        Whether :math:`\beta` is a trainable parameter.
    """

    def __init__(
        self,
        beta: float = 1.0,
        learnable: bool = False,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        beta = _validate.positive_real(beta, "beta")
        _validate.boolean(learnable, "learnable")
        raw = torch.tensor(
            beta + math.log(-math.expm1(-beta)), **factory(device, dtype)
        )  # softplus^-1
        if learnable:
            self.beta_raw = nn.Parameter(raw)
        else:
            self.register_buffer("beta_raw", raw)

    @property
    def beta(self) -> torch.Tensor:
        r"""The current :math:`\beta = \mathrm{softplus}(\beta_0)`."""
        return nn.functional.softplus(self.beta_raw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r"""The activation :math:`\sigma(x)`, elementwise."""
        _validate.tensor(x, "x")
        _validate.like(x, self.beta_raw, "x", "LipSwish")
        return x * torch.sigmoid(self.beta * x) / 1.1


class InvertibleResidual(InvertibleModule):
    r"""Invertible residual layer :math:`g(x) = x + f(x)`, eq. (44), with :math:`\mathrm{Lip}(f) \le
    c < 1`.

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
    beta, learn_beta :
        The slope parameter of the :class:`LipSwish` activations and whether it is trained.
    """

    def __init__(
        self,
        dim: int | Sequence[int],
        c: float = 0.9,
        hidden: int = 64,
        n_layers: int = 2,
        n_power_iterations: int = 1,
        tol: float | None = None,
        max_iter: int = 2000,
        logdet: str = "exact",
        beta: float = 1.0,
        learn_beta: bool = False,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.shape = feature_shape(dim)
        self.c = _validate.real(c, "c")
        if not 0 < self.c < 1:
            raise ValueError(f"c must satisfy 0 < c < 1 for the fixed point (46) to exist, got {c}")
        hidden = _validate.positive_int(hidden, "hidden")
        n_layers = _validate.positive_int(n_layers, "n_layers")
        self.tol = None if tol is None else _validate.positive_real(tol, "tol")
        self.max_iter = _validate.positive_int(max_iter, "max_iter")
        self.logdet = _validate.choice(logdet, LOGDET_METHODS, "logdet")
        _validate.boolean(learn_beta, "learn_beta")
        fk = factory(device, dtype)
        sizes = [self.shape[0]] + [hidden] * (n_layers - 1) + [self.shape[0]]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            coeff = self.c if i == n_layers - 1 else 1.0
            if len(self.shape) == 1:
                layers.append(
                    SpectralNormLinear(a, b, c=coeff, n_power_iterations=n_power_iterations, **fk)
                )
            else:
                k = 1 if 0 < i < n_layers - 1 else 3
                layers.append(
                    SpectralNormConv2d(
                        a,
                        b,
                        k,
                        self.shape[1:],
                        c=coeff,
                        n_power_iterations=n_power_iterations,
                        **fk,
                    )
                )
            layers.append(LipSwish(beta, learn_beta, **fk))
        self.branch = nn.Sequential(*layers[:-1])

    def spectral_layers(self) -> list[SpectralNormLinear | SpectralNormConv2d]:
        """The spectrally normalised layers of :math:`f`, in order."""
        return [m for m in self.branch if isinstance(m, (SpectralNormLinear, SpectralNormConv2d))]

    def _step_power_iteration(self):
        if self.training and not getattr(_STATE, "frozen", False):
            for layer in self.spectral_layers():
                layer.power_iteration()

    def lipschitz_bound(self) -> float:
        r"""The product of the exact operator norms of :math:`f`'s layers, an upper bound on
        :math:`\mathrm{Lip}(f)`.

        Equal to :math:`c` when the power method has converged; above :math:`c` when it
        underestimates :math:`\|A_\theta\|_2` (Section 4.1.2).
        """
        return math.prod(float(layer.operator_norm()) for layer in self.spectral_layers())

    def _check(self, x, name):
        return check_batch(
            x, name, self.shape, like=reference_tensor(self), owner="InvertibleResidual"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The residual map :math:`g(x) = x + f(x)` of (44) (a power-method step in training)."""
        self._check(x, "x")
        self._step_power_iteration()
        return x + self.branch(x)

    def forward_and_log_det(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The map (44) and its log-determinant, with the same normalised weights for both."""
        self._check(x, "x")
        self._step_power_iteration()
        with frozen_power_iteration():
            return x + self.branch(x), self.log_abs_det_jacobian(x)

    def log_abs_det_jacobian(
        self, x: torch.Tensor, method: str | None = None, **kwargs: Any
    ) -> torch.Tensor:
        r"""Per-sample :math:`\log|\det(I + J_f(x))|` (Section 4.2.3).

        ``method`` (default: the ``logdet`` given at construction) is ``"exact"``,
        ``"series"`` or ``"roulette"``; ``kwargs`` go to the estimator.
        """
        self._check(x, "x")
        method = (
            self.logdet if method is None else _validate.choice(method, LOGDET_METHODS, "method")
        )
        if method == "exact":
            if kwargs:
                raise TypeError(f"method='exact' takes no options, got {sorted(kwargs)}")
            return logdet_exact(self.branch, x)
        if method == "series":
            return logdet_power_series(self.branch, x, **kwargs)
        return logdet_russian_roulette(self.branch, x, **kwargs)

    def fixed_point_iterates(self, y: torch.Tensor, iterations: int) -> torch.Tensor:
        r"""The iterates :math:`x^0 = y, x^1, \dots, x^n` of eq. (46), stacked along a new first
        axis."""
        self._check(y, "y")
        iterations = _validate.nonnegative_int(iterations, "iterations")
        xs = [y]
        with torch.no_grad():
            for i in range(iterations):
                xs.append(y - self.branch(xs[-1]))
                if not _validate.all_finite(xs[-1]):
                    raise InversionError(
                        f"fixed-point iteration (46) diverged at iteration {i + 1} (the iterates "
                        "overflowed): Lip(f) < 1 does not hold for this layer"
                    )
        return torch.stack(xs)

    def inverse(
        self, y: torch.Tensor, tol: float | None = None, max_iter: int | None = None
    ) -> torch.Tensor:
        r"""Invert by the fixed-point iteration (46), :math:`x^i = y - f(x^{i-1})`, :math:`x^0 = y`.

        Stops when :math:`\max|x^i - x^{i-1}| \le \mathrm{tol}\,(1 + \max|y|)`; since
        :math:`\|x^i - x^*\| \le \frac{c}{1-c}\|x^i - x^{i-1}\|` this bounds the error.
        Default ``tol``: :math:`10^{-13}` in float64, :math:`10^{-6}` otherwise.

        Raises
        ------
        InversionError
            If the tolerance is not met after ``max_iter`` iterations.
        """
        self._check(y, "y")
        tol = self.tol if tol is None else _validate.positive_real(tol, "tol")
        if tol is None:
            tol = 1e-13 if y.dtype == torch.float64 else 1e-6
        max_iter = (
            self.max_iter if max_iter is None else _validate.positive_int(max_iter, "max_iter")
        )
        scale = 1 + float(y.detach().abs().max()) if y.numel() else 1.0
        x = y
        for i in range(max_iter):
            x_new = y - self.branch(x)
            change = float((x_new - x).detach().abs().max()) if y.numel() else 0.0
            x = x_new
            if change <= tol * scale:
                return x
            if not math.isfinite(change):
                raise InversionError(
                    f"fixed-point iteration (46) diverged at iteration {i + 1} (the iterates "
                    "overflowed): Lip(f) < 1 does not hold for this layer"
                )
        raise InversionError(
            f"fixed-point iteration (46) did not converge: change {change:.2e} > tol {tol:.1e} "
            f"after max_iter={max_iter} iterations (is Lip(f) < 1?)"
        )

    def extra_repr(self) -> str:
        return f"shape={self.shape}, c={self.c}"


def contractive_residual(
    c: float,
    dim: int = 8,
    hidden: int = 32,
    symmetric_linear: bool = False,
    std: float = 1.0,
    power_iterations: int = 500,
    negative_definite: bool = False,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> InvertibleResidual:
    r"""An :class:`InvertibleResidual` (44) with random weights whose :math:`\mathrm{Lip}(f)` is
    :math:`c`, for studying iteration (46).

    All parameters are drawn from :math:`\mathcal{N}(0, \mathrm{std}^2)` (global generator) and the
    spectral normalisation (47) is converged by ``power_iterations`` power-method steps, so the
    Lipschitz bound equals :math:`c`. With ``symmetric_linear``, :math:`f(x) = A x + b` with
    :math:`A` symmetric, so the spectral radius of :math:`J_f` equals :math:`\|A\|_2 = c` and the
    error of (46) shrinks by exactly :math:`c` per step asymptotically; otherwise :math:`f` is a
    two-layer network, for which :math:`c` is only a bound. With ``negative_definite`` as well,
    :math:`A` is negative semidefinite, so :math:`-c` is an eigenvalue of :math:`J_f` and
    :math:`I + J_f` has smallest singular value :math:`1 - c`: the inverse then amplifies
    perturbations by exactly :math:`1/(1 - c)`, the worst case of its Lipschitz bound (Section
    4.3.2). Returned in ``eval`` mode.

    Parameters
    ----------
    c : float
        Lipschitz coefficient, :math:`0 < c < 1`.
    dim : int
        Number of features :math:`M`.
    hidden : int
        Width of the hidden layer (two-layer case).
    symmetric_linear : bool
        One symmetric affine layer instead of a two-layer network.
    std : float
        Standard deviation of the random parameters.
    power_iterations : int
        Power-method steps per spectrally normalised layer.
    negative_definite : bool
        With ``symmetric_linear``: :math:`A = -c P`, :math:`P` symmetric positive semidefinite.
    """
    _validate.boolean(symmetric_linear, "symmetric_linear")
    _validate.boolean(negative_definite, "negative_definite")
    if negative_definite and not symmetric_linear:
        raise ValueError("negative_definite needs symmetric_linear=True (a linear branch)")
    std = _validate.positive_real(std, "std")
    power_iterations = _validate.positive_int(power_iterations, "power_iterations")
    layer = InvertibleResidual(
        dim, c=c, hidden=hidden, n_layers=1 if symmetric_linear else 2, device=device, dtype=dtype
    )
    with torch.no_grad():
        for p in layer.parameters():
            nn.init.normal_(p, std=std)
        if symmetric_linear:
            w = layer.spectral_layers()[0].weight
            w.copy_(-(w @ w.T) if negative_definite else w + w.T)
    for s in layer.spectral_layers():
        s.power_iteration(power_iterations)
    return layer.eval()


def fixed_point_errors(layer: InvertibleResidual, x: torch.Tensor, iterations: int) -> torch.Tensor:
    r"""The errors :math:`\|x^i - x^*\|`, :math:`i = 0, \dots, n`, of the fixed-point inversion
    (46).

    The exact preimage is :math:`x^* =` ``x``: the iteration inverts :math:`y = g(x)` from
    :math:`x^0 = y`. The norm is taken over the whole batch (Frobenius). By the contraction
    property (45) the errors satisfy :math:`\|x^i - x^*\| \le \mathrm{Lip}(f)^i \|x^0 - x^*\|`.

    Parameters
    ----------
    layer : InvertibleResidual
        The layer :math:`g(x) = x + f(x)` of eq. (44).
    x : torch.Tensor
        Points ``(N, *shape)`` in the layer's dtype and device.
    iterations : int
        Number :math:`n \ge 0` of iterations.

    Returns
    -------
    torch.Tensor
        Shape ``(n + 1,)``.
    """
    _validate.module(layer, "layer", InvertibleResidual)
    layer._check(x, "x")
    iterations = _validate.nonnegative_int(iterations, "iterations")
    with torch.no_grad():
        y = _validate.finite_result(layer(x), "g(x), the layer's output")
    return (layer.fixed_point_iterates(y, iterations) - x).flatten(1).norm(dim=1)


def observed_contraction_rate(errors: torch.Tensor, floor: float = 1e-11) -> float:
    r"""The observed error reduction per step of iteration (46), to compare with
    :math:`\mathrm{Lip}(f)` (45).

    With :math:`k` the last index where the error exceeds ``floor`` (beyond it round-off dominates),
    the rate is the geometric mean :math:`(e_k / e_{\lfloor k/2 \rfloor})^{1/(k - \lfloor k/2
    \rfloor)}` over the second half of the useful iterations, where the asymptotic rate has set in.

    Parameters
    ----------
    errors : torch.Tensor
        One-dimensional errors :math:`e_0, e_1, \dots` (e.g. from :func:`fixed_point_errors`).
    floor : float
        Errors at or below it are treated as converged (:math:`> 0`).

    Returns
    -------
    float
    """
    _validate.tensor(errors, "errors")
    if errors.dim() != 1:
        raise ValueError(f"errors must be one-dimensional, got shape {tuple(errors.shape)}")
    floor = _validate.positive_real(floor, "floor")
    above = (errors > floor).nonzero()
    if above.numel() == 0 or int(above.max()) < 1:
        raise ValueError(f"errors must exceed floor={floor:g} at some index >= 1 to measure a rate")
    k = int(above.max())
    return (errors[k] / errors[k // 2]).item() ** (1 / (k - k // 2))


def largest_lipschitz_bound(module: nn.Module, refresh: bool = False) -> float:
    r"""The largest :meth:`InvertibleResidual.lipschitz_bound` among the residual layers (44) inside
    ``module`` (Section 4.1.2).

    Shows whether the power-method estimate in (47) keeps every :math:`\mathrm{Lip}(f)` below
    :math:`c` during training (e.g. as ``monitor`` of :func:`~spdl_ref.invertible.fit_flow`).

    Parameters
    ----------
    module : torch.nn.Module
        A layer, network or :class:`~spdl_ref.invertible.NormalisingFlow`.
    refresh : bool
        ``False``: the bound of the weights as they are, normalised with the singular vectors the
        layers hold (what a layer computes in evaluation mode). ``True``: the bound after one
        round of each layer's own power iterations, run on a copy (what the next forward pass in
        training mode normalises with, since it runs those iterations first); ``module`` is not
        changed.

    Returns
    -------
    float
    """
    _validate.module(module, "module")
    refresh = _validate.boolean(refresh, "refresh")
    if refresh:
        module = copy.deepcopy(module)
    blocks = [m for m in module.modules() if isinstance(m, InvertibleResidual)]
    if not blocks:
        raise ValueError("module must contain at least one InvertibleResidual layer")
    if refresh:
        for block in blocks:
            for layer in block.spectral_layers():
                layer.power_iteration()
    return max(block.lipschitz_bound() for block in blocks)
