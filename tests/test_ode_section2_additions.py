"""Tests of the Section 2 additions of spdl_ref.ode: growth bounds (2.1), the extended phase
space form (2.1.2), the modified Hamiltonian (2.2.2), the test problems (18)-(19), shear areas
(2.4.2) and networks on the sphere (2.3, 2.4.3)."""

import math

import pytest
import torch

from spdl_ref import ode
from spdl_ref.ode import extended as ex

D = torch.float64


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def fd_jacobian(f, x, eps=1e-6):
    cols = []
    for i in range(x.numel()):
        e = torch.zeros_like(x)
        e[i] = eps
        cols.append((f(x + e) - f(x - e)) / (2 * eps))
    return torch.stack(cols, -1)


# --- growth bounds (Section 2.1) -------------------------------------------------------------


@pytest.mark.parametrize(
    "make, width",
    [
        (lambda: ode.PlainField(3, 2, dtype=D), 3),
        (lambda: ode.GradientField(3, 2, dtype=D), 3),
        (lambda: ode.HamiltonianField(2, 2, dtype=D), 4),
        (lambda: ode.HamiltonianField(2, 2, variant="second_order", dtype=D), 4),
    ],
)
def test_field_bounds_dominate_sampled_jacobians(make, width):
    torch.manual_seed(0)
    field = make()
    nu, L = ode.field_bounds(field)
    z = torch.randn(200, width, dtype=D, generator=gen(1)) * 3
    worst_nu, worst_L = [], []
    for k in range(field.depth):
        J = torch.func.vmap(torch.func.jacrev(lambda v, k=k: field(k, v[None])[0]))(z).detach()
        worst_nu.append(float(torch.linalg.eigvalsh(0.5 * (J + J.mT))[:, -1].max()))
        worst_L.append(float(torch.linalg.matrix_norm(J, ord=2).max()))
    assert all(w <= float(b) + 1e-12 for w, b in zip(worst_nu, nu, strict=True))
    assert all(w <= float(b) + 1e-12 for w, b in zip(worst_L, L, strict=True))
    # the bounds are suprema over the derivative box, not loose: the sampled values come close
    assert max(worst_L) > 0.3 * float(L.max())


def test_gradient_field_bound_is_nonpositive_and_plain_is_not():
    torch.manual_seed(0)
    assert float(ode.field_bounds(ode.GradientField(3, 3, dtype=D))[0].max()) <= 1e-12
    assert float(ode.field_bounds(ode.PlainField(3, 3, dtype=D))[0].max()) > 0


def test_euler_growth_bound_holds_for_a_network():
    torch.manual_seed(0)
    net = ode.ODENet(ode.PlainField(2, 4, dtype=D), "explicit_euler", T=2.0)
    nu, L = ode.field_bounds(net.vector_field)
    x = torch.randn(300, 2, dtype=D, generator=gen(2))
    ratios = ode.perturbation_growth(net, x, 1e-6, gen(3))
    bound = ode.euler_growth_bound(nu, L, net.h)
    assert float(ratios.max()) <= bound
    # (1 + 2 h nu + h^2 L^2)^(1/2) <= 1 + h L: the bound is never weaker than e^{T max L}
    assert bound <= math.exp(2.0 * float(L.max()))
    # with a smaller L the product shrinks: the bound reads its arguments
    assert ode.euler_growth_bound(nu, 0.5 * L, net.h) < bound


def test_rotating_frame_system_grows_although_every_frozen_matrix_is_stable():
    A0 = torch.tensor([[0.5, 1.0], [-1.0, -1.0]], dtype=D)
    system = ode.RotatingFrameSystem(A0, omega=-1.0)
    ts = torch.linspace(0, 6, 13, dtype=D)
    assert float(torch.linalg.eigvals(system.matrix(ts)).real.max()) < 0
    assert system.frozen_abscissa < 0 < system.growth_exponent <= system.nu
    z0 = torch.tensor([[1.0, 0.0]], dtype=D)
    # the closed-form solution agrees with an RK4 solve of dz/dt = A(t) z
    steps = 600
    z = z0
    for i in range(steps):
        z = ode.rk_step(system.field, i * 0.01, z, 0.01, "rk4")
    assert torch.allclose(z, system.solution(6.0, z0), rtol=1e-8, atol=1e-10)
    # growth like e^{alpha t}: the norm grows by more than e^{0.4 * 6}
    assert float(system.solution(12.0, z0).norm()) > math.exp(0.4 * 12)
    # in a frame rotating the other way the same frozen matrices give decay
    assert ode.RotatingFrameSystem(A0, omega=0.0).growth_exponent < 0


