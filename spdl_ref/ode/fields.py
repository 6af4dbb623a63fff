r"""Vector fields of the ODE models of Section 2.1 of the review.

Each field is an :class:`torch.nn.Module` holding parameters :math:`\theta^k` for ``depth``
layers :math:`k = 0, \dots, K-1`: the parameters :math:`\theta(t)` are piecewise constant in time,
:math:`\theta(t) = \theta^k` on the :math:`k`-th step, as in the ResNet (5)-(8). Calling
``field(k, z)`` returns :math:`f(z, \theta^k)` for states ``z`` of shape ``(..., dim)``.

* :class:`PlainField` -- :math:`\sigma(A z + b)`, eq. (8);
* :class:`DissipativeField` -- eq. (8) with :math:`A = S - S^T - \gamma I` (Section 2.1.1);
* :class:`ReLUField` -- :math:`-A_2 \sigma(A_1 z + b_1) + b_2`, eq. (15);
* :class:`GradientField` -- :math:`-A^T \sigma(A z + b)`, eq. (16), the gradient flow of
  :math:`V = \gamma(A z + b) \cdot \mathbf 1`;
* :class:`HamiltonianField` -- the two Hamiltonian models of Chang et al. (Section 2.1.2) on the
  phase space :math:`u = (z, p)`, with the second-order form
  :math:`\ddot z = -A_2^T \sigma(A_2 z + b_2)`.

Fields also provide ``lift`` (input features to the state the field acts on) and ``project``
(state back to features), which are the identity except for the Hamiltonian models, whose
momentum starts at :math:`p = 0`.

Every field is a layered field of the protocol :class:`spdl_ref.ode.LayeredNetwork`: its
parameters are stacked along a first axis of length ``depth`` (layer :math:`k` owns the slice
``[k]``), ``layer_parameters(k)`` returns the slices :math:`\theta^k` by name, and
``field(k, z, theta)`` evaluates :math:`f(z, \theta)` at any such slices, which is what the
adjoints and the method of successive approximations of Section 3 need. The field (8) is written
once, in :func:`affine_field`, with its vector-Jacobian products in closed form
(:func:`affine_field_vjp`); the other fields take theirs from :func:`torch.func.vjp` of the one
layer's field.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.types import Device

from .. import _validate

__all__ = [
    "ANTIDERIVATIVES",
    "DissipativeField",
    "GradientField",
    "HamiltonianField",
    "PlainField",
    "ReLUField",
    "activation_antiderivative",
    "activation_derivative",
    "affine_field",
    "affine_field_vjp",
    "frozen_field",
]


#: A componentwise activation :math:`\sigma` (or its antiderivative :math:`\gamma`).
Activation = Callable[[torch.Tensor], torch.Tensor]


def _identity(s):
    return s


def _log_cosh(s):
    # log cosh s, computed stably: |s| + log1p(exp(-2|s|)) - log 2
    a = s.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0)


#: Antiderivatives :math:`\gamma` with :math:`\gamma' = \sigma` for the activations the fields
#: accept by name (Section 2.1.1, eq. (16), and Section 2.1.2).
ANTIDERIVATIVES: dict[str, tuple[Activation, Activation | None]] = {
    "tanh": (torch.tanh, _log_cosh),
    "relu": (torch.relu, lambda s: 0.5 * torch.relu(s) ** 2),
    "identity": (_identity, lambda s: 0.5 * s**2),
    "sigmoid": (torch.sigmoid, F.softplus),
    "softplus": (F.softplus, None),
}


def activation_antiderivative(name: str) -> tuple[Activation, Activation | None]:
    r"""The activation :math:`\sigma` and its antiderivative :math:`\gamma` (eq. (16)).

    Returns ``(sigma, gamma)`` with :math:`\gamma' = \sigma`; ``gamma`` is ``None`` where no
    closed form is stored. Names: ``"tanh"``, ``"relu"``, ``"identity"``, ``"sigmoid"``,
    ``"softplus"``.
    """
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name (str), got {type(name).__name__}")
    if name not in ANTIDERIVATIVES:
        raise ValueError(
            f"unknown activation {name!r}; known: {', '.join(sorted(ANTIDERIVATIVES))}"
        )
    return ANTIDERIVATIVES[name]


def activation_derivative(activation: Activation, a: torch.Tensor) -> torch.Tensor:
    """The derivative :math:`\\sigma'(a)` of a componentwise activation, entry by entry (eq. (8)).

    Closed forms for tanh, sigmoid, ReLU, softplus and the identity; any other callable is
    differentiated elementwise by :func:`torch.func.vmap` of :func:`torch.func.grad` on scalars
    (the activation alone, never the network).
    """
    if activation in (torch.tanh, F.tanh):
        return 1 - torch.tanh(a) ** 2
    if activation in (torch.sigmoid, F.sigmoid):
        s = torch.sigmoid(a)
        return s * (1 - s)
    if activation in (torch.relu, F.relu):
        return (a > 0).to(a.dtype)
    if activation is F.softplus:
        return torch.sigmoid(a)
    if activation is _identity:
        return torch.ones_like(a)
    flat = a.reshape(-1)
    return torch.func.vmap(torch.func.grad(activation))(flat).reshape(a.shape)


def affine_field(
    z: torch.Tensor, A: torch.Tensor, b: torch.Tensor, activation: Activation
) -> torch.Tensor:
    r"""The field (8), :math:`f(z, (A, b)) = \sigma(A z + b)`, for states of shape ``(..., M)``.

    ``A`` has shape ``(M, M)`` (or ``(M', M)``), ``b`` shape ``(M,)``; ``activation`` is
    :math:`\sigma`, applied componentwise. The one place where (8) is written out: the ResNet
    (5)-(6), :class:`PlainField` and :class:`DissipativeField` all evaluate it here.

    Examples
    --------
    >>> z = torch.tensor([[1.0, -1.0]])
    >>> affine_field(z, torch.eye(2), torch.zeros(2), torch.relu)
    tensor([[1., 0.]])
    """
    return activation(z @ A.mT + b)


def affine_field_vjp(
    z: torch.Tensor, A: torch.Tensor, b: torch.Tensor, activation: Activation, p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The vector-Jacobian products of the field (8) that the adjoints (26)-(28) need.

    With :math:`s = \sigma'(A z + b) \odot p`:
    :math:`\partial_z f^T p = A^T s`, :math:`\partial_A f^T p = s z^T` and
    :math:`\partial_b f^T p = s`. ``z`` and ``p`` have shape ``(..., M)``; the parameter
    products are summed over the leading (batch) dimensions, as for the gradient of a loss summed
    over samples. Returns ``(dz, dA, db)`` of shapes ``z.shape``, ``A.shape``, ``b.shape``.
    """
    s = activation_derivative(activation, z @ A.mT + b) * p
    flat_s, flat_z = s.reshape(-1, s.shape[-1]), z.reshape(-1, z.shape[-1])
    return s @ A, flat_s.mT @ flat_z, flat_s.sum(0)


class _LayeredField(nn.Module):
    """Common bookkeeping: dimension, depth, activation, layer index checks, per-layer slices.

    Subclasses implement ``field(k, z, theta=None)``; the vector-Jacobian products default to
    :func:`torch.func.vjp` of that one layer's field (composable with :func:`torch.func.vmap` and
    with ordinary autograd).
    """

    #: whether the field acts on a doubled phase space (z, p)
    phase_space = False
    #: ``field(k, z, theta=None)``, :math:`f(z, \theta^k)`: defined by every subclass
    field: Callable[..., torch.Tensor]

    def __init__(self, dim: int, depth: int, activation: str) -> None:
        super().__init__()
        self.dim = _validate.positive_int(dim, "dim")
        self.depth = _validate.positive_int(depth, "depth")
        self.activation_name = activation
        self.sigma, self.gamma = activation_antiderivative(activation)

    @property
    def state_dim(self) -> int:
        """Dimension of the state the field acts on."""
        return 2 * self.dim if self.phase_space else self.dim

    def _k(self, k):
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.depth:
            raise ValueError(
                f"k must be an integer layer index in [0, {self.depth - 1}], got {k!r}"
            )
        return k

    def _z(self, z, size=None):
        # type and shape only (no finiteness check, so fields work under torch.func.vmap)
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}")
        if not z.is_floating_point():
            raise TypeError(f"z must have a floating-point dtype, got {z.dtype}")
        return _validate.last_dim(z, size or self.state_dim, "z")

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """Map input features to the state the field acts on (identity here)."""
        return x

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """Map a state back to features (identity here)."""
        return u

    def forward(self, k: int, z: torch.Tensor) -> torch.Tensor:
        """The field :math:`f(z, \\theta^k)` of layer ``k`` (same as :meth:`field`)."""
        return self.field(k, z)

    def layer_parameters(self, k: int) -> dict:
        """The parameters :math:`\\theta^k` of layer ``k``: ``{name: parameter[k]}``."""
        k = self._k(k)
        return {name: param[k] for name, param in self.named_parameters(recurse=False)}

    def _theta(self, k, theta):
        return self.layer_parameters(k) if theta is None else theta

    def vjp(
        self, k: int, z: torch.Tensor, p: torch.Tensor, theta: dict | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:math:`(\\partial_z f^T p, \\{\\text{name}: \\partial_{\\theta^k} f^T p\\})` at ``z``.

        The parameter products are summed over the batch (leading) dimensions; ``theta``
        defaults to :meth:`layer_parameters` ``(k)``. Computed by :func:`torch.func.vjp` of this
        one layer's field (the adjoints of Section 3, eqs. (26)-(28)).
        """
        theta = self._theta(k, theta)
        # [1]: the pullback (torch annotates vjp's result as a 2- or 3-tuple, for has_aux)
        pullback = torch.func.vjp(lambda v, th: self.field(k, v, th), z, theta)[1]
        return pullback(p)

    def weight_matrices(self) -> torch.Tensor:
        """The matrices :math:`A^k` entering :math:`\\sigma(A^k z + b^k)`, shape ``(K, M, M)``."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim={self.dim}, depth={self.depth}, activation={self.activation_name}"


def _randn(shape, std, factory):
    return torch.randn(*shape, **factory) * std


class PlainField(_LayeredField):
    r"""The ResNet field (8): :math:`f(z, \theta^k) = \sigma(A^k z + b^k)`.

    Parameters
    ----------
    dim, depth : int
        Feature dimension :math:`M` and number of layers :math:`K`.
    activation : str
        Name of :math:`\sigma` (see :func:`activation_antiderivative`), default ``"tanh"``.
    init_std : float
        Entries of :math:`A^k` are :math:`N(0, \text{init\_std}^2/M)`, of :math:`b^k`
        :math:`N(0, \text{init\_std}^2)`.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        activation: str = "tanh",
        init_std: float = 1.0,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(dim, depth, activation)
        std = _validate.nonnegative_real(init_std, "init_std")
        fk = {"device": device, "dtype": dtype}
        self.A = nn.Parameter(_randn((self.depth, self.dim, self.dim), std / self.dim**0.5, fk))
        self.b = nn.Parameter(_randn((self.depth, self.dim), std, fk))

    def weight_matrices(self) -> torch.Tensor:
        """The matrices :math:`A^k` of eq. (8), shape ``(K, M, M)``."""
        return self.A

    def _affine(self, theta):
        return theta["A"], theta["b"]

    def field(self, k: int, z: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """:math:`\\sigma(A^k z + b^k)`, eq. (8) (:func:`affine_field`)."""
        k, z = self._k(k), self._z(z)
        A, b = self._affine(self._theta(k, theta))
        return affine_field(z, A, b, self.sigma)

    def vjp(
        self, k: int, z: torch.Tensor, p: torch.Tensor, theta: dict | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The products of (8) in closed form, :func:`affine_field_vjp`."""
        A, b = self._affine(self._theta(k, theta))
        dz, dA, db = affine_field_vjp(z, A, b, self.sigma, p)
        return dz, {"A": dA, "b": db}


class DissipativeField(PlainField):
    r"""Eq. (8) with :math:`A(t) = S(t) - S(t)^T - \gamma I` (Section 2.1.1, Haber and Ruthotto).

    The skew part keeps the linear flow norm preserving, :math:`\gamma \ge 0` adds dissipation.
    The trainable parameters are :math:`S^k` (attribute ``S``) and :math:`b^k`; ``gamma`` is fixed.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        gamma: float = 0.1,
        activation: str = "tanh",
        init_std: float = 1.0,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        _LayeredField.__init__(self, dim, depth, activation)
        self.gamma_dissipation = _validate.nonnegative_real(gamma, "gamma")
        std = _validate.nonnegative_real(init_std, "init_std")
        fk = {"device": device, "dtype": dtype}
        self.S = nn.Parameter(_randn((self.depth, self.dim, self.dim), std / self.dim**0.5, fk))
        self.b = nn.Parameter(_randn((self.depth, self.dim), std, fk))

    def weight_matrices(self) -> torch.Tensor:
        """:math:`A^k = S^k - (S^k)^T - \\gamma I`, shape ``(K, M, M)``."""
        eye = torch.eye(self.dim, dtype=self.S.dtype, device=self.S.device)
        return self.S - self.S.mT - self.gamma_dissipation * eye

    @property
    def A(self) -> torch.Tensor:  # type: ignore[override]  # read-only: derived from S and gamma
        """The weight :math:`A^k = S^k - (S^k)^T - \\gamma I` of Section 2.1.1."""
        return self.weight_matrices()

    def _affine(self, theta):
        S = theta["S"]
        eye = torch.eye(self.dim, dtype=S.dtype, device=S.device)
        return S - S.mT - self.gamma_dissipation * eye, theta["b"]

    def vjp(
        self, k: int, z: torch.Tensor, p: torch.Tensor, theta: dict | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""Closed form (:func:`affine_field_vjp`); :math:`\partial_S = \partial_A - \partial_A^T`.

        Returns ``(dz, {"S": dS, "b": db})`` as :meth:`PlainField.vjp` does.
        """
        A, b = self._affine(self._theta(k, theta))
        dz, dA, db = affine_field_vjp(z, A, b, self.sigma, p)
        return dz, {"S": dA - dA.mT, "b": db}


class ReLUField(_LayeredField):
    r"""The model (15) of Zhang and Schaeffer: :math:`f = -A_2 \sigma(A_1 z + b_1) + b_2`.

    :math:`A_1^k` is ``(width, M)``, :math:`A_2^k` is ``(M, width)``; :math:`\sigma` defaults to
    ReLU.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        width: int | None = None,
        activation: str = "relu",
        init_std: float = 1.0,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(dim, depth, activation)
        self.width = self.dim if width is None else _validate.positive_int(width, "width")
        std = _validate.nonnegative_real(init_std, "init_std")
        fk = {"device": device, "dtype": dtype}
        K, M, W = self.depth, self.dim, self.width
        self.A1 = nn.Parameter(_randn((K, W, M), std / M**0.5, fk))
        self.b1 = nn.Parameter(_randn((K, W), std, fk))
        self.A2 = nn.Parameter(_randn((K, M, W), std / W**0.5, fk))
        self.b2 = nn.Parameter(_randn((K, M), 0.1 * std, fk))

    def field(self, k: int, z: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """:math:`-A_2^k \\sigma(A_1^k z + b_1^k) + b_2^k`, eq. (15)."""
        k, z = self._k(k), self._z(z)
        th = self._theta(k, theta)
        return -affine_field(z, th["A1"], th["b1"], self.sigma) @ th["A2"].mT + th["b2"]


class GradientField(_LayeredField):
    r"""The gradient-flow model (16): :math:`f(z, \theta^k) = -(A^k)^T \sigma(A^k z + b^k)`.

    It is :math:`-\nabla_z V` for the potential :math:`V = \gamma(A z + b) \cdot \mathbf 1`
    with :math:`\gamma' = \sigma` (:meth:`potential`). By Theorem 2.1 (2), for
    :math:`0 \le \sigma' \le 1` it has one-sided Lipschitz constant
    :math:`-\mu_*^2 \le \nu \le 0`.

    Parameters
    ----------
    dim, depth : int
        Feature dimension :math:`M` and number of layers :math:`K`.
    width : int or None
        Number of rows of :math:`A^k` (default :math:`M`, a square matrix).
    activation : str
        Name of :math:`\sigma`, default ``"tanh"``.

    Attributes
    ----------
    A : torch.nn.Parameter
        Shape ``(K, width, M)``.
    b : torch.nn.Parameter
        Shape ``(K, width)``.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        width: int | None = None,
        activation: str = "tanh",
        init_std: float = 1.0,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(dim, depth, activation)
        self.width = self.dim if width is None else _validate.positive_int(width, "width")
        std = _validate.nonnegative_real(init_std, "init_std")
        fk = {"device": device, "dtype": dtype}
        self.A = nn.Parameter(_randn((self.depth, self.width, self.dim), std / self.dim**0.5, fk))
        self.b = nn.Parameter(_randn((self.depth, self.width), std, fk))

    def weight_matrices(self) -> torch.Tensor:
        """The matrices :math:`A^k` of eq. (16), shape ``(K, width, M)``."""
        return self.A

    def field(self, k: int, z: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """:math:`-(A^k)^T \\sigma(A^k z + b^k)`, eq. (16)."""
        k, z = self._k(k), self._z(z)
        th = self._theta(k, theta)
        return -affine_field(z, th["A"], th["b"], self.sigma) @ th["A"]

    def potential(self, k: int, z: torch.Tensor) -> torch.Tensor:
        r"""The potential :math:`V(z) = \gamma(A^k z + b^k) \cdot \mathbf 1` of eq. (16).

        Returns shape ``z.shape[:-1]``.
        """
        k, z = self._k(k), self._z(z)
        if self.gamma is None:
            raise ValueError(f"no antiderivative stored for activation {self.activation_name!r}")
        return self.gamma(z @ self.A[k].mT + self.b[k]).sum(-1)


class HamiltonianField(_LayeredField):
    r"""Hamiltonian models of Chang et al. (Section 2.1.2), :math:`u = (z, p) \in \mathbb R^{2M}`.

    .. math::

        \dot z = \partial_p T = A_1^T \sigma_1(A_1 p + b_1), \qquad
        \dot p = -\partial_z V = -A_2^T \sigma_2(A_2 z + b_2), \qquad (18)-(19)

    with :math:`T = \gamma_1(A_1 p + b_1) \cdot \mathbf 1`,
    :math:`V = \gamma_2(A_2 z + b_2) \cdot \mathbf 1`.

    Parameters
    ----------
    variant : {"second_order", "two_layer"}
        ``"second_order"``: :math:`\sigma_1(s) = s`, :math:`A_1 = I`, :math:`b_1 = 0`, so that
        :math:`\dot z = p` and :math:`\ddot z = -A_2^T \sigma(A_2 z + b_2)` (:meth:`acceleration`).
        ``"two_layer"``: :math:`\sigma_1 = \sigma_2 = \sigma` with trainable :math:`A_1, b_1`.
    activation : str
        Name of :math:`\sigma = \sigma_2` (default ``"tanh"``).
    """

    phase_space = True

    def __init__(
        self,
        dim: int,
        depth: int,
        variant: str = "second_order",
        activation: str = "tanh",
        init_std: float = 1.0,
        device: Device = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(dim, depth, activation)
        if variant not in ("second_order", "two_layer"):
            raise ValueError(f"variant must be 'second_order' or 'two_layer', got {variant!r}")
        self.variant = variant
        std = _validate.nonnegative_real(init_std, "init_std")
        fk = {"device": device, "dtype": dtype}
        K, M = self.depth, self.dim
        self.A2 = nn.Parameter(_randn((K, M, M), std / M**0.5, fk))
        self.b2 = nn.Parameter(_randn((K, M), std, fk))
        if variant == "two_layer":
            self.A1 = nn.Parameter(_randn((K, M, M), std / M**0.5, fk))
            self.b1 = nn.Parameter(_randn((K, M), std, fk))

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """Features :math:`x` to the phase-space state :math:`(z, p) = (x, 0)`."""
        self._z(x, self.dim)
        return torch.cat([x, torch.zeros_like(x)], -1)

    def project(self, u: torch.Tensor) -> torch.Tensor:
        """The position part :math:`z` of :math:`u = (z, p)`."""
        return u[..., : self.dim]

    def dT(self, k: int, p: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """:math:`\\partial_p T(t^k, p)` of eq. (18)."""
        k = self._k(k)
        self._z(p, self.dim)
        if self.variant == "second_order":
            return p
        th = self._theta(k, theta)
        return affine_field(p, th["A1"], th["b1"], self.sigma) @ th["A1"]

    def dV(self, k: int, z: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """:math:`\\partial_z V(t^k, z)` of eq. (19)."""
        k = self._k(k)
        self._z(z, self.dim)
        th = self._theta(k, theta)
        return affine_field(z, th["A2"], th["b2"], self.sigma) @ th["A2"]

    def acceleration(self, k: int, z: torch.Tensor) -> torch.Tensor:
        """The second-order form :math:`\\ddot z = -A_2^T \\sigma(A_2 z + b_2)` (Section 2.1.2)."""
        return -self.dV(k, z)

    def hamiltonian(self, k: int, u: torch.Tensor) -> torch.Tensor:
        """:math:`H(t^k, z, p) = T(t^k, p) + V(t^k, z)`, shape ``u.shape[:-1]``."""
        k, u = self._k(k), self._z(u)
        if self.gamma is None:
            raise ValueError(f"no antiderivative stored for activation {self.activation_name!r}")
        z, p = u[..., : self.dim], u[..., self.dim :]
        V = self.gamma(z @ self.A2[k].mT + self.b2[k]).sum(-1)
        if self.variant == "second_order":
            return 0.5 * (p * p).sum(-1) + V
        return self.gamma(p @ self.A1[k].mT + self.b1[k]).sum(-1) + V

    def field(self, k: int, u: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """:math:`(\\partial_p T, -\\partial_z V)` at :math:`u = (z, p)`, eqs. (18)-(19)."""
        k, u = self._k(k), self._z(u)
        z, p = u[..., : self.dim], u[..., self.dim :]
        return torch.cat([self.dT(k, p, theta), -self.dV(k, z, theta)], -1)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", variant={self.variant}"


def frozen_field(field: _LayeredField, k: int) -> Callable[[float, torch.Tensor], torch.Tensor]:
    r"""Layer ``k`` of a field as an autonomous field :math:`f(t, z) = f(z, \theta^k)` (§2.1).

    The parameters of layer :math:`k` are frozen, so the ODE (7) becomes autonomous; the result
    takes ``(t, z)`` (``t`` ignored), the signature of :func:`~spdl_ref.ode.rk_step` and
    :func:`~spdl_ref.ode.odeint`, so that the integrators of Section 2.2 can be compared on one
    layer.

    Examples
    --------
    >>> field = GradientField(2, 3, dtype=torch.float64)
    >>> z = torch.ones(4, 2, dtype=torch.float64)
    >>> torch.equal(frozen_field(field, 1)(0.7, z), field(1, z))
    True
    """
    if not isinstance(field, _LayeredField):
        raise TypeError(f"field must be a field of spdl_ref.ode.fields, got {type(field).__name__}")
    k = field._k(k)

    def f(t: float, z: torch.Tensor) -> torch.Tensor:
        return field(k, z)

    return f
