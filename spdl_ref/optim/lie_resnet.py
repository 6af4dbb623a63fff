r"""A ResNet whose weights evolve on a Lie group along the depth, eqs. (58)-(59), Section 6.2.1.

Section 6.2.1 lets the parameters of the ODE (7) follow an ODE of their own,

.. math::

    \dot z = f(z, \theta), \qquad \dot\theta = M(t)\,\theta, \qquad M(t) \in \mathfrak{so}(n),

so that :math:`\theta(t)` stays on :math:`SO(n)` for every :math:`t` and the optimisation runs
over the generator :math:`M`, an element of a linear space. :class:`LieGroupResNet` discretises the
pair: forward Euler for (58) with the field (8), and the Lie--Euler step (59)
:math:`\theta^{k+1} = \phi(hM^k)\theta^k` (:math:`\phi = \exp`, or the Cayley map) for the
weights, exact for a piecewise-constant :math:`M`. Every layer's weight is then orthogonal to
round-off, whatever values :math:`M^k` takes. :func:`fit_orthogonal_resnet` trains it next to an
unconstrained :class:`~spdl_ref.ode.ResNet` started from the same weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import _validate
from ..loop import History, train_loop
from ..ode import ClassifierHead, LayeredNetwork, ResNet, butcher_tableau, network_states
from ..ode.fields import affine_field
from .riemannian import RETRACTIONS, StiefelSGD, cayley, expm, random_stiefel, stiefel_error

__all__ = ["LieGroupResNet", "fit_orthogonal_resnet"]

KINDS = ("lie", "free")


def _random_rotation(
    n: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    r"""A random point of :math:`SO(n)`: a uniform orthogonal matrix with one column's sign
    flipped where its determinant is :math:`-1` (Section 6.2.1)."""
    Q = random_stiefel(n, n, generator=generator, device=device, dtype=dtype)
    if torch.linalg.det(Q) < 0:
        Q = torch.cat([-Q[:, :1], Q[:, 1:]], dim=1)
    return Q


class LieGroupResNet(LayeredNetwork):
    r"""ResNet (58) with weights on :math:`SO(n)` that evolve by (59) along the depth.

    .. math::

        z^{k+1} = z^k + h\,\sigma(\theta^k z^k + b^k), \qquad
        \theta^{k+1} = \phi(hM^k)\,\theta^k, \qquad M^k = W^k - (W^k)^T \in \mathfrak{so}(n),

    for :math:`k = 0, \dots, K-1`, :math:`h = T/K`, with :math:`\theta^0 \in SO(n)`. The trainable
    parameters are ``theta0`` (:math:`\theta^0`, shape ``(n, n)``, to be trained on
    :math:`SO(n)`, e.g. with :class:`~spdl_ref.optim.StiefelSGD`), ``W`` (shape
    ``(K - 1, n, n)``, unconstrained: only its skew part :math:`M^k` acts) and ``b`` (shape
    ``(K, n)``). :math:`\phi` is :func:`~spdl_ref.optim.expm` (``retraction="exp"``) or
    :func:`~spdl_ref.optim.cayley`; both map :math:`\mathfrak{so}(n)` into :math:`SO(n)`.

    The states come from :func:`~spdl_ref.ode.network_states` (explicit Euler, the field (8)
    with :math:`A^k = \theta^k`), with the weights :meth:`weights` computed once per pass.
    Because :math:`\theta^k` depends on :math:`\theta^0, M^0, \dots, M^{k-1}`, the parameters are
    not owned layer by layer, so the layer-by-layer adjoints of Section 3 refuse this network
    (they raise :class:`TypeError`); it is trained by automatic differentiation.

    Parameters
    ----------
    dim : int
        The state dimension :math:`n`.
    depth : int
        The number of layers :math:`K \ge 1`.
    T : float
        The final time; :math:`h = T/K`.
    activation : callable
        :math:`\sigma` (default :func:`torch.tanh`).
    retraction : {"exp", "cayley"}
        The map :math:`\phi`.
    init_std : float
        Entries of :math:`W^k` and :math:`b^k` are drawn from :math:`N(0, \text{init\_std}^2/n)`
        and :math:`N(0, \text{init\_std}^2)`; :math:`\theta^0` is a random rotation.
    generator : torch.Generator or None
        Source of the initial parameters (drawn on the CPU, then moved to ``device``).
    device, dtype
        Of the parameters.

    Examples
    --------
    >>> net = LieGroupResNet(3, depth=4, generator=torch.Generator().manual_seed(0))
    >>> net(torch.ones(5, 3)).shape
    torch.Size([5, 3])
    >>> bool(net.constraint_error() < 1e-5)
    True
    """

    integrator = butcher_tableau("explicit_euler")

    def __init__(
        self,
        dim: int,
        depth: int,
        T: float = 1.0,
        activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh,
        retraction: str = "exp",
        init_std: float = 1.0,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.dim = _validate.positive_int(dim, "dim")
        self.depth = _validate.positive_int(depth, "depth")
        self.T = _validate.positive_real(T, "T")
        if not callable(activation):
            raise TypeError(f"activation must be callable, got {type(activation).__name__}")
        self.activation = activation
        self.retraction = _validate.choice(retraction, RETRACTIONS, "retraction")
        init_std = _validate.nonnegative_real(init_std, "init_std")
        _validate.generator(generator)
        dtype = _validate.float_dtype(dtype) or torch.get_default_dtype()
        n, K = self.dim, self.depth
        theta0 = _random_rotation(n, generator=generator, dtype=dtype)
        W = torch.randn(K - 1, n, n, generator=generator, dtype=dtype) * (init_std / n**0.5)
        b = torch.randn(K, n, generator=generator, dtype=dtype) * init_std
        self.theta0 = nn.Parameter(theta0.to(device))
        self.W = nn.Parameter(W.to(device))
        self.b = nn.Parameter(b.to(device))
        self._weights: torch.Tensor | None = None

    @property
    def h(self) -> float:
        """The step size :math:`h = T/K`."""
        return self.T / self.depth

    def step_size(self, k: int) -> float:
        """The step :math:`h_k = h` of layer ``k``."""
        return self.h

    def generators(self) -> torch.Tensor:
        r"""The generators :math:`M^k = W^k - (W^k)^T \in \mathfrak{so}(n)` of (59), shape
        ``(K - 1, n, n)``."""
        return self.W - self.W.mT

    def weights(self) -> torch.Tensor:
        r"""The layer weights :math:`\theta^0, \dots, \theta^{K-1}` of (59), shape ``(K, n, n)``."""
        phi = expm if self.retraction == "exp" else cayley
        steps = phi(self.h * self.generators())
        theta: list[torch.Tensor] = [self.theta0]
        for Q in steps:
            theta.append(Q @ theta[-1])
        return torch.stack(theta)

    def constraint_error(self) -> torch.Tensor:
        r""":math:`\max_k \|(\theta^k)^T\theta^k - I\|_F` (zero to round-off on :math:`SO(n)`)."""
        with torch.no_grad():
            return stiefel_error(self.weights()).max()

    def layer_parameters(self, k: int) -> dict:
        r""":math:`\theta^k` and :math:`b^k` of layer ``k``: ``{"A": theta^k, "b": b[k]}``."""
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.depth:
            raise ValueError(f"k must be in [0, {self.depth - 1}], got {k!r}")
        weights = self.weights() if self._weights is None else self._weights
        return {"A": weights[k], "b": self.b[k]}

    def field(self, k: int, z: torch.Tensor, theta: dict | None = None) -> torch.Tensor:
        r"""The field (8) of layer ``k``, :math:`\sigma(\theta^k z + b^k)` (eq. (58))."""
        theta = self.layer_parameters(k) if theta is None else theta
        return affine_field(z, theta["A"], theta["b"], self.activation)

    def states(self, x: torch.Tensor) -> list:
        """The states :math:`z^0, \\dots, z^K` by :func:`~spdl_ref.ode.network_states`, with the
        weights (59) computed once."""
        self._weights = self.weights()
        try:
            return network_states(self, x)
        finally:
            self._weights = None

    def trajectory(self, x: torch.Tensor) -> torch.Tensor:
        """Every state :math:`z^0, \\dots, z^K` stacked, shape ``(K + 1, ...)``."""
        return torch.stack(self.states(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`z^K` for inputs ``x`` of shape ``(..., n)``."""
        return self.states(x)[-1]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, depth={self.depth}, T={self.T}, retraction={self.retraction}"


