"""The residual network of Section 1.2 as forward Euler for an ODE.

The ResNet (5) updates features by ``z^{k+1} = z^k + σ(A^k z^k + b^k)``. With a step size
``h = T/K`` this is eq. (6), the forward Euler discretisation of the ODE (7),
``ż = f(z, θ)`` with the field (8) ``f(z, θ) = σ(A z + b)`` and ``θ = (A, b)`` piecewise
constant in time. The review's (5) is the special case ``T = K`` (so ``h = 1``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import _validate

__all__ = ["ClassifierHead", "ResNet"]


class ResNet(nn.Module):
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
    device, dtype
        Where the parameters live, as for any PyTorch module.

    Attributes
    ----------
    A : torch.nn.Parameter
        The weights :math:`A^k`, shape ``(K, M, M)``.
    b : torch.nn.Parameter
        The biases :math:`b^k`, shape ``(K, M)``.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        T: float = 1.0,
        activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
        init_std: float = 1.0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.dim = _validate.positive_int(dim, "dim")
        self.depth = _validate.positive_int(depth, "depth")
        self.T = _validate.positive_real(T, "T")
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {type(activation).__name__}")
        self.activation = activation
        init_std = _validate.nonnegative_real(init_std, "init_std")
        factory = {"device": device, "dtype": dtype}
        K, M = self.depth, self.dim
        self.A = nn.Parameter(torch.randn(K, M, M, **factory) * (init_std / M**0.5))
        self.b = nn.Parameter(torch.randn(K, M, **factory) * init_std)

    @property
    def h(self) -> float:
        """The step size :math:`h = T / K`."""
        return self.T / self.depth

    @property
    def times(self) -> torch.Tensor:
        """The grid :math:`t^k = k h`, :math:`k = 0, \\dots, K`, shape ``(K + 1,)``."""
        return torch.linspace(0.0, self.T, self.depth + 1, dtype=self.A.dtype, device=self.A.device)

    def field(self, k: int, z: torch.Tensor) -> torch.Tensor:
        """The vector field (8) of layer ``k``: :math:`f(z, \\theta^k) = \\sigma(A^k z + b^k)`."""
        if not 0 <= k < self.depth:
            raise ValueError(f"k must be in [0, {self.depth - 1}], got {k}")
        return self.activation(z @ self.A[k].mT + self.b[k])

    def field_vjp(self, k: int, z: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """The costate product :math:`(\\partial_z f(z, \\theta^k))^T p` of eqs. (10) and (12).

        Computed by reverse-mode differentiation of :meth:`field` at ``z``; ``z`` and ``p`` have
        the same shape ``(..., M)``.
        """
        self._check_input(z, "z")
        self._check_input(p, "p")
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            (out,) = torch.autograd.grad(self.field(k, z), z, grad_outputs=p)
        return out

    def costates(self, x: torch.Tensor, p_K: torch.Tensor) -> list:
        """Discrete costates :math:`p^0, \\dots, p^K` of the adjoint equation (12), backwards.

        Runs :math:`p^k = p^{k+1} + h\\,(\\partial_z f(z^k, \\theta^k))^T p^{k+1}` from the
        terminal value ``p_K``, i.e. :math:`(p^{k+1} - p^k)/h = -(\\partial_z f)^T p^{k+1}`, the
        sign that :math:`\\dot p = -\\partial_z H` of (10) gives (the review's (12) prints a
        plus sign; see the errata). With ``p_K`` the derivative of a loss with respect to
        :math:`z^K`, :math:`p^k` is the derivative of that loss with respect to :math:`z^k`,
        as backpropagation computes it. ``x`` and ``p_K`` have shape ``(..., M)``.
        """
        self._check_input(p_K, "p_K")
        with torch.no_grad():
            states = self.states(x)
        if p_K.shape != states[-1].shape:
            raise ValueError(
                f"p_K must have the shape of the features {tuple(states[-1].shape)}, got {tuple(p_K.shape)}"
            )
        p = [p_K]
        for k in reversed(range(self.depth)):
            p.insert(0, p[0] + self.h * self.field_vjp(k, states[k], p[0]))
        return p

    def layer_jacobian(self, k: int, z: torch.Tensor) -> torch.Tensor:
        """Jacobian of layer ``k``'s map :math:`z \\mapsto z + h f(z, \\theta^k)` of eq. (6).

        For ``z`` of shape ``(N, M)`` returns ``(N, M, M)``. Where its determinant is negative
        the layer reverses orientation, so the forward Euler step is not a homeomorphism there.
        """
        self._check_input(z, "z")
        if z.dim() != 2:
            raise ValueError(f"z must have shape (N, {self.dim}), got {tuple(z.shape)}")
        h = self.h

        def step(v):
            return v + h * self.field(k, v)

        return torch.func.vmap(torch.func.jacrev(step))(z)

    @classmethod
    def from_control(cls, A, b, depth: int, T: float = 1.0, activation=torch.tanh, dtype=None):
        """A ResNet whose parameters sample a control :math:`\\theta(t) = (A(t), b(t))`.

        Sets :math:`A^k = A(t^k)` and :math:`b^k = b(t^k)` with :math:`t^k = k T / K`, so that
        the network is the forward Euler discretisation (6) of the ODE (7) for that control;
        refining ``depth`` then approaches the exact flow. ``A(t)`` must return an ``(M, M)``
        tensor and ``b(t)`` an ``(M,)`` tensor for a float ``t``.
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
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must have a floating-point dtype, got {x.dtype}")
        return _validate.last_dim(x, self.dim, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return :math:`z^K = \\Psi(x, \\theta)` for inputs ``x`` of shape ``(..., M)``."""
        z = self._check_input(x)
        h = self.h
        for k in range(self.depth):
            z = z + h * self.field(k, z)
        return z

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        """Return every layer :math:`z^0, \\dots, z^K` stacked, shape ``(K + 1, ...)``.

        For inputs of shape ``(N, M)`` the result has shape ``(K + 1, N, M)``; its last entry
        equals :meth:`forward`.
        """
        return torch.stack(self.states(x))

    def states(self, x: torch.Tensor) -> list:
        """The list :math:`[z^0, \\dots, z^K]` of the features after each layer.

        Unlike :meth:`trajectory` the entries are the tensors of the autograd graph, so the
        derivative of a loss with respect to each :math:`z^k` (the discrete costate) can be
        taken with :func:`torch.autograd.grad`.
        """
        z = self._check_input(x)
        out = [z]
        h = self.h
        for k in range(self.depth):
            z = z + h * self.field(k, z)
            out.append(z)
        return out

    def extra_repr(self) -> str:
        act = getattr(self.activation, "__name__", type(self.activation).__name__)
        return f"dim={self.dim}, depth={self.depth}, T={self.T}, h={self.h:g}, activation={act}"


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

    def __init__(self, dim: int, out_features: int, activation=None, device=None, dtype=None):
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
