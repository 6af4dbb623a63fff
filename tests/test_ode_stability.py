import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref.ode import (
    DissipativeField,
    GradientField,
    PlainField,
    butcher_tableau,
    contraction_ratios,
    diagonal_nu_bound,
    is_algebraically_stable,
    lipschitz_bound,
    one_sided_lipschitz_jacobian,
    one_sided_lipschitz_pairs,
    perturbation_growth,
    rk_step,
    stability_constant,
    theorem21_interval,
)

D = torch.float64


def _pairs(seed, n=400, M=3, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, M, generator=g, dtype=D) * scale, torch.randn(
        n, M, generator=g, dtype=D
    ) * scale


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    activation=st.sampled_from(["tanh", "relu", "sigmoid"]),
    dim=st.integers(1, 4),
    depth=st.integers(1, 3),
    extra_rows=st.integers(0, 2),
    init_std=st.floats(0.1, 3.0),
)
def test_theorem_21_part_2(seed, activation, dim, depth, extra_rows, init_std):
    torch.manual_seed(seed)
    f = GradientField(
        dim, depth, width=dim + extra_rows, activation=activation, init_std=init_std, dtype=D
    )
    lo, hi = theorem21_interval(f.A)
    z1, z2 = _pairs(seed, M=dim)
    A_norm2 = float(torch.linalg.matrix_norm(f.A.detach(), 2).max()) ** 2
    for k in range(depth):
        q = one_sided_lipschitz_pairs(lambda z, k=k: f(k, z), z1, z2)
        assert q.max() <= hi + 1e-12  # nu <= 0
        assert q.min() >= -A_norm2 - 1e-12  # each quotient >= -||A||^2 (the proof's lower bound)
    # the interval's lower end is -mu_*^2 with mu_* the smallest singular value over the layers,
    # here from the eigenvalues of A^T A (an independent route to the same number)
    A = f.A.detach()
    mu_sq = min(float(torch.linalg.eigvalsh(A[k].mT @ A[k]).min()) for k in range(depth))
    assert abs(lo + max(mu_sq, 0.0)) <= 1e-10 * (1 + abs(mu_sq))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_theorem_21_identity_gives_minus_mu_squared(seed):
    torch.manual_seed(seed)
    f = GradientField(3, 3, activation="identity", dtype=D)
    lo, _ = theorem21_interval(f.A)
    z = torch.randn(4, 3, dtype=D)
    nu = max(float(one_sided_lipschitz_jacobian(lambda v, k=k: f(k, v), z).max()) for k in range(3))
    assert abs(nu - lo) < 1e-10 * (1 + abs(lo))


def test_theorem_21_part_1_convex_potential():
    # V(z) = logsumexp(Bz) + |z|^4 / 4 is convex; f = -grad V
    B = torch.randn(5, 3, dtype=D)

    def f(z):
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True) if not z.requires_grad else z
            V = torch.logsumexp(zz @ B.T, -1) + 0.25 * (zz**2).sum(-1) ** 2
            (g,) = torch.autograd.grad(V.sum(), zz, create_graph=True)
        return -g

    z1, z2 = _pairs(3)
    assert one_sided_lipschitz_pairs(f, z1, z2).max() <= 1e-12


def test_skew_symmetric_A_can_have_positive_nu():
    A = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=D)
    assert diagonal_nu_bound(A) == pytest.approx(0.5)
    f = PlainField(2, 1, dtype=D)
    with torch.no_grad():
        f.A[0], f.b[0] = A, torch.zeros(2, dtype=D)
    z = torch.tensor([[3.0, 0.0]], dtype=D)  # tanh'(A z)_1 ~ 1, tanh'(A z)_2 ~ 0
    nu = float(one_sided_lipschitz_jacobian(lambda v: f(0, v), z).max())
    assert 0.49 < nu <= 0.5 + 1e-12


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.floats(0.0, 1.0))
def test_half_inf_norm_bound_for_dissipative_A(seed, gamma):
    torch.manual_seed(seed)
    f = DissipativeField(4, 2, gamma=gamma, dtype=D)
    A = f.A.detach()
    bound = 0.5 * float(torch.linalg.matrix_norm(A, ord=float("inf")).max())
    assert diagonal_nu_bound(A) <= bound + 1e-12