# --- the form omega_H and J_H (Section 2.1.2) -------------------------------------------------


def test_omega_H_kernel_is_the_flow_direction_and_the_printed_matrix_reverses_it():
    g = torch.randn(5, 4, dtype=D, generator=gen(0))
    J = ode.canonical_J(4, dtype=D)
    f = torch.cat([g @ J.mT, torch.ones(5, 1, dtype=D)], -1)
    W = ex.omega_H_matrix(g)
    assert float((W @ f[..., None]).abs().max()) < 1e-14
    assert torch.equal(W, -W.mT)
    printed = ex.omega_H_matrix(g, printed=True)
    assert float((printed @ f[..., None]).abs().max()) > 0.1
    f_rev = torch.cat([-(g @ J.mT), torch.ones(5, 1, dtype=D)], -1)
    assert float((printed @ f_rev[..., None]).abs().max()) < 1e-14


def test_extended_euler_is_symplectic_and_its_omega_H_defect_is_dK_wedge_dt():
    H = ode.modulated_pendulum()
    h = 0.1
    step = ex.extended_euler_map(H, h, "extended")
    xe = torch.tensor([0.4, 0.3, 0.7, 0.2], dtype=D)
    M = ode.step_jacobian(step, xe)
    assert torch.allclose(M, fd_jacobian(step, xe), atol=1e-8)
    assert float(ode.symplecticity_defect(M, ode.canonical_J(4, dtype=D))) < 1e-13

    zpt = ex.extended_euler_map(H, h, "zpt")
    x = torch.tensor([0.4, 0.7, 0.3], dtype=D)

    def W(y):
        return ex.omega_H_matrix(H.gradient(y[2:], y[:2]))

    defect = ex.form_pullback_defect(zpt, W, x)
    xv = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(ex.extended_energy_error(H, h)(xv), xv)
    e_t = torch.tensor([0.0, 0.0, 1.0], dtype=D)
    assert float(defect.abs().max()) > 1e-3  # not preserved ...
    assert torch.allclose(defect, torch.outer(g, e_t) - torch.outer(e_t, g), atol=1e-12)


def test_extended_energy_error_is_second_order_per_step():
    H = ode.modulated_pendulum()
    x = torch.tensor([[0.4, 0.7, 0.3]], dtype=D)
    errors = [float(ex.extended_energy_error(H, h)(x).detach().abs()) for h in (0.04, 0.02, 0.01)]
    assert 1.8 < ode.observed_order([0.04, 0.02, 0.01], errors) < 2.2


# --- the modified Hamiltonian (Section 2.2.2) -------------------------------------------------


def test_modified_hamiltonian_of_the_oscillator_is_kept_exactly():
    H = ode.harmonic_oscillator()
    u0 = torch.tensor([[1.0, 0.5]], dtype=D)
    errors = ode.energy_errors(H, u0, [0.1], 50.0)
    assert errors[1][0] < 1e-13 < 1e-3 < errors[0][0]


def test_modified_hamiltonian_raises_the_order():
    H = ode.pendulum()
    u0 = torch.tensor([[1.0, 0.3], [2.0, 0.0]], dtype=D)
    hs = [0.2, 0.1, 0.05]
    errors = ode.energy_errors(H, u0, hs, 10.0)
    orders = [ode.observed_order(hs, errors[j]) for j in (0, 1, 2)]
    for j, p in enumerate(orders):
        assert abs(p - (j + 1)) < 0.15, orders


def test_modified_hamiltonian_second_term_matches_autograd_hessians():
    H = ode.coupled_anharmonic()
    u = torch.randn(4, 4, dtype=D, generator=gen(5))
    h = 0.3
    two = ode.modified_hamiltonian(H, h, 2)(u) - ode.modified_hamiltonian(H, h, 1)(u)
    z, p = u[:, :2], u[:, 2:]
    hess_V = torch.func.vmap(torch.func.hessian(lambda v: H.V(0.0, v)))(z)
    gT, gV = p, H.dV(0.0, z)
    expected = h * h / 12 * ((gV * gV).sum(-1) + torch.einsum("ni,nij,nj->n", gT, hess_V, gT))
    assert torch.allclose(two, expected, atol=1e-12)


