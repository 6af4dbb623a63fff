r"""Growth of perturbations through trained ODE networks, and a warning (Section 2.1).

* :func:`field_bounds` -- per-layer upper bounds on the one-sided Lipschitz constant
  :math:`\nu` of (14) and the Lipschitz constant :math:`L` of any field of
  :mod:`spdl_ref.ode.fields` (exact suprema over the box of activation derivatives), so that
  (13) holds with :math:`C = e^{h\sum_k\nu_k} \le e^{T\max_k\nu_k}` for the flow;
* :func:`euler_growth_bound` -- the discrete counterpart of :math:`e^{T\nu}` for the forward
  Euler network (6);
* :class:`RotatingFrameSystem` -- a linear system whose frozen matrices :math:`A(t)` all have
  eigenvalues with negative real part while its solutions grow: the review's warning that
  frozen-time eigenvalues can mislead for non-autonomous systems.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .. import _validate

if TYPE_CHECKING:
    from .fields import GradientField, HamiltonianField, PlainField

__all__ = ["DERIVATIVE_RANGES", "RotatingFrameSystem", "euler_growth_bound", "field_bounds"]


#: The range of :math:`\sigma'` for the activations of :mod:`spdl_ref.ode.fields` (Section 2.1:
#: the box of diagonal matrices :math:`D` over which the one-sided bound is taken).
DERIVATIVE_RANGES = {
    "tanh": (0.0, 1.0),
    "relu": (0.0, 1.0),
    "softplus": (0.0, 1.0),
    "identity": (1.0, 1.0),
    "sigmoid": (0.0, 0.25),
}


def _layer_jacobian_builder(field):
    """``(n_d, build)``: the number of diagonal entries and ``build(k, d) -> J`` (affine in d)."""
    from .fields import DissipativeField, GradientField, HamiltonianField, PlainField

    if isinstance(field, (PlainField, DissipativeField)):
        A = field.weight_matrices().detach()
        return A.shape[-2], lambda k, d: d[..., :, None] * A[k]
    if isinstance(field, GradientField):
        A = field.A.detach()
        return A.shape[-2], lambda k, d: -A[k].mT @ (d[..., :, None] * A[k])
    if isinstance(field, HamiltonianField):
        M = field.dim
        A2 = field.A2.detach()
        eye = torch.eye(M, dtype=A2.dtype, device=A2.device)
        zero = torch.zeros_like(eye)

        def block(top_right, bottom_left):
            top = torch.cat([zero.expand_as(top_right), top_right], -1)
            return torch.cat([top, torch.cat([bottom_left, zero.expand_as(top_right)], -1)], -2)

        if field.variant == "second_order":
            return M, lambda k, d: block(
                eye.expand(*d.shape[:-1], M, M), -A2[k].mT @ (d[..., :, None] * A2[k])
            )
        A1 = field.A1.detach()
        return 2 * M, lambda k, d: block(
            A1[k].mT @ (d[..., :M, None] * A1[k]), -A2[k].mT @ (d[..., M:, None] * A2[k])
        )
    raise TypeError(
        "field must be a PlainField, DissipativeField, GradientField or HamiltonianField, "
        f"got {type(field).__name__}"
    )


def field_bounds(
    field: PlainField | GradientField | HamiltonianField,
    d_range: Sequence[float] | None = None,
    max_vertices: int = 2**14,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-layer bounds :math:`(\nu_k, L_k)` on the one-sided Lipschitz and Lipschitz constants.

    Section 2.1, (13)-(14). The Jacobian of every field of :mod:`spdl_ref.ode.fields` at any
    point is :math:`J(D)`, an affine function of the diagonal matrix :math:`D` of activation
    derivatives (:math:`DA` for (8), :math:`-A^TDA` for (16),
    :math:`\begin{bmatrix}0 & A_1^TD_1A_1\\ -A_2^TD_2A_2 & 0\end{bmatrix}` for the Hamiltonian
    models). Both :math:`\lambda_{\max}(\tfrac12(J + J^T))` and :math:`\|J\|_2` are convex in
    :math:`D`, so their suprema over the box of diagonals with entries in ``d_range`` are
    attained at its vertices, which are enumerated: the bounds are exact suprema over the box,
    hence upper bounds on :math:`\nu_k` and :math:`L_k` of layer :math:`k`.

    Parameters
    ----------
    field : PlainField, DissipativeField, GradientField or HamiltonianField
        The (trained) field.
    d_range : (low, high) or None
        An interval containing :math:`\sigma'(\mathbb R)`; default from
        :data:`DERIVATIVE_RANGES` by the field's activation name.
    max_vertices : int
        Refuse fields whose box has more vertices than this.

    Returns
    -------
    (nu, L) : two tensors of shape ``(K,)``.

    Examples
    --------
    >>> from spdl_ref.ode import GradientField
    >>> nu, L = field_bounds(GradientField(3, 2, dtype=torch.float64))
    >>> bool((nu <= 1e-12).all()), bool((L > 0).all())  # Theorem 2.1: nu <= 0
    (True, True)
    """
    n_d, build = _layer_jacobian_builder(field)
    if d_range is None:
        name = getattr(field, "activation_name", None)
        if name not in DERIVATIVE_RANGES:
            raise ValueError(
                f"d_range must be given for the activation {name!r} of field (known: "
                f"{', '.join(sorted(DERIVATIVE_RANGES))})"
            )
        d_range = DERIVATIVE_RANGES[name]
    if not isinstance(d_range, (tuple, list)) or len(d_range) != 2:
        raise ValueError(f"d_range must be a pair (low, high), got {d_range!r}")
    lo, hi = (_validate.real(v, "d_range") for v in d_range)
    if lo > hi:
        raise ValueError(f"d_range must be (low, high) with low <= high, got {tuple(d_range)}")
    max_vertices = _validate.positive_int(max_vertices, "max_vertices")
    if 2**n_d > max_vertices:
        raise ValueError(
            f"field has 2^{n_d} vertices of its derivative box, more than max_vertices = "
            f"{max_vertices}"
        )
    ref = next(field.parameters())
    verts = torch.tensor(
        list(itertools.product((lo, hi), repeat=n_d)), dtype=ref.dtype, device=ref.device
    )
    nu, L = [], []
    for k in range(field.depth):
        J = build(k, verts)
        nu.append(torch.linalg.eigvalsh(0.5 * (J + J.mT))[..., -1].max())
        L.append(torch.linalg.matrix_norm(J, ord=2).max())
    return torch.stack(nu), torch.stack(L)


