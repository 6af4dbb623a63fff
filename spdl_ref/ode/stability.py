r"""Stability of ODE networks: Lipschitz and one-sided Lipschitz constants (Section 2.1).

Two nearby solutions obey (13), :math:`\|z_2(T) - z_1(T)\| \le C \|z_2(0) - z_1(0)\|`, with

* :math:`C = e^{TL}` when :math:`f` is Lipschitz with constant :math:`L`
  (for (8), :math:`L = L_\sigma \max_t \|A(t)\|`), see :func:`lipschitz_bound`;
* :math:`C = e^{T\nu}` under the one-sided Lipschitz condition (14),
  :math:`\langle f(z_2) - f(z_1), z_2 - z_1\rangle \le \nu \|z_2 - z_1\|^2`, see
  :func:`one_sided_lipschitz_pairs` and :func:`one_sided_lipschitz_jacobian` (sampled estimates,
  lower bounds on :math:`\nu`) and :func:`diagonal_nu_bound` (the bound
  :math:`\nu \le \sup_{t, D} \lambda_{\max}((DA + (DA)^T)/2)` over diagonal :math:`D` with entries
  in :math:`\sigma'(\mathbb R)`).

:func:`theorem21_interval` gives the interval :math:`[-\mu_*^2, 0]` of Theorem 2.1 (2), and
:func:`perturbation_growth` measures the ratio in (13) through a network.

:func:`gradient_flow_field` makes the field :math:`-\nabla V` of a potential (Theorem 2.1 (1)).
Bounds for trained networks and the frozen-time counterexample are in
:mod:`spdl_ref.ode.growth_bounds`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch

from .. import _validate

__all__ = [
    "contraction_ratios",
    "diagonal_nu_bound",
    "gradient_flow_field",
    "lipschitz_bound",
    "one_sided_lipschitz_jacobian",
    "one_sided_lipschitz_pairs",
    "perturbation_growth",
    "stability_constant",
    "theorem21_interval",
]


def _matrices(A, name="A"):
    _validate.tensor(A, name)
    A = A.detach()
    if A.dim() == 2:
        A = A.unsqueeze(0)
    if A.dim() != 3:
        raise ValueError(f"{name} must have shape (M', M) or (K, M', M), got {tuple(A.shape)}")
    return A


def _pairs(z1, z2):
    _validate.tensor(z1, "z1")
    _validate.tensor(z2, "z2")
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(
            f"z1 and z2 must have the same shape (N, M), got {tuple(z1.shape)}, {tuple(z2.shape)}"
        )
    _validate.like(z2, z1, "z2", "z1")


def lipschitz_bound(A: torch.Tensor, L_sigma: float = 1.0) -> float:
    r"""Lipschitz constant :math:`L = L_\sigma \max_k \|A^k\|_2` of the field (8) (Section 2.1).

    ``A`` has shape ``(M, M)`` or ``(K, M, M)`` (one matrix per layer); ``L_sigma`` is a
    Lipschitz constant of :math:`\sigma` (1 for tanh and ReLU).
    """
    A = _matrices(A)
    L_sigma = _validate.nonnegative_real(L_sigma, "L_sigma")
    return L_sigma * float(torch.linalg.matrix_norm(A, ord=2).max())


def stability_constant(L: float, T: float) -> float:
    r"""The constant :math:`C = e^{TL}` of (13) for a field with Lipschitz constant :math:`L`."""
    L = _validate.real(L, "L")
    T = _validate.nonnegative_real(T, "T")
    try:
        return math.exp(T * L)
    except OverflowError:
        raise ValueError(
            f"T * L must be at most 709 for e^(T L) to be a float, got {T * L:g}"
        ) from None


def one_sided_lipschitz_pairs(f: Callable, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    r"""The quotients :math:`\langle f(z_2) - f(z_1), z_2 - z_1\rangle / \|z_2 - z_1\|^2` of (14).

    ``z1`` and ``z2`` have shape ``(N, M)``; returns the ``N`` quotients. Their maximum is a lower
    bound on the one-sided Lipschitz constant :math:`\nu` of ``f``.
    """
    _validate.function(f, "f")
    _pairs(z1, z2)
    d = z2 - z1
    nd = (d * d).sum(-1)
    if bool((nd == 0).any()):
        raise ValueError("z1 and z2 must differ in every row")
    f1, f2 = f(z1), f(z2)
    for name, v in (("f(z1)", f1), ("f(z2)", f2)):
        if not isinstance(v, torch.Tensor) or v.shape != z1.shape:
            got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"f must map (N, M) to (N, M), but {name} has shape {got}")
    return ((f2 - f1) * d).sum(-1) / nd


def one_sided_lipschitz_jacobian(f: Callable, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\lambda_{\max}\big((Df(z) + Df(z)^T)/2\big)` at each row of ``z`` (shape ``(N, M)``).

    For a :math:`C^1` field, :math:`\nu = \sup_z \lambda_{\max}` of the symmetric part of its
    Jacobian satisfies (14) (Section 2.1); the maximum over samples is a lower estimate of that
    supremum. ``f`` must act row by row on ``(N, M)`` inputs.
    """
    _validate.function(f, "f")
    _validate.tensor(z, "z")
    if z.dim() != 2:
        raise ValueError(f"z must have shape (N, M), got {tuple(z.shape)}")
    Jf = torch.func.vmap(torch.func.jacrev(lambda v: f(v.unsqueeze(0)).squeeze(0)))(z)
    return torch.linalg.eigvalsh(0.5 * (Jf + Jf.mT))[..., -1].detach()