# --- test problems (18)-(19) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        ode.pendulum,
        ode.harmonic_oscillator,
        ode.coupled_anharmonic,
        ode.modulated_pendulum,
        lambda: ode.tanh_potential_model(
            torch.randn(2, 2, dtype=D, generator=gen(0)),
            torch.randn(2, 2, dtype=D, generator=gen(1)),
            torch.randn(2, dtype=D, generator=gen(2)),
        ),
    ],
)
def test_problem_gradients_match_autograd(make):
    H = make()
    auto = ode.SeparableHamiltonian(H.T, H.V)
    u = torch.randn(6, 4, dtype=D, generator=gen(3))
    t = torch.full((6, 1), 0.7, dtype=D)
    assert torch.allclose(H.field(t, u), auto.field(t, u), atol=1e-12)
    assert torch.allclose(H.gradient(t, u), auto.gradient(t, u), atol=1e-12)


def test_layer_hamiltonian_matches_the_field():
    torch.manual_seed(0)
    field = ode.HamiltonianField(2, 3, dtype=D)
    H = ode.layer_hamiltonian(field, 1)
    u = torch.randn(5, 4, dtype=D, generator=gen(4))
    assert torch.allclose(H.field(0.0, u), field(1, u), atol=1e-12)
    assert torch.allclose(H.energy(u), field.hamiltonian(1, u), atol=1e-12)


def test_softplus_ridge_potential_gives_a_monotone_gradient_flow():
    B = torch.randn(5, 3, dtype=D, generator=gen(0))
    V = ode.softplus_ridge_potential(B, torch.randn(5, dtype=D, generator=gen(1)))
    f = ode.gradient_flow_field(V)
    z1, z2 = (torch.randn(100, 3, dtype=D, generator=gen(s)) for s in (2, 3))
    assert float(((f(z1) - f(z2)) * (z1 - z2)).sum(-1).max()) <= 0  # nu <= 0
    # and f is minus the gradient: a small step down the field lowers V
    assert bool((V(z1 + 1e-4 * f(z1)) < V(z1)).all())


# --- shears: area in R^2, and volume without symplecticity from R^4 on (Section 2.4.2) ------


def test_polygon_area_of_a_sheared_square():
    torch.manual_seed(0)
    net = ode.ShearNet(2, 4, dtype=D)
    square = ode.square_boundary(400, dtype=D)
    with torch.no_grad():
        assert abs(ode.polygon_area(net(square)) - 1.0) < 1e-3
    assert abs(ode.polygon_area(2 * square) - 4.0) < 1e-12


def test_shearnet_is_symplectic_in_the_plane_but_not_in_four_dimensions():
    torch.manual_seed(0)
    u2 = torch.randn(2, dtype=D, generator=gen(0))
    net2 = ode.ShearNet(2, 3, dtype=D)
    M2 = ode.step_jacobian(net2, u2)
    assert float(ode.symplecticity_defect(M2, ode.canonical_J(2, dtype=D))) < 1e-13
    net4 = ode.ShearNet(4, 3, dtype=D)
    M4 = ode.step_jacobian(net4, torch.randn(4, dtype=D, generator=gen(1)))
    assert abs(float(torch.linalg.det(M4)) - 1) < 1e-12
    assert float(ode.symplecticity_defect(M4, ode.canonical_J(4, dtype=D))) > 1e-2
    net4g = ode.ShearNet(4, 3, gradient=True, dtype=D)
    M4g = ode.step_jacobian(net4g, torch.randn(4, dtype=D, generator=gen(1)))
    assert float(ode.symplecticity_defect(M4g, ode.canonical_J(4, dtype=D))) < 1e-13


def test_shearnet_generator_fixes_the_parameters():
    a = ode.ShearNet(4, 2, dtype=D, generator=gen(7))
    b = ode.ShearNet(4, 2, dtype=D, generator=gen(7))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


# --- the sphere (Sections 2.3, 2.4.3) -----------------------------------------------------------


