r"""Natural gradient descent and its Gauss--Newton form, Section 6.2.2, eq. (60).

For the squared loss :math:`E(\theta) = \frac{1}{2N}\sum_n \|\Psi(x_n,\theta) - y_n\|^2` the Fisher
information of the Gaussian model :math:`y \sim \mathcal{N}(\Psi(x,\theta), I)` is
:math:`G(\theta) = \frac1N \sum_n J_n^T J_n`, with :math:`J_n` the Jacobian of
:math:`\Psi(x_n, \theta)` with respect to :math:`\theta`. One explicit Euler step of (60),
:math:`\theta \leftarrow \theta - h (G + \lambda I)^{-1}\nabla E(\theta)`, with :math:`h = 1`, is
the (damped, Levenberg--Marquardt) Gauss--Newton step: the minimiser of the linearised loss
:math:`\frac{1}{2N}\|r + J\delta\|^2 + \frac\lambda2\|\delta\|^2`.

With fewer residuals than parameters (:math:`Nm < L`) :math:`G` is singular. Since
:math:`\nabla E = \frac1N\sum_n J_n^Tr_n` lies in the range of :math:`G`, the system
:math:`G\delta = \nabla E` still has solutions; without damping both steps take the one of least
norm (the pseudo-inverse, :math:`\delta = -J^+r`), never a solve with a singular matrix.

The model is an ``nn.Module``; :math:`\theta` is the concatenation of its parameters
(``torch.nn.utils.parameters_to_vector`` order).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from .. import _validate
from ._checks import NonFiniteGradientError

__all__ = [
    "fisher_squared_loss",
    "gauss_newton_step",
    "jacobian",
    "natural_gradient_step",
    "squared_error",
]


def _names_and_params(model: nn.Module) -> tuple[list[str], list[nn.Parameter]]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model has no trainable parameters")
    return [n for n, _ in named], [p for _, p in named]


def _check_xy(x, y=None, model=None):
    _validate.tensor(x, "x")
    if isinstance(model, nn.Module):
        _validate.like(x, next(model.parameters(), None), "x", "model")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(
            f"x must have a leading sample dimension N >= 1, got shape {tuple(x.shape)}"
        )
    if y is not None:
        _validate.tensor(y, "y")
        if y.dim() < 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"x and y must have the same number of samples, got {x.shape[0]} and "
                f"{y.shape[0] if y.dim() else 'a scalar y'}"
            )


def _residual(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Psi(x) - y, refusing targets whose shape differs from the model's output (no
    broadcasting: (5, 3) targets against (5, 1) outputs would silently fit nine residuals)."""
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.shape != y.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"y must have the shape of the model output {shape}, got {tuple(y.shape)}")
    return out - y


def _finite(name: str, *tensors: torch.Tensor) -> None:
    """Raise NonFiniteGradientError unless every tensor is finite (nothing changed yet)."""
    if not all(bool(torch.isfinite(t).all()) for t in tensors):
        raise NonFiniteGradientError(
            f"{name}: the gradient, the Fisher/Jacobian matrix or the step is not finite (the "
            "model output overflowed?); the parameters were left unchanged"
        )


def _solve_fisher(G: torch.Tensor, g: torch.Tensor, damping: float) -> torch.Tensor:
    """(G + damping I)^{-1} g; for damping = 0 the least-norm solution of G delta = g."""
    L = G.shape[0]
    eps = torch.finfo(G.dtype).eps
    if damping > 0:
        # cond(G + damping I) <= (trace G + damping) / damping, since G is positive semidefinite
        if damping <= L * eps * (float(torch.trace(G)) + damping):
            raise ValueError(
                f"damping = {damping:g} is too small for this Fisher matrix (trace "
                f"{float(torch.trace(G)):.3g}, {L} parameters): G + damping I is singular to "
                "working precision; use a larger damping, or damping = 0 for the least-norm step"
            )
        return torch.linalg.solve(G + damping * torch.eye(L, dtype=G.dtype, device=G.device), g)
    w, V = torch.linalg.eigh(G)
    keep = w > L * eps * w.abs().max()  # the numerical rank, as torch.linalg.matrix_rank
    coef = (V.mT @ g) / torch.where(keep, w, torch.ones_like(w))
    return V @ torch.where(keep, coef, torch.zeros_like(coef))


def squared_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The loss :math:`E(\theta) = \frac{1}{2N}\sum_n \|\Psi(x_n,\theta) - y_n\|^2` of Section
    6.2.2."""
    _check_xy(x, y, model)
    r = _residual(model, x, y)
    return 0.5 * r.pow(2).reshape(x.shape[0], -1).sum(1).mean()


def jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""The stacked Jacobians :math:`J_n = \partial_\theta \Psi(x_n, \theta)` (Section 6.2.2), shape
    ``(N, m, L)``.

    ``m`` is the number of outputs per sample and ``L`` the number of parameters. The model must
    treat samples independently (no batch statistics): it is evaluated one sample at a time under
    :func:`torch.func.vmap`.
    """
    _check_xy(x, model=model)
    names, params = _names_and_params(model)

    def single(ps, xn):  # the model on one sample: per-sample Jacobians by vmap
        return functional_call(
            model, dict(zip(names, ps, strict=True)), (xn.unsqueeze(0),)
        ).reshape(-1)

    jacs = vmap(jacrev(single), in_dims=(None, 0))(tuple(p.detach() for p in params), x)
    return torch.cat([j.reshape(j.shape[0], j.shape[1], -1) for j in jacs], dim=-1)


