r"""The method of successive approximations and its extended form (Section 3.1.2, eqs. (31)-(34)).

Instead of following the gradient of the reduced problem (23), MSA iterates on Pontryagin's
necessary conditions for the full-space problem (24): solve the state equation (31) forwards,
the costate equation (32) backwards, and maximise the Hamiltonian (9) layer by layer (33).
We work with the discrete problem of a layered network (:class:`spdl_ref.ode.LayeredNetwork`),
layer :math:`k` being the step map :math:`u \mapsto \Phi_{h_k}(u; \theta)`; its layer
Hamiltonian is

.. math::

    H^k(\theta) = \frac1N \sum_{n=1}^N
    \langle p_n^{k+1}, \Phi_{h_k}(z_n^k; \theta) - z_n^k \rangle ,

which for the ResNet (6) is :math:`\frac1N \sum_n \langle p_n^{k+1}, h\, f(z_n^k, \theta) \rangle`.
Its gradient at the current :math:`\theta^k` is minus the gradient of the loss, for any
integrator, so (34) holds exactly for the discrete problem.

Sign convention: maximisation (33) decreases the loss only when :math:`p` is the costate of
the *reward* :math:`-\ell`, i.e. :math:`p_n^K = -L_n'(z_n^K)` (Pontryagin's convention, and Li,
Chen, Tai & E's). With the printed :math:`p_n(T) = +L_n'(z_n(T))` of (32) the update
(33) would have to be an arg-min (see the book's errata, E3.1).

The extended MSA of Li, Chen, Tai & E adds penalties that keep the maximiser close to where
the state and costate equations still hold,

.. math::

    \tilde H^k(\theta) = H^k(\theta)
    - \frac{\rho}{2N} \sum_n \| z_n^{k+1} - \Phi_{h_k}(z_n^k; \theta) \|^2
    - \frac{\rho}{2N} \sum_n \| p_n^k - \partial_z \Phi_{h_k}(z_n^k; \theta)^T p_n^{k+1} \|^2 ,

(for the ResNet the residuals :math:`z_n^{k+1} - z_n^k - h f(z_n^k, \theta)` and
:math:`p_n^k - p_n^{k+1} - h\, \partial_z f(z_n^k, \theta)^T p_n^{k+1}`), and :math:`\rho = 0`
is plain MSA. The learnt steps of (38), if a network has them, are held fixed: :math:`H^k` is
linear in :math:`h_k` and has no maximiser.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from .. import _validate
from ..loop import History, train_loop
from ..ode.layered import check_layered, layer_step, parameter_layout
from .adjoint import adjoint_step, check_batch, costates
from .problems import minibatches

__all__ = [
    "costates",
    "extended_hamiltonian",
    "hamiltonian",
    "hamiltonian_stationarity",
    "maximise_hamiltonian",
    "msa",
]


def _check_pairs(model, z, p):
    for name, v in (("z", z), ("p", p)):
        _validate.floating_tensor(v, name)
        if v.dim() < 2 or v.shape[0] != model.depth + 1:
            raise ValueError(
                f"{name} must have shape (K + 1, N, D) = ({model.depth + 1}, N, D), "
                f"got {tuple(v.shape)}"
            )
    if z.shape != p.shape:
        raise ValueError(
            f"z and p must have the same shape, got {tuple(z.shape)} and {tuple(p.shape)}"
        )


def _stacked_theta(model, theta):
    names = list(model.layer_parameters(0))
    if theta is None:
        params = dict(model.named_parameters())
        return {n: params[n] for n in names}
    if not isinstance(theta, dict):
        raise TypeError(
            f"theta must be a dict {{name: tensor (K, ...)}}, got {type(theta).__name__}"
        )
    if set(theta) != set(names):
        raise ValueError(f"theta must have the layer parameters {names}, got {sorted(theta)}")
    for n in names:
        _validate.floating_tensor(theta[n], f"theta[{n!r}]")
        if theta[n].dim() == 0 or theta[n].shape[0] != model.depth:
            raise ValueError(
                f"theta[{n!r}] must be stacked by layer, first axis {model.depth}, "
                f"got shape {tuple(theta[n].shape)}"
            )
    return theta


def _layer_objective(model, k, z, p, rho, theta_k):
    """:math:`\\tilde H^k(\\theta^k)` of one layer (``rho = 0``: :math:`H^k`), a 0-d tensor."""
    zk, pk1 = z[k], p[k + 1]
    step = layer_step(model, k, zk, theta_k)
    H = ((step - zk) * pk1).sum(-1).mean()
    if rho == 0:
        return H
    state = (z[k + 1] - step).pow(2).sum(-1).mean()
    costate = (p[k] - adjoint_step(model, k, zk, pk1, theta_k)[0]).pow(2).sum(-1).mean()
    return H - 0.5 * rho * (state + costate)


def extended_hamiltonian(
    model: Any,
    z: torch.Tensor,
    p: torch.Tensor,
    rho: float,
    theta: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    r"""The extended (ρ-penalised) layer Hamiltonians :math:`\tilde H^k` of Li, Chen, Tai & E.

    Section 3.1.2. Same arguments as :func:`hamiltonian`; ``rho`` :math:`= \rho \ge 0` weighs
    the residuals of the state equation (31) and the costate equation (32) at the parameters
    ``theta``. Returns shape ``(K,)``; differentiable with respect to ``theta``.
    """
    model = check_layered(model)
    rho = _validate.nonnegative_real(rho, "rho")
    _check_pairs(model, z, p)
    theta = _stacked_theta(model, theta)
    return torch.stack(
        [
            _layer_objective(model, k, z, p, rho, {n: v[k] for n, v in theta.items()})
            for k in range(model.depth)
        ]
    )


def hamiltonian(
    model: Any, z: torch.Tensor, p: torch.Tensor, theta: dict[str, torch.Tensor] | None = None
) -> torch.Tensor:
    r"""The layer Hamiltonians of (9) and (33) for the discrete problem.

    .. math::

        H^k(\theta^k) = \frac1N\sum_n \langle p_n^{k+1}, \Phi_{h_k}(z_n^k; \theta^k) - z_n^k\rangle.

    For the ResNet (6) this is :math:`\frac1N\sum_n \langle p_n^{k+1}, h f(z_n^k,
    \theta^k)\rangle`. ``model`` is any :class:`~spdl_ref.ode.LayeredNetwork`; ``z`` and ``p``
    are states and costates of shape ``(K + 1, N, D)`` (from :func:`costates`); ``theta`` is
    ``{name: tensor of shape (K, ...)}`` with the names of ``model.layer_parameters`` (default:
    the model's own parameters). Returns shape ``(K,)``; differentiable with respect to
    ``theta``.
    """
    return extended_hamiltonian(model, z, p, 0.0, theta)


def hamiltonian_stationarity(model: Any, x: torch.Tensor, loss: Callable) -> torch.Tensor:
    r"""Per layer, :math:`\| \partial_{\theta^k} H^k \| / h_k`, the left side of (34).

    For the ResNet :math:`\| \frac1N \sum_n \partial_\theta f(z_n^k, \theta^k)^T p_n^{k+1} \|`.
    Zero exactly at a critical point of the data fit (with :math:`R = 0`), where MSA's update
    leaves :math:`\theta` unchanged. Returns shape ``(K,)``.
    """
    z, p, _ = costates(model, x, loss)
    N = x.shape[0]
    out = []
    with torch.no_grad():
        for k in range(model.depth):
            grads = adjoint_step(model, k, z[k], p[k + 1])[1]
            # the sum starts from a zero tensor: a network without layer parameters has none
            zero = torch.zeros((), dtype=x.dtype, device=x.device)
            norm = torch.sqrt(sum((g.pow(2).sum() for g in grads.values()), zero))
            out.append(norm / (N * model.step_size(k)))
    return torch.stack(out)


def _check_candidates(model, candidates):
    names = list(model.layer_parameters(0))
    if not isinstance(candidates, dict):
        raise TypeError(
            "candidates must be a dict {name: tensor (C, ...)} over the layer parameters "
            f"{names}, got {type(candidates).__name__}"
        )
    if set(candidates) != set(names):
        raise ValueError(
            f"candidates must have the layer parameters {names}, got {sorted(candidates)}"
        )
    sizes = set()
    for n in names:
        c = _validate.tensor(candidates[n], f"candidates[{n!r}]")
        want = tuple(model.layer_parameters(0)[n].shape)
        if c.dim() != len(want) + 1 or tuple(c.shape[1:]) != want:
            raise ValueError(
                f"candidates[{n!r}] must have shape (C, {', '.join(map(str, want))}), "
                f"got {tuple(c.shape)}"
            )
        sizes.add(c.shape[0])
    if len(sizes) != 1:
        raise ValueError(
            f"candidates must all hold the same number C of values, got {sorted(sizes)}"
        )
    return candidates


def maximise_hamiltonian(
    model: Any,
    z: torch.Tensor,
    p: torch.Tensor,
    *,
    rho: float = 0.0,
    inner_steps: int = 10,
    inner_lr: float = 0.05,
    candidates: dict | None = None,
) -> dict:
    r"""The update (33): maximise every layer's (extended) Hamiltonian over :math:`\theta^k`.

    The layers decouple, so they are maximised together. Without ``candidates``, ``inner_steps``
    Adam steps of size ``inner_lr`` from the model's current :math:`\theta` (a local optimiser
    over continuous parameters); with ``candidates`` (``{name: tensor (C, ...)}``, ``C`` values of
    one layer's parameters, e.g. quantised weights, where :math:`f` need not be differentiable in
    the underlying weights) an exhaustive search, layer by layer. ``z`` and ``p`` are states and
    Pontryagin costates from :func:`costates`. Returns the new parameters
    ``{name: tensor (K, ...)}``; the model is not changed. The Adam steps run on
    :func:`spdl_ref.loop.train_loop`, so a non-finite Hamiltonian or gradient stops them with
    :class:`spdl_ref.loop.NonFiniteError`.
    """
    model = check_layered(model)
    parameter_layout(model)  # every parameter is a layer's (or the held-fixed steps)
    rho = _validate.nonnegative_real(rho, "rho")
    inner_steps = _validate.positive_int(inner_steps, "inner_steps")
    inner_lr = _validate.positive_real(inner_lr, "inner_lr")
    _check_pairs(model, z, p)
    z, p = z.detach(), p.detach()
    theta = _stacked_theta(model, None)
    if candidates is None:
        variables = {n: v.detach().clone().requires_grad_(True) for n, v in theta.items()}
        train_loop(
            variables,
            lambda _: -extended_hamiltonian(model, z, p, rho, variables).sum(),
            iterations=inner_steps,
            optimizer=torch.optim.Adam(variables.values(), lr=inner_lr),
            description="maximise the Hamiltonian (33)",
        )
        return {n: v.detach() for n, v in variables.items()}
    candidates = _check_candidates(model, candidates)
    new = {n: v.detach().clone() for n, v in theta.items()}
    with torch.no_grad():
        for k in range(model.depth):
            objective = functools.partial(_layer_objective, model, k, z, p, rho)
            best = int(torch.func.vmap(objective)(candidates).argmax())
            for n in new:
                new[n][k] = candidates[n][best]
    return new


def _batch_loss(loss, idx):
    def fit(z):
        return loss(z, idx)

    return fit


def msa(
    model: Any,
    x: torch.Tensor,
    loss: Callable,
    *,
    iterations: int = 100,
    rho: float = 0.0,
    inner_steps: int = 10,
    inner_lr: float = 0.05,
    candidates: dict | None = None,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    full_loss: bool = True,
) -> History:
    r"""Train a layered network by MSA, eqs. (31)-(33), or Li, Chen, Tai & E's E-MSA (§3.1.2).

    Each iteration: states (31) and costates (32) on a minibatch (:func:`costates`), then every
    layer's :math:`\theta^k` is replaced by a maximiser of the (extended) Hamiltonian
    (:func:`maximise_hamiltonian`). Learnt step sizes (38) are held fixed.

    It runs on :func:`spdl_ref.loop.train_loop`: the same backward sweep that gives the
    costates gives the gradient of the loss (minus that of the Hamiltonians, (34)), which the
    loop's guard checks before the update. A loss whose derivative is not finite (such as
    :math:`|z|^{1/2}` at 0) therefore stops the training with
    :class:`spdl_ref.loop.NonFiniteError`, the parameters those of the last finite iteration.

    Parameters
    ----------
    model : spdl_ref.ode.LayeredNetwork
        Trained in place (e.g. a :class:`~spdl_ref.ode.ResNet`, whose :math:`\theta^k = (A^k,
        b^k)`).
    x : torch.Tensor
        Inputs, shape ``(N, M)``.
    loss : callable
        ``loss(z_K, idx)`` returning the mean data fit of the samples ``idx`` (a long tensor of
        indices into ``x``) from their features ``z_K``.
    iterations : int
        Number of MSA iterations.
    rho : float
        :math:`\rho \ge 0`; ``0`` is plain MSA (33), ``> 0`` the extended MSA.
    inner_steps, inner_lr
        The maximisation of the Hamiltonian over continuous :math:`\theta`: ``inner_steps``
        Adam steps of size ``inner_lr`` from the current :math:`\theta` (a local optimiser).
    candidates : dict or None
        ``{name: tensor (C, ...)}``: :math:`\theta^k` is restricted to these ``C`` values (for
        the ResNet ``{"A": (C, M, M), "b": (C, M)}``; e.g. quantised weights, where :math:`f` is
        not differentiable in the underlying weights) and the maximisation is exhaustive.
    batch_size, generator
        Minibatch size (``None``: all samples, drawn uniformly without replacement) and its
        random source.
    full_loss : bool
        Also record, after each iteration, the loss on all of ``x`` (the series
        ``"full_loss"`` of the result).

    Returns
    -------
    spdl_ref.loop.History
        ``loss`` (and ``data_fit``, equal here): the minibatch loss before each iteration;
        ``seconds``; with ``full_loss``, ``series["full_loss"]``: the loss on all samples after
        each iteration.

    Examples
    --------
    >>> from spdl_ref.ode import ResNet
    >>> from spdl_ref.control import squared_fit
    >>> net = ResNet(2, 3, T=1.0, generator=torch.Generator().manual_seed(0))
    >>> x = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    >>> fit = squared_fit(torch.sign(x[:, 0]))
    >>> history = msa(net, x, fit, iterations=5, rho=1.0, inner_steps=5, inner_lr=0.1)
    >>> history.series["full_loss"][-1] < history.loss[0]
    True
    """
    model = check_layered(model)
    parameter_layout(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    iterations = _validate.positive_int(iterations, "iterations")
    rho = _validate.nonnegative_real(rho, "rho")
    inner_steps = _validate.positive_int(inner_steps, "inner_steps")
    inner_lr = _validate.positive_real(inner_lr, "inner_lr")
    batches = minibatches(x, batch_size, generator)
    full_loss = _validate.boolean(full_loss, "full_loss")
    if candidates is not None:
        candidates = _check_candidates(model, candidates)
    params = dict(model.named_parameters())
    pairs: dict[str, torch.Tensor] = {}  # the states and costates of the current iteration

    def objective(batch):
        z, p, value, grads = costates(
            model, batch["x"], _batch_loss(loss, batch["idx"]), return_gradients=True
        )
        for name, param in params.items():
            param.grad = grads[name]
        pairs.update(z=z, p=p)
        return value

    def step(evaluate):
        evaluate()
        new = maximise_hamiltonian(
            model,
            pairs["z"],
            pairs["p"],
            rho=rho,
            inner_steps=inner_steps,
            inner_lr=inner_lr,
            candidates=candidates,
        )
        with torch.no_grad():
            for name, value_k in new.items():
                params[name].copy_(value_k)

    everyone = torch.arange(x.shape[0], device=x.device)

    def record_full_loss(_i, history):
        with torch.no_grad():
            history.record(full_loss=float(loss(model(x), everyone)))

    return train_loop(
        params,
        objective,
        iterations=iterations,
        step=step,
        batches=batches,
        backward=False,
        callbacks=[record_full_loss] if full_loss else [],
        description="msa (31)-(33)",
    )
