"""Closed-form derivatives of the ResNet field (8) used by the adjoint solvers of Section 3.

For :math:`f(z, \\theta) = \\sigma(A z + b)` and a costate :math:`p` the three products that the
adjoint equations (26), (28) and the gradient formula (27) need are, with
:math:`s = \\sigma'(A z + b) \\odot p`,

* :math:`\\partial_z f(z, \\theta)^T p = A^T s`,
* :math:`\\partial_A f(z, \\theta)^T p = s z^T`,
* :math:`\\partial_b f(z, \\theta)^T p = s`.

They are written out here so that the adjoints of Section 3.1.1 run without automatic
differentiation through the network.
"""

from __future__ import annotations

import torch

from .. import _validate
from ..ode import ResNet


def activation_derivative(activation, a: torch.Tensor) -> torch.Tensor:
    """The derivative :math:`\\sigma'(a)` of a componentwise activation, entry by entry (eq. (8)).

    Closed forms for ``tanh``, ``sigmoid``, ``relu`` and the identity; any other callable is
    differentiated elementwise by :func:`torch.func.vmap` of :func:`torch.func.grad` on scalars
    (differentiating the activation alone, never the network).
    """
    if activation in (torch.tanh, torch.nn.functional.tanh):
        return 1 - torch.tanh(a) ** 2
    if activation in (torch.sigmoid, torch.nn.functional.sigmoid):
        s = torch.sigmoid(a)
        return s * (1 - s)
    if activation in (torch.relu, torch.nn.functional.relu):
        return (a > 0).to(a.dtype)
    flat = a.reshape(-1)
    d = torch.func.vmap(torch.func.grad(lambda v: activation(v)))(flat)
    return d.reshape(a.shape)


def check_model(model) -> ResNet:
    """Raise unless ``model`` is a :class:`spdl_ref.ode.ResNet` (the network (5)-(8))."""
    if not isinstance(model, ResNet):
        raise TypeError(f"model must be a spdl_ref.ode.ResNet, got {type(model).__name__}")
    return model


def check_batch(model: ResNet, x, name: str = "x") -> torch.Tensor:
    """Raise unless ``x`` is a finite float tensor of shape ``(N, M)`` on the model's dtype."""
    _validate.tensor(x, name)
    if x.dim() != 2 or x.shape[1] != model.dim:
        raise ValueError(f"{name} must have shape (N, {model.dim}), got {tuple(x.shape)}")
    if x.dtype != model.A.dtype:
        raise TypeError(f"{name} must have the model's dtype {model.A.dtype}, got {x.dtype}")
    return x


def field(A: torch.Tensor, b: torch.Tensor, activation, z: torch.Tensor) -> torch.Tensor:
    """The field (8), :math:`f(z, (A, b)) = \\sigma(A z + b)`, for a batch ``z`` of shape ``(N, M)``."""
    return activation(z @ A.mT + b)


def field_vjps(A: torch.Tensor, b: torch.Tensor, activation, z: torch.Tensor, p: torch.Tensor):
    r"""Return :math:`(\partial_z f^T p,\ \partial_A f^T p,\ \partial_b f^T p)` per sample (eq. (27)).

    ``z`` and ``p`` have shape ``(N, M)``; the results have shapes ``(N, M)``, ``(N, M, M)`` and
    ``(N, M)`` (sum over the batch for the gradient of a mean loss).
    """
    s = activation_derivative(activation, z @ A.mT + b) * p
    return s @ A, s.unsqueeze(-1) * z.unsqueeze(-2), s
