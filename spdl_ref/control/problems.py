r"""The reduced (23) and full-space (24) training problems, SGD (25) with adjoint gradients (§3).

The reduced problem eliminates the states: :math:`E(\theta)` depends on the parameters only,
through the network :math:`\Psi(x_n, \theta)`. The full-space problem keeps the states
:math:`z_n^k` as unknowns of their own and imposes the network (a layered network, the
discretised (24b); for the ResNet the recursion (6)) as an equality constraint. At states that
satisfy the constraint both objectives agree. :func:`squared_fit` is the data fit the chapters
use, :math:`L_n(z) = \frac12 (z_c - y_n)^2`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .. import _validate
from ..loop import History, train_loop
from ..ode.layered import check_layered, layer_step, network_states, parameter_layout
from .adjoint import backward_sweep, check_batch

__all__ = [
    "SquaredFit",
    "full_space_objective",
    "minibatches",
    "reduced_objective",
    "sgd",
    "squared_fit",
]


class SquaredFit:
    r"""The data fit of (23): :math:`\frac1N \sum_n L_n(z_n)`, a squared distance to a target.

    :math:`L_n(z) = \frac12 (z_c - y_n)^2` for one output coordinate :math:`c`, or
    :math:`\frac12 \|z - y_n\|^2` for the whole output. Built by :func:`squared_fit`. Called as
    ``fit(z)`` for all samples or ``fit(z, idx)`` for the samples ``idx`` (the form :func:`sgd`
    and :func:`~spdl_ref.control.msa` call), with ``z`` the network's outputs for those samples,
    shape ``(n, M)``.
    """

    def __init__(self, target: torch.Tensor, coordinate: int | None):
        self.target = target
        self.coordinate = coordinate

    def __call__(self, z: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """:math:`\\frac{1}{2n} \\sum_n \\|z_{n,c} - y_n\\|^2` over the samples ``idx``.

        ``idx=None`` takes all samples.
        """
        y = self.target if idx is None else self.target[idx]
        out = z if self.coordinate is None else z[:, self.coordinate]
        if out.shape != y.shape:
            raise ValueError(
                f"z must give outputs of shape {tuple(y.shape)} for these targets, got "
                f"{tuple(out.shape)} from z of shape {tuple(z.shape)}"
            )
        return 0.5 * (out - y).pow(2).reshape(out.shape[0], -1).sum(1).mean()

    def __repr__(self) -> str:
        return f"SquaredFit(N={self.target.shape[0]}, coordinate={self.coordinate})"


def squared_fit(target: torch.Tensor, coordinate: int | None = 0) -> SquaredFit:
    r"""The squared data fit of Figure 1 and Section 3: :math:`L_n(z) = \frac12 \|z_c - y_n\|^2`.

    ``target`` holds :math:`y_n`: shape ``(N,)`` when ``coordinate`` picks the output
    coordinate :math:`c` of a scalar output (default the first, as for a signed score), or
    ``(N, M)`` with ``coordinate=None`` for the whole output. The result is the mean over the
    samples, a callable ``fit(z)`` or ``fit(z, idx)`` (:class:`SquaredFit`).

    Examples
    --------
    >>> fit = squared_fit(torch.tensor([1.0, -1.0]))
    >>> fit(torch.tensor([[0.0, 5.0], [-1.0, 5.0]]))  # ((0 - 1)^2 / 2 + 0) / 2
    tensor(0.2500)
    >>> fit(torch.tensor([[1.0, 0.0]]), torch.tensor([1]))  # sample 1 only: (1 + 1)^2 / 2
    tensor(2.)
    """
    _validate.tensor(target, "target")
    if coordinate is None:
        if target.dim() != 2:
            raise ValueError(
                f"target must have shape (N, M) when coordinate is None, got {tuple(target.shape)}"
            )
    else:
        coordinate = _validate.nonnegative_int(coordinate, "coordinate")
        if target.dim() != 1:
            raise ValueError(
                f"target must have shape (N,) for one coordinate, got {tuple(target.shape)}"
            )
    return SquaredFit(target, coordinate)


def _reg(model, regulariser):
    if regulariser is None:
        return 0.0
    if not callable(regulariser):
        raise TypeError(f"regulariser must be callable or None, got {type(regulariser).__name__}")
    return regulariser(model)


def reduced_objective(
    model: Any, x: torch.Tensor, loss: Callable, regulariser: Callable | None = None
) -> torch.Tensor:
    r"""The reduced objective (23), :math:`E(\theta) = \ell(\Psi(x, \theta)) + R(\theta)`.

    ``model`` is any :class:`~spdl_ref.ode.LayeredNetwork`, ``loss(z_K)`` the mean data fit
    :math:`\frac1N \sum_n L_n(z_n^K)` of its outputs, ``regulariser(model)`` is
    :math:`R(\theta)` (or ``None``). Differentiable in the model's parameters.
    """
    model = check_layered(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    return loss(model.project(network_states(model, x)[-1])) + _reg(model, regulariser)


def full_space_objective(
    model: Any,
    z: torch.Tensor,
    x: torch.Tensor,
    loss: Callable,
    regulariser: Callable | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The full-space objective (24a) and the residual of its constraint (24b), discretised.

    Parameters
    ----------
    model : spdl_ref.ode.LayeredNetwork
        Supplies :math:`\theta`, the steps :math:`h_k` and the layer map
        :math:`\Phi_{h_k}(\cdot\,; \theta^k)` (for the ResNet :math:`z + h f(z, \theta^k)`, (6)).
    z : torch.Tensor
        The states as free variables, shape ``(K + 1, N, D)`` (``D = M`` except for networks that
        lift their inputs, e.g. Hamiltonian fields with ``D = 2M``).
    x : torch.Tensor
        The inputs, shape ``(N, M)``; the constraint includes :math:`z^0 = \operatorname{lift}(x)`.

    Returns
    -------
    (E, residual)
        ``E`` :math:`= \ell(\operatorname{project}(z^K)) + R(\theta)`, and ``residual`` of shape
        ``(K + 1, N, D)``: ``residual[0]`` :math:`= z^0 - \operatorname{lift}(x)` and
        ``residual[k + 1]`` :math:`= z^{k+1} - \Phi_{h_k}(z^k; \theta^k)` (for the ResNet
        :math:`z^{k+1} - z^k - h f(z^k, \theta^k)`). Both vanish together with the reduced
        objective's difference exactly when ``z`` is the network's trajectory.
    """
    model = check_layered(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    _validate.tensor(z, "z")
    u0 = model.lift(x)
    if z.shape != (model.depth + 1, *u0.shape):
        raise ValueError(f"z must have shape {(model.depth + 1, *u0.shape)}, got {tuple(z.shape)}")
    res = [z[0] - u0]
    for k in range(model.depth):
        res.append(z[k + 1] - layer_step(model, k, z[k]))
    return loss(model.project(z[-1])) + _reg(model, regulariser), torch.stack(res)


def minibatches(
    x: torch.Tensor, batch_size: int | None = None, generator: torch.Generator | None = None
) -> Callable[[int], dict[str, torch.Tensor]]:
    r"""The minibatch draw of SGD (25): ``batches(i)`` for :func:`spdl_ref.loop.train_loop`.

    ``batches(i)`` returns ``{"x": x[idx], "idx": idx}``: all samples (``batch_size=None``), or
    a set :math:`\mathcal S^j` of ``batch_size`` indices drawn uniformly without replacement by
    ``torch.randperm`` from ``generator`` (on the CPU, so that the draws do not depend on the
    device), moved to ``x``'s device. Used by :func:`sgd` and :func:`spdl_ref.control.msa`.

    Examples
    --------
    >>> batches = minibatches(torch.zeros(5, 2), 2, torch.Generator().manual_seed(0))
    >>> batch = batches(0)
    >>> tuple(batch["x"].shape), batch["idx"].numel()
    ((2, 2), 2)
    """
    _validate.floating_tensor(x, "x")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"x must hold at least one sample, got shape {tuple(x.shape)}")
    N = x.shape[0]
    if batch_size is not None:
        batch_size = _validate.positive_int(batch_size, "batch_size")
        if batch_size > N:
            raise ValueError(f"batch_size must be <= the number of samples {N}, got {batch_size}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    everyone = torch.arange(N, device=x.device)

    def batches(_i):
        if batch_size is None:
            return {"x": x, "idx": everyone}
        idx = torch.randperm(N, generator=generator)[:batch_size].to(x.device)
        return {"x": x[idx], "idx": idx}

    return batches


def sgd(
    model: Any,
    x: torch.Tensor,
    loss: Callable,
    *,
    tau: float = 0.1,
    iterations: int = 100,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
) -> History:
    r"""Stochastic gradient descent (25) on the reduced problem, with the discrete adjoint (28).

    Each iteration draws a minibatch :math:`\mathcal S^j` (uniformly, without replacement),
    computes :math:`g = \frac{1}{|\mathcal S^j|} \sum_{n \in \mathcal S^j}
    (L_n \circ \Psi(x_n, \cdot))'(\theta^j)` with the discrete adjoint
    (:func:`~spdl_ref.control.adjoint.backward_sweep`, the body of
    :func:`~spdl_ref.control.discrete_adjoint`) and steps :math:`\theta^{j+1} = \theta^j -
    \tau g` in every parameter (the learnt steps of (38) included). :math:`g` is an unbiased
    estimate of the gradient of the data fit :math:`\frac1N \sum_n L_n \circ \Psi`; there is
    no regulariser here (with one, (25) would need :math:`R'(\theta^j)` added: see the book's
    errata). ``model`` is any :class:`~spdl_ref.ode.LayeredNetwork`; ``loss(z_K, idx)`` is the
    mean data fit of samples ``idx`` given their outputs.

    It runs on :func:`spdl_ref.loop.train_loop` (the adjoint fills the gradients,
    ``backward=False``, then a manual step :math:`\theta \leftarrow \theta - \tau g`), so a
    non-finite loss or gradient stops it with :class:`spdl_ref.loop.NonFiniteError` and the
    parameters of the last finite step. Returns the :class:`spdl_ref.loop.History` of the
    minibatch loss before each step.

    Examples
    --------
    >>> from spdl_ref.ode import ResNet
    >>> net = ResNet(2, depth=3, init_std=0.0)  # z^K = x: the loss is |x_1 - 1|^2 / 2 at first
    >>> x = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    >>> history = sgd(net, x, squared_fit(torch.ones(2)), tau=0.5, iterations=20)
    >>> round(history.loss[0], 4), history.loss[-1] < history.loss[0]
    (0.5, True)
    """
    model = check_layered(model)
    parameter_layout(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    tau = _validate.positive_real(tau, "tau")
    iterations = _validate.positive_int(iterations, "iterations")
    batches = minibatches(x, batch_size, generator)
    params = dict(model.named_parameters())

    def objective(batch):
        with torch.no_grad():
            states = network_states(model, batch["x"])
        with torch.enable_grad():
            uK = states[-1].requires_grad_(True)
            value = loss(model.project(uK), batch["idx"])
            (g,) = torch.autograd.grad(value, uK)
        grads = backward_sweep(model, states, g)[0]
        for name, param in params.items():
            param.grad = grads[name]
        return value.detach()

    def step(evaluate):
        evaluate()
        with torch.no_grad():
            for param in params.values():
                param -= tau * param.grad

    return train_loop(
        params,
        objective,
        iterations=iterations,
        step=step,
        batches=batches,
        backward=False,
        description="sgd (25)",
    )
