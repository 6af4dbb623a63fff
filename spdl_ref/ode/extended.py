r"""Non-autonomous Hamiltonian models (Section 2.1.2): the form :math:`\omega_H` and :math:`J_H`.

For :math:`H(t, z, p)` on the phase space :math:`u = (z, p) \in \mathbb R^{2M}` with the Darboux
matrix :math:`J` (the review's convention :math:`\omega_0(\xi, \eta) = \langle\xi, J\eta\rangle`,
so that :math:`f = J\nabla_u H` is (10)), adding the time gives the space of :math:`(u, t)` with
the closed two-form :math:`\omega_H` of matrix

.. math::

    J_H = \begin{bmatrix} J & \nabla_u H \\ -(\nabla_u H)^T & 0 \end{bmatrix},

whose kernel is spanned by :math:`f_H = (J\nabla_u H, 1)`, the direction of the flow; the flow
preserves :math:`\omega_H`. (The review prints the last row and column with the opposite signs,
a matrix whose kernel is the time-reversed field: see the book's errata.) Adding also the
momentum :math:`p_t` of the time gives the autonomous Hamiltonian
:math:`K = H + p_t` of (20), with the Darboux matrix :math:`J_E` of size :math:`2M + 2` (positions
:math:`(z, t)`, momenta :math:`(p, p_t)`): :func:`~spdl_ref.ode.canonical_J` ``(2 * M + 2)``.

* :func:`omega_H_matrix` -- :math:`J_H` at given gradients;
* :func:`extended_euler_map` -- one step of symplectic Euler (22) as a map of :math:`(z, p, t)`,
  or of :math:`(z, t, p, p_t)` on the extended phase space (20);
* :func:`extended_energy_error` -- the change :math:`\Delta K` of :math:`K` in one such step;
* :func:`form_pullback_defect` -- :math:`M^T W(\varphi(x)) M - W(x)` for a map :math:`\varphi`
  with Jacobian :math:`M` and a two-form of matrix :math:`W`: zero where :math:`\varphi`
  preserves the form.

Symplectic Euler preserves :math:`\Omega_0` (matrix :math:`J_E`) exactly, but not
:math:`\omega_H`: since :math:`\omega_H` is the restriction of :math:`\Omega_0` to the level set
:math:`K = 0`, which the method leaves by :math:`\Delta K`, its defect is exactly the form
:math:`d(\Delta K) \wedge dt`, of size :math:`O(h^2)` per step (Chapter 2.2 checks this identity).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .. import _validate
from .discrete_gradient import canonical_J
from .problems import SeparableHamiltonian

__all__ = [
    "extended_energy_error",
    "extended_euler_map",
    "form_pullback_defect",
    "omega_H_matrix",
]


def omega_H_matrix(grad_u: torch.Tensor, printed: bool = False) -> torch.Tensor:
    r"""The matrix :math:`J_H` of :math:`\omega_H` (Section 2.1.2) at :math:`\nabla_u H`.

    ``grad_u`` is :math:`\nabla_u H = (\partial_z H, \partial_p H)`, shape ``(..., 2M)``; the
    result has shape ``(..., 2M + 1, 2M + 1)`` (coordinates :math:`(z, p, t)`):
    :math:`\begin{bmatrix} J & \nabla_u H\\ -\nabla_u H^T & 0\end{bmatrix}`, whose kernel
    contains :math:`(J\nabla_u H, 1)`. ``printed=True`` returns the matrix as the review prints
    it, :math:`\begin{bmatrix} J & -\nabla_u H\\ \nabla_u H^T & 0\end{bmatrix}`, whose kernel
    contains :math:`(-J\nabla_u H, 1)` instead.

    Examples
    --------
    >>> g = torch.tensor([0.5, -2.0], dtype=torch.float64)  # dH/dz, dH/dp for M = 1
    >>> f_H = torch.tensor([-2.0, -0.5, 1.0], dtype=torch.float64)  # (J grad H, 1)
    >>> omega_H_matrix(g) @ f_H
    tensor([0., 0., 0.], dtype=torch.float64)
    """
    _validate.traced_tensor(grad_u, "grad_u")
    if grad_u.dim() == 0 or grad_u.shape[-1] % 2:
        raise ValueError(
            f"grad_u must have an even last dimension 2M, got shape {tuple(grad_u.shape)}"
        )
    _validate.boolean(printed, "printed")
    d = grad_u.shape[-1]
    J = canonical_J(d, dtype=grad_u.dtype, device=grad_u.device).expand(*grad_u.shape[:-1], d, d)
    column = -grad_u if printed else grad_u
    top = torch.cat([J, column.unsqueeze(-1)], -1)
    bottom = torch.cat([-column, torch.zeros_like(grad_u[..., :1])], -1).unsqueeze(-2)
    return torch.cat([top, bottom], -2)


def _check_hamiltonian(H):
    _validate.instance(H, SeparableHamiltonian, "H")
    return H


def _time_derivatives(H, t1, z, p, z1):
    """:math:`\\partial_t T(t_1, p) + \\partial_t V(t_1, z_1)` by autograd (differentiable).

    A partial derivative: ``z1`` itself depends on ``t1``, so the time is shifted by a separate
    zero ``s`` and the energies are differentiated in ``s`` alone; the result keeps its graph
    in ``t1``, ``p`` and ``z1`` for an outer Jacobian.
    """
    with torch.enable_grad():
        s = torch.zeros_like(t1).requires_grad_(True)
        energy = H.T(t1 + s, p).sum() + H.V(t1 + s, z1).sum()
        (g,) = torch.autograd.grad(energy, s, create_graph=True, allow_unused=True)
    return torch.zeros_like(t1) if g is None else g


def _step(H, z, p, t, h):
    t1 = t + h
    z1 = z + h * H.dT(t1, p)
    p1 = p - h * H.dV(t1, z1)
    return z1, p1, t1


def extended_euler_map(H: SeparableHamiltonian, h: float, coordinates: str = "zpt") -> Callable:
    r"""One step of symplectic Euler (22), with the time as a variable (Section 2.1.2, (20)).

    The step is :func:`~spdl_ref.ode.extended_symplectic_euler`'s:
    :math:`t' = t + h`, :math:`z' = z + h\,\partial_p T(t', p)`,
    :math:`p' = p - h\,\partial_z V(t', z')`, and on the extended phase space also
    :math:`p_t' = p_t - h\,\partial_t(T(t', p) + V(t', z'))`.

    Parameters
    ----------
    H : SeparableHamiltonian
        The Hamiltonian; its energies must accept the time as a tensor of shape ``(..., 1)``
        and be differentiable in it.
    h : float
        Step size, :math:`h > 0`.
    coordinates : {"zpt", "extended"}
        ``"zpt"``: the map :math:`(z, p, t) \mapsto (z', p', t')` on vectors of length
        :math:`2M + 1` (the space of :math:`\omega_H`); ``"extended"``: the map
        :math:`(z, t, p, p_t) \mapsto (z', t', p', p_t')` on vectors of length :math:`2M + 2`
        (positions, then momenta: the space of :math:`\Omega_0` and :math:`J_E`).

    Returns
    -------
    callable
        ``step(x)`` for ``x`` of shape ``(..., 2M + 1)`` or ``(..., 2M + 2)``; differentiable, so
        :func:`~spdl_ref.ode.step_jacobian` gives its Jacobian.
    """
    H = _check_hamiltonian(H)
    h = _validate.positive_real(h, "h")
    _validate.choice(coordinates, ("zpt", "extended"), "coordinates")
    odd = coordinates == "zpt"

    def step(x: torch.Tensor) -> torch.Tensor:
        _validate.floating_tensor(x, "x")
        n = x.shape[-1] if x.dim() else 0
        if n < 3 or (n % 2 == 0) == odd:
            size = "2M + 1 (z, p, t)" if odd else "2M + 2 (z, t, p, p_t)"
            raise ValueError(f"x must have last dimension {size}, got shape {tuple(x.shape)}")
        m = (n - 1) // 2 if odd else n // 2 - 1
        if odd:
            z, p, t = x[..., :m], x[..., m : 2 * m], x[..., 2 * m :]
        else:
            z, t, p, pt = x[..., :m], x[..., m : m + 1], x[..., m + 1 : 2 * m + 1], x[..., -1:]
        z1, p1, t1 = _step(H, z, p, t, h)
        if odd:
            return torch.cat([z1, p1, t1], -1)
        pt1 = pt - h * _time_derivatives(H, t1, z, p, z1)
        return torch.cat([z1, t1, p1, pt1], -1)

    return step


def extended_energy_error(H: SeparableHamiltonian, h: float) -> Callable:
    r"""The change :math:`\Delta K(z, p, t)` of :math:`K = H + p_t` in one step (Section 2.1.2).

    :math:`\Delta K = H(t', z', p') - H(t, z, p) - h\,\partial_t\big(T(t', p) + V(t', z')\big)`
    for the step of :func:`extended_euler_map` (it does not depend on :math:`p_t`). The exact
    flow keeps :math:`K`; the method changes it by :math:`O(h^2)` per step. Returns a
    differentiable map of ``x = (z, p, t)`` (shape ``(..., 2M + 1)``) to shape ``(...)``.
    """
    H = _check_hamiltonian(H)
    h = _validate.positive_real(h, "h")

    def error(x: torch.Tensor) -> torch.Tensor:
        _validate.floating_tensor(x, "x")
        if x.dim() == 0 or x.shape[-1] < 3 or x.shape[-1] % 2 == 0:
            raise ValueError(
                f"x must have last dimension 2M + 1 (z, p, t), got shape {tuple(x.shape)}"
            )
        m = (x.shape[-1] - 1) // 2
        z, p, t = x[..., :m], x[..., m : 2 * m], x[..., 2 * m :]
        z1, p1, t1 = _step(H, z, p, t, h)
        dt_energy = _time_derivatives(H, t1, z, p, z1).squeeze(-1)
        return H.T(t1, p1) + H.V(t1, z1) - H.T(t, p) - H.V(t, z) - h * dt_energy

    return error


def form_pullback_defect(
    phi: Callable, W: torch.Tensor | Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    r""":math:`M^T W(\varphi(x))\, M - W(x)`: how far :math:`\varphi` is from preserving a two-form.

    Section 2.1.2. For a two-form :math:`\omega(\xi, \eta) = \langle \xi, W\eta\rangle` whose
    matrix may depend on the point, :math:`\varphi^*\omega = \omega` at :math:`x` exactly when
    this matrix vanishes (:math:`M = D\varphi(x)`, by autograd). With a constant
    :math:`W = J` it is the symplecticity test of :func:`~spdl_ref.ode.symplecticity_defect`.

    Parameters
    ----------
    phi : callable
        The map, from shape ``(d,)`` to ``(d,)``.
    W : torch.Tensor or callable
        The matrix ``(d, d)``, or a function of the point returning it.
    x : torch.Tensor
        The point, shape ``(d,)``.

    Returns
    -------
    torch.Tensor
        The defect matrix, shape ``(d, d)``.
    """
    from .symplectic import step_jacobian

    _validate.function(phi, "phi")
    if not callable(W):
        _validate.tensor(W, "W")
        if W.dim() != 2 or W.shape[0] != W.shape[1]:
            raise ValueError(f"W must be a square matrix or a callable, got {tuple(W.shape)}")
    M = step_jacobian(phi, x)
    with torch.no_grad():
        y = phi(x)

    def matrix(point, name):
        value = W(point) if callable(W) else W
        if not isinstance(value, torch.Tensor) or value.shape != M.shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"W must give a {tuple(M.shape)} matrix at {name}, got {got}")
        return value.detach()

    return M.mT @ matrix(y, "phi(x)") @ M - matrix(x, "x")