def diagonal_nu_bound(
    A: torch.Tensor,
    d_range: Sequence[float] = (0.0, 1.0),
    exact_max_dim: int = 12,
    samples: int = 4096,
    generator: torch.Generator | None = None,
) -> float:
    r"""The bound :math:`\sup_{k, D} \lambda_{\max}\big((DA^k + (DA^k)^T)/2\big)` of Section 2.1.

    The supremum runs over diagonal :math:`D` with entries in ``d_range`` :math:`\supseteq
    \sigma'(\mathbb R)` (e.g. ``(0, 1)`` for tanh, ReLU). Since
    :math:`\lambda_{\max}(\mathrm{sym}(DA)) = \max_{\|v\| = 1} v^T D A v` is convex in :math:`D`,
    the supremum over the box is attained at a vertex: all :math:`2^M` vertices are enumerated
    when :math:`M \le` ``exact_max_dim`` (exact), otherwise ``samples`` random vertices are
    tried (a lower estimate). ``A`` is ``(M, M)`` or ``(K, M, M)``.
    """
    A = _matrices(A)
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be square, got {tuple(A.shape[-2:])}")
    if not isinstance(d_range, (tuple, list)) or len(d_range) != 2:
        raise ValueError(f"d_range must be a pair (low, high), got {d_range!r}")
    lo, hi = (_validate.real(v, "d_range") for v in d_range)
    exact_max_dim = _validate.nonnegative_int(exact_max_dim, "exact_max_dim")
    _validate.generator(generator)
    if lo > hi:
        raise ValueError(f"d_range must be (low, high) with low <= high, got {d_range}")
    M = A.shape[-1]
    if exact_max_dim >= M > 20:
        raise ValueError(
            f"exact_max_dim must be below M = {M} when M > 20: enumerating 2^M vertices is "
            "too costly (use random vertices)"
        )
    if exact_max_dim >= M:
        verts = torch.tensor(
            list(itertools.product((lo, hi), repeat=M)), dtype=A.dtype, device=A.device
        )
    else:
        samples = _validate.positive_int(samples, "samples")
        bits = torch.randint(0, 2, (samples, M), generator=generator).to(A.dtype).to(A.device)
        verts = lo + (hi - lo) * bits
    DA = verts[:, None, :, None] * A[None]  # (V, K, M, M)
    return float(torch.linalg.eigvalsh(0.5 * (DA + DA.mT))[..., -1].max())


def theorem21_interval(A: torch.Tensor) -> tuple[float, float]:
    r"""The interval :math:`[-\mu_*^2, 0]` of Theorem 2.1 (2) for the gradient field (16).

    :math:`\mu_* = \min_k \mu(A^k)`, :math:`\mu` the smallest singular value. Returns
    ``(-mu_star**2, 0.0)``.
    """
    A = _matrices(A)
    mu = torch.linalg.svdvals(A)[..., -1].min()
    if A.shape[-2] < A.shape[-1]:
        mu = torch.zeros((), dtype=A.dtype)  # a wide matrix has a null space
    return (-(float(mu) ** 2), 0.0)


def perturbation_growth(
    net: Callable, x: torch.Tensor, eps: float = 1e-3, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Measured amplification :math:`\|z_2(T) - z_1(T)\| / \|z_2(0) - z_1(0)\|` of (13).

    Perturbs each row of ``x`` (shape ``(N, M)``) by a random vector of norm ``eps`` and returns
    the ``N`` ratios of output to input distance through ``net``.
    """
    _validate.function(net, "net")
    _validate.tensor(x, "x")
    if x.dim() != 2 or x.shape[-1] == 0:
        raise ValueError(f"x must have shape (N, M) with M >= 1, got {tuple(x.shape)}")
    eps = _validate.positive_real(eps, "eps")
    _validate.generator(generator)
    where = torch.device("cpu") if generator is None else generator.device
    d = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=where).to(x.device)
    d = eps * d / d.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        return (net(x + d) - net(x)).norm(dim=-1) / eps


def contraction_ratios(step: Callable, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    r"""Ratios :math:`\|z_1^{k+1} - z_2^{k+1}\| / \|z_1^k - z_2^k\|` of one step, cf. (21).

    ``step`` maps states ``(N, M)`` to states (one numerical step); ``z1`` and ``z2`` have shape
    ``(N, M)`` and differ in every row. A method is contractive on these pairs when every ratio is
    at most 1 (Section 2.2.1).
    """
    _validate.function(step, "step")
    _pairs(z1, z2)
    d0 = (z1 - z2).norm(dim=-1)
    if bool((d0 == 0).any()):
        raise ValueError("z1 and z2 must differ in every row")
    with torch.no_grad():
        return (step(z1) - step(z2)).norm(dim=-1) / d0


def gradient_flow_field(V: Callable) -> Callable:
    r"""The gradient field :math:`f(z) = -\nabla V(z)` of a potential (Theorem 2.1 (1)).

    ``V`` maps a state of shape ``(M,)`` to a scalar (and batches of shape ``(N, M)`` to
    ``(N,)``); the returned field maps ``(N, M)`` to ``(N, M)``, by
    :func:`torch.func.vmap` of :func:`torch.func.grad`.
    """
    _validate.function(V, "V")
    gradient = torch.func.vmap(torch.func.grad(V))

    def field(z: torch.Tensor) -> torch.Tensor:
        _validate.floating_tensor(z, "z")
        if z.dim() != 2:
            raise ValueError(f"z must have shape (N, M), got {tuple(z.shape)}")
        return -gradient(z)

    return field
