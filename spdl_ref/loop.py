r"""The one training loop of the package, its record and its non-finite guard (Section 1, eq. (4)).

Every experiment of the book that trains something minimises an objective such as the empirical
risk (4) step by step: draw a minibatch, evaluate the objective, compute gradients, update
:math:`\theta`. :func:`train_loop` is that loop, written once. The drivers
(:func:`spdl_ref.train.fit`, :func:`spdl_ref.invertible.fit_flow`,
:func:`spdl_ref.equivariant.train_denoiser`, :func:`spdl_ref.optim.train_mean_field`,
:func:`spdl_ref.optim.stiefel_student`, :func:`spdl_ref.optim.optimise_path`) add what they
need through its arguments:

* ``batches(i)`` draws the minibatch of iteration ``i`` (e.g. indices :math:`\mathcal S^j` of
  SGD (25));
* ``optimizer`` (one :class:`torch.optim.Optimizer` or several, stepped in order) or a custom
  ``step(evaluate)``: a manual gradient step, a step followed by a proximal map, an L-BFGS step
  with ``evaluate`` as its closure;
* ``backward=False`` when the objective fills the gradients itself (e.g. from the discrete adjoint
  (28) instead of autograd);
* ``callbacks``: schedulers, validation, monitors, snapshots, run after each step and free to add
  named series to the :class:`History`.

The guard: before anything changes, each iteration checks that the loss and every gradient are
finite (with the check that the Section 6 optimisers use, which raises
:class:`spdl_ref.optim.NonFiniteGradientError`).
If not, the loop stops with a :class:`NonFiniteError` that says what was non-finite, in which
iteration and in which parameter or part of the minibatch, and the parameters and optimiser state
are those of the last finite step, bit for bit.

This module imports no section of the package, so every section can use it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import _validate

__all__ = ["History", "NonFiniteError", "train_loop"]

#: The attributes of every :class:`History`; a named series may not take one of these names.
_FIELDS = ("loss", "data_fit", "seconds", "series")


@dataclass
class History:
    r"""The record of a training run of :func:`train_loop` (the objective (4) and its kin).

    ``loss``, ``data_fit`` and ``seconds`` have one entry per iteration; ``series`` holds the
    named extra series that a driver records through callbacks (validation values, step sizes,
    monitored quantities, parameter snapshots), each documented by the driver that writes it.
    """

    #: The objective :math:`E(\theta)` of (4) on the iteration's minibatch, before the step.
    loss: list = field(default_factory=list)
    #: The data-fit term alone (equal to ``loss`` where there is no regulariser).
    data_fit: list = field(default_factory=list)
    #: Wall-clock seconds from the start of training to the end of each iteration.
    seconds: list = field(default_factory=list)
    #: Named extra series, e.g. ``{"validation": [(10, 0.53), ...], "lr": [...]}``.
    series: dict = field(default_factory=dict)

    def record(self, **values: Any) -> None:
        """Append each ``name=value`` to the series ``name`` (created on first use)."""
        for name, value in values.items():
            if name in _FIELDS:
                raise ValueError(f"series name {name!r} is taken by History.{name}")
            self.series.setdefault(name, []).append(value)


class NonFiniteError(FloatingPointError):
    r"""Training met a NaN or an infinity; nothing was changed (the guard of :func:`train_loop`).

    Raised while minimising an objective such as (4).

    Attributes
    ----------
    kind : str
        ``"loss"``, ``"gradient"`` or ``"parameter"`` (a custom step wrote a non-finite value).
    iteration : int
        The iteration (counted from 0) in which it was met; this many steps were completed and
        the parameters and optimiser state are as they were after the last of them.
    names : tuple of str
        The parameters, or the parts of the minibatch, that carried the non-finite value (empty
        when all are finite and an intermediate value of the objective overflowed).
    """

    def __init__(self, message: str, *, kind: str, iteration: int, names: Iterable[str] = ()):
        super().__init__(message)
        self.kind = kind
        self.iteration = iteration
        self.names = tuple(names)


def _named_parameters(parameters: Any) -> list[tuple[str, torch.Tensor]]:
    if isinstance(parameters, nn.Module):
        named: list[tuple[str, torch.Tensor]] = [
            (n, p) for n, p in parameters.named_parameters() if p.requires_grad
        ]
    elif isinstance(parameters, Mapping):
        named = list(parameters.items())
    elif isinstance(parameters, Iterable) and not isinstance(parameters, (str, torch.Tensor)):
        items = list(parameters)
        named = [
            item if isinstance(item, tuple) else (f"parameters[{k}]", item)
            for k, item in enumerate(items)
        ]
    else:
        raise TypeError(
            "parameters must be an nn.Module, a dict of named tensors or a sequence of tensors, "
            f"got {type(parameters).__name__}"
        )
    for name, p in named:
        if not isinstance(name, str) or not isinstance(p, torch.Tensor):
            raise TypeError("parameters must hold tensors (with str names where named)")
        if not (p.is_leaf and p.requires_grad):
            raise ValueError(f"parameter {name!r} must be a leaf tensor with requires_grad=True")
    if not named:
        raise ValueError("parameters is empty: there is nothing to train")
    return named


def _optimizers(optimizer: Any) -> list[torch.optim.Optimizer]:
    if optimizer is None:
        return []
    opts = [optimizer] if isinstance(optimizer, torch.optim.Optimizer) else list(optimizer)
    for opt in opts:
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be a torch.optim.Optimizer or a sequence of them, got "
                f"{type(opt).__name__}"
            )
    return opts


def _non_finite(t: torch.Tensor) -> str:
    """'NaN' or 'inf' for a tensor with a non-finite entry, '' for a finite one."""
    if not t.is_floating_point() and not t.is_complex():
        return ""
    if bool(torch.isnan(t).any()):
        return "NaN"
    return "" if bool(torch.isfinite(t).all()) else "inf"


def _batch_parts(batch: Any) -> list[tuple[str, torch.Tensor]]:
    if isinstance(batch, torch.Tensor):
        return [("batch", batch)]
    if isinstance(batch, Mapping):
        return [(str(k), v) for k, v in batch.items() if isinstance(v, torch.Tensor)]
    if isinstance(batch, (tuple, list)):
        return [(f"batch[{k}]", v) for k, v in enumerate(batch) if isinstance(v, torch.Tensor)]
    return []


def _listing(found: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name!r} ({what})" for name, what in found)


def _error(
    kind: str, i: int, message: str, found: Sequence[tuple[str, str]] = ()
) -> NonFiniteError:
    """A :class:`NonFiniteError` of iteration ``i`` naming the ``(name, 'NaN' | 'inf')`` found."""
    return NonFiniteError(
        f"{message}; {i} step(s) were completed and nothing was changed in iteration {i}",
        kind=kind,
        iteration=i,
        names=[name for name, _ in found],
    )


def _loss_error(value: Any, i: int, named: Any, batch: Any, last: Any) -> NonFiniteError:
    """Say why the loss of iteration ``i`` is non-finite: bad parameters, bad data or overflow."""
    before = "" if last is None else f" (the previous loss was {last:.6g})"
    head = f"the loss is {value} in iteration {i}{before}"
    bad = [(n, w) for n, p in named if (w := _non_finite(p.detach()))]
    if bad:
        return _error(
            "loss",
            i,
            f"{head} because parameter(s) {_listing(bad)} already hold non-finite values",
            bad,
        )
    bad = [(n, w) for n, t in _batch_parts(batch) if (w := _non_finite(t))]
    if bad:
        return _error(
            "loss",
            i,
            f"{head} because the minibatch's {_listing(bad)} hold non-finite values: the data, "
            "not the step size, is at fault",
            bad,
        )
    return _error(
        "loss",
        i,
        f"{head} although the parameters and the minibatch are finite: an intermediate value "
        "overflowed or the objective is undefined there (a step size too large lets the "
        "parameters grow until it overflows)",
    )


def _split(out: Any) -> tuple[torch.Tensor, torch.Tensor]:
    loss, data_fit = out if isinstance(out, tuple) and len(out) == 2 else (out, out)
    for what, t in (("loss", loss), ("data fit", data_fit)):
        if not isinstance(t, torch.Tensor) or t.dim() != 0:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(
                "objective must return a scalar (0-dimensional) tensor, the loss, or a pair "
                f"(loss, data fit) of them; the {what} is {got}"
            )
    return loss, data_fit


def train_loop(
    parameters: nn.Module | Mapping[str, torch.Tensor] | Iterable[Any],
    objective: Callable[[Any], Any],
    *,
    iterations: int,
    optimizer: torch.optim.Optimizer | Iterable[torch.optim.Optimizer] | None = None,
    batches: Callable[[int], Any] | None = None,
    step: Callable[[Callable[[], torch.Tensor]], Any] | None = None,
    backward: bool = True,
    callbacks: Sequence[Callable[[int, History], Any]] = (),
    progress: bool = False,
    description: str = "training",
) -> History:
    r"""Minimise ``objective`` over ``parameters``: the training loop of every experiment (eq. (4)).

    Iteration ``i`` (``0 <= i < iterations``):

    1. ``batch = batches(i)`` (``None`` without ``batches``);
    2. ``evaluate()``: zero the gradients, ``out = objective(batch)`` (a scalar loss, or a pair
       ``(loss, data_fit)``), stop if the loss is not finite, ``loss.backward()`` (skipped with
       ``backward=False``, where the objective has filled each ``.grad`` itself), stop if any
       gradient is not finite;
    3. the update: ``evaluate()`` then ``opt.step()`` for each optimiser in ``optimizer``, or,
       with a custom ``step``, ``step(evaluate)``, which evaluates (once, or several times, as an
       L-BFGS line search does) and updates the parameters itself. The loss and data fit of the
       first evaluation (at the iterate before the update) are recorded;
    4. ``callback(i, history)`` for each callback, in order (step a scheduler, validate, record
       a series with :meth:`History.record`).

    The guard. Non-finite values stop the loop with :class:`NonFiniteError` before any parameter
    or optimiser state changes, so both are exactly those of the last finite step. A custom
    ``step`` may change the parameters between evaluations, so in that mode the loop keeps a
    copy of the parameters (and of the optimisers' state) from before the step, puts it back if
    the step fails, and also refuses a step that writes a non-finite value into a parameter.

    Parameters
    ----------
    parameters : torch.nn.Module, dict or sequence
        What is trained: a module (its parameters that require gradients), a dict from names to
        leaf tensors, or a sequence of leaf tensors. The names appear in error messages.
    objective : callable
        ``objective(batch)`` returning the loss, or ``(loss, data_fit)``: 0-dimensional tensors.
    iterations : int
        Number of iterations, ``>= 0``.
    optimizer : torch.optim.Optimizer, sequence of them, or None
        Stepped in order after each guarded evaluation; required unless ``step`` is given (then
        optional: its gradients are zeroed and its state is restored on failure). Its
        parameters must be among ``parameters``, so that the guard sees every gradient.
    batches : callable or None
        ``batches(i)`` returns the minibatch of iteration ``i``: a tensor, or a dict (or tuple) of
        tensors, whose parts an error message names.
    step : callable or None
        A custom update, ``step(evaluate)``; see above.
    backward : bool
        Back-propagate the loss (default) or leave the gradients the objective filled.
    callbacks : sequence of callables
        ``callback(i, history)`` after each iteration.
    progress : bool
        Show a progress bar (tqdm) with the current loss.
    description : str
        The progress bar's label.

    Returns
    -------
    History
        ``loss``, ``data_fit`` and ``seconds`` per iteration, and the series the callbacks
        recorded.

    Examples
    --------
    Fit :math:`w` to :math:`\min_w \tfrac12 \|w - (1, 2)\|^2` with SGD and record
    :math:`\|w\|` after every step:

    >>> import torch
    >>> from spdl_ref.loop import train_loop
    >>> w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    >>> target = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> history = train_loop(
    ...     {"w": w},
    ...     lambda batch: 0.5 * (w - target).pow(2).sum(),
    ...     iterations=100,
    ...     optimizer=torch.optim.SGD([w], lr=0.2),
    ...     callbacks=[lambda i, h: h.record(norm=w.norm().item())],
    ... )
    >>> len(history.loss), round(history.loss[0], 3), round(history.series["norm"][-1], 6)
    (100, 2.5, 2.236068)

    A non-finite gradient at a finite loss (:math:`|w|^{1/2}` at :math:`w = 0`) stops it with
    :math:`w` untouched:

    >>> try:
    ...     train_loop(
    ...         {"w": w},
    ...         lambda batch: (w - w.detach()).abs().sqrt().sum(),
    ...         iterations=1,
    ...         optimizer=torch.optim.SGD([w], lr=0.2),
    ...     )
    ... except NonFiniteError as err:
    ...     print(err.kind, err.iteration, err.names)
    gradient 0 ('w',)
    """
    # Imported here: spdl_ref.optim imports this module, so a module-level import would be
    # circular. This is the finiteness check of the Section 6 optimisers, shared, not repeated.
    from .optim._checks import NonFiniteGradientError, check_finite

    named = _named_parameters(parameters)
    if not callable(objective):
        raise TypeError(f"objective must be callable, got {type(objective).__name__}")
    iterations = _validate.nonnegative_int(iterations, "iterations")
    opts = _optimizers(optimizer)
    if step is None and not opts:
        raise ValueError("train_loop needs an optimizer or a custom step")
    if step is not None and not callable(step):
        raise TypeError(f"step must be callable, got {type(step).__name__}")
    if batches is not None and not callable(batches):
        raise TypeError(f"batches must be callable, got {type(batches).__name__}")
    if not isinstance(backward, bool):
        raise TypeError(f"backward must be a bool, got {type(backward).__name__}")
    tensors = [p for _, p in named]
    known = {id(p) for p in tensors}
    for opt in opts:
        for group in opt.param_groups:
            if any(p.requires_grad and id(p) not in known for p in group["params"]):
                raise ValueError(
                    "every parameter of the optimizer must be among parameters, so that the "
                    "guard checks its gradient before the optimizer steps"
                )
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables, got {type(cb).__name__}")

    from tqdm import tqdm

    history = History()
    start = time.perf_counter()
    bar = tqdm(range(iterations), desc=description, disable=not progress, mininterval=0.5)
    for i in bar:
        batch = batches(i) if batches is not None else None
        first: list = []

        def evaluate(i: int = i, batch: Any = batch, first: list = first) -> torch.Tensor:
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            for p in tensors:
                p.grad = None
            loss, data_fit = _split(objective(batch))
            value = float(loss.detach())
            if not math.isfinite(value):
                raise _loss_error(value, i, named, batch, history.loss[-1] if i else None)
            if backward:
                loss.backward()
            grads = [(n, p.grad) for n, p in named if p.grad is not None]
            try:
                check_finite([g for _, g in grads], description)
            except NonFiniteGradientError as err:
                bad = [(n, w) for n, g in grads if (w := _non_finite(g))]
                raise _error(
                    "gradient",
                    i,
                    f"the gradient of {_listing(bad)} is non-finite in iteration {i}, at a finite "
                    f"loss {value:.6g}: the objective is not differentiable there or its "
                    "derivative overflowed",
                    bad,
                ) from err
            if not first:
                first.append((value, float(data_fit.detach())))
            return loss

        if step is None:
            evaluate()
            for opt in opts:
                opt.step()
        else:
            _custom_step(step, evaluate, named, opts, i, check_finite, NonFiniteGradientError)
            if not first:
                raise RuntimeError("a custom step must call evaluate() at least once")
        history.loss.append(first[0][0])
        history.data_fit.append(first[0][1])
        history.seconds.append(time.perf_counter() - start)
        for cb in callbacks:
            cb(i, history)
        if progress and (i + 1) % 50 == 0:
            bar.set_postfix(E=f"{history.loss[-1]:.3e}", refresh=False)
    return history


def _custom_step(
    step: Any,
    evaluate: Any,
    named: Any,
    opts: Any,
    i: int,
    check_finite: Any,
    NonFiniteGradientError: Any,
) -> None:
    """Run ``step(evaluate)``; on a non-finite value put parameters and optimiser state back."""
    with torch.no_grad():
        saved = [p.detach().clone() for _, p in named]
    states = [copy.deepcopy(opt.state_dict()) for opt in opts]
    try:
        step(evaluate)
        try:
            check_finite([p.detach() for _, p in named], "train_loop")
        except NonFiniteGradientError as err:
            bad = [(n, w) for n, p in named if (w := _non_finite(p.detach()))]
            raise _error(
                "parameter",
                i,
                f"the step of iteration {i} wrote non-finite values into {_listing(bad)}, which "
                "were put back",
                bad,
            ) from err
    except NonFiniteError:
        with torch.no_grad():
            for (_, p), s in zip(named, saved, strict=True):
                p.copy_(s)
        for opt, state in zip(opts, states, strict=True):
            opt.load_state_dict(state)
        raise
