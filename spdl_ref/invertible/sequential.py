r"""Invertible networks and memory-efficient backpropagation, Sections 4 and 4.2.1.

:class:`InvertibleSequential` is :math:`\Psi = f_K \circ \dots \circ f_1` with
:math:`\Psi^{-1} = f_1^{-1} \circ \dots \circ f_K^{-1}` and
:math:`\log|\det \partial\Psi| = \sum_k \log|\det \partial f_k|` (Section 4.2.3). With
``memory_efficient=True`` the backward pass stores no intermediate activations: it starts from
the output :math:`z^K`, rebuilds :math:`z^k = f_k^{-1}(z^{k+1})` layer by layer, re-evaluates
:math:`f_k` at :math:`z^k` and backpropagates through that one layer, so the activation memory
does not grow with the depth :math:`K` (Section 4.2.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from .. import _validate
from ._base import InvertibleLike, InvertibleModule, check_batch, reference_tensor
from .residual import frozen_power_iteration

__all__ = ["InvertibleSequential"]

_RngState = tuple[torch.Tensor, torch.Tensor | None]


def _rng_state(device: torch.device, previous: _RngState | None = None) -> _RngState:
    """The state of the global generators a layer on ``device`` may draw from (Section 4.2.1).

    Returns ``previous`` itself when the state has not changed since, so that a network of
    layers that draw nothing keeps one copy, not one per layer.
    """
    state = (
        torch.get_rng_state(),
        torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    )
    if previous is not None and all(
        (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
        for a, b in zip(state, previous, strict=True)
    ):
        return previous
    return state


def _set_rng_state(state: _RngState | None, device: torch.device) -> None:
    if state is None:  # nothing was drawn: nothing to replay
        return
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


class _MemoryEfficient(torch.autograd.Function):
    """Forward without a graph; backward by inversion and local recomputation (Section 4.2.1).

    A layer may draw random numbers in its forward pass (the Hutchinson probes and the roulette
    truncation of a stochastic log-determinant, Section 4.2.3). The forward pass records the
    global generators' state before each layer; the backward pass re-evaluates each layer from
    that same state, so it replays exactly the draws of the forward pass, and finally puts the
    generators back where it found them, as ordinary backpropagation (which draws nothing)
    leaves them. A state is kept only where a layer drew (about 5 KB each on a CPU); layers that
    draw nothing cost no memory for it.
    """

    @staticmethod
    def forward(ctx, x, layers, with_log_det, n_params, *params):
        states: list[_RngState] = []
        with torch.no_grad():
            z = x
            logdet = x.new_zeros(x.shape[0])
            for k, layer in enumerate(layers):
                states.append(_rng_state(x.device, states[-1] if states else None))
                if with_log_det:
                    z, ld = _forward_and_log_det(layer, z)
                    logdet = logdet + ld
                else:
                    z = layer(z)
                _check_output(z, k, layer)
        ctx.layers = layers
        ctx.with_log_det = with_log_det
        # layers that drew nothing need no replay: keep no state at all (no memory)
        drew = _rng_state(x.device, states[0]) is not states[0]
        ctx.rng_states = states if drew else [None] * len(states)
        ctx.save_for_backward(z.detach())
        return z, logdet

    @staticmethod
    def backward(ctx, grad_z, grad_logdet):
        (z,) = ctx.saved_tensors
        layers = ctx.layers
        grads: dict[torch.Tensor, torch.Tensor] = {}
        if grad_z is None:
            grad_z = torch.zeros_like(z)
        outside = _rng_state(z.device) if ctx.rng_states[0] is not None else None
        try:
            with frozen_power_iteration():
                for layer, state in zip(reversed(layers), reversed(ctx.rng_states), strict=True):
                    params = [p for p in layer.parameters() if p.requires_grad]
                    with torch.enable_grad():
                        if hasattr(layer, "reconstruct"):
                            _set_rng_state(state, z.device)  # replay the forward's draws
                            x, leaves, out, ld = layer.reconstruct(z)
                        else:
                            with torch.no_grad():
                                x = layer.inverse(z)
                            x = x.detach().requires_grad_(True)
                            leaves = [x]
                            _set_rng_state(state, z.device)  # replay the forward's draws
                            out, ld = (
                                _forward_and_log_det(layer, x)
                                if ctx.with_log_det
                                else (layer(x), None)
                            )
                        outputs, gouts = [out], [grad_z]
                        if ctx.with_log_det and grad_logdet is not None:
                            outputs.append(ld)
                            gouts.append(grad_logdet)
                        keep = [i for i, o in enumerate(outputs) if o.requires_grad]
                        got = torch.autograd.grad(
                            [outputs[i] for i in keep],
                            leaves + params,
                            [gouts[i] for i in keep],
                            allow_unused=True,
                        )
                    grad_z = sum(g for g in got[: len(leaves)] if g is not None)
                    if not isinstance(grad_z, torch.Tensor):  # no path from the input
                        grad_z = torch.zeros_like(x)
                    x = x.detach()
                    for p, g in zip(params, got[len(leaves) :], strict=True):
                        if g is not None:
                            grads[p] = grads[p] + g if p in grads else g
                    z = x
        finally:
            _set_rng_state(outside, z.device)
        all_params = [p for layer in layers for p in layer.parameters()]
        seen, param_grads = set(), []
        for p in all_params:
            if id(p) in seen:
                continue
            seen.add(id(p))
            param_grads.append(grads.get(p))
        return (grad_z, None, None, None, *param_grads)


class InvertibleSequential(InvertibleModule):
    r"""An invertible network :math:`\Psi = f_K \circ \dots \circ f_1` (Section 4), optionally
    trained memory-efficiently (Section 4.2.1).

    Parameters
    ----------
    *layers : InvertibleModule
        The layers :math:`f_1, \dots, f_K`, each with ``forward``, ``inverse`` and
        ``log_abs_det_jacobian``.
    memory_efficient : bool
        If true (and gradients are being recorded) the forward pass keeps only the output and
        the backward pass rebuilds every layer's input from its output by ``inverse``. Gradients
        equal those of ordinary backpropagation up to the round-off of the inverses.

    Notes
    -----
    In the memory-efficient mode the input's gradient and the parameters' gradients are
    computed; layers must be exactly invertible for the gradients to be right (fixed-point
    inverses, eq. (46), contribute their tolerance).
    """

    def __init__(
        self, *layers: nn.Module | Sequence[nn.Module], memory_efficient: bool = False
    ) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("layers must contain at least one invertible layer")
        modules: list[nn.Module] = []
        for i, layer in enumerate(layers):
            if not all(
                hasattr(layer, a) for a in ("inverse", "log_abs_det_jacobian")
            ) or not isinstance(layer, nn.Module):
                raise TypeError(
                    f"layers[{i}] must be an invertible nn.Module with inverse and "
                    f"log_abs_det_jacobian, got {type(layer).__name__}"
                )
            modules.append(layer)
        _validate.boolean(memory_efficient, "memory_efficient")
        self.layers = nn.ModuleList(modules)
        self.memory_efficient = memory_efficient

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def _check(self, x, name):
        return check_batch(x, name, like=reference_tensor(self), owner="InvertibleSequential")

    def _run(self, x, with_log_det):
        self._check(x, "x")
        if self.memory_efficient and torch.is_grad_enabled():
            params = list(dict.fromkeys(p for layer in self.layers for p in layer.parameters()))
            return _MemoryEfficient.apply(x, list(self.layers), with_log_det, len(params), *params)
        logdet = x.new_zeros(x.shape[0])
        for k, layer in enumerate(self.layers):
            if with_log_det:
                x, ld = _forward_and_log_det(layer, x)
                logdet = logdet + ld
            else:
                x = layer(x)
            _check_output(x, k, layer)
        return x, logdet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`z^K = \Psi(x)`."""
        return self._run(x, False)[0]

    def forward_and_log_det(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`(\Psi(x), \sum_k \log|\det \partial f_k(z^{k-1})|)`, the two terms of eq.
        (48)."""
        return self._run(x, True)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`\Psi^{-1}(y) = f_1^{-1} \circ \dots \circ f_K^{-1}(y)`."""
        self._check(y, "y")
        for k in reversed(range(len(self.layers))):
            # __init__ checked that every layer has inverse (layers may be duck-typed)
            y = cast(InvertibleLike, self.layers[k]).inverse(y)
            _check_output(y, k, self.layers[k], "inverse")
        return y

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """The sum over the layers of their log-determinants, one value per sample."""
        return self.forward_and_log_det(x)[1]

    def states(self, x: torch.Tensor) -> list[torch.Tensor]:
        r"""All features :math:`z^0 = x, z^1, \dots, z^K`, as a list."""
        self._check(x, "x")
        zs = [x]
        for k, layer in enumerate(self.layers):
            zs.append(_check_output(layer(zs[-1]), k, layer))
        return zs


def _forward_and_log_det(layer, x):
    if hasattr(layer, "forward_and_log_det"):
        return layer.forward_and_log_det(x)
    return layer(x), layer.log_abs_det_jacobian(x)


def _check_output(z, k, layer, what="forward"):
    """Blame layer ``k`` (not the next layer's input) when its output is not finite."""
    if isinstance(z, torch.Tensor) and not _validate.all_finite(z):
        raise FloatingPointError(
            f"layer {k} ({type(layer).__name__}) {what} produced non-finite values from a finite "
            "input: an overflow inside the network (scale the input down or check that layer)"
        )
    return z
