r"""The discrete adjoint of the ResNet: backpropagation written out (Theorem 3.2, eq. (28)).

For the ResNet (6), :math:`z^{k+1} = z^k + h f(z^k, \theta^k)`, and a loss
:math:`\ell(z^K)`, the costates

.. math::

    p^K = \partial_{z^K} \ell, \qquad
    p^k = p^{k+1} + h\, \partial_z f(z^k, \theta^k)^T p^{k+1}, \quad k = K-1, \dots, 0,

(eq. (28) solved for :math:`p^k`) are the derivatives :math:`\partial \ell / \partial z^k`, and
the gradient with respect to layer :math:`k`'s parameters is
:math:`h\, \partial_\theta f(z^k, \theta^k)^T p^{k+1}`. Sign convention: :math:`p` is the
derivative of the loss (not of minus the loss), so it runs backwards with a plus sign; this
is the discrete form of :math:`\dot p = -\partial_z H = -\partial_z f^T p` in (10) and (26), and
not the printed sign of (12) (see the book's errata, E1).
"""

from __future__ import annotations

import torch

from .. import _validate
from ._layer import check_batch, check_model, field_vjps

__all__ = ["discrete_adjoint"]


def discrete_adjoint(
    model, x: torch.Tensor, grad_zK: torch.Tensor, *, return_costates: bool = False
):
    r"""Gradients of :math:`\ell(z^K)` with respect to every :math:`A^k, b^k` by eq. (28) (Theorem 3.2).

    Runs the ResNet forward, storing :math:`z^0, \dots, z^K`, then the recursion (28)
    backwards with the closed-form products :math:`\partial_z f^T p`, :math:`\partial_A f^T p`
    and :math:`\partial_b f^T p` of the field (8): no automatic differentiation through the
    network.

    Parameters
    ----------
    model : spdl_ref.ode.ResNet
        The network (6) with parameters :math:`A` of shape ``(K, M, M)`` and :math:`b` of shape
        ``(K, M)``.
    x : torch.Tensor
        Inputs :math:`x_n = z_n^0`, shape ``(N, M)``.
    grad_zK : torch.Tensor
        :math:`\partial \ell / \partial z^K`, shape ``(N, M)`` (for a mean loss it carries the
        factor :math:`1/N`).
    return_costates : bool
        Also return the costates :math:`p^0, \dots, p^K` stacked, shape ``(K + 1, N, M)``.

    Returns
    -------
    dict
        ``{"A": (K, M, M), "b": (K, M)}``, plus ``"p"`` when ``return_costates``.
    """
    model = check_model(model)
    x = check_batch(model, x, "x")
    _validate.tensor(grad_zK, "grad_zK")
    if grad_zK.shape != x.shape:
        raise ValueError(
            f"grad_zK must have the shape of x {tuple(x.shape)}, got {tuple(grad_zK.shape)}"
        )
    if grad_zK.dtype != x.dtype:
        raise TypeError(f"grad_zK must have dtype {x.dtype}, got {grad_zK.dtype}")
    with torch.no_grad():
        A, b, h, sigma = model.A.detach(), model.b.detach(), model.h, model.activation
        states = [x]
        for k in range(model.depth):
            states.append(states[-1] + h * sigma(states[-1] @ A[k].mT + b[k]))
        p = grad_zK
        gA, gb = torch.empty_like(A), torch.empty_like(b)
        costates = [p]
        for k in reversed(range(model.depth)):
            dz, dA, db = field_vjps(A[k], b[k], sigma, states[k], p)
            gA[k], gb[k] = h * dA.sum(0), h * db.sum(0)
            p = p + h * dz
            costates.append(p)
    out = {"A": gA, "b": gb}
    if return_costates:
        out["p"] = torch.stack(costates[::-1])
    return out
