r"""Test functions for optimisers: the camelback function of Figure 4 (Section 6.1).

The function of Figure 4 is the three-hump camel function

.. math::

    V(x, y) = 2x^2 - 1.05x^4 + \tfrac16 x^6 + xy + y^2 ,

with its global minimum :math:`V = 0` at :math:`(0, 0)`, two local minima at
:math:`\pm(1.7476, -0.8738)` and two saddles at :math:`\pm(1.0705, -0.5353)`. The review starts the
optimisers of Figure 4 at :math:`(-0.5, 0.8)`. :func:`optimise_path` runs an optimiser from
such a start and records the iterates and the losses that Figure 4 plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .. import _validate
from ..loop import NonFiniteError, train_loop

__all__ = [
    "camelback",
    "camelback_gradient",
    "camelback_stationary_points",
    "nearest_stationary_point",
    "optimise_path",
]

#: The starting point of Figure 4.
CAMELBACK_START = (-0.5, 0.8)


def camelback(xy: torch.Tensor) -> torch.Tensor:
    r"""The camelback (three-hump camel) function :math:`V(x, y)` of Figure 4.

    Parameters
    ----------
    xy : torch.Tensor
        Points of shape ``(..., 2)``, last axis :math:`(x, y)`; any floating dtype and device.

    Returns
    -------
    torch.Tensor
        :math:`V(x, y) = 2x^2 - 1.05x^4 + x^6/6 + xy + y^2` of shape ``(...)``.
    """
    if not isinstance(xy, torch.Tensor):
        raise TypeError(f"xy must be a torch.Tensor, got {type(xy).__name__}")
    if not xy.is_floating_point():
        raise TypeError(f"xy must have a floating-point dtype, got {xy.dtype}")
    _validate.last_dim(xy, 2, "xy")
    x, y = xy[..., 0], xy[..., 1]
    x2 = x * x
    return 2 * x2 - 1.05 * x2 * x2 + x2 * x2 * x2 / 6 + x * y + y * y


def camelback_gradient(xy: torch.Tensor) -> torch.Tensor:
    r"""The gradient :math:`\nabla V(x, y)` of the camelback function of Figure 4, in closed form.

    :math:`\partial_x V = 4x - 4.2x^3 + x^5 + y` and :math:`\partial_y V = x + 2y`, for points of
    shape ``(..., 2)`` (checked as in :func:`camelback`); returns shape ``(..., 2)``. This is the
    :math:`\nabla E` of (54)-(57) for the test problem of Section 6.1.

    >>> camelback_gradient(torch.tensor([1.0, 0.5]))
    tensor([1.3000, 2.0000])
    """
    if not isinstance(xy, torch.Tensor):
        raise TypeError(f"xy must be a torch.Tensor, got {type(xy).__name__}")
    if not xy.is_floating_point():
        raise TypeError(f"xy must have a floating-point dtype, got {xy.dtype}")
    _validate.last_dim(xy, 2, "xy")
    x, y = xy[..., 0], xy[..., 1]
    x2 = x * x
    return torch.stack([x * (4 - 4.2 * x2 + x2 * x2) + y, x + 2 * y], dim=-1)


def camelback_stationary_points(
    *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    r"""The five stationary points of the camelback function of Figure 4, by name.

    Setting :math:`\partial_y V = x + 2y = 0` gives :math:`y = -x/2`; then
    :math:`\partial_x V = x(3.5 - 4.2x^2 + x^4) = 0`, so :math:`x = 0` or
    :math:`x^2 = 2.1 \pm \sqrt{0.91}` (the larger root a minimum, the smaller a saddle).
    Keys: ``"global"``, ``"local+"``, ``"local-"``, ``"saddle+"``, ``"saddle-"``.
    """
    device = _validate.device(device)
    dtype = _validate.float_dtype(dtype) or torch.get_default_dtype()
    xm = math.sqrt(2.1 + math.sqrt(0.91))
    xs = math.sqrt(2.1 - math.sqrt(0.91))
    pts = {
        "global": (0.0, 0.0),
        "local+": (xm, -xm / 2),
        "local-": (-xm, xm / 2),
        "saddle+": (xs, -xs / 2),
        "saddle-": (-xs, xs / 2),
    }
    return {k: torch.tensor(v, device=device, dtype=dtype) for k, v in pts.items()}


def nearest_stationary_point(xy: torch.Tensor) -> tuple[str, float]:
    """Name of the camelback stationary point (Figure 4) nearest to ``xy``, and its distance."""
    _validate.tensor(xy, "xy")
    if xy.shape != (2,):
        raise ValueError(f"xy must have shape (2,), got {tuple(xy.shape)}")
    pts = camelback_stationary_points(device=xy.device, dtype=xy.dtype)
    dist = {k: float((xy - v).norm()) for k, v in pts.items()}
    name = min(dist, key=dist.__getitem__)
    return name, dist[name]


def optimise_path(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    make_optimizer: Callable[[list], torch.optim.Optimizer],
    steps: int,
    start: Sequence[float] | torch.Tensor = CAMELBACK_START,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    callbacks: Sequence[Callable[[int, torch.optim.Optimizer], object]] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.optim.Optimizer]:
    r"""Run an optimiser on :math:`V(\theta)` from one start and record its path (Figure 4, Section
    6.1).

    The iterate :math:`\theta_0` = ``start`` becomes a leaf tensor with ``requires_grad``;
    ``make_optimizer([theta])`` builds the optimiser, and :func:`spdl_ref.train.train_loop` takes
    ``steps`` steps of it on :math:`V` (and stops with
    :class:`~spdl_ref.train.NonFiniteError`, :math:`\theta` untouched, where :math:`V` or its
    gradient is not finite). This is the loop behind the trajectories and loss curves of
    Figure 4. It returns the iterates themselves, which Figure 4 plots, rather than a
    :class:`~spdl_ref.train.History`.

    Parameters
    ----------
    loss_fn : callable
        :math:`V`: maps the iterate (a tensor shaped like ``start``) to a scalar tensor, e.g.
        :func:`camelback`.
    make_optimizer : callable
        Maps a list holding the one parameter to a :class:`torch.optim.Optimizer`, e.g.
        ``lambda p: torch.optim.SGD(p, lr=0.01)``.
    steps : int
        Number of optimiser steps, :math:`\ge 0`.
    start : sequence of float or torch.Tensor
        :math:`\theta_0`; the Figure 4 start :math:`(-0.5, 0.8)` by default. A tensor is copied,
        never modified.
    device, dtype : optional
        Of the iterate. By default those of a tensor ``start``, else the CPU and the default dtype.
    callbacks : sequence of callables
        Each is called as ``callback(i, optimizer)`` after step ``i`` (counted from 0), e.g. to
        record the momentum in ``optimizer.state`` along the run.

    Returns
    -------
    path : torch.Tensor
        The iterates :math:`\theta_0, \dots, \theta_{steps}`, shape ``(steps + 1, *start.shape)``.
    losses : torch.Tensor
        :math:`V(\theta_k)` for the same :math:`k`, shape ``(steps + 1,)``, in the dtype of the
        iterate, on the CPU.
    optimizer : torch.optim.Optimizer
        The optimiser after the last step (its ``state`` holds, e.g., the momentum).
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if not callable(make_optimizer):
        raise TypeError(f"make_optimizer must be callable, got {type(make_optimizer).__name__}")
    steps = _validate.nonnegative_int(steps, "steps")
    if isinstance(start, torch.Tensor):
        _validate.tensor(start, "start")
        xy = (
            start.detach()
            .to(device=device or start.device, dtype=dtype or start.dtype, copy=True)
            .requires_grad_(True)
        )
    else:
        try:
            xy = torch.tensor(
                start, device=device, dtype=dtype or torch.get_default_dtype(), requires_grad=True
            )
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"start must be a sequence of real numbers or a tensor, got {start!r}"
            ) from err
        if not bool(torch.isfinite(xy).all()):
            raise ValueError(f"start must contain only finite values, got {start!r}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must hold callables, got {type(cb).__name__}")
    opt = make_optimizer([xy])
    if not isinstance(opt, torch.optim.Optimizer):
        raise TypeError(
            f"make_optimizer must return a torch.optim.Optimizer, got {type(opt).__name__}"
        )

    def objective(_: object) -> torch.Tensor:
        v = loss_fn(xy)
        if not isinstance(v, torch.Tensor) or v.dim() != 0:
            raise ValueError(
                "loss_fn must return a scalar (0-dimensional) tensor, got "
                f"{tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}"
            )
        return v

    path = [xy.detach().clone()]
    history = train_loop(
        {"theta": xy},
        objective,
        iterations=steps,
        optimizer=opt,
        callbacks=[
            lambda i, h: path.append(xy.detach().clone()),
            *(lambda i, h, cb=cb: cb(i, opt) for cb in callbacks),
        ],
    )
    with torch.no_grad():
        last = objective(None)
    if not bool(torch.isfinite(last)):
        raise NonFiniteError(
            f"loss_fn is {last.item()} at the last iterate, reached by a finite step from a "
            f"finite loss; theta = {xy.detach().tolist()}",
            kind="loss",
            iteration=steps,
        )
    losses = torch.tensor([*history.loss, last.item()], dtype=xy.dtype, device="cpu")
    return torch.stack(path), losses, opt
