r"""Equivariant convolution kernels from the kernel constraint, solved numerically (Section 5.1.2).

A linear map between fields of type :math:`\rho_1` and :math:`\rho_2` on the homogeneous space
:math:`G/H` commutes with :math:`G = \mathbb{Z}^2 \rtimes H` exactly when it is a convolution
(51) with a kernel satisfying

.. math:: k(h_2 g h_1) = \rho_2(h_2)\, k(g)\, \rho_1(h_1).

On the pixel grid, with the correlation :math:`F(x)(p) = \sum_q k(q)\, x(p + q)` used by
:func:`torch.nn.functional.conv2d`, this reads :math:`k(h q) = \rho_2(h)\, k(q)\, \rho_1(h)^{-1}`
for all :math:`h \in H` and all offsets :math:`q`. These are linear equations for the
:math:`n^2 d_2 d_1` entries of an ``n x n`` kernel; :func:`kernel_basis` stacks them for the
generators of :math:`H`, and the null space of that matrix (its singular vectors with zero
singular value) is the space of
equivariant kernels. :class:`SteerableConv2d` learns the coefficients of a kernel in that basis.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from torch import nn
from torch.types import Device

from .. import _validate
from .actions import act_on_image
from .groups import Representation

__all__ = [
    "SteerableConv2d",
    "basis_dimension",
    "constraint_matrix",
    "invariant_vectors",
    "kernel_basis",
    "kernel_constraint_residual",
]


def _check_reps(rho_in, rho_out):
    for name, r in (("rho_in", rho_in), ("rho_out", rho_out)):
        _validate.instance(r, Representation, name)
    if rho_in.group != rho_out.group:
        raise ValueError("rho_in and rho_out must be representations of the same group")
    return rho_in.group


def _check_size(size):
    size = _validate.positive_int(size, "size")
    if size % 2 == 0:
        raise ValueError(f"size must be odd so that the kernel has a centre pixel, got {size}")
    return size


def _support(size, support):
    c = (size - 1) / 2
    if support == "square":
        return torch.ones(size, size, dtype=torch.bool)
    if support == "disc":
        i = torch.arange(size, dtype=torch.float64) - c
        return (i[:, None] ** 2 + i[None, :] ** 2) <= c * c + 1e-9
    raise ValueError(f"support must be 'square' or 'disc', got {support!r}")


def _transform(K, g, rho_in, rho_out):
    # rho_out(g) [T_g K] rho_in(g)^{-1}, with K of shape (..., d2, d1, n, n).
    TK = act_on_image(K.reshape(-1, 1, *K.shape[-2:]), g, rho_in.group).reshape(K.shape)
    r2 = rho_out(g).to(K)
    r1inv = rho_in(rho_in.group.inverse(g)).to(K)
    return torch.einsum("ij,...jkab,kl->...ilab", r2, TK, r1inv)


def constraint_matrix(
    rho_in: Representation, rho_out: Representation, size: int, support: str = "square"
) -> torch.Tensor:
    r"""The linear constraints :math:`k(hq) - \rho_2(h) k(q) \rho_1(h)^{-1} = 0` as a matrix
    (Section 5.1.2).

    One block of rows per generator :math:`h` of the group, and, for ``support="disc"``, rows
    that set the kernel to zero outside the inscribed disc. Columns index the entries of a
    kernel of shape ``(d2, d1, size, size)`` in row-major order. Float64.
    """
    group = _check_reps(rho_in, rho_out)
    size = _check_size(size)
    mask = _support(size, support)
    d2, d1 = rho_out.dim, rho_in.dim
    n = d2 * d1 * size * size
    eye = torch.eye(n, dtype=torch.float64).reshape(n, d2, d1, size, size)
    blocks = [(_transform(eye, g, rho_in, rho_out) - eye).reshape(n, n).T for g in group.generators]
    outside = (~mask).expand(d2, d1, size, size).reshape(-1)
    blocks.append(torch.eye(n, dtype=torch.float64)[outside])
    return torch.cat(blocks, dim=0)


def kernel_basis(
    rho_in: Representation,
    rho_out: Representation,
    size: int,
    support: str = "square",
    tol: float = 1e-6,
) -> torch.Tensor:
    r"""An orthonormal basis of the equivariant kernels :math:`k : \mathbb{Z}^2 \to
    \mathrm{Hom}(V_1, V_2)` (Section 5.1.2).

    The null space of the constraint matrix :math:`A` of :func:`constraint_matrix`: its right
    singular vectors with singular value below ``tol`` times the largest. They are computed as
    the eigenvectors of :math:`A^T A` (whose eigenvalues are the squared singular values), which
    is much faster than an SVD of the tall matrix :math:`A` and loses nothing here because the
    nonzero singular values of these constraints are of order one. Returns a float64 tensor of
    shape ``(D, d2, d1, size, size)``, where ``D`` is the dimension of the space of equivariant
    kernels; ``D = 0`` when no nonzero kernel is equivariant.
    """
    A = constraint_matrix(rho_in, rho_out, size, support)
    tol = _validate.positive_real(tol, "tol")
    evals, evecs = torch.linalg.eigh(A.T @ A)
    sigma = evals.clamp_min(0).sqrt()
    scale = float(sigma.max()) if float(sigma.max()) > 0 else 1.0
    basis = evecs[:, sigma <= tol * scale].T.reshape(-1, rho_out.dim, rho_in.dim, size, size)
    return basis * _support(size, support).to(basis)  # exact zeros outside the support


def basis_dimension(basis: torch.Tensor, tol: float = 1e-4) -> int:
    r"""Numerical rank of a set of kernels ``(D, ...)``: the dimension of their span (Section
    5.1.2).

    Singular values of the ``D x (entries)`` matrix above ``tol`` times the largest count. Used
    to compare bases computed in float32 (escnn) with :func:`kernel_basis`.
    """
    _validate.tensor(basis, "basis")
    tol = _validate.positive_real(tol, "tol")
    if basis.shape[0] == 0:
        return 0
    s = torch.linalg.svdvals(basis.flatten(1).to(torch.float64))
    return int((s > tol * s[0]).sum()) if float(s[0]) > 0 else 0


def kernel_constraint_residual(
    K: torch.Tensor, rho_in: Representation, rho_out: Representation
) -> float:
    r"""How far a kernel is from the constraint: :math:`\max_h \|\rho_2(h) [T_h K] \rho_1(h)^{-1} -
    K\| / \|K\|` (Section 5.1.2).

    ``K`` has shape ``(d2, d1, n, n)`` or ``(c2 d2, c1 d1, n, n)`` (blocks of fields).
    """
    group = _check_reps(rho_in, rho_out)
    _validate.tensor(K, "K")
    if K.dim() != 4 or K.shape[0] % rho_out.dim or K.shape[1] % rho_in.dim:
        raise ValueError(
            f"K must have shape (c2*{rho_out.dim}, c1*{rho_in.dim}, n, n), got {tuple(K.shape)}"
        )
    c2, c1 = K.shape[0] // rho_out.dim, K.shape[1] // rho_in.dim
    Kb = K.reshape(c2, rho_out.dim, c1, rho_in.dim, *K.shape[-2:]).permute(0, 2, 1, 3, 4, 5)
    norm = float(Kb.norm()) or 1.0
    return max(
        float((_transform(Kb, g, rho_in, rho_out) - Kb).norm()) / norm for g in group.elements
    )


def invariant_vectors(rho: Representation, tol: float = 1e-10) -> torch.Tensor:
    r"""An orthonormal basis of :math:`\{b : \rho(h) b = b \ \forall h\}`, the equivariant biases
    (Section 5).

    Adding a bias :math:`b` to a field of type :math:`\rho` commutes with the group action only
    if :math:`b` is fixed by every :math:`\rho(h)`. Returns shape ``(D, d)``.
    """
    _validate.instance(rho, Representation, "rho")
    tol = _validate.positive_real(tol, "tol")
    A = torch.cat(
        [rho(g) - torch.eye(rho.dim, dtype=torch.float64) for g in rho.group.generators]
        + [torch.zeros(1, rho.dim, dtype=torch.float64)]
    )
    _, S, Vh = torch.linalg.svd(A, full_matrices=True)
    rank = int((tol * max(float(S[0]), 1.0) < S).sum())
    return Vh[rank:]


class SteerableConv2d(nn.Module):
    r"""A group convolution (51) whose kernel is a learned combination of :func:`kernel_basis`
    (Section 5.1.2).

    Maps ``c_in`` fields of type :math:`\rho_1` to ``c_out`` fields of type :math:`\rho_2`:
    input ``(B, c_in d1, H, W)``, output ``(B, c_out d2, H, W)`` (zero padding keeps the size).
    The kernel :math:`k = \sum_i w_i k_i` and the bias (from :func:`invariant_vectors`) satisfy
    the constraints, so the layer commutes with :func:`~spdl_ref.equivariant.act_on_field` for
    every element of the group, up to round-off.
    """

    basis: torch.Tensor
    bias_basis: torch.Tensor

    def __init__(
        self,
        rho_in: Representation,
        rho_out: Representation,
        c_in: int,
        c_out: int,
        size: int,
        bias: bool = True,
        support: str = "square",
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_reps(rho_in, rho_out)
        self.rho_in, self.rho_out = rho_in, rho_out
        self.c_in = _validate.positive_int(c_in, "c_in")
        self.c_out = _validate.positive_int(c_out, "c_out")
        self.size = _check_size(size)
        _validate.boolean(bias, "bias")
        device = _validate.device(device)
        dtype = _validate.float_dtype(dtype) or torch.get_default_dtype()
        basis = kernel_basis(rho_in, rho_out, size, support)
        if basis.shape[0] == 0:
            raise ValueError(
                f"rho_in and rho_out admit no nonzero equivariant kernel of size {size}: "
                f"none maps {rho_in} to {rho_out}"
            )
        self.register_buffer("basis", basis.to(device=device, dtype=dtype))
        scale = 1.0 / math.sqrt(c_in * basis.shape[0])
        self.weight = nn.Parameter(
            scale * torch.randn(c_out, c_in, basis.shape[0], device=device, dtype=dtype)
        )
        bias_basis = invariant_vectors(rho_out).to(device=device, dtype=dtype)
        self.register_buffer("bias_basis", bias_basis)
        self.bias = (
            nn.Parameter(torch.zeros(c_out, bias_basis.shape[0], device=device, dtype=dtype))
            if bias and bias_basis.shape[0]
            else None
        )

    def kernel(self) -> torch.Tensor:
        """The expanded kernel of shape ``(c_out d2, c_in d1, size, size)``."""
        K = torch.einsum("oiD,Dabxy->oaibxy", self.weight, self.basis)
        return K.reshape(
            self.c_out * self.rho_out.dim, self.c_in * self.rho_in.dim, self.size, self.size
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution with the kernel built from the equivariant basis."""
        _validate.tensor(x, "x")
        _validate.like(x, self.weight, "x", "SteerableConv2d")
        channels = self.c_in * self.rho_in.dim
        if x.dim() != 4 or x.shape[1] != channels:
            raise ValueError(
                f"x must have shape (B, c_in * rho_in.dim, H, W) = (B, {channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        b = None if self.bias is None else (self.bias @ self.bias_basis).reshape(-1)
        return nnf.conv2d(x, self.kernel(), b, padding=self.size // 2)
