r"""Splitting methods and shears (Section 2.2.3), and volume-preserving networks (Section 2.4.2).

A shear changes one block of coordinates by a function of the other block only:

.. math::

    (z, p) \mapsto (z + g(p), p), \qquad (z, p) \mapsto (z, p + f(z)).

Its Jacobian is block triangular with identity diagonal blocks, so every shear preserves volume;
when :math:`g` and :math:`f` are gradients it is also symplectic. Symplectic Euler (22) is the
composition of the shears with :math:`g = h\partial_p T`, :math:`f = -h\partial_z V`, and the
Chirikov standard map is one more example.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.types import Device

from .. import _validate

__all__ = [
    "ShearNet",
    "jacobian_determinant",
    "polygon_area",
    "shear_p",
    "shear_z",
    "square_boundary",
    "standard_map",
]


def _split(u, name="u"):
    _validate.traced_tensor(u, name)
    if u.dim() == 0 or u.shape[-1] % 2:
        raise ValueError(
            f"{name} must have an even last dimension (z, p), got shape {tuple(u.shape)}"
        )
    m = u.shape[-1] // 2
    return u[..., :m], u[..., m:]


def shear_z(g: Callable) -> Callable:
    r"""The shear :math:`(z, p) \mapsto (z + g(p), p)` of Section 2.2.3, as a map on :math:`u = (z,
    p)`."""
    _validate.function(g, "g")

    def apply(u):
        z, p = _split(u)
        return torch.cat([z + g(p), p], -1)

    return apply


def shear_p(f: Callable) -> Callable:
    r"""The shear :math:`(z, p) \mapsto (z, p + f(z))` of Section 2.2.3, as a map on :math:`u = (z,
    p)`."""
    _validate.function(f, "f")

    def apply(u):
        z, p = _split(u)
        return torch.cat([z, p + f(z)], -1)

    return apply


def standard_map(u: torch.Tensor, K: float = 1.0, wrap: bool = True) -> torch.Tensor:
    r"""The Chirikov–Taylor standard map (Section 2.2.3) on :math:`u = (\vartheta, p)`.

    .. math::

        p' = p + K \sin\vartheta, \qquad \vartheta' = \vartheta + p',

    the composition of the shears :math:`(\vartheta, p) \mapsto (\vartheta, p + K\sin\vartheta)`
    and :math:`(\vartheta, p) \mapsto (\vartheta + p, p)`. Area preserving for every :math:`K`.
    With ``wrap`` both coordinates are reduced modulo :math:`2\pi` (to :math:`[0, 2\pi)`).
    ``u`` has shape ``(..., 2)``.
    """
    _validate.traced_tensor(u, "u")
    _validate.last_dim(u, 2, "u")
    K = _validate.real(K, "K")
    _validate.boolean(wrap, "wrap")
    th, p = u[..., 0], u[..., 1]
    p = p + K * torch.sin(th)
    th = th + p
    if wrap:
        th, p = torch.remainder(th, 2 * math.pi), torch.remainder(p, 2 * math.pi)
    return torch.stack([th, p], -1)


def jacobian_determinant(phi: Callable, u: torch.Tensor) -> torch.Tensor:
    r""":math:`\det D\varphi(u)` for each row of ``u`` (shape ``(N, d)``), by autograd.

    A map preserves volume (Section 2.4.2) exactly when this is 1 everywhere. ``phi`` must act row
    by row.
    """
    _validate.function(phi, "phi")
    _validate.tensor(u, "u")
    if u.dim() != 2:
        raise ValueError(f"u must have shape (N, d), got {tuple(u.shape)}")
    Jp = torch.func.vmap(torch.func.jacrev(lambda v: phi(v.unsqueeze(0)).squeeze(0)))(u)
    return torch.linalg.det(Jp)


class ShearNet(nn.Module):
    r"""A volume-preserving network of alternating shears (Sections 2.2.3 and 2.4.2).

    Layer :math:`k` applies :math:`(z, p) \mapsto (z + h\,g_k(p), p)` then
    :math:`(z, p) \mapsto (z, p + h\,f_k(z))` with :math:`g_k(p) = \sigma(A_k p + a_k)` and
    :math:`f_k(z) = \sigma(B_k z + b_k)`: the splitting of the divergence-free field
    :math:`(g(p), f(z))`. Every layer has Jacobian determinant 1. When ``gradient=True`` the
    increments are gradients, :math:`g_k = A_k^T\sigma(A_k p + a_k)`, :math:`f_k = -B_k^T
    \sigma(B_k z + b_k)`, and the map is symplectic Euler (22) for a Hamiltonian of Section 2.1.2.

    In :math:`\mathbb R^2` (``dim=2``) the network is symplectic whatever ``gradient`` says:
    there a map is symplectic exactly when it preserves area, and the one-dimensional
    :math:`g_k`, :math:`f_k` are derivatives of their antiderivatives. From
    :math:`\mathbb R^4` on, ``gradient=False`` gives volume-preserving layers whose Jacobian
    :math:`M` has :math:`M^TJM \ne J` in general: divergence free without being Hamiltonian.

    Parameters
    ----------
    dim : int
        Phase-space dimension :math:`2m` (even).
    depth : int
        Number of layers :math:`K`.
    T : float
        Final time; :math:`h = T/K`.
    gradient : bool
        Whether the increments are gradients (a symplectic network).
    init_std : float
        Scale of the initial parameters.
    generator : torch.Generator or None
        Draw the initial parameters from this generator (``None``: the global one).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        T: float = 1.0,
        gradient: bool = False,
        init_std: float = 1.0,
        device: Device = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        dim = _validate.positive_int(dim, "dim")
        if dim % 2:
            raise ValueError(f"dim must be even, got {dim}")
        self.dim, self.m = dim, dim // 2
        self.depth = _validate.positive_int(depth, "depth")
        self.T = _validate.positive_real(T, "T")
        self.gradient = _validate.boolean(gradient, "gradient")
        std = _validate.nonnegative_real(init_std, "init_std")
        device = _validate.device(device)
        _validate.generator(generator)
        where = device if generator is None else generator.device
        dt = _validate.float_dtype(dtype)

        def randn(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, device=where, dtype=dt, generator=generator)

        K, m = self.depth, self.m
        self.A = nn.Parameter((randn(K, m, m) * std / m**0.5).to(device))
        self.a = nn.Parameter((randn(K, m) * std).to(device))
        self.B = nn.Parameter((randn(K, m, m) * std / m**0.5).to(device))
        self.b = nn.Parameter((randn(K, m) * std).to(device))

    def _g(self, k, p):
        s = torch.tanh(p @ self.A[k].mT + self.a[k])
        return s @ self.A[k] if self.gradient else s

    def _f(self, k, z):
        s = torch.tanh(z @ self.B[k].mT + self.b[k])
        return -(s @ self.B[k]) if self.gradient else s

    def _check(self, u):
        z, p = _split(u)
        _validate.like(u, self.A, "u", "ShearNet")
        if u.shape[-1] != self.dim:
            raise ValueError(f"u must have last dimension dim = {self.dim}, got {tuple(u.shape)}")
        return z, p

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Apply the :math:`K` layers to ``u`` of shape ``(..., 2m)``."""
        z, p = self._check(u)
        h = self.T / self.depth
        for k in range(self.depth):
            z = z + h * self._g(k, p)
            p = p + h * self._f(k, z)
        return torch.cat([z, p], -1)

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        """The exact inverse, undoing the shears in reverse order."""
        z, p = self._check(u)
        h = self.T / self.depth
        for k in reversed(range(self.depth)):
            p = p - h * self._f(k, z)
            z = z - h * self._g(k, p)
        return torch.cat([z, p], -1)

    def log_abs_det_jacobian(self, u: torch.Tensor) -> torch.Tensor:
        r""":math:`\log|\det D\Psi(u)| = 0` per sample: every shear preserves volume."""
        self._check(u)
        return torch.zeros(u.shape[:-1], dtype=u.dtype, device=u.device)


def square_boundary(
    n: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> torch.Tensor:
    """``4 n`` points in order around the boundary of the unit square :math:`[0, 1]^2` (§2.4.2).

    Counter-clockwise from the origin, ``n`` points per side (each side's end point is the next
    side's first); a polygon whose area, after a map, approximates the area of the image of the
    square (:func:`polygon_area`). Returns shape ``(4 n, 2)``.
    """
    n = _validate.positive_int(n, "n")
    s = torch.linspace(0, 1, n + 1, dtype=dtype or torch.get_default_dtype(), device=device)[:-1]
    zeros, ones = torch.zeros_like(s), torch.ones_like(s)
    sides = ((s, zeros), (ones, s), (1 - s, ones), (zeros, 1 - s))
    return torch.cat([torch.stack(side, -1) for side in sides])


def polygon_area(P: torch.Tensor) -> float:
    r"""The area enclosed by a closed polygon, by the shoelace formula (Section 2.4.2).

    ``P`` holds the vertices in order, shape ``(n, 2)`` with :math:`n \ge 3`;
    :math:`\tfrac12|\sum_i x_i y_{i+1} - x_{i+1} y_i|` (indices modulo :math:`n`).

    Examples
    --------
    >>> polygon_area(square_boundary(10, dtype=torch.float64))
    1.0
    """
    _validate.tensor(P, "P")
    if P.dim() != 2 or P.shape[-1] != 2 or P.shape[0] < 3:
        raise ValueError(f"P must have shape (n, 2) with n >= 3, got {tuple(P.shape)}")
    x, y = P[:, 0], P[:, 1]
    return 0.5 * float((x * y.roll(-1) - x.roll(-1) * y).sum().abs())
