"""Training for the empirical risk minimisation problem (4).

:func:`fit` minimises :math:`E(\\theta) = \\frac1N \\sum_n L_n(\\Psi(x_n, \\theta)) + R(\\theta)`
with a first-order optimiser, shows a progress bar and returns the :class:`History` of the
objective. It is a driver of :func:`train_loop`, the one training loop of the package (defined in
:mod:`spdl_ref.loop` and documented here with its :class:`History` and :class:`NonFiniteError`),
which every other experiment's training also runs on. The chapters use :func:`fit` for every
small training run so that their cells stay short.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from . import _validate
from .loop import History, NonFiniteError, train_loop

__all__ = [
    "History",
    "NonFiniteError",
    "accuracy",
    "fit",
    "l2_regulariser",
    "squared_loss",
    "train_loop",
]


def squared_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""The mean over samples of :math:`L_n(z) = \tfrac12 \|z - y_n\|_2^2` (Figure 1's data fit).

    ``prediction`` and ``target`` have the same shape ``(N, M')``.
    """
    _validate.floating_tensor(prediction, "prediction")
    _validate.instance(target, torch.Tensor, "target")
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target must have the same shape, got {tuple(prediction.shape)} "
            f"and {tuple(target.shape)}"
        )
    return 0.5 * (prediction - target).pow(2).reshape(prediction.shape[0], -1).sum(1).mean()


def l2_regulariser(lam: float) -> Callable[[nn.Module], torch.Tensor]:
    r"""Return :math:`R(\theta) = \tfrac{\lambda}{2}\|\theta\|_2^2` over all parameters of a module.

    This is the regulariser of Figure 1; ``lam`` is :math:`\lambda \ge 0`.
    """
    lam = _validate.nonnegative_real(lam, "lam")

    def regulariser(model: nn.Module) -> torch.Tensor:
        _validate.module(model, "model")
        params = [p for p in model.parameters() if p.requires_grad]
        return 0.5 * lam * sum(p.pow(2).sum() for p in params)

    return regulariser


def accuracy(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correctly classified samples.

    ``scores`` of shape ``(N, 1)`` or ``(N,)`` are signed scores (class 1 where positive);
    ``scores`` of shape ``(N, C)`` with ``C >= 2`` are per-class scores (arg-max).
    ``labels`` are integer classes of shape ``(N,)``.
    """
    _validate.tensor(scores, "scores")
    _validate.instance(labels, torch.Tensor, "labels")
    if labels.is_floating_point() or labels.is_complex():
        raise TypeError(f"labels must be integer classes, got dtype {labels.dtype}")
    if scores.dim() == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.dim() == 1:
        predicted = (scores > 0).long()
    elif scores.dim() == 2:
        predicted = scores.argmax(dim=1)
    else:
        raise ValueError(
            f"scores must have shape (N,), (N, 1) or (N, C), got {tuple(scores.shape)}"
        )
    if labels.shape != predicted.shape:
        raise ValueError(
            f"labels must have shape {tuple(predicted.shape)} to match scores, got "
            f"{tuple(labels.shape)}"
        )
    return float((predicted == labels.to(predicted.device)).double().mean())


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = squared_loss,
    regulariser: Callable[[nn.Module], torch.Tensor] | None = None,
    iterations: int = 1000,
    lr: float = 1e-2,
    optimizer: str | torch.optim.Optimizer = "adam",
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
    description: str = "training",
) -> History:
    """Minimise the empirical risk (4) of ``model`` on ``(x, y)``.

    Parameters
    ----------
    model : torch.nn.Module
        The network :math:`\\Psi(\\cdot, \\theta)` (or :math:`\\eta \\circ \\Psi`).
    x, y : torch.Tensor
        Inputs and targets, with the same first dimension :math:`N`.
    loss : callable
        ``loss(prediction, target)`` returning the mean data fit; default :func:`squared_loss`.
    regulariser : callable or None
        ``regulariser(model)`` returning :math:`R(\\theta)`, e.g. :func:`l2_regulariser`.
    iterations : int
        Number of optimiser steps (>= 1).
    lr : float
        Step size (> 0); ignored when ``optimizer`` is an optimiser instance.
    optimizer : str or torch.optim.Optimizer
        ``"adam"``, ``"sgd"`` (plain SGD (25)), or an optimiser already built on the
        model's parameters.
    batch_size : int or None
        Minibatch size for stochastic gradients; ``None`` uses all :math:`N` samples.
    generator : torch.Generator or None
        Source of randomness for the minibatches.
    progress : bool
        Show a progress bar (tqdm) with the current objective.
    description : str
        The progress bar's label.

    Returns
    -------
    History
        ``loss`` (the objective :math:`E(\\theta)` on each minibatch, before the step),
        ``data_fit`` (its data-fit term) and ``seconds`` per iteration.

    Raises
    ------
    NonFiniteError
        If the objective or a gradient becomes NaN or infinite; the parameters and the
        optimiser's state are then those of the last finite step.

    Examples
    --------
    A ResNet (5) with a linear classifier on the checkerboard, 20 Adam steps on the mean squared
    error to the signs :math:`\\pm 1`:

    >>> import torch
    >>> from spdl_ref import data
    >>> from spdl_ref.ode import ClassifierHead, ResNet
    >>> from spdl_ref.train import fit
    >>> _ = torch.manual_seed(0)
    >>> x, labels = data.checkerboard(100, seed=1)
    >>> model = torch.nn.Sequential(ResNet(2, 4, T=2.0), ClassifierHead(2, 1))
    >>> history = fit(model, x, data.labels_to_signs(labels), iterations=20, progress=False)
    >>> len(history.loss), history.loss[-1] < history.loss[0]
    (20, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _validate.tensor(x, "x")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample, got shape {tuple(x.shape)}")
    if y.dim() == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same number of samples, got shapes {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        raise ValueError("y must contain only finite values")
    iterations = _validate.positive_int(iterations, "iterations")
    _validate.like(x, next(model.parameters(), None), "x", "model")
    _validate.function(loss, "loss")
    if regulariser is not None:
        _validate.function(regulariser, "regulariser")
    n = x.shape[0]
    if batch_size is not None:
        batch_size = _validate.positive_int(batch_size, "batch_size")
        if batch_size > n:
            raise ValueError(f"batch_size must be <= the number of samples {n}, got {batch_size}")
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    elif optimizer in ("adam", "sgd"):
        lr = _validate.positive_real(lr, "lr")
        cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        opt = cls(model.parameters(), lr=lr)
    else:
        raise ValueError(
            f"optimizer must be 'adam', 'sgd' or a torch.optim.Optimizer, got {optimizer!r}"
        )

    def batches(_):
        if batch_size is None:
            return {"x": x, "y": y}
        idx = torch.randperm(n, generator=generator)[:batch_size].to(x.device)
        return {"x": x[idx], "y": y[idx]}

    def objective(batch):
        data_fit = loss(model(batch["x"]), batch["y"])
        return (data_fit if regulariser is None else data_fit + regulariser(model)), data_fit

    return train_loop(
        model,
        objective,
        iterations=iterations,
        optimizer=opt,
        batches=batches,
        progress=progress,
        description=description,
    )
