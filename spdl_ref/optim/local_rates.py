r"""Local convergence rates of gradient and natural-gradient descent (Section 6.4.2).

Near a minimiser :math:`\theta^*` of :math:`E` with Hessian :math:`\nabla^2 E(\theta^*)`, one step
:math:`\theta \leftarrow \theta - h\,G^{-1}\nabla E(\theta)` of a preconditioned descent (the
explicit Euler discretisation of the natural gradient flow (60) with metric :math:`G`) acts on
the error :math:`e = \theta - \theta^*` as the linear map

.. math::

    e \mapsto \big(I - h\,G(\theta^*)^{-1}\nabla^2 E(\theta^*)\big)\,e + O(\|e\|^2),

so the error falls locally by the spectral radius :math:`\rho` of that matrix per step
(:func:`linearised_rate`). For gradient descent :math:`G = I` and :math:`\rho = \max_i |1 -
h\lambda_i|`, which for the best fixed step is about :math:`1 - 2/\kappa`, :math:`\kappa` the
condition number of the Hessian. For the squared loss with the Fisher (Gauss--Newton) metric,
:math:`\nabla^2 E = G + S` with the residual curvature
:math:`S = \frac1N\sum_n \sum_i r_{n,i}\nabla^2_\theta \Psi_i(x_n, \theta)`: at a zero-residual
minimum :math:`S = 0` and :math:`\rho = |1 - h|` whatever :math:`\kappa`, so Gauss--Newton
(:math:`h = 1`) converges faster than linearly (quadratically: :func:`observed_order`); with a
nonzero residual it converges linearly with :math:`\rho(I - hG^{-1}(G + S))`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from .. import _validate
from .natural_gradient import squared_error

__all__ = ["linearised_rate", "loss_hessian", "observed_order"]


class _AtVector(nn.Module):
    """``model`` evaluated with its parameters replaced by the entries of a flat vector."""

    def __init__(
        self,
        model: nn.Module,
        names: Sequence[str],
        shapes: Sequence[torch.Size],
        flat: torch.Tensor,
    ):
        super().__init__()
        self.model, self.names, self.shapes, self.flat = model, names, shapes, flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(self.flat, [s.numel() for s in self.shapes])
        params = {n: c.reshape(s) for n, c, s in zip(self.names, chunks, self.shapes, strict=True)}
        return functional_call(self.model, params, (x,))


def loss_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The Hessian :math:`\nabla^2 E(\theta)` of the squared loss
    :math:`E(\theta) = \frac{1}{2N}\sum_n \|\Psi(x_n, \theta) - y_n\|^2` of Section 6.2.2, with
    respect to the flattened trainable parameters (the order of
    :func:`torch.nn.utils.parameters_to_vector`), shape ``(L, L)`` (Section 6.4.2).

    Compare with :func:`~spdl_ref.optim.fisher_squared_loss`, the Gauss--Newton part
    :math:`G`: the two agree at a zero-residual minimum.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Linear(2, 1).double()
    >>> x = torch.randn(5, 2, dtype=torch.float64)
    >>> H = loss_hessian(net, x, torch.zeros(5, 1, dtype=torch.float64))
    >>> from spdl_ref.optim import fisher_squared_loss
    >>> bool(torch.allclose(H, fisher_squared_loss(net, x)))  # linear model: S = 0
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model has no trainable parameters")
    names = [n for n, _ in named]
    shapes = [p.shape for _, p in named]
    flat0 = torch.nn.utils.parameters_to_vector([p for _, p in named]).detach()

    def loss(flat):
        return squared_error(_AtVector(model, names, shapes, flat), x, y)

    return torch.autograd.functional.hessian(loss, flat0)


def linearised_rate(
    hessian: torch.Tensor, h: float, metric: torch.Tensor | None = None
) -> tuple[float, torch.Tensor]:
    r"""The local rate :math:`\rho(I - hG^{-1}\nabla^2 E)` of the descent
    :math:`\theta \leftarrow \theta - hG^{-1}\nabla E(\theta)` at a minimiser (Section 6.4.2,
    eq. (60) discretised by explicit Euler).

    Parameters
    ----------
    hessian : torch.Tensor
        :math:`\nabla^2 E(\theta^*)`, symmetric ``(L, L)``.
    h : float
        The step :math:`h > 0`.
    metric : torch.Tensor or None
        :math:`G(\theta^*)`, symmetric positive definite ``(L, L)``; ``None`` is the identity
        (gradient descent).

    Returns
    -------
    rate : float
        The spectral radius :math:`\rho` (the eigenvalues of :math:`G^{-1}\nabla^2 E` are real:
        they are those of :math:`C^{-1}\nabla^2 E\,C^{-T}` for the Cholesky factor :math:`C` of
        :math:`G`).
    iteration : torch.Tensor
        The matrix :math:`I - hG^{-1}\nabla^2 E` that maps the error of one step to the next.

    >>> H = torch.diag(torch.tensor([1.0, 100.0], dtype=torch.float64))
    >>> round(linearised_rate(H, 0.01)[0], 6), round(linearised_rate(H, 0.5, metric=H)[0], 6)
    (0.99, 0.5)
    """
    _validate.tensor(hessian, "hessian")
    L = hessian.shape[0]
    if hessian.shape != (L, L) or L < 1:
        raise ValueError(f"hessian must be a square (L, L) matrix, got {tuple(hessian.shape)}")
    h = _validate.positive_real(h, "h")
    H = 0.5 * (hessian + hessian.mT)
    eye = torch.eye(L, dtype=H.dtype, device=H.device)
    if metric is None:
        lam = torch.linalg.eigvalsh(H)
        iteration = eye - h * H
    else:
        _validate.tensor(metric, "metric")
        if metric.shape != (L, L):
            raise ValueError(f"metric must have the shape of hessian, ({L}, {L})")
        G = (0.5 * (metric + metric.mT)).to(H)
        C, info = torch.linalg.cholesky_ex(G)
        if int(info) != 0:
            raise ValueError("metric must be symmetric positive definite (Cholesky failed)")
        Ci_H = torch.linalg.solve_triangular(C, H, upper=False)
        lam = torch.linalg.eigvalsh(torch.linalg.solve_triangular(C, Ci_H.mT, upper=False))
        iteration = eye - h * torch.cholesky_solve(H, C)
    return float((1 - h * lam).abs().max()), iteration


def observed_order(errors: torch.Tensor, floor: float) -> float:
    r"""The observed order :math:`q` of convergence, :math:`e_{k+1} \approx C e_k^q`, from the last
    three errors above ``floor`` (Section 6.4.2):
    :math:`q = \ln(e_{k+1}/e_k) / \ln(e_k/e_{k-1})`.

    :math:`q \approx 1` for linear convergence (:math:`e_{k+1} \approx \rho e_k`), :math:`q
    \approx 2` for Newton-type (quadratic) convergence. ``errors`` is one-dimensional and
    decreasing; at least three of its values must exceed ``floor > 0`` (below it round-off
    dominates).

    >>> e = torch.tensor([1e-1, 1e-2, 1e-4, 1e-8, 1e-16])
    >>> round(observed_order(e, floor=1e-12), 6)
    2.0
    """
    _validate.tensor(errors, "errors")
    if errors.dim() != 1:
        raise ValueError(f"errors must be one-dimensional, got shape {tuple(errors.shape)}")
    floor = _validate.positive_real(floor, "floor")
    above = (errors > floor).nonzero().flatten()
    if above.numel() < 3:
        raise ValueError(f"at least three errors must exceed floor={floor:g} to measure an order")
    k = int(above[-2])
    if int(above[-1]) != k + 1 or int(above[-3]) != k - 1:
        raise ValueError("the errors above floor must be consecutive (a decreasing sequence)")
    e0, e1, e2 = (float(errors[i]) for i in (k - 1, k, k + 1))
    return math.log(e2 / e1) / math.log(e1 / e0)
