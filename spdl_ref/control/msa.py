r"""The method of successive approximations and its extended form (Section 3.1.2, eqs. (31)-(34)).

Instead of following the gradient of the reduced problem (23), MSA iterates on Pontryagin's
necessary conditions for the full-space problem (24): solve the state equation (31) forwards,
the costate equation (32) backwards, and maximise the Hamiltonian (9) layer by layer (33).
We work with the ResNet (6), i.e. the discrete problem, where the layer-:math:`k` Hamiltonian is

.. math::

    H^k(\theta) = \frac1N \sum_{n=1}^N \langle p_n^{k+1}, h\, f(z_n^k, \theta) \rangle .

Sign convention: maximisation (33) decreases the loss only when :math:`p` is the costate of
the *reward* :math:`-\ell`, i.e. :math:`p_n^K = -L_n'(z_n^K)` (Pontryagin's convention, and Li,
Chen, Tai & E's). With the printed :math:`p_n(T) = +L_n'(z_n(T))` of (32) the update
(33) would have to be an arg-min (see the book's errata, E3.1).

The extended MSA of Li, Chen, Tai & E adds penalties that keep the maximiser close to where
the state and costate equations still hold,

.. math::

    \tilde H^k(\theta) = H^k(\theta)
    - \frac{\rho}{2N} \sum_n \| z_n^{k+1} - z_n^k - h f(z_n^k, \theta) \|^2
    - \frac{\rho}{2N} \sum_n \| p_n^k - p_n^{k+1} - h\, \partial_z f(z_n^k, \theta)^T p_n^{k+1} \|^2 ,

and :math:`\rho = 0` is plain MSA.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from .. import _validate
from ..train import History
from ._layer import check_batch, check_model, field, field_vjps

__all__ = ["costates", "extended_hamiltonian", "hamiltonian", "hamiltonian_stationarity", "msa"]


def costates(model, x: torch.Tensor, loss: Callable):
    r"""States (31) and Pontryagin costates (32) of the ResNet on a batch, for MSA (Section 3.1.2).

    Returns ``(z, p, value)``: ``z`` of shape ``(K + 1, N, M)`` from the forward pass, ``p`` of
    the same shape with :math:`p_n^K = -L_n'(z_n^K)` (the derivative of ``-N * loss``, so one
    costate per sample without the factor :math:`1/N`) propagated backwards by the discrete
    adjoint (28), and the scalar loss. ``loss(z_K)`` is the mean data fit.
    """
    model = check_model(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    A, b, h, sigma = model.A.detach(), model.b.detach(), model.h, model.activation
    with torch.no_grad():
        z = [x]
        for k in range(model.depth):
            z.append(z[-1] + h * field(A[k], b[k], sigma, z[-1]))
    with torch.enable_grad():
        zK = z[-1].detach().requires_grad_(True)
        value = loss(zK)
        (g,) = torch.autograd.grad(value, zK)
    with torch.no_grad():
        p = [-x.shape[0] * g]
        for k in reversed(range(model.depth)):
            p.insert(0, p[0] + h * field_vjps(A[k], b[k], sigma, z[k], p[0])[0])
    return torch.stack(z), torch.stack(p), value.detach()


def hamiltonian(
    A: torch.Tensor, b: torch.Tensor, activation, h: float, z: torch.Tensor, p: torch.Tensor
):
    r"""Layer Hamiltonians :math:`H^k(\theta^k) = \frac1N\sum_n \langle p_n^{k+1}, h f(z_n^k, \theta^k)\rangle`, (9)/(33).

    ``A`` of shape ``(K, M, M)`` (or ``(C, K, M, M)`` for ``C`` candidates at once), ``b`` of
    shape ``(K, M)`` (or ``(C, K, M)``), states and costates ``z``, ``p`` of shape
    ``(K + 1, N, M)``. Returns shape ``(K,)`` (or ``(C, K)``).
    """
    a = torch.einsum("...kij,knj->...kni", A, z[:-1]) + b.unsqueeze(-2)
    return h * (p[1:] * activation(a)).sum(-1).mean(-1)


def extended_hamiltonian(A, b, activation, h: float, z: torch.Tensor, p: torch.Tensor, rho: float):
    r"""The extended (ρ-penalised) layer Hamiltonians :math:`\tilde H^k` of Li, Chen, Tai & E (Section 3.1.2).

    Same shapes as :func:`hamiltonian`; ``rho`` :math:`= \rho \ge 0` weighs the residuals of
    the state equation (31) and the costate equation (32) at the new parameters.
    """
    rho = _validate.nonnegative_real(rho, "rho")
    a = torch.einsum("...kij,knj->...kni", A, z[:-1]) + b.unsqueeze(-2)
    s = activation(a)
    H = h * (p[1:] * s).sum(-1).mean(-1)
    if rho == 0:
        return H
    from ._layer import activation_derivative

    state_res = z[1:] - z[:-1] - h * s
    q = activation_derivative(activation, a) * p[1:]
    costate_res = p[:-1] - p[1:] - h * torch.einsum("...kni,...kij->...knj", q, A)
    pen = state_res.pow(2).sum(-1).mean(-1) + costate_res.pow(2).sum(-1).mean(-1)
    return H - 0.5 * rho * pen


def hamiltonian_stationarity(model, x: torch.Tensor, loss: Callable) -> torch.Tensor:
    r"""Per layer, :math:`\| \frac1N \sum_n \partial_\theta f(z_n^k, \theta^k)^T p_n^{k+1} \|`, the left side of (34).

    Zero exactly at a critical point of the data fit (with :math:`R = 0`), where MSA's update
    leaves :math:`\theta` unchanged. Returns shape ``(K,)``.
    """
    z, p, _ = costates(model, x, loss)
    A, b = model.A.detach(), model.b.detach()
    out = []
    for k in range(model.depth):
        _, dA, db = field_vjps(A[k], b[k], model.activation, z[k], p[k + 1])
        out.append(torch.cat([dA.mean(0).reshape(-1), db.mean(0)]).norm())
    return torch.stack(out)


def msa(
    model,
    x: torch.Tensor,
    loss: Callable,
    *,
    iterations: int = 100,
    rho: float = 0.0,
    inner_steps: int = 10,
    inner_lr: float = 0.05,
    candidates: tuple | None = None,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    full_loss: bool = True,
) -> History:
    r"""Train a ResNet by (extended) MSA, eqs. (31)-(33) and Li, Chen, Tai & E's E-MSA (Section 3.1.2).

    Each iteration: states (31) and costates (32) on a minibatch (:func:`costates`), then every
    layer's :math:`\theta^k = (A^k, b^k)` is replaced by a maximiser of the (extended)
    Hamiltonian :func:`extended_hamiltonian`. The layers decouple, so they are maximised
    together.

    Parameters
    ----------
    model : spdl_ref.ode.ResNet
        Trained in place.
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
    candidates : tuple or None
        ``(A_set, b_set)`` of shapes ``(C, M, M)`` and ``(C, M)``: :math:`\theta^k` is restricted
        to these ``C`` values (e.g. quantised weights, where :math:`f` is not differentiable in
        the underlying weights) and the maximisation is exhaustive.
    batch_size, generator
        Minibatch size (``None``: all samples) and its random source.
    full_loss : bool
        Record the loss on all of ``x`` after each iteration (else the minibatch loss before it).

    Returns
    -------
    spdl_ref.train.History
        ``loss`` (and ``data_fit``, equal here) and ``seconds`` per iteration.
    """
    model = check_model(model)
    x = check_batch(model, x)
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    iterations = _validate.positive_int(iterations, "iterations")
    rho = _validate.nonnegative_real(rho, "rho")
    inner_steps = _validate.positive_int(inner_steps, "inner_steps")
    inner_lr = _validate.positive_real(inner_lr, "inner_lr")
    N, M, K = x.shape[0], model.dim, model.depth
    if batch_size is not None:
        batch_size = _validate.positive_int(batch_size, "batch_size")
        if batch_size > N:
            raise ValueError(f"batch_size must be <= the number of samples {N}, got {batch_size}")
    if candidates is not None:
        if not (isinstance(candidates, tuple) and len(candidates) == 2):
            raise TypeError("candidates must be a tuple (A_set, b_set)")
        A_set, b_set = candidates
        _validate.tensor(A_set, "candidates[0]")
        _validate.tensor(b_set, "candidates[1]")
        if A_set.dim() != 3 or A_set.shape[1:] != (M, M) or b_set.shape != (A_set.shape[0], M):
            raise ValueError(
                f"candidates must have shapes (C, {M}, {M}) and (C, {M}), got "
                f"{tuple(A_set.shape)} and {tuple(b_set.shape)}"
            )
    everyone = torch.arange(N, device=x.device)
    history = History()
    start = time.perf_counter()
    sigma, h = model.activation, model.h
    for _ in range(iterations):
        idx = (
            everyone
            if batch_size is None
            else torch.randperm(N, generator=generator)[:batch_size].to(x.device)
        )
        z, p, value = costates(model, x[idx], lambda zK: loss(zK, idx))
        if not bool(torch.isfinite(value)):
            raise FloatingPointError(
                f"the loss became non-finite after {len(history.loss)} iterations"
            )
        if candidates is None:
            A = model.A.detach().clone().requires_grad_(True)
            b = model.b.detach().clone().requires_grad_(True)
            opt = torch.optim.Adam([A, b], lr=inner_lr)
            for _ in range(inner_steps):
                opt.zero_grad(set_to_none=True)
                (-extended_hamiltonian(A, b, sigma, h, z, p, rho).sum()).backward()
                opt.step()
            new_A, new_b = A.detach(), b.detach()
        else:
            with torch.no_grad():
                C = A_set.shape[0]
                Hc = extended_hamiltonian(
                    A_set[:, None].expand(C, K, M, M),
                    b_set[:, None].expand(C, K, M),
                    sigma,
                    h,
                    z,
                    p,
                    rho,
                )
                best = Hc.argmax(0)
                new_A, new_b = A_set[best], b_set[best]
        with torch.no_grad():
            model.A.copy_(new_A)
            model.b.copy_(new_b)
            if full_loss:
                value = loss(model(x), everyone)
        history.loss.append(float(value))
        history.data_fit.append(float(value))
        history.seconds.append(time.perf_counter() - start)
    return history
