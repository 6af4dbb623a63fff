r"""Lipschitz control and the stability of inverses: the open problems of Section 4.3.

Invertible residual layers (44) need :math:`\mathrm{Lip}(f) < 1`, enforced by spectral
normalisation (47); the review asks for fast inverses without coupling (Section 4.3.1) and for
cheaper ways to control the Lipschitz constant and to guarantee a stable inverse (Section 4.3.2).
This module holds the measurements the book's experiments on them use:

* :func:`norm_estimates` -- cheap estimates of :math:`\|A_\theta\|_2` next to the exact value:
  upper bounds (Frobenius, :math:`\sqrt{\|A\|_1\|A\|_\infty}`, and for convolutions
  :math:`\sqrt{k_1 k_2}\,\|R\|_2` with :math:`R` the reshaped kernel) and the reshaped-kernel
  norm :math:`\|R\|_2` itself, which is not a bound on a convolution's norm;
* :func:`power_method_under_drift` -- how often the power method with a few iterations per step,
  re-using its vectors as in training, underestimates :math:`\|A_\theta\|_2` while the weights
  move, so that the normalised layer's Lipschitz constant exceeds :math:`c`;
* :func:`inverse_amplification` -- the error amplification of an inverse,
  :math:`\|g^{-1}(y + \delta) - g^{-1}(y)\| / \|\delta\|` in the worst direction, to compare with
  :math:`\mathrm{Lip}(g^{-1}) \le 1/(1 - \mathrm{Lip}(f))`;
* :func:`jacobian_fill` -- the share of Jacobian entries that can be non-zero (whether every
  output depends on every input);
* :func:`inverse_iterations` -- how many iterations the fixed-point iteration (46) or Newton's
  method needs to invert a residual layer (as one implicit Euler step,
  :func:`~spdl_ref.invertible.euler_step_inverse`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.types import Device

from .. import _validate
from ._base import InvertibleModule, check_batch
from .continuous import euler_step_inverse
from .residual import InvertibleResidual
from .spectral import SpectralNormConv2d, SpectralNormLinear

__all__ = [
    "inverse_amplification",
    "inverse_iterations",
    "jacobian_fill",
    "norm_estimates",
    "power_method_under_drift",
]


@torch.no_grad()
def norm_estimates(layer: SpectralNormLinear | SpectralNormConv2d) -> dict[str, float]:
    r"""Estimates of the operator norm :math:`\|A_\theta\|_2` of a spectrally normalised layer's
    raw weight (eq. (47)), with their cost.

    For a :class:`~spdl_ref.invertible.SpectralNormLinear` with matrix :math:`A`:

    * ``"exact"``: :math:`\|A\|_2` from an SVD, :math:`O(M^3)` operations;
    * ``"frobenius"``: :math:`\|A\|_F \ge \|A\|_2`, one pass over the entries;
    * ``"holder"``: :math:`\sqrt{\|A\|_1 \|A\|_\infty} \ge \|A\|_2` (Hölder), two passes.

    For a :class:`~spdl_ref.invertible.SpectralNormConv2d` with kernel of shape
    :math:`(C_\mathrm{out}, C_\mathrm{in}, k_1, k_2)` and :math:`R` its reshape to
    :math:`C_\mathrm{out} \times C_\mathrm{in} k_1 k_2`:

    * ``"exact"``: the norm of the convolution operator on inputs of the layer's size (SVD of its
      matrix);
    * ``"reshaped"``: :math:`\|R\|_2`, independent of the image size, but not a bound: the
      convolution's norm can be larger;
    * ``"reshaped_bound"``: :math:`\sqrt{k_1 k_2}\,\|R\|_2 \ge` the convolution's norm (each
      input pixel enters at most :math:`k_1 k_2` patches).

    Returns
    -------
    dict
        Name to float.
    """
    if isinstance(layer, SpectralNormLinear):
        w = layer.weight
        return {
            "exact": float(layer.operator_norm(normalised=False)),
            "frobenius": float(torch.linalg.matrix_norm(w, "fro")),
            "holder": math.sqrt(
                float(torch.linalg.matrix_norm(w, 1)) * float(torch.linalg.matrix_norm(w, math.inf))
            ),
        }
    if isinstance(layer, SpectralNormConv2d):
        w = layer.weight
        reshaped = float(torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), 2))
        return {
            "exact": float(layer.operator_norm(normalised=False)),
            "reshaped": reshaped,
            "reshaped_bound": math.sqrt(w.shape[2] * w.shape[3]) * reshaped,
        }
    raise TypeError(
        f"layer must be a SpectralNormLinear or SpectralNormConv2d, got {type(layer).__name__}"
    )


@torch.no_grad()
def power_method_under_drift(
    dim: int = 64,
    steps: int = 200,
    drift: float = 0.03,
    iterations: Sequence[int] = (1, 2, 5),
    seed: int = 0,
    device: Device = None,
    dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    r"""Ratios :math:`\|A_t\|_2 / \hat\sigma_t` along a random walk of weights, for the estimates
    :math:`\hat\sigma_t` of spectral normalisation (47) (Section 4.3.2).

    The weights start at :math:`A_0` with entries :math:`\mathcal{N}(0, 1/M)` and take steps
    :math:`A_{t+1} = A_t + \mathrm{drift}\cdot G_t`, :math:`G_t` with entries
    :math:`\mathcal{N}(0, 1/M)` (a model of the parameter changes of training: each step moves
    :math:`A` by about ``drift`` relative to its norm). For each ``n`` in ``iterations`` a
    :class:`~spdl_ref.invertible.SpectralNormLinear` follows the walk as in training: ``n`` power
    iterations per step re-using the vectors of the previous step (converged on :math:`A_0`
    before the walk), then :math:`\hat\sigma_t = u^\top A_t v`. A ratio above 1 means that the
    normalised layer :math:`c A_t / \hat\sigma_t` has Lipschitz constant above :math:`c` by that
    factor. ``"frobenius"`` and ``"holder"`` (see :func:`norm_estimates`) are upper bounds: their
    ratio is at most 1, and :math:`1/\mathrm{ratio}` is how much they over-constrain the layer.

    Parameters
    ----------
    dim : int
        :math:`M`, the matrices are :math:`M \times M`.
    steps : int
        Number of steps :math:`t = 1, \dots, \mathrm{steps}`.
    drift : float
        Relative size of a step (:math:`> 0`).
    iterations : sequence of int
        Power iterations per step (each :math:`\ge 1`).
    seed : int
        Seed of the walk (a generator on ``device``).

    Returns
    -------
    dict
        ``"power n"`` for each ``n`` and ``"frobenius"``, ``"holder"``: tensors of shape
        ``(steps,)`` (float64, CPU) of the ratios.

    Examples
    --------
    >>> r = power_method_under_drift(dim=8, steps=5, drift=0.1, iterations=(1,))
    >>> sorted(r), bool((r["power 1"] >= 1 - 1e-9).all()), bool((r["frobenius"] <= 1).all())
    (['frobenius', 'holder', 'power 1'], True, True)
    """
    dim = _validate.positive_int(dim, "dim")
    steps = _validate.positive_int(steps, "steps")
    drift = _validate.positive_real(drift, "drift")
    if isinstance(iterations, (int, str)) or not hasattr(iterations, "__iter__"):
        raise TypeError(f"iterations must be a sequence of ints, got {type(iterations).__name__}")
    iterations = [_validate.positive_int(n, "iterations") for n in iterations]
    if not iterations:
        raise ValueError("iterations must hold at least one count")
    seed = _validate.nonnegative_int(seed, "seed")
    device = _validate.device(device) or torch.device("cpu")
    dtype = _validate.float_dtype(dtype) or torch.float64
    gen = torch.Generator(device=device).manual_seed(seed)
    scale = 1 / math.sqrt(dim)
    a = scale * torch.randn(dim, dim, generator=gen, device=device, dtype=dtype)
    layers = {}
    for n in iterations:
        layer = SpectralNormLinear(
            dim, dim, c=1.0, n_power_iterations=n, device=device, dtype=dtype
        )
        layer.weight.copy_(a)
        layer.power_iteration(100)
        layers[f"power {n}"] = layer
    ratios: dict[str, list[float]] = {name: [] for name in [*layers, "frobenius", "holder"]}
    probe = next(iter(layers.values()))
    for _ in range(steps):
        a = a + drift * scale * torch.randn(dim, dim, generator=gen, device=device, dtype=dtype)
        for name, layer in layers.items():
            layer.weight.copy_(a)
            layer.power_iteration()
            ratios[name].append(float(layer.operator_norm()))  # c = 1: ||A|| / sigma_hat
        est = norm_estimates(probe)  # probe's weight is a too
        ratios["frobenius"].append(est["exact"] / est["frobenius"])
        ratios["holder"].append(est["exact"] / est["holder"])
    return {name: torch.tensor(v, dtype=torch.float64, device="cpu") for name, v in ratios.items()}


def _jacobian(layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    m = x[0].numel()
    out = []
    for xn in x:
        jac = torch.autograd.functional.jacobian(lambda a: layer(a[None]).reshape(-1), xn)
        out.append(jac.reshape(m, m))
    return torch.stack(out)


def inverse_amplification(
    layer: InvertibleModule, x: torch.Tensor, delta: float = 1e-6, **inverse_options: Any
) -> dict[str, torch.Tensor]:
    r"""How much an invertible layer's inverse amplifies a perturbation of its output, in the
    worst direction (Section 4.3.2).

    At each sample :math:`x_n`, with :math:`y_n = g(x_n)` and :math:`u_n` the left singular vector
    of the smallest singular value :math:`s_n` of :math:`\partial g(x_n)` (autograd), returns

    * ``"measured"``: :math:`\|g^{-1}(y_n + \delta u_n) - x_n\| / \delta`, through the layer's own
      ``inverse`` (for a residual layer, the fixed-point iteration (46));
    * ``"linearised"``: :math:`1 / s_n = \|(\partial g(x_n))^{-1}\|_2`, the limit of the measured
      value as :math:`\delta \to 0`.

    For a residual layer :math:`g = \mathrm{id} + f` with :math:`\mathrm{Lip}(f) \le c < 1`, both
    are at most :math:`\mathrm{Lip}(g^{-1}) \le 1/(1 - c)`.

    Parameters
    ----------
    layer : InvertibleModule
        With ``forward`` and ``inverse``, in float64 (put it in ``eval`` mode).
    x : torch.Tensor
        Points ``(N, *shape)``, float64.
    delta : float
        Size of the perturbation (:math:`> 0`).
    **inverse_options
        Passed to ``layer.inverse`` (e.g. ``max_iter`` of a residual layer, whose iteration (46)
        needs about :math:`\log(\mathrm{tol}) / \log c` steps).

    Returns
    -------
    dict
        ``"measured"`` and ``"linearised"``, tensors of shape ``(N,)``.
    """
    if not hasattr(layer, "inverse") or not callable(layer):
        raise TypeError(f"layer must be an invertible module, got {type(layer).__name__}")
    check_batch(x, "x")
    if x.dtype != torch.float64:
        raise ValueError(f"x must be float64 (a small perturbation is measured), got {x.dtype}")
    delta = _validate.positive_real(delta, "delta")
    jac = _jacobian(layer, x)
    u, s, _ = torch.linalg.svd(jac)
    worst = u[:, :, -1].reshape(x.shape)
    with torch.no_grad():
        y = layer(x)
        back = layer.inverse(y + delta * worst, **inverse_options)
    measured = (back - x).flatten(1).norm(dim=1) / delta
    return {"measured": measured, "linearised": 1 / s[:, -1]}


def jacobian_fill(
    layer: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, rtol: float = 1e-12
) -> float:
    r"""The share of Jacobian entries :math:`\partial y_i / \partial x_j` that are non-zero at
    some sample of ``x`` (Section 4.3.1).

    1 when every output depends on every input (a residual layer, a dense layer); a coupling layer
    (42) has a zero block, :math:`\partial y_1 / \partial x_2 = 0`, so for an even split of
    :math:`M` features its share is :math:`3/4`. An entry counts as non-zero when its magnitude
    exceeds ``rtol`` times the largest entry.
    """
    if not callable(layer):
        raise TypeError(f"layer must be callable, got {type(layer).__name__}")
    check_batch(x, "x")
    rtol = _validate.nonnegative_real(rtol, "rtol")
    jac = _jacobian(layer, x).abs().amax(0)
    return float((jac > rtol * jac.max()).double().mean())


def inverse_iterations(
    layer: InvertibleResidual,
    y: torch.Tensor,
    solver: str = "fixed_point",
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> int:
    r"""The fewest iterations with which ``solver`` inverts the residual layer (44) at ``y`` to
    ``tol`` (Section 4.3.1).

    The inverse is one implicit Euler step of the backward ODE
    (:func:`~spdl_ref.invertible.euler_step_inverse`): ``"fixed_point"`` is the iteration (46),
    whose count grows like :math:`\log(1/\mathrm{tol}) / \log(1/c)`; ``"newton"`` solves with
    the Jacobian and needs a few iterations whatever :math:`c`. Both stop when the largest
    update falls below ``tol`` times :math:`1 + \max|y|`. The count is found by bisection on the
    iteration cap (the solver either converges within it or raises).

    Raises
    ------
    ValueError
        When the solver does not converge within ``max_iter``.
    """
    _validate.module(layer, "layer", InvertibleResidual)
    layer._check(y, "y")
    tol = _validate.positive_real(tol, "tol")
    max_iter = _validate.positive_int(max_iter, "max_iter")

    def converges(m):
        try:
            euler_step_inverse(layer, y, solver=solver, tol=tol, max_iter=m)
        except RuntimeError:
            return False
        return True

    if not converges(max_iter):
        raise ValueError(f"max_iter={max_iter} iterations of {solver!r} do not reach tol={tol:g}")
    lo, hi = 0, 1
    while not converges(hi):
        lo, hi = hi, min(2 * hi, max_iter)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if converges(mid) else (mid, hi)
    return hi
