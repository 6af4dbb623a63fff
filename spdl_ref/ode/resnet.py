"""The residual network of Section 1.2 as forward Euler for an ODE, and its variable-step form (38).

The ResNet (5) updates features by ``z^{k+1} = z^k + σ(A^k z^k + b^k)``. With a step size
``h = T/K`` this is eq. (6), the forward Euler discretisation of the ODE (7),
``ż = f(z, θ)`` with the field (8) ``f(z, θ) = σ(A z + b)`` and ``θ = (A, b)`` piecewise
constant in time. The review's (5) is the special case ``T = K`` (so ``h = 1``). Section 3.2's
ResNet with a learnt step per layer, eq. (38), is :class:`VariableStepResNet`; it lives here
because it is a layered network like the others (it is also importable from
:mod:`spdl_ref.control`, where its regulariser (39) and training are).

Both are :class:`~spdl_ref.ode.LayeredNetwork` s: their states come from
:func:`~spdl_ref.ode.network_states` with the explicit Euler tableau, and the field (8) and its
vector-Jacobian products are :func:`~spdl_ref.ode.fields.affine_field` and
:func:`~spdl_ref.ode.fields.affine_field_vjp`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from .. import _validate
from .fields import affine_field, affine_field_vjp
from .layered import LayeredNetwork, layer_step
from .runge_kutta import butcher_tableau

__all__ = ["ClassifierHead", "ResNet", "VariableStepResNet", "example_control"]

_EXPLICIT_EULER = butcher_tableau("explicit_euler")

_Net = TypeVar("_Net", bound="ResNet")


class ResNet(LayeredNetwork):
    r"""ResNet (5)/(6): forward Euler for :math:`\dot z = \sigma(A(t) z + b(t))`, eqs. (7)-(8).

    .. math::

        z^0 = x, \qquad z^{k+1} = z^k + h\,\sigma(A^k z^k + b^k), \qquad
        k = 0, \dots, K-1, \qquad h = T / K.

    Parameters
    ----------
    dim : int
        The feature dimension :math:`M` (input and output live in :math:`\mathbb{R}^M`).
    depth : int
        The number of layers :math:`K \ge 1`.
    T : float
        The final time :math:`T > 0`; the step size is :math:`h = T/K`.
    activation : callable
        The activation :math:`\sigma`, applied componentwise (default :func:`torch.tanh`).
    init_std : float
        Entries of :math:`A^k` are drawn from :math:`N(0, \text{init\_std}^2 / M)` and those
        of :math:`b^k` from :math:`N(0, \text{init\_std}^2)`; ``0`` starts from the identity map.
    generator : torch.Generator or None
        Draw the initial parameters from this generator (reproducible without touching the
        global random state); ``None`` uses the global generator.
    device, dtype
        Where the parameters live, as for any PyTorch module.

    Attributes
    ----------
    A : torch.nn.Parameter
        The weights :math:`A^k`, shape ``(K, M, M)``.
    b : torch.nn.Parameter
        The biases :math:`b^k`, shape ``(K, M)``.

    Notes
    -----
    A :class:`~spdl_ref.ode.LayeredNetwork` with the explicit Euler tableau, step size
    :math:`h_k = h` and layer parameters :math:`\theta^k = (A^k, b^k)`; the field (8) and its
    vector-Jacobian products are in closed form.

    Examples
    --------
    >>> net = ResNet(2, depth=4, T=2.0, generator=torch.Generator().manual_seed(0))
    >>> x = torch.zeros(3, 2)
    >>> z = net.trajectory(x)  # z^0, ..., z^K
    >>> tuple(z.shape), net.h
    ((5, 3, 2), 0.5)
    >>> bool(torch.allclose(z[1], x + net.h * torch.tanh(x @ net.A[0].T + net.b[0])))
    True
    """

    integrator = _EXPLICIT_EULER

    def __init__(
        self,
        dim: int,
        depth: int,
        T: float = 1.0,
        activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
        init_std: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim = _validate.positive_int(dim, "dim")
        self.depth = _validate.positive_int(depth, "depth")
        self.T = _validate.positive_real(T, "T")
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {type(activation).__name__}")
        self.activation = activation
        init_std = _validate.nonnegative_real(init_std, "init_std")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        K, M = self.depth, self.dim
        where = device if generator is None else generator.device
        A = torch.randn(K, M, M, generator=generator, dtype=dtype, device=where)
        A = A * (init_std / M**0.5)
        b = torch.randn(K, M, generator=generator, dtype=dtype, device=where) * init_std
        self.A = nn.Parameter(A.to(device))
        self.b = nn.Parameter(b.to(device))

    @property
    def h(self) -> float:
        """The step size :math:`h = T / K`."""
        return self.T / self.depth

    @property
    def times(self) -> torch.Tensor:
        """The grid :math:`t^k = k h`, :math:`k = 0, \\dots, K`, shape ``(K + 1,)``."""
        return torch.linspace(0.0, self.T, self.depth + 1, dtype=self.A.dtype, device=self.A.device)

    def step_size(self, k: int) -> float | torch.Tensor:
        """The step :math:`h_k = h = T/K` of layer ``k`` (eq. (6)).

        A float here; a 0-d tensor in :class:`VariableStepResNet`, whose steps are learnt (38).
        """
        return self.h

    def _layer(self, k):
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.depth:
            raise ValueError(f"k must be in [0, {self.depth - 1}], got {k!r}")
        return k

    def layer_parameters(self, k: int) -> dict:
        """The parameters :math:`\\theta^k = (A^k, b^k)` of layer ``k``: ``{"A": A[k], "b": b[k]}``.

        The slices of the parameters (their gradients flow back to ``A`` and ``b``).
        """
        k = self._layer(k)
        return {"A": self.A[k], "b": self.b[k]}

    def field(self, k: int, z: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        """The vector field (8) of layer ``k``: :math:`f(z, \\theta^k) = \\sigma(A^k z + b^k)`.

        ``theta`` (``{"A": ..., "b": ...}``) evaluates it at other parameters than the layer's.
        """
        theta = self.layer_parameters(k) if theta is None else theta
        return affine_field(z, theta["A"], theta["b"], self.activation)

    def vjp(
        self, k: int, z: torch.Tensor, p: torch.Tensor, theta: dict | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The vector-Jacobian products of the field (8) in closed form, eqs. (26)-(28).

        :math:`\\partial_z f^T p`, :math:`\\partial_A f^T p` and :math:`\\partial_b f^T p` by
        :func:`~spdl_ref.ode.fields.affine_field_vjp`. Returns ``(dz, {"A": dA, "b": db})``, the
        parameter products summed over the batch.
        """
        theta = self.layer_parameters(k) if theta is None else theta
        dz, dA, db = affine_field_vjp(z, theta["A"], theta["b"], self.activation, p)
        return dz, {"A": dA, "b": db}

    def field_vjp(self, k: int, z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The costate product :math:`(\\partial_z f(z, \\theta^k))^T p` of eqs. (10) and (12).

        ``z`` and ``p`` have the same shape ``(..., M)``.
        """
        self._check_input(z, "z")
        self._check_input(p, "p")
        return self.vjp(k, z, p)[0]

    def costates(self, x: torch.Tensor, p_K: torch.Tensor, *, printed_sign: bool = False) -> list:
        """Discrete costates :math:`p^0, \\dots, p^K` of the adjoint equation (12), backwards.

        Runs :math:`p^k = p^{k+1} + h_k\\,(\\partial_z f(z^k, \\theta^k))^T p^{k+1}` from the
        terminal value ``p_K``, i.e. :math:`(p^{k+1} - p^k)/h = -(\\partial_z f)^T p^{k+1}`, the
        sign that :math:`\\dot p = -\\partial_z H` of (10) gives (the review's (12) prints a
        plus sign; ``printed_sign=True`` runs that one, see the errata, E1). With ``p_K`` the
        derivative of a loss with respect to :math:`z^K`, :math:`p^k` is the derivative of that
        loss with respect to :math:`z^k`, as backpropagation computes it. ``x`` and ``p_K`` have
        shape ``(N, M)``. The recursion is :func:`spdl_ref.control.discrete_costates`.
        """
        return super().costates(x, p_K, printed_sign=printed_sign)

    def layer_jacobian(self, k: int, z: torch.Tensor) -> torch.Tensor:
        """Jacobian of layer ``k``'s map :math:`z \\mapsto z + h_k f(z, \\theta^k)` of eq. (6).

        For ``z`` of shape ``(N, M)`` returns ``(N, M, M)``. Where its determinant is negative
        the layer reverses orientation, so the forward Euler step is not a homeomorphism there.
        """
        self._check_input(z, "z")
        if z.dim() != 2:
            raise ValueError(f"z must have shape (N, {self.dim}), got {tuple(z.shape)}")
        k = self._layer(k)
        return torch.func.vmap(torch.func.jacrev(lambda v: layer_step(self, k, v)))(z)

    @classmethod
    def from_control(
        cls: type[_Net],
        A: Callable[[float], torch.Tensor],
        b: Callable[[float], torch.Tensor],
        depth: int,
        T: float = 1.0,
        activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
        dtype: torch.dtype | None = None,
    ) -> _Net:
        """A ResNet whose parameters sample a control :math:`\\theta(t) = (A(t), b(t))`.

        Sets :math:`A^k = A(t^k)` and :math:`b^k = b(t^k)` with :math:`t^k = k T / K`, so that
        the network is the forward Euler discretisation (6) of the ODE (7) for that control;
        refining ``depth`` then approaches the exact flow. ``A(t)`` must return an ``(M, M)``
        tensor and ``b(t)`` an ``(M,)`` tensor for a float ``t`` (e.g. :func:`example_control`).
        """
        if not callable(A) or not callable(b):
            raise TypeError("A and b must be callables of the time t")
        A0 = torch.as_tensor(A(0.0))
        if A0.dim() != 2 or A0.shape[0] != A0.shape[1]:
            raise ValueError(f"A(t) must return a square matrix, got shape {tuple(A0.shape)}")
        net = cls(
            A0.shape[0], depth, T=T, activation=activation, init_std=0.0, dtype=dtype or A0.dtype
        )
        with torch.no_grad():
            for k in range(net.depth):
                t = k * net.h
                Ak, bk = torch.as_tensor(A(t)), torch.as_tensor(b(t))
                if Ak.shape != A0.shape or bk.shape != (A0.shape[0],):
                    raise ValueError(
                        f"A(t) and b(t) must have shapes {tuple(A0.shape)} and ({A0.shape[0]},), "
                        f"got {tuple(Ak.shape)} and {tuple(bk.shape)} at t={t}"
                    )
                net.A[k] = Ak
                net.b[k] = bk
        return net

    def _check_input(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        _validate.floating_tensor(x, name)
        return _validate.last_dim(x, self.dim, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return :math:`z^K = \\Psi(x, \\theta)` for inputs ``x`` of shape ``(..., M)``."""
        return super().forward(x)

    def extra_repr(self) -> str:
        act = getattr(self.activation, "__name__", type(self.activation).__name__)
        return f"dim={self.dim}, depth={self.depth}, T={self.T}, h={self.h:g}, activation={act}"


class VariableStepResNet(ResNet):
    r"""ResNet with a learnt time step per layer, eq. (38).

    .. math::

        z^{k+1} = z^k + h^k \sigma(A^k z^k + b^k), \qquad k = 0, \dots, K-1.

    Same arguments and parameters as :class:`ResNet` plus ``steps`` :math:`= (h^k)`, shape ``(K,)``,
    initialised to the uniform :math:`T/K`, so :math:`\theta = (A^k, b^k, h^k)_k` as in Section
    3.2. :attr:`h` stays the nominal :math:`T/K`; the layers step with :meth:`step_size`
    :math:`= h^k`, and the adjoints of Section 3 return the gradient with respect to ``steps``
    too. The regulariser (39) and proximal-gradient training are in :mod:`spdl_ref.control`
    (which re-exports this class).
    """

    step_parameter = "steps"

    def __init__(self, dim: int, depth: int, T: float = 1.0, **kwargs: Any) -> None:
        super().__init__(dim, depth, T=T, **kwargs)
        self.steps = nn.Parameter(torch.full_like(self.b[:, 0], self.T / self.depth).detach())

    def step_size(self, k: int) -> torch.Tensor:
        """The learnt step :math:`h^k` of layer ``k`` (eq. (38)), a 0-d tensor."""
        return self.steps[k]

    def extra_repr(self) -> str:
        return super().extra_repr() + ", learnt steps"


def example_control(
    dtype: torch.dtype | None = torch.float64,
) -> tuple[Callable[[float], torch.Tensor], Callable[[float], torch.Tensor]]:
    r"""A smooth control :math:`\theta(t) = (A(t), b(t))` on :math:`\mathbb R^2` (Section 1.2).

    Returns the pair of callables

    .. math::

        A(t) = \begin{pmatrix} -1/2 & t - 2 \\ 2 & -\tfrac12 \cos t \end{pmatrix}, \qquad
        b(t) = (\sin 2t, 0.3),

    for :meth:`ResNet.from_control`: Chapter 1 watches the ResNet (6) that samples it converge,
    with order one, to the flow of the ODE (7) as the depth grows.
    """

    def A(t: float) -> torch.Tensor:
        return torch.tensor([[-0.5, t - 2.0], [2.0, -0.5 * math.cos(t)]], dtype=dtype)

    def b(t: float) -> torch.Tensor:
        return torch.tensor([math.sin(2 * t), 0.3], dtype=dtype)

    return A, b


class ClassifierHead(nn.Module):
    r"""The output layer :math:`\eta : \mathcal{X} \to \mathcal{Y}` of Section 1.2.

    An affine map :math:`\eta(z) = \varsigma(W z + \mu)` from features in
    :math:`\mathbb{R}^M` to outputs in :math:`\mathbb{R}^{M'}`, followed by an optional output
    activation :math:`\varsigma` (identity when ``None``). Composed with a ResNet it gives
    :math:`\tilde\Psi = \eta \circ \Psi` for when the output space differs from the feature
    space, e.g. ``torch.nn.Sequential(ResNet(2, 10), ClassifierHead(2, 1))``.

    Parameters
    ----------
    dim : int
        Feature dimension :math:`M`.
    out_features : int
        Output dimension :math:`M'` (e.g. the number of classes, or 1 for a signed score).
    activation : callable or None
        Output activation applied after the affine map.
    """

    def __init__(
        self,
        dim: int,
        out_features: int,
        activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.dim = _validate.positive_int(dim, "dim")
        self.out_features = _validate.positive_int(out_features, "out_features")
        if activation is not None and not callable(activation):
            raise TypeError(f"activation must be callable or None, got {type(activation).__name__}")
        self.activation = activation
        self.linear = nn.Linear(self.dim, self.out_features, device=device, dtype=dtype)

    @property
    def W(self) -> torch.Tensor:
        """The weight :math:`W`, shape ``(M', M)``."""
        return self.linear.weight

    @property
    def mu(self) -> torch.Tensor:
        """The bias :math:`\\mu`, shape ``(M',)``."""
        return self.linear.bias

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return :math:`\\eta(z)` for features ``z`` of shape ``(..., M)``."""
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}")
        _validate.last_dim(z, self.dim, "z")
        out = self.linear(z)
        return out if self.activation is None else self.activation(out)