def unit(n, dim, seed):
    z = torch.randn(n, dim, dtype=D, generator=gen(seed))
    return z / z.norm(dim=-1, keepdim=True)


def test_lie_step_stays_on_the_sphere_and_euler_leaves_it_by_h2_v2():
    z = unit(50, 3, 0)
    v = ode.tangent_projection(z, torch.randn(50, 3, dtype=D, generator=gen(1)))
    assert float((v * z).sum(-1).abs().max()) < 1e-14
    h = 0.3
    lie = ode.sphere_step(z, v, h, "lie")
    assert float((lie.norm(dim=-1) - 1).abs().max()) < 1e-14
    euler = ode.sphere_step(z, v, h, "euler")
    assert torch.allclose(ode.sphere_constraint(euler), h * h * (v * v).sum(-1), atol=1e-14)
    # the Lie step is exp(h xi) z with xi = v z^T - z v^T
    xi = v[:, :, None] * z[:, None, :] - z[:, :, None] * v[:, None, :]
    exact = (torch.linalg.matrix_exp(h * xi) @ z[..., None])[..., 0]
    assert torch.allclose(lie, exact, atol=1e-13)


def test_sphere_gradient_field_is_minus_the_riemannian_gradient_and_lowers_V():
    A = torch.randn(4, 3, dtype=D, generator=gen(0))
    b = torch.randn(4, dtype=D, generator=gen(1))
    z = unit(20, 3, 2).requires_grad_(True)
    (g,) = torch.autograd.grad(ode.sphere_potential(z, A, b).sum(), z)
    z = z.detach()
    riemannian = g - (g * z).sum(-1, keepdim=True) * z
    assert torch.allclose(ode.sphere_field(z, A, b), -riemannian, atol=1e-13)
    path = ode.sphere_flow(z, A, b, 0.05, 40)
    V = ode.sphere_potential(path, A, b)
    assert bool((V[1:] <= V[:-1] + 1e-12).all())
    assert float((path.norm(dim=-1) - 1).abs().max()) < 1e-13


@pytest.mark.parametrize("field", ["projected", "gradient"])
def test_sphere_net_keeps_features_on_the_sphere_only_with_lie_euler(field):
    kw = {"depth": 6, "T": 2.0, "field": field, "dtype": D}
    lie = ode.SphereODENet(3, method="lie", generator=gen(0), **kw)
    euler = ode.SphereODENet(3, method="euler", generator=gen(0), **kw)
    z = unit(30, 3, 3)
    with torch.no_grad():
        assert float(ode.sphere_constraint(lie.trajectory(z)).abs().max()) < 1e-13
        assert float(ode.sphere_constraint(euler(z)).abs().max()) > 1e-3


def test_frozen_field_is_one_layer_and_refuses_bad_input():
    torch.manual_seed(0)
    field = ode.GradientField(2, 3, dtype=D)
    z = torch.randn(4, 2, dtype=D, generator=gen(0))
    f = ode.frozen_field(field, 2)
    assert torch.equal(f(5.0, z), field(2, z)) and not torch.equal(f(0.0, z), field(1, z))
    with pytest.raises(TypeError, match="field"):
        ode.frozen_field(torch.nn.Linear(2, 2), 0)
    with pytest.raises(ValueError, match="k must"):
        ode.frozen_field(field, 3)


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "identity"])
def test_identity_17_of_the_gradient_flow(activation):
    # <f(z2) - f(z1), z2 - z1> = -<sigma(A z2 + b) - sigma(A z1 + b), A (z2 - z1)>, eq. (17)
    torch.manual_seed(0)
    field = ode.GradientField(3, 1, activation=activation, dtype=D)
    A, b = field.A[0].detach(), field.b[0].detach()
    z1, z2 = (torch.randn(50, 3, dtype=D, generator=gen(s)) for s in (1, 2))
    with torch.no_grad():
        left = ((field(0, z2) - field(0, z1)) * (z2 - z1)).sum(-1)
    sigma = field.sigma
    right = -((sigma(z2 @ A.T + b) - sigma(z1 @ A.T + b)) * ((z2 - z1) @ A.T)).sum(-1)
    assert torch.allclose(left, right, atol=1e-12)
    assert float(left.max()) <= 1e-12  # and so nu <= 0 for a monotone sigma
