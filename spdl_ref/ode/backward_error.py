r"""Backward error analysis of symplectic Euler (Section 2.2.2): the modified Hamiltonian.

A symplectic method applied to an autonomous Hamiltonian problem is, up to an exponentially
small remainder, the exact flow of a modified Hamiltonian
:math:`\tilde H = H + hH_2 + h^2H_3 + \dots`. For symplectic Euler (22) on a separable
:math:`H = T(p) + V(z)` (positions first, as in (22)) the first terms are

.. math::

    \tilde H = H + \frac h2\,\langle \nabla T(p), \nabla V(z)\rangle
      + \frac{h^2}{12}\Big(\nabla^2 T(p)[\nabla V(z), \nabla V(z)]
      + \nabla^2 V(z)[\nabla T(p), \nabla T(p)]\Big) + O(h^3).

For the harmonic oscillator :math:`H = \tfrac12(z^2 + p^2)` the first two terms give the
invariant :math:`\tfrac12(z^2 + p^2 + hzp)`, which the method keeps exactly. Truncated after
the :math:`h^j` term, :math:`\tilde H` is kept by the numerical solution up to
:math:`O(h^{j+1})` over long times, while :math:`H` itself is kept only up to :math:`O(h)`:

* :func:`modified_hamiltonian` -- :math:`\tilde H` truncated after 0, 1 or 2 correction terms;
* :func:`energy_errors` -- the largest change of each truncation along symplectic Euler runs;
* :func:`observed_order` -- the least-squares slope of :math:`\log` error against
  :math:`\log h`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .. import _validate
from .problems import SeparableHamiltonian
from .symplectic import symplectic_euler

__all__ = ["energy_errors", "modified_hamiltonian", "observed_order"]


def _hessian_form(energy, t, x, v):
    r""":math:`\nabla^2 E(x)[v, v]` per sample, by forward-over-reverse differentiation."""

    def grad_dot_v(y):
        with torch.enable_grad():
            yv = y.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(energy(t, yv).sum(), yv, create_graph=True)
            (hv,) = torch.autograd.grad((g * v).sum(), yv)
        return hv

    return (grad_dot_v(x) * v).sum(-1)


def modified_hamiltonian(H: SeparableHamiltonian, h: float, terms: int = 1) -> Callable:
    r"""The modified Hamiltonian :math:`\tilde H` of symplectic Euler (22), truncated (§2.2.2).

    Parameters
    ----------
    H : SeparableHamiltonian
        An autonomous separable Hamiltonian :math:`T(p) + V(z)` (the time argument of its
        energies is ignored: they are evaluated at :math:`t = 0`).
    h : float
        The step size of the method, :math:`h > 0`.
    terms : {0, 1, 2}
        How many correction terms to keep: 0 gives :math:`H`, 1 adds
        :math:`\tfrac h2\langle\nabla T, \nabla V\rangle`, 2 also the :math:`h^2` term of the
        module text (second derivatives by automatic differentiation).

    Returns
    -------
    callable
        ``H_tilde(u)`` for stacked states ``u = (z, p)`` of shape ``(..., 2M)``, returning shape
        ``(...)``.

    Examples
    --------
    The harmonic oscillator: two terms give :math:`\tfrac12(1 + h^2/6)(z^2 + p^2) + \tfrac h2 zp`.

    >>> from spdl_ref.ode import harmonic_oscillator
    >>> u = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    >>> modified_hamiltonian(harmonic_oscillator(), 0.1, terms=2)(u)
    tensor([2.6042], dtype=torch.float64)
    """
    _validate.instance(H, SeparableHamiltonian, "H")
    h = _validate.positive_real(h, "h")
    if isinstance(terms, bool) or terms not in (0, 1, 2):
        raise ValueError(f"terms must be 0, 1 or 2, got {terms!r}")

    def H_tilde(u: torch.Tensor) -> torch.Tensor:
        _validate.tensor(u, "u")
        value = H.energy(u)
        if terms == 0:
            return value
        z, p = H._split(u)
        gT, gV = H.dT(0.0, p), H.dV(0.0, z)
        value = value + 0.5 * h * (gT * gV).sum(-1)
        if terms == 2:
            second = _hessian_form(H.T, 0.0, p, gV) + _hessian_form(H.V, 0.0, z, gT)
            value = value + h * h / 12 * second
        return value.detach()

    return H_tilde


def energy_errors(
    H: SeparableHamiltonian,
    u0: torch.Tensor,
    hs: Sequence[float],
    t_end: float,
    terms: Sequence[int] = (0, 1, 2),
) -> dict:
    r"""The largest change of :math:`\tilde H` along symplectic Euler runs, for each :math:`h`.

    Section 2.2.2. For each step size in ``hs`` the method (22) runs from ``u0`` (shape
    ``(N, 2M)``, stacked :math:`(z, p)`) over ``round(t_end / h)`` steps; the result maps each
    entry ``j`` of ``terms`` to the list, over ``hs``, of
    :math:`\max_k \max_n |\tilde H_j(u_n^k) - \tilde H_j(u_n^0)|`, with :math:`\tilde H_j` the
    modified Hamiltonian truncated after ``j`` terms (:func:`modified_hamiltonian`).
    """
    _validate.instance(H, SeparableHamiltonian, "H")
    _validate.tensor(u0, "u0")
    z0, p0 = H._split(u0)
    if not isinstance(hs, (list, tuple)) or not hs:
        raise ValueError(f"hs must be a non-empty list of step sizes, got {hs!r}")
    hs = [_validate.positive_real(h, "hs") for h in hs]
    t_end = _validate.positive_real(t_end, "t_end")
    if not isinstance(terms, (list, tuple)) or not terms:
        raise ValueError(f"terms must be a non-empty list drawn from 0, 1, 2, got {terms!r}")
    out: dict[int, list[float]] = {j: [] for j in terms}
    for h in hs:
        steps = max(1, round(t_end / h))
        energies = [modified_hamiltonian(H, h, j) for j in terms]
        start = [E(u0) for E in energies]
        worst = [0.0] * len(terms)
        z, p = z0, p0
        for _ in range(steps):
            z, p = symplectic_euler(H.dT, H.dV, z, p, h, 1)
            u = torch.cat([z, p], -1)
            for i, E in enumerate(energies):
                worst[i] = max(worst[i], float((E(u) - start[i]).abs().max()))
        for j, w in zip(terms, worst, strict=True):
            out[j].append(w)
    return out


def observed_order(hs: Sequence[float], errors: Sequence[float]) -> float:
    r"""The slope of the least-squares line through :math:`(\log h, \log e)` (Section 2.2).

    An error that behaves like :math:`Ch^p` gives :math:`p`. Needs at least two positive step
    sizes and as many positive errors.

    Examples
    --------
    >>> round(observed_order([0.1, 0.05, 0.025], [3e-2, 7.5e-3, 1.875e-3]), 6)
    2.0
    """
    if not isinstance(hs, (list, tuple)) or not isinstance(errors, (list, tuple)):
        raise TypeError("hs and errors must be lists of numbers")
    if len(hs) != len(errors) or len(hs) < 2:
        raise ValueError(
            f"hs and errors must have the same length >= 2, got {len(hs)} and {len(errors)}"
        )
    x = [math.log(_validate.positive_real(h, "hs")) for h in hs]
    y = [math.log(_validate.positive_real(e, "errors")) for e in errors]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((a - mx) ** 2 for a in x)
    if sxx == 0:
        raise ValueError("hs must hold at least two different step sizes")
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sxx