def test_half_inf_norm_bound_fails_without_skew_symmetry():
    A = torch.eye(2, dtype=D)
    assert diagonal_nu_bound(A) == pytest.approx(1.0)  # > 0.5 * ||A||_inf = 0.5


def test_diagonal_bound_dominates_sampled_nu():
    torch.manual_seed(0)
    f = PlainField(3, 2, dtype=D)
    z = torch.randn(500, 3, dtype=D) * 2
    sampled = max(
        float(one_sided_lipschitz_jacobian(lambda v, k=k: f(k, v), z).max()) for k in range(2)
    )
    assert sampled <= diagonal_nu_bound(f.A) + 1e-12
    # random-vertex mode for larger M is a lower estimate of the exact enumeration
    A = torch.randn(1, 6, 6, dtype=D)
    assert (
        diagonal_nu_bound(
            A, exact_max_dim=3, samples=64, generator=torch.Generator().manual_seed(0)
        )
        <= diagonal_nu_bound(A) + 1e-12
    )


def test_lipschitz_bound_and_constant():
    f = PlainField(3, 2, dtype=D)
    L = lipschitz_bound(f.A)
    x = torch.randn(50, 3, dtype=D)
    from spdl_ref.ode import ODENet

    net = ODENet(f, "rk4", T=1.0)
    ratios = perturbation_growth(net, x, eps=1e-4, generator=torch.Generator().manual_seed(0))
    assert ratios.shape == (50,)
    assert ratios.max() <= stability_constant(L, 1.0)
    assert stability_constant(0.0, 3.0) == 1.0


@pytest.mark.parametrize(
    "name", ["implicit_euler", "implicit_midpoint", "gauss4", "radau_iia3", "lobatto_iiic2"]
)
def test_b_stable_methods_contract_for_any_h(name):
    A_, b_, _ = butcher_tableau(name)
    assert is_algebraically_stable(A_, b_)
    torch.manual_seed(1)
    f = GradientField(2, 1, dtype=D)
    z1, z2 = _pairs(5, n=20, M=2)
    for h in (0.5, 5.0):
        r = contraction_ratios(
            lambda z, h=h: rk_step(lambda t, v: f(0, v), 0.0, z, h, name, max_iter=100), z1, z2
        )
        assert r.max() <= 1 + 1e-10


def test_explicit_euler_grows_on_imaginary_eigenvalues():
    rot = lambda t, z: z @ torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=D)  # noqa: E731
    z1, z2 = _pairs(0, n=10, M=2)
    for h in (1e-3, 0.1, 1.0):
        r = contraction_ratios(lambda z, h=h: rk_step(rot, 0.0, z, h, "explicit_euler"), z1, z2)
        assert torch.allclose(r, torch.full_like(r, math.sqrt(1 + h * h)))


@pytest.mark.parametrize("name", ["explicit_euler", "rk4"])
def test_explicit_rk_contracts_below_minus_two_nubar(name):
    # f = -A^T tanh(Az + b): co-coercive with nu_bar = -1/||A||^2, so h < 2/||A||^2 (r = 1)
    # contracts
    torch.manual_seed(2)
    f = GradientField(3, 1, dtype=D)
    nu_bar = -1.0 / float(torch.linalg.matrix_norm(f.A[0].detach(), 2)) ** 2
    z1, z2 = _pairs(9, n=300)
    r = contraction_ratios(
        lambda z: rk_step(lambda t, v: f(0, v), 0.0, z, -2 * nu_bar * 0.99, name), z1, z2
    )
    assert r.max() <= 1 + 1e-12


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ"):
        one_sided_lipschitz_pairs(lambda z: z, torch.zeros(2, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="shape"):
        one_sided_lipschitz_jacobian(lambda z: z, torch.zeros(2))
    with pytest.raises(ValueError, match="A must"):
        lipschitz_bound(torch.zeros(2))
    with pytest.raises(ValueError, match="square"):
        diagonal_nu_bound(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="d_range"):
        diagonal_nu_bound(torch.eye(2), d_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="T"):
        stability_constant(1.0, -1.0)
    with pytest.raises(ValueError, match="eps"):
        perturbation_growth(lambda x: x, torch.zeros(2, 2), eps=0.0)
    with pytest.raises(TypeError, match="step"):
        contraction_ratios(None, torch.zeros(1, 2), torch.ones(1, 2))
