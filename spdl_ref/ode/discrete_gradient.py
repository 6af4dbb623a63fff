r"""Discrete-gradient methods for :math:`\dot u = J \nabla H(u)` (Section 2.2.2).

A discrete gradient :math:`\bar\nabla H(u, v)` satisfies
:math:`H(v) - H(u) = \langle \bar\nabla H(u, v), v - u \rangle` and
:math:`\bar\nabla H(u, u) = \nabla H(u)`. The scheme
:math:`(u^{k+1} - u^k)/h = J \bar\nabla H(u^k, u^{k+1})` then keeps :math:`H` constant whenever
:math:`J` is skew-symmetric, for any step size. Two discrete gradients are provided:

* Gonzalez (midpoint) discrete gradient
  :math:`\bar\nabla H(u, v) = \nabla H(m) + \frac{H(v) - H(u) - \langle \nabla H(m), v - u\rangle}
  {\|v - u\|^2}(v - u)`, :math:`m = (u + v)/2`;
* average vector field (AVF) :math:`\bar\nabla H(u, v) = \int_0^1 \nabla H(u + s(v - u))\,ds`,
  by Gauss–Legendre quadrature (exact, hence energy preserving, for polynomial :math:`H` of
  degree up to :math:`2 \cdot` ``nodes``).

The step is implicit; it is solved by fixed-point iteration to a tolerance, and
:class:`RuntimeError` is raised when that fails. :class:`CountingFunction` counts the
evaluations of :math:`H` this costs per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .. import _validate

__all__ = [
    "CountingFunction",
    "avf_gradient",
    "canonical_J",
    "discrete_gradient_step",
    "gonzalez_gradient",
]


def canonical_J(
    dim: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    r"""The Darboux matrix :math:`J = \begin{bmatrix} 0 & I \\ -I & 0 \end{bmatrix}` (Section
    2.1.2).

    ``dim`` is the phase-space dimension :math:`2M` and must be even.
    """
    dim = _validate.positive_int(dim, "dim")
    if dim % 2:
        raise ValueError(f"dim must be even (a phase space (z, p)), got {dim}")
    dtype, device = _validate.float_dtype(dtype), _validate.device(device)
    m = dim // 2
    J = torch.zeros(dim, dim, dtype=dtype or torch.get_default_dtype(), device=device)
    J[:m, m:] = torch.eye(m, dtype=J.dtype, device=device)
    J[m:, :m] = -torch.eye(m, dtype=J.dtype, device=device)
    return J


def _energy(H, u):
    """``H(u)``, refused unless it is one finite energy per state, shape ``u.shape[:-1]``."""
    e = H(u)
    if not isinstance(e, torch.Tensor) or e.shape != u.shape[:-1]:
        got = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
        raise ValueError(
            f"H must map states (..., d) to energies (...), here {tuple(u.shape[:-1])}, got {got}"
        )
    return e


def _grad(H, u):
    with torch.enable_grad():
        u = u.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(_energy(H, u).sum(), u)
    return g


def _check_pair(H, u, v):
    _validate.function(H, "H")
    _validate.tensor(u, "u")
    _validate.tensor(v, "v")
    if u.dim() == 0:
        raise ValueError("u must have at least one dimension (..., d)")
    _validate.same_shape(u, v, "u", "v")
    _validate.like(v, u, "v", "u")


def gonzalez_gradient(H: Callable, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Gonzalez's midpoint discrete gradient :math:`\bar\nabla H(u, v)` (Section 2.2.2).

    ``H`` maps states of shape ``(..., d)`` to energies of shape ``(...)``; ``u`` and ``v``
    have the same shape. Where :math:`v = u` (to round-off) it returns :math:`\nabla H(u)`.
    """
    _check_pair(H, u, v)
    return _gonzalez(H, u, v)


def _gonzalez(H, u, v):
    m = 0.5 * (u + v)
    g = _grad(H, m)
    d = v - u
    dd = (d * d).sum(-1, keepdim=True)
    defect = (_energy(H, v) - _energy(H, u)).unsqueeze(-1) - (g * d).sum(-1, keepdim=True)
    tiny = torch.finfo(u.dtype).eps ** 2 * (1 + (u * u).sum(-1, keepdim=True))
    safe = torch.where(dd > tiny, dd, torch.ones_like(dd))
    return g + torch.where(dd > tiny, defect / safe, torch.zeros_like(dd)) * d


def avf_gradient(H: Callable, u: torch.Tensor, v: torch.Tensor, nodes: int = 4) -> torch.Tensor:
    r"""Average-vector-field discrete gradient :math:`\int_0^1 \nabla H(u + s(v-u))\,ds`.

    Section 2.2.2; the integral uses ``nodes``-point Gauss–Legendre quadrature, exact when
    :math:`H` is a polynomial of degree :math:`\le 2\,\text{nodes}`.
    """
    _check_pair(H, u, v)
    nodes = _validate.positive_int(nodes, "nodes")
    return _avf(H, u, v, nodes)


