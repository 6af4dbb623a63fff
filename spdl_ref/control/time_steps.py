r"""The ResNet with learnt time steps (38) and proximal-gradient training (Section 3.2).

The parameters are extended by the steps :math:`h = (h^k)_{k=0}^{K-1}`,
:math:`z^{k+1} = z^k + h^k \sigma(A^k z^k + b^k)`, and the indicator (39) keeps them admissible
(non-negative, summing to :math:`T`). Because (39) is not differentiable, training takes
proximal-gradient steps: a gradient step on the smooth data fit, then the proximal map of the
regulariser (for (39) the projection :func:`spdl_ref.control.project_simplex`; for the 1-norm
soft thresholding).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from .. import _validate
from ..ode import ResNet
from ..train import History

__all__ = ["VariableStepResNet", "proximal_gradient"]


class VariableStepResNet(ResNet):
    r"""ResNet with a time step per layer, eq. (38): :math:`z^{k+1} = z^k + h^k \sigma(A^k z^k + b^k)`.

    Same parameters as :class:`spdl_ref.ode.ResNet` plus ``steps`` :math:`= (h^k)`, shape
    ``(K,)``, initialised to the uniform :math:`T/K`. :attr:`h` stays the nominal
    :math:`T/K`; the layers use ``steps``.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        T: float = 1.0,
        activation=torch.tanh,
        init_std: float = 1.0,
        device=None,
        dtype=None,
    ):
        super().__init__(
            dim, depth, T=T, activation=activation, init_std=init_std, device=device, dtype=dtype
        )
        self.steps = nn.Parameter(
            torch.full((self.depth,), self.T / self.depth, device=device, dtype=self.A.dtype)
        )

    def states(self, x: torch.Tensor) -> list:
        """The features :math:`[z^0, \\dots, z^K]` of (38), as in :meth:`spdl_ref.ode.ResNet.states`."""
        z = self._check_input(x)
        out = [z]
        for k in range(self.depth):
            z = z + self.steps[k] * self.field(k, z)
            out.append(z)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return :math:`z^K` of (38) for inputs of shape ``(..., M)``."""
        return self.states(x)[-1]


def proximal_gradient(
    model: nn.Module,
    x: torch.Tensor,
    loss: Callable[[torch.Tensor], torch.Tensor],
    *,
    prox: dict[str, Callable[[torch.Tensor, float], torch.Tensor]],
    tau: float = 0.05,
    iterations: int = 100,
) -> History:
    r"""Proximal gradient descent for :math:`\ell(\Psi(x, \theta)) + R(\theta)` with nonsmooth :math:`R` (Section 3.2).

    Each iteration takes :math:`\theta \leftarrow \operatorname{prox}_{\tau R}(\theta - \tau \nabla \ell)`:
    a full-batch gradient step on the data fit ``loss(model(x))``, then, for every parameter
    named in ``prox``, ``param <- prox[name](param, tau)`` (e.g. ``{"steps": lambda h, t:
    project_simplex(h, T)}`` for (39), or soft thresholding for the 1-norm). Parameters not in
    ``prox`` take plain gradient steps. Returns the data fit before each step.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _validate.tensor(x, "x")
    tau = _validate.positive_real(tau, "tau")
    iterations = _validate.positive_int(iterations, "iterations")
    params = dict(model.named_parameters())
    for name in prox:
        if name not in params:
            raise ValueError(
                f"prox names a parameter {name!r} the model does not have; it has {sorted(params)}"
            )
        if not callable(prox[name]):
            raise TypeError(f"prox[{name!r}] must be callable")
    history, start = History(), time.perf_counter()
    for _ in range(iterations):
        model.zero_grad(set_to_none=True)
        value = loss(model(x))
        if not bool(torch.isfinite(value)):
            raise FloatingPointError(
                f"the loss became non-finite after {len(history.loss)} iterations; lower tau"
            )
        value.backward()
        with torch.no_grad():
            for name, p in params.items():
                if p.grad is None:
                    continue
                p -= tau * p.grad
                if name in prox:
                    p.copy_(prox[name](p, tau))
        history.loss.append(float(value.detach()))
        history.data_fit.append(float(value.detach()))
        history.seconds.append(time.perf_counter() - start)
    return history
