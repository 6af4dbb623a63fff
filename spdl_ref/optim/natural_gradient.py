r"""Natural gradient descent and its Gauss--Newton form, Section 6.2.2, eq. (60).

For the squared loss :math:`E(\theta) = \frac{1}{2N}\sum_n \|\Psi(x_n,\theta) - y_n\|^2` the Fisher
information of the Gaussian model :math:`y \sim \mathcal{N}(\Psi(x,\theta), I)` is
:math:`G(\theta) = \frac1N \sum_n J_n^T J_n`, with :math:`J_n` the Jacobian of
:math:`\Psi(x_n, \theta)` with respect to :math:`\theta`. One explicit Euler step of (60),
:math:`\theta \leftarrow \theta - h (G + \lambda I)^{-1}\nabla E(\theta)`, with :math:`h = 1`, is
the (damped, Levenberg--Marquardt) Gauss--Newton step: the minimiser of the linearised loss
:math:`\frac{1}{2N}\|r + J\delta\|^2 + \frac\lambda2\|\delta\|^2`.

The model is an ``nn.Module``; :math:`\theta` is the concatenation of its parameters
(``torch.nn.utils.parameters_to_vector`` order).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from .. import _validate

__all__ = [
    "fisher_squared_loss",
    "gauss_newton_step",
    "jacobian",
    "natural_gradient_step",
    "squared_error",
]


def _names_and_params(model: nn.Module):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model has no trainable parameters")
    return [n for n, _ in named], [p for _, p in named]


def _check_xy(x, y=None):
    _validate.tensor(x, "x")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(
            f"x must have a leading sample dimension N >= 1, got shape {tuple(x.shape)}"
        )
    if y is not None:
        _validate.tensor(y, "y")
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"x and y must have the same number of samples, got {x.shape[0]} and {y.shape[0]}"
            )


def squared_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The loss :math:`E(\theta) = \frac{1}{2N}\sum_n \|\Psi(x_n,\theta) - y_n\|^2` of Section
    6.2.2."""
    _check_xy(x, y)
    r = model(x) - y
    return 0.5 * r.pow(2).reshape(x.shape[0], -1).sum(1).mean()


def jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""The stacked Jacobians :math:`J_n = \partial_\theta \Psi(x_n, \theta)` (Section 6.2.2), shape
    ``(N, m, L)``.

    ``m`` is the number of outputs per sample and ``L`` the number of parameters. The model must
    treat samples independently (no batch statistics): it is evaluated one sample at a time under
    :func:`torch.func.vmap`.
    """
    _check_xy(x)
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
    """
    lr = _validate.positive_real(lr, "lr")
    damping = _validate.nonnegative_real(damping, "damping")
    _, params = _names_and_params(model)
    loss = squared_error(model, x, y)
    grads = torch.autograd.grad(loss, params)
    g = torch.cat([gr.reshape(-1) for gr in grads])
    G = fisher_squared_loss(model, x)
    G = G + damping * torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    direction = torch.linalg.solve(G, g)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(
            torch.nn.utils.parameters_to_vector(params) - lr * direction, params
        )
    return loss.detach()


def gauss_newton_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, damping: float = 0.0
) -> torch.Tensor:
    r"""One damped Gauss--Newton step, in place, by linear least squares (Section 6.2.2).

    Solves :math:`\min_\delta \frac{1}{2N}\|r + J\delta\|^2 + \frac\lambda2\|\delta\|^2` with
    :func:`torch.linalg.lstsq` on the stacked system :math:`[J/\sqrt N;\ \sqrt\lambda I]\delta =
    -[r/\sqrt N;\ 0]`, never forming :math:`J^TJ`, and sets :math:`\theta \leftarrow \theta +
    \delta`. Returns the loss before the step.
    """
    damping = _validate.nonnegative_real(damping, "damping")
    _check_xy(x, y)
    _, params = _names_and_params(model)
    with torch.no_grad():
        r = (model(x) - y).reshape(-1)
        loss = 0.5 * r.pow(2).sum() / x.shape[0]
    J = jacobian(model, x).reshape(-1, sum(p.numel() for p in params))
    N = x.shape[0]
    A = J / N**0.5
    b = -r / N**0.5
    if damping > 0:
        A = torch.cat([A, damping**0.5 * torch.eye(A.shape[1], dtype=A.dtype, device=A.device)])
        b = torch.cat([b, torch.zeros(A.shape[1], dtype=b.dtype, device=b.device)])
    delta = torch.linalg.lstsq(
        A, b.unsqueeze(-1), driver="gelsd" if A.device.type == "cpu" else None
    )
    delta = delta.solution.squeeze(-1)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(
            torch.nn.utils.parameters_to_vector(params) + delta, params
        )
    return loss