def euler_growth_bound(nu: torch.Tensor, L: torch.Tensor, h: float) -> float:
    r"""Bound on :math:`\|z_2^K - z_1^K\| / \|z_2^0 - z_1^0\|` for the forward Euler network (6).

    Section 2.1, the discrete form of :math:`e^{T\nu}`: one step of
    :math:`z \mapsto z + h f(z)` with a field satisfying (14) with :math:`\nu_k` and Lipschitz
    constant :math:`L_k` gives
    :math:`\|\delta^{k+1}\|^2 \le (1 + 2h\nu_k + h^2L_k^2)\,\|\delta^k\|^2`, so the network
    amplifies distances by at most :math:`\prod_k (1 + 2h\nu_k + h^2L_k^2)^{1/2}`, which tends
    to :math:`e^{h\sum_k \nu_k}` as :math:`h \to 0`. ``nu`` and ``L`` have shape ``(K,)``
    (e.g. from :func:`field_bounds`).
    """
    for v, n in ((nu, "nu"), (L, "L")):
        _validate.tensor(v, n)
        if v.dim() != 1:
            raise ValueError(f"{n} must have shape (K,), got {tuple(v.shape)}")
    if nu.shape != L.shape:
        raise ValueError(
            f"nu and L must have the same shape, got {tuple(nu.shape)}, {tuple(L.shape)}"
        )
    h = _validate.positive_real(h, "h")
    factors = (1 + 2 * h * nu + h * h * L * L).clamp_min(0.0)
    return float(factors.sqrt().prod())