def fisher_squared_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""Fisher information :math:`G(\theta) = \frac1N \sum_n J_n^T J_n` for the squared loss,
    Section 6.2.2."""
    J = jacobian(model, x)
    return torch.einsum("nmi,nmj->ij", J, J) / x.shape[0]


def natural_gradient_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, lr: float, damping: float = 0.0
) -> torch.Tensor:
    r"""One explicit Euler step of natural gradient descent (60), in place.

    :math:`\theta \leftarrow \theta - h (G(\theta) + \lambda I)^{-1} \nabla E(\theta)` with the
    Fisher matrix :func:`fisher_squared_loss` and the gradient of :func:`squared_error` (by
    autograd). Returns the loss before the step.

    With ``damping`` :math:`\lambda = 0` (the default) the step is the least-norm solution of
    :math:`G\delta = \nabla E` (through the eigendecomposition of :math:`G`, dropping eigenvalues
    below :math:`L\epsilon\lambda_{\max}`): :math:`G^{-1}\nabla E` when :math:`G` is invertible,
    and still a solution, the one :func:`gauss_newton_step` takes, when it is singular (fewer
    residuals than parameters). A plain solve there amplifies round-off: on a 2-8-1 tanh network
    (33 parameters) with 3 samples it took the loss from 0.40 to 123, the least-norm step takes
    it to 0.0069. A damping :math:`\lambda > 0` too small to make :math:`G + \lambda I`
    invertible in working precision is refused with a :class:`ValueError`. ``y`` must have the
    shape of the model's output; a step that would not be finite raises
    :class:`~spdl_ref.optim.NonFiniteGradientError` and changes nothing.

    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    >>> x = torch.randn(3, 2, dtype=torch.float64)
    >>> y = torch.sin(x.sum(1, keepdim=True))
    >>> before = natural_gradient_step(net, x, y, lr=1.0)
    >>> bool(squared_error(net, x, y) < 0.02 * before)
    True
    """
    lr = _validate.positive_real(lr, "lr")
    damping = _validate.nonnegative_real(damping, "damping")
    _, params = _names_and_params(model)
    loss = squared_error(model, x, y)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    g = torch.cat(
        [
            (gr if gr is not None else torch.zeros_like(p)).reshape(-1)
            for gr, p in zip(grads, params, strict=True)
        ]
    )
    G = fisher_squared_loss(model, x)
    _finite("natural_gradient_step", g, G)
    direction = _solve_fisher(G, g, damping)
    _finite("natural_gradient_step", direction)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(
            torch.nn.utils.parameters_to_vector(params) - lr * direction, params
        )
    return loss.detach()


def gauss_newton_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, damping: float = 0.0
) -> torch.Tensor:
    r"""One damped Gauss--Newton step, in place, by linear least squares (Section 6.2.2).

    Solves :math:`\min_\delta \frac{1}{2N}\|r + J\delta\|^2 + \frac\lambda2\|\delta\|^2` on the
    stacked system :math:`[J/\sqrt N;\ \sqrt\lambda I]\delta = -[r/\sqrt N;\ 0]`, never forming
    :math:`J^TJ`, and sets :math:`\theta \leftarrow \theta + \delta`; without damping, and with
    fewer residuals than parameters, the least-norm solution (SVD-based least squares:
    :func:`torch.linalg.lstsq` with ``gelsd`` on a CPU, :func:`torch.linalg.pinv` elsewhere).
    ``y`` must have the shape of the model's output. Returns the loss before the step.
    """
    damping = _validate.nonnegative_real(damping, "damping")
    _check_xy(x, y, model)
    _, params = _names_and_params(model)
    with torch.no_grad():
        r = _residual(model, x, y).reshape(-1)
        loss = 0.5 * r.pow(2).sum() / x.shape[0]
    J = jacobian(model, x).reshape(-1, sum(p.numel() for p in params))
    _finite("gauss_newton_step", r, J)
    N = x.shape[0]
    A = J / N**0.5
    b = -r / N**0.5
    if damping > 0:
        A = torch.cat([A, damping**0.5 * torch.eye(A.shape[1], dtype=A.dtype, device=A.device)])
        b = torch.cat([b, torch.zeros(A.shape[1], dtype=b.dtype, device=b.device)])
    if A.device.type == "cpu":
        delta = torch.linalg.lstsq(A, b.unsqueeze(-1), driver="gelsd").solution.squeeze(-1)
    else:  # the CUDA lstsq (gels) assumes full rank
        delta = torch.linalg.pinv(A) @ b
    _finite("gauss_newton_step", delta)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(
            torch.nn.utils.parameters_to_vector(params) + delta, params
        )
    return loss