def fit_orthogonal_resnet(
    kind: str,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    depth: int = 8,
    T: float = 2.0,
    steps: int = 300,
    lr: float = 0.02,
    lr_manifold: float = 0.05,
    seed: int = 0,
) -> tuple[nn.Module, History]:
    r"""Train a classifier :math:`\eta\circ\Psi` with weights on :math:`SO(n)` or free (Section
    6.2.1).

    Both kinds start from the same network: :class:`LieGroupResNet` with ``seed`` and its
    weights :math:`\theta^k \in SO(n)`, followed by a :class:`~spdl_ref.ode.ClassifierHead`.

    * ``"lie"``: the network of (58)-(59); :math:`\theta^0` is trained by
      :class:`~spdl_ref.optim.StiefelSGD` (step ``lr_manifold``), the generators :math:`W`,
      the biases and the head by Adam (step ``lr``).
    * ``"free"``: a :class:`~spdl_ref.ode.ResNet` whose weights :math:`A^k` start at the same
      :math:`\theta^k` but are trained by Adam without constraint, as is everything else.

    The objective is the mean of :math:`\frac12(\eta(\Psi(x_n)) - y_n)^2` with the signs
    :math:`y_n = \pm 1` of ``labels``, minimised for ``steps`` full-batch steps by
    :func:`~spdl_ref.train.train_loop`. ``x`` has shape ``(N, n)``, ``labels`` shape ``(N,)`` with
    values in :math:`\{0, 1\}`, on one device; the models are built there in ``x``'s dtype.

    Returns
    -------
    model : torch.nn.Sequential
        The trained network and head.
    history : History
        ``loss`` before each step and ``series["constraint_error"]``:
        :math:`\max_k\|(\theta^k)^T\theta^k - I\|_F` of the weights after each step.
    """
    kind = _validate.choice(kind, KINDS, "kind")
    _validate.floating_tensor(x, "x")
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, n), got {tuple(x.shape)}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(labels.shape)}")
    steps = _validate.positive_int(steps, "steps")
    lr = _validate.positive_real(lr, "lr")
    lr_manifold = _validate.positive_real(lr_manifold, "lr_manifold")
    seed = _validate.nonnegative_int(seed, "seed")
    n, device, dtype = x.shape[1], x.device, x.dtype
    gen = torch.Generator().manual_seed(seed)
    lie = LieGroupResNet(n, depth, T=T, generator=gen, device=device, dtype=dtype)
    head = ClassifierHead(n, 1, device=device, dtype=dtype)
    with torch.no_grad():
        head.linear.weight.copy_(torch.randn(1, n, generator=gen, dtype=dtype) / n**0.5)
        head.linear.bias.zero_()
    y = (2.0 * labels - 1.0).to(dtype)[:, None]
    net: nn.Module
    weights: Callable[[], torch.Tensor]
    opts: list[torch.optim.Optimizer]
    if kind == "lie":
        net = lie
        weights = lie.weights
        euclidean = [lie.W, lie.b, *head.parameters()]
        opts = [StiefelSGD([lie.theta0], lr=lr_manifold), torch.optim.Adam(euclidean, lr=lr)]
    else:
        free = ResNet(n, depth, T=T, init_std=0.0, device=device, dtype=dtype)
        with torch.no_grad():
            free.A.copy_(lie.weights())
            free.b.copy_(lie.b)
        net = free
        weights = free.A.detach
        opts = [torch.optim.Adam([*free.parameters(), *head.parameters()], lr=lr)]
    model = nn.Sequential(net, head)

    def objective(_):
        return 0.5 * (model(x) - y).pow(2).mean()

    def constraint(i, history):
        with torch.no_grad():
            history.record(constraint_error=stiefel_error(weights()).max().item())

    history = train_loop(model, objective, iterations=steps, optimizer=opts, callbacks=[constraint])
    return model, history
