r"""ODE networks whose features live on a sphere (Sections 2.3 and 2.4.3).

Features are unit vectors :math:`z \in S^{n-1} \subset \mathbb R^n` (phases on :math:`S^1` for
:math:`n = 2`, directions on :math:`S^2`). A vector field on the sphere is tangent,
:math:`v(z) \perp z`, and can be written :math:`\dot z = \xi(z) z` with the skew matrix
:math:`\xi(z) = v(z) z^T - z v(z)^T \in \mathfrak{so}(n)`. Two integrators:

* the Lie–Euler method :math:`z^{k+1} = \exp(h\,\xi(z^k))\, z^k` multiplies by a rotation, so
  :math:`|z^k| = 1` to round-off (:func:`sphere_step` with ``method="lie"``, in closed form:
  :math:`\xi` has rank two);
* forward Euler :math:`z^{k+1} = z^k + h\,v(z^k)` leaves the sphere:
  :math:`|z^{k+1}|^2 = 1 + h^2|v|^2`.

Two fields (:func:`sphere_field`): the projection of a two-layer field onto the tangent space,
:math:`v = (I - zz^T) C^T\sigma(Az + b)`, and the Riemannian gradient flow of
:math:`V(z) = \gamma(Az + b)\cdot\mathbf 1` (:math:`\gamma' = \sigma`), the analogue of (16) on the
sphere that Section 2.4.3 proposes: :math:`v = -(I - zz^T)A^T\sigma(Az + b)`, along which
:math:`V` decreases. :class:`SphereODENet` stacks :math:`K` such layers, as the ResNet (6) does
in :math:`\mathbb R^M`.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _validate
from .fields import activation_antiderivative

__all__ = [
    "SphereODENet",
    "sphere_constraint",
    "sphere_field",
    "sphere_flow",
    "sphere_potential",
    "sphere_step",
    "tangent_projection",
]

FIELDS = ("projected", "gradient")
METHODS = ("lie", "euler")


def tangent_projection(z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    r"""The projection :math:`w - \frac{z \cdot w}{|z|^2} z` of ``w`` onto :math:`z^\perp` (§2.3).

    Section 2.3: on the unit sphere this is :math:`(I - zz^T)w`, the projection onto the tangent
    space at :math:`z`; off it, it keeps the field tangent to the sphere through :math:`z`, so that
    a forward Euler step changes :math:`|z|^2` by exactly :math:`h^2|v|^2`. ``z`` (nonzero) and
    ``w`` have shape ``(..., n)``.
    """
    _validate.floating_tensor(z, "z")
    _validate.floating_tensor(w, "w")
    if z.shape != w.shape:
        raise ValueError(
            f"z and w must have the same shape, got {tuple(z.shape)} and {tuple(w.shape)}"
        )
    return w - (z * w).sum(-1, keepdim=True) / (z * z).sum(-1, keepdim=True) * z


def sphere_constraint(z: torch.Tensor) -> torch.Tensor:
    r"""The constraint :math:`g(z) = |z|^2 - 1` of :math:`S^{n-1} = \{g = 0\}` (Section 2.3).

    Here :math:`g : \mathbb R^n \to \mathbb R`, so the sphere has dimension :math:`n - 1`.
    Returns shape ``z.shape[:-1]``.
    """
    _validate.floating_tensor(z, "z")
    if z.dim() == 0:
        raise ValueError("z must have a last dimension n")
    return (z * z).sum(-1) - 1


def _coefficients(theta):
    """:math:`\\sin\\vartheta/\\vartheta` and :math:`(1 - \\cos\\vartheta)/\\vartheta^2`, safely."""
    small = theta < 1e-4
    safe = torch.where(small, torch.ones_like(theta), theta)
    a = torch.where(small, 1 - theta**2 / 6, torch.sin(safe) / safe)
    b = torch.where(small, 0.5 - theta**2 / 24, (1 - torch.cos(safe)) / safe**2)
    return a, b


def sphere_step(z: torch.Tensor, v: torch.Tensor, h: float, method: str = "lie") -> torch.Tensor:
    r"""One step along the tangent field ``v`` at ``z``: Lie–Euler or forward Euler (§2.3).

    ``"lie"``: :math:`z' = \exp(h\xi)z` with :math:`\xi = vz^T - zv^T`, computed exactly from
    :math:`\exp(h\xi) = I + \tfrac{\sin\vartheta}{\vartheta}h\xi +
    \tfrac{1 - \cos\vartheta}{\vartheta^2}h^2\xi^2`,
    :math:`\vartheta = h(|z|^2|v|^2 - (z\cdot v)^2)^{1/2}` (a rotation, so :math:`|z'| = |z|`);
    ``"euler"``: :math:`z' = z + hv`. ``z`` and ``v`` have shape ``(..., n)``.
    """
    _validate.floating_tensor(z, "z")
    _validate.floating_tensor(v, "v")
    if z.shape != v.shape:
        raise ValueError(
            f"z and v must have the same shape, got {tuple(z.shape)} and {tuple(v.shape)}"
        )
    h = _validate.positive_real(h, "h")
    _validate.choice(method, METHODS, "method")
    if method == "euler":
        return z + h * v
    zz, vv, zv = (z * z).sum(-1, keepdim=True), (v * v).sum(-1, keepdim=True), (z * v).sum(-1, True)
    xi_z = v * zz - z * zv  # xi z
    xi2_z = v * (z * xi_z).sum(-1, keepdim=True) - z * (v * xi_z).sum(-1, keepdim=True)
    theta = h * (zz * vv - zv * zv).clamp_min(0).sqrt()
    a, b = _coefficients(theta)
    return z + a * h * xi_z + b * h * h * xi2_z


def sphere_field(
    z: torch.Tensor,
    A: torch.Tensor,
    b: torch.Tensor,
    C: torch.Tensor | None = None,
    activation: str = "tanh",
) -> torch.Tensor:
    r"""A tangent field on the sphere (Sections 2.3, 2.4.3), at states ``z`` of shape ``(..., n)``.

    With ``C``: :math:`v = (I - zz^T)C^T\sigma(Az + b)`, the projection of a two-layer field
    (``A`` and ``C`` of shape ``(W, n)``, ``b`` of shape ``(W,)``). Without: the Riemannian
    gradient field :math:`v = -(I - zz^T)A^T\sigma(Az + b) = -\operatorname{grad} V` of
    :math:`V = \gamma(Az + b)\cdot\mathbf 1`, the analogue of (16) on the sphere.
    """
    sigma = activation_antiderivative(activation)[0]
    _validate.floating_tensor(z, "z")
    for v, n in ((A, "A"), (b, "b")) + (() if C is None else ((C, "C"),)):
        _validate.floating_tensor(v, n)
    if A.dim() != 2 or b.shape != A.shape[:1] or (C is not None and C.shape != A.shape):
        raise ValueError(
            "A (and C) must have shape (W, n) and b shape (W,), got "
            f"{tuple(A.shape)}, {tuple(b.shape)}" + ("" if C is None else f", {tuple(C.shape)}")
        )
    _validate.last_dim(z, A.shape[-1], "z")
    s = sigma(z @ A.mT + b)
    w = -(s @ A) if C is None else s @ C
    return tangent_projection(z, w)


def sphere_potential(
    z: torch.Tensor, A: torch.Tensor, b: torch.Tensor, activation: str = "tanh"
) -> torch.Tensor:
    r"""The potential :math:`V(z) = \gamma(Az + b)\cdot\mathbf 1` of the gradient field (§2.4.3).

    :math:`\gamma' = \sigma`; returns shape ``z.shape[:-1]``.
    """
    gamma = activation_antiderivative(activation)[1]
    if gamma is None:
        raise ValueError(f"activation {activation!r} has no stored antiderivative")
    _validate.floating_tensor(z, "z")
    _validate.last_dim(z, A.shape[-1], "z")
    return gamma(z @ A.mT + b).sum(-1)


def sphere_flow(
    z0: torch.Tensor,
    A: torch.Tensor,
    b: torch.Tensor,
    h: float,
    steps: int,
    method: str = "lie",
    activation: str = "tanh",
) -> torch.Tensor:
    r"""Integrate the gradient flow of :math:`V` on the sphere (Section 2.4.3), fixed parameters.

    :math:`\dot z = -\operatorname{grad} V(z)` (:func:`sphere_field` without ``C``) with
    ``steps`` steps of :func:`sphere_step`. Returns the trajectory, shape
    ``(steps + 1, *z0.shape)``.

    Examples
    --------
    >>> A, b = torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    >>> z0 = torch.tensor([[0.6, 0.0, 0.8]], dtype=torch.float64)
    >>> path = sphere_flow(z0, A, b, 0.1, 50)
    >>> float((path.norm(dim=-1) - 1).abs().max()) < 1e-14
    True
    """
    _validate.tensor(z0, "z0")
    steps = _validate.nonnegative_int(steps, "steps")
    out = [z0]
    for _ in range(steps):
        out.append(sphere_step(out[-1], sphere_field(out[-1], A, b, None, activation), h, method))
    return torch.stack(out)


class SphereODENet(nn.Module):
    r"""An ODE network on the sphere :math:`S^{n-1}` (Sections 2.3 and 2.4.3).

    Layer :math:`k` takes one step of size :math:`h = T/K` along the tangent field
    :func:`sphere_field` with parameters :math:`(A^k, b^k, C^k)`, by the Lie–Euler method
    (the features stay on the sphere to round-off) or by forward Euler (they drift off).

    Parameters
    ----------
    dim : int
        The ambient dimension :math:`n \ge 2` (features on :math:`S^{n-1}`).
    depth : int
        Number of layers :math:`K`.
    T : float
        Final time; :math:`h = T / K`.
    width : int
        Rows :math:`W` of :math:`A^k` (and :math:`C^k`).
    field : {"projected", "gradient"}
        The projected two-layer field, or the Riemannian gradient field (no :math:`C^k`).
    method : {"lie", "euler"}
        The integrator of :func:`sphere_step`.
    activation : str
        :math:`\sigma`, by name (:func:`~spdl_ref.ode.fields.activation_antiderivative`).
    generator : torch.Generator or None
        Source of the initial parameters (entries :math:`N(0, 1/n)` for :math:`A^k`,
        :math:`N(0, 1/W)` for :math:`C^k`, :math:`N(0, 1)` for :math:`b^k`).

    Examples
    --------
    >>> net = SphereODENet(2, depth=4, T=1.0, generator=torch.Generator().manual_seed(0))
    >>> z = torch.tensor([[1.0, 0.0]])
    >>> bool((net(z).norm(dim=-1) - 1).abs().max() < 1e-6)
    True
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        T: float = 1.0,
        width: int = 8,
        field: str = "projected",
        method: str = "lie",
        activation: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim = _validate.positive_int(dim, "dim")
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2 (a sphere S^(dim-1)), got {dim}")
        self.depth = _validate.positive_int(depth, "depth")
        self.T = _validate.positive_real(T, "T")
        self.width = _validate.positive_int(width, "width")
        self.field = _validate.choice(field, FIELDS, "field")
        self.method = _validate.choice(method, METHODS, "method")
        activation_antiderivative(activation)
        self.activation = activation
        _validate.generator(generator)
        K, W, n = self.depth, self.width, self.dim
        g, dt = generator, dtype
        device = _validate.device(device)
        self.A = nn.Parameter((torch.randn(K, W, n, generator=g, dtype=dt) / n**0.5).to(device))
        self.b = nn.Parameter(torch.randn(K, W, generator=g, dtype=dt).to(device))
        if self.field == "projected":
            self.C = nn.Parameter((torch.randn(K, W, n, generator=g, dtype=dt) / W**0.5).to(device))

    @property
    def h(self) -> float:
        """The step size :math:`h = T / K`."""
        return self.T / self.depth

    def velocity(self, k: int, z: torch.Tensor) -> torch.Tensor:
        """The tangent field of layer ``k`` at ``z`` (:func:`sphere_field`)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.depth:
            raise ValueError(f"k must be an integer in [0, {self.depth - 1}], got {k!r}")
        C = self.C[k] if self.field == "projected" else None
        return sphere_field(z, self.A[k], self.b[k], C, self.activation)

    def trajectory(self, z: torch.Tensor) -> torch.Tensor:
        """The features :math:`z^0, \\dots, z^K`, shape ``(K + 1, *z.shape)``."""
        _validate.floating_tensor(z, "z")
        _validate.last_dim(z, self.dim, "z")
        _validate.like(z, self.A, "z", "SphereODENet")
        out = [z]
        for k in range(self.depth):
            out.append(sphere_step(out[-1], self.velocity(k, out[-1]), self.h, self.method))
        return torch.stack(out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The output :math:`z^K` for unit inputs ``z`` of shape ``(..., n)``."""
        return self.trajectory(z)[-1]

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, depth={self.depth}, T={self.T}, width={self.width}, "
            f"field={self.field}, method={self.method}"
        )
