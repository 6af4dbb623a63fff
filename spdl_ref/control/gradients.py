r"""Gradients as dictionaries by parameter name, for comparing the adjoints of Section 3.1.1.

:func:`~spdl_ref.control.discrete_adjoint` and :func:`~spdl_ref.control.continuous_adjoint`
return ``{name: gradient}`` keyed as ``model.named_parameters()`` names the parameters;
:func:`autograd_gradient` gives autograd's gradient (discretise-then-optimise) in the same form,
and :func:`gradient_norm` and :func:`relative_error` measure them as one vector :math:`\theta`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import _validate

__all__ = ["RESULT_KEYS", "autograd_gradient", "gradient_norm", "relative_error"]

#: Entries of the adjoints' results that are not gradients (skipped by :func:`relative_error`).
RESULT_KEYS = ("loss", "z_T", "p")


def autograd_gradient(model: nn.Module, value: torch.Tensor) -> dict:
    r"""``{name: d value / d parameter}`` by backpropagation, for every parameter of ``model``.

    ``value`` is a scalar computed from the model's parameters, e.g. a loss
    :math:`\ell(\Psi(x, \theta))` (23); parameters it does not depend on get zeros. The graph
    of ``value`` is freed.

    Examples
    --------
    >>> lin = torch.nn.Linear(2, 1)
    >>> g = autograd_gradient(lin, lin(torch.ones(3, 2)).sum())
    >>> g["weight"], g["bias"]
    (tensor([[3., 3.]]), tensor([3.]))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError("value must be a scalar tensor")
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(value, list(params.values()), allow_unused=True)
    return {
        name: torch.zeros_like(p) if g is None else g
        for (name, p), g in zip(params.items(), grads, strict=True)
    }


def _check(g, name):
    if not isinstance(g, dict) or not g:
        raise TypeError(f"{name} must be a non-empty dict {{name: tensor}}, got {type(g).__name__}")
    for key, v in g.items():
        _validate.floating_tensor(v, f"{name}[{key!r}]")


def gradient_norm(g: dict) -> float:
    r"""Norm :math:`\big(\sum_{\text{name}} \|g_{\text{name}}\|^2\big)^{1/2}` of a gradient dict.

    All entries count as one vector :math:`\theta` (Section 3.1.1).

    Examples
    --------
    >>> gradient_norm({"A": torch.tensor([3.0]), "b": torch.tensor([[4.0]])})
    5.0
    """
    _check(g, "g")
    return math.sqrt(sum(float(v.detach().pow(2).sum()) for v in g.values()))


def relative_error(g: dict, reference: dict) -> float:
    r"""The relative difference :math:`\|g - g_{\text{ref}}\| / \|g_{\text{ref}}\|` (Section 3.1.1).

    Taken over the entries of ``reference`` but those of :data:`RESULT_KEYS` (``"loss"``,
    ``"z_T"`` and ``"p"``, which the adjoints return beside the gradients), so results of
    :func:`~spdl_ref.control.discrete_adjoint`, :func:`~spdl_ref.control.continuous_adjoint` and
    :func:`autograd_gradient` compare directly. ``g`` must hold every such name of ``reference``
    with the same shapes; its other entries are ignored.

    Examples
    --------
    >>> relative_error({"A": torch.tensor([1.5]), "loss": torch.tensor(0.0)}, {"A": torch.ones(1)})
    0.5
    """
    _check(reference, "reference")
    reference = {k: v for k, v in reference.items() if k not in RESULT_KEYS}
    if not reference:
        raise ValueError(f"reference holds no gradient (only {list(RESULT_KEYS)})")
    if not isinstance(g, dict):
        raise TypeError(f"g must be a dict {{name: tensor}}, got {type(g).__name__}")
    missing = [k for k in reference if k not in g]
    if missing:
        raise ValueError(f"g lacks the entries {missing} of reference")
    for key, ref in reference.items():
        if g[key].shape != ref.shape:
            raise ValueError(
                f"g[{key!r}] must have the shape {tuple(ref.shape)} of reference, "
                f"got {tuple(g[key].shape)}"
            )
    if gradient_norm(reference) == 0:
        raise ValueError("reference must not be zero: the relative error is undefined")
    diff = {key: g[key].detach() - ref.detach() for key, ref in reference.items()}
    return gradient_norm(diff) / gradient_norm(reference)