class RotatingFrameSystem:
    r"""A linear system whose frozen matrices are all stable but whose solutions grow (§2.1).

    Section 2.1 warns that the eigenvalues of the Jacobian at frozen times can mislead for a
    non-autonomous system. This is the classical counterexample (Markus and Yamabe's, in
    general form): with the rotation :math:`R(s) = \exp(sS)`,
    :math:`S = \begin{bmatrix}0 & -1\\ 1 & 0\end{bmatrix}`,

    .. math::

        \dot z = A(t) z, \qquad A(t) = R(\omega t)\, A_0\, R(\omega t)^T .

    Every :math:`A(t)` has the eigenvalues of :math:`A_0`. In the rotating frame
    :math:`w = R(\omega t)^T z` the system is autonomous, :math:`\dot w = (A_0 - \omega S) w`,
    so :math:`z(t) = R(\omega t)\exp\big(t(A_0 - \omega S)\big) z(0)` exactly, and solutions grow
    like :math:`e^{\alpha t}` with :math:`\alpha` the largest real part of an eigenvalue of
    :math:`A_0 - \omega S` (:attr:`growth_exponent`), whatever the eigenvalues of :math:`A_0`
    (:attr:`frozen_abscissa`). The one-sided Lipschitz constant (14),
    :math:`\nu = \lambda_{\max}(\tfrac12(A_0 + A_0^T))` (:attr:`nu`; the same at every
    :math:`t`), is not fooled: :math:`\alpha \le \nu`.

    Parameters
    ----------
    A0 : torch.Tensor
        The matrix :math:`A_0`, shape ``(2, 2)``.
    omega : float
        The angular velocity :math:`\omega` of the frame.

    Examples
    --------
    >>> A0 = torch.tensor([[0.5, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    >>> system = RotatingFrameSystem(A0, omega=-1.0)
    >>> round(system.frozen_abscissa, 12), round(system.growth_exponent, 12)
    (-0.25, 0.5)
    """

    def __init__(self, A0: torch.Tensor, omega: float):
        _validate.tensor(A0, "A0")
        if A0.shape != (2, 2):
            raise ValueError(f"A0 must have shape (2, 2), got {tuple(A0.shape)}")
        self.A0 = A0
        self.omega = _validate.real(omega, "omega")
        self.S = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=A0.dtype, device=A0.device)

    def _rotation(self, t):
        t = torch.as_tensor(t, dtype=self.A0.dtype, device=self.A0.device)
        c, s = torch.cos(self.omega * t), torch.sin(self.omega * t)
        return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)

    def matrix(self, t: float | torch.Tensor) -> torch.Tensor:
        """:math:`A(t)` at a float or at times of shape ``(...)``; shape ``(..., 2, 2)``."""
        R = self._rotation(t)
        return R @ self.A0 @ R.mT

    def field(self, t: float | torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        r"""The field :math:`A(t) z` for states ``z`` of shape ``(..., 2)`` at a time ``t``."""
        _validate.floating_tensor(z, "z")
        _validate.last_dim(z, 2, "z")
        return z @ self.matrix(t).mT

    def solution(self, t: float, z0: torch.Tensor) -> torch.Tensor:
        r"""The exact solution :math:`R(\omega t)\exp(t(A_0 - \omega S)) z_0` at a float ``t``."""
        _validate.tensor(z0, "z0")
        _validate.last_dim(z0, 2, "z0")
        t = _validate.real(t, "t")
        E = self._rotation(t) @ torch.linalg.matrix_exp(t * (self.A0 - self.omega * self.S))
        return z0 @ E.mT

    @property
    def frozen_abscissa(self) -> float:
        """The largest real part of an eigenvalue of :math:`A(t)` (the same for every ``t``)."""
        return float(torch.linalg.eigvals(self.A0).real.max())

    @property
    def growth_exponent(self) -> float:
        r"""The largest real part of an eigenvalue of :math:`A_0 - \omega S`: the true growth."""
        return float(torch.linalg.eigvals(self.A0 - self.omega * self.S).real.max())

    @property
    def nu(self) -> float:
        r"""One-sided Lipschitz constant of (14), :math:`\lambda_{\max}(\tfrac12(A_0 + A_0^T))`."""
        return float(torch.linalg.eigvalsh(0.5 * (self.A0 + self.A0.mT))[-1])