def _avf(H, u, v, nodes):
    x, w = np.polynomial.legendre.leggauss(nodes)
    out = torch.zeros_like(u)
    for xi, wi in zip(x, w, strict=True):
        s = 0.5 * (xi + 1.0)
        out = out + 0.5 * wi * _grad(H, u + s * (v - u))
    return out


def discrete_gradient_step(
    H: Callable,
    u: torch.Tensor,
    h: float,
    J: torch.Tensor | None = None,
    method: str = "gonzalez",
    *,
    tol: float | None = None,
    max_iter: int = 100,
    nodes: int = 4,
) -> torch.Tensor:
    r"""One energy-preserving step :math:`u^{k+1} = u^k + h J \bar\nabla H(u^k, u^{k+1})`.

    Section 2.2.2 (discrete gradients). :math:`H(u^{k+1}) = H(u^k)` up to the solver tolerance
    and round-off.

    Parameters
    ----------
    H : callable
        The energy, mapping ``(..., d)`` to ``(...)``; differentiated by autograd.
    u : torch.Tensor
        Current state, shape ``(..., d)``; batch rows are independent.
    h : float
        Step size, :math:`h > 0`.
    J : torch.Tensor or None
        Skew-symmetric ``(d, d)`` structure matrix; ``None`` uses :func:`canonical_J` (``d`` even).
    method : {"gonzalez", "avf"}
        Which discrete gradient (:func:`gonzalez_gradient` or :func:`avf_gradient`).
    tol, max_iter
        Fixed-point iteration stops when the update is below ``tol * (1 + |u|)``, or when it
        stops shrinking while below ``16 * tol * (1 + |u|)`` (round-off reached); otherwise
        :class:`RuntimeError` after ``max_iter`` iterations. ``None`` means 4 machine epsilons
        of ``u``'s dtype (about ``1e-15`` in float64), so that the energy is kept to round-off.
    nodes : int
        Quadrature nodes for ``"avf"``.
    """
    _validate.function(H, "H")
    _validate.tensor(u, "u")
    if u.dim() == 0:
        raise ValueError("u must have at least one dimension (..., d)")
    h = _validate.positive_real(h, "h")
    _validate.choice(method, ("gonzalez", "avf"), "method")
    nodes = _validate.positive_int(nodes, "nodes")
    tol = 4 * torch.finfo(u.dtype).eps if tol is None else _validate.positive_real(tol, "tol")
    max_iter = _validate.positive_int(max_iter, "max_iter")
    d = u.shape[-1]
    if J is None:
        J = canonical_J(d, dtype=u.dtype, device=u.device)
    else:
        _validate.tensor(J, "J")
        if J.shape != (d, d):
            raise ValueError(f"J must have shape ({d}, {d}) to match u, got {tuple(J.shape)}")
        if not torch.allclose(J, -J.mT, atol=1e-12 * (1 + float(J.abs().max()))):
            raise ValueError("J must be skew-symmetric (J^T = -J) for the method to preserve H")
        J = J.to(dtype=u.dtype, device=u.device)
    if method == "gonzalez":
        dg = _gonzalez
    else:

        def dg(H_, a, b):
            return _avf(H_, a, b, nodes)

    u = u.detach()
    scale = 1.0 + float(u.abs().max())
    v = u + h * _grad(H, u) @ J.mT  # explicit Euler predictor
    previous = math.inf
    for _ in range(max_iter):
        v_new = u + h * dg(H, u, v) @ J.mT
        delta = float((v_new - v).abs().max())
        v = v_new
        if not bool(torch.isfinite(v).all()):
            break
        # converged: below tol, or at round-off level where the updates stop shrinking
        if delta <= tol * scale or (delta >= previous and delta <= 16 * tol * scale):
            return v
        previous = delta
    raise RuntimeError(
        f"discrete-gradient step did not converge to tol={tol:g} in max_iter={max_iter} "
        f"fixed-point iterations (h={h:g}); reduce h or raise max_iter"
    )


class CountingFunction:
    r"""Wrap a function and count its calls, e.g. the evaluations of :math:`H` per step.

    Measures the cost of the implicit energy-preserving discrete-gradient methods of Section
    2.2.2: pass ``CountingFunction(H)`` as ``H`` to :func:`discrete_gradient_step` and read
    :attr:`calls` afterwards (each call counts once, whatever the batch size; a call inside
    :func:`torch.func.vmap` or :func:`torch.func.grad` counts once per trace).

    Parameters
    ----------
    fn : callable
        The function to wrap, e.g. the energy :math:`H`.

    Attributes
    ----------
    calls : int
        Number of calls since construction or the last :meth:`reset`.

    Examples
    --------
    >>> import torch
    >>> H = CountingFunction(lambda u: 0.5 * (u * u).sum(-1))
    >>> _ = H(torch.ones(2))
    >>> _ = H(torch.zeros(2))
    >>> H.calls
    2
    """

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)

    def reset(self) -> None:
        """Set :attr:`calls` back to zero."""
        self.calls = 0

    def __repr__(self) -> str:
        return f"CountingFunction({self.fn!r}, calls={self.calls})"
