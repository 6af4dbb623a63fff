r"""The ResNet with learnt time steps (38) and proximal-gradient training (Section 3.2).

:class:`VariableStepResNet` is defined in :mod:`spdl_ref.ode.resnet`, with the other layered
networks, and imported here so that ``spdl_ref.control.VariableStepResNet`` names the same class.
The parameters are extended by the steps :math:`h = (h^k)_{k=0}^{K-1}`,
:math:`z^{k+1} = z^k + h^k \sigma(A^k z^k + b^k)`, and the indicator (39) keeps them admissible
(non-negative, summing to :math:`T`). Because (39) is not differentiable, training takes
proximal-gradient steps: a gradient step on the smooth data fit, then the proximal map of the
regulariser (for (39) the projection :func:`spdl_ref.control.project_simplex`; for the 1-norm
soft thresholding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import _validate
from ..loop import History, train_loop
from ..ode.resnet import VariableStepResNet  # noqa: F401 (re-exported, see above)

__all__ = ["proximal_gradient"]


def proximal_gradient(
    model: nn.Module,
    x: torch.Tensor,
    loss: Callable[[torch.Tensor], torch.Tensor],
    *,
    prox: dict[str, Callable[[torch.Tensor, float], torch.Tensor]],
    tau: float = 0.05,
    iterations: int = 100,
) -> History:
    r"""Proximal gradient method for :math:`\ell(\Psi(x, \theta)) + R(\theta)`, :math:`R` nonsmooth.

    Section 3.2.

    Each iteration takes
    :math:`\theta \leftarrow \operatorname{prox}_{\tau R}(\theta - \tau \nabla \ell)`:
    a full-batch gradient step on the data fit ``loss(model(x))``, then, for every parameter
    named in ``prox``, ``param <- prox[name](param, tau)`` (e.g. ``{"steps": simplex_prox(T)}``
    for (39), or ``{"A": l1_prox(lam)}`` for the 1-norm; see
    :mod:`spdl_ref.control.regularisers`). Parameters not in ``prox`` take plain gradient steps.

    It runs on :func:`spdl_ref.loop.train_loop` with the proximal map after the gradient step,
    so a non-finite loss or gradient, or a proximal map that writes a non-finite value, stops
    it with :class:`spdl_ref.loop.NonFiniteError` and the parameters of the last finite step.
    Returns the :class:`spdl_ref.loop.History` of the data fit before each step.

    Examples
    --------
    >>> from spdl_ref.control import squared_fit, simplex_prox
    >>> net = VariableStepResNet(2, 4, T=2.0, generator=torch.Generator().manual_seed(0))
    >>> x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    >>> history = proximal_gradient(
    ...     net, x, squared_fit(torch.sign(x[:, 0])), prox={"steps": simplex_prox(2.0)}
    ... )
    >>> history.loss[-1] < history.loss[0], round(float(net.steps.detach().sum()), 6)
    (True, 2.0)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _validate.tensor(x, "x")
    _validate.function(loss, "loss")
    tau = _validate.positive_real(tau, "tau")
    iterations = _validate.positive_int(iterations, "iterations")
    params: dict[str, torch.Tensor] = dict(model.named_parameters())
    for name in prox:
        if name not in params:
            raise ValueError(
                f"prox names a parameter {name!r} the model does not have; it has {sorted(params)}"
            )
        if not callable(prox[name]):
            raise TypeError(f"prox[{name!r}] must be callable")

    def step(evaluate):
        evaluate()
        with torch.no_grad():
            for name, p in params.items():
                if p.grad is None:
                    continue
                p -= tau * p.grad
                if name in prox:
                    p.copy_(prox[name](p, tau))

    return train_loop(
        model,
        lambda _: loss(model(x)),
        iterations=iterations,
        step=step,
        description="proximal gradient (Section 3.2)",
    )
