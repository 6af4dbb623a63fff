"""Problems (23)-(25), MSA (31)-(34), regularisers (35)-(40) and deep limits of spdl_ref.control."""

import itertools

import pytest
import torch
from control_helpers import one_thread  # noqa: F401 (a fixture)
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref import control
from spdl_ref.control import VariableStepResNet, discrete_adjoint, project_simplex
from spdl_ref.loop import NonFiniteError
from spdl_ref.ode import ODENet, PlainField, ResNet

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _data(N=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 2, generator=g, dtype=D)
    t = torch.sign(x[:, 0] * x[:, 1])
    return x, t


def test_squared_fit():
    t = torch.tensor([1.0, -1.0, 0.5], dtype=D)
    z = torch.tensor([[0.0, 9.0], [1.0, 9.0], [0.5, 9.0]], dtype=D)
    fit = control.squared_fit(t)
    assert fit(z).item() == pytest.approx((0.5 + 2.0 + 0.0) / 3)
    assert fit(z[1:2], torch.tensor([1])).item() == pytest.approx(2.0)
    whole = control.squared_fit(torch.ones(3, 2, dtype=D), coordinate=None)
    assert whole(z).item() == pytest.approx(0.5 * (1 + 64 + 0 + 64 + 0.25 + 64) / 3)
    with pytest.raises(ValueError, match=r"target must have shape \(N,\)"):
        control.squared_fit(torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"z must give outputs of shape \(3,\)"):
        fit(z[:2])
    with pytest.raises(ValueError, match="finite"):
        control.squared_fit(torch.tensor([float("nan")]))


def test_reduced_and_full_space_agree_on_the_trajectory():
    x, t = _data()
    net = ResNet(2, 4, dtype=D)
    loss = control.squared_fit(t)
    E = control.reduced_objective(net, x, loss, control.squared_l2_norm)
    E2, res = control.full_space_objective(net, net.trajectory(x), x, loss, control.squared_l2_norm)
    assert torch.allclose(E, E2) and float(res.detach().abs().max()) < 1e-14
    _, res = control.full_space_objective(net, net.trajectory(x) + 0.1, x, loss)
    assert float(res[0].detach().abs().max()) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="z must have shape"):
        control.full_space_objective(net, torch.zeros(4, 32, 2, dtype=D), x, loss)


def test_sgd_with_adjoint_gradients_equals_torch_sgd():
    x, t = _data()
    loss = control.squared_fit(t)
    torch.manual_seed(0)
    a = ResNet(2, 3, dtype=D)
    b = ResNet(2, 3, dtype=D)
    b.load_state_dict(a.state_dict())
    hist = control.sgd(a, x, loss, tau=0.3, iterations=20)
    opt = torch.optim.SGD(b.parameters(), lr=0.3)
    for _ in range(20):
        opt.zero_grad()
        loss(b(x)).backward()
        opt.step()
    assert torch.allclose(a.A, b.A, atol=1e-12) and hist.loss[-1] < hist.loss[0]
    with pytest.raises(ValueError, match="batch_size"):
        control.sgd(a, x, loss, batch_size=64)
    with pytest.raises(ValueError, match="tau"):
        control.sgd(a, x, loss, tau=-1.0)


def test_sgd_trains_the_learnt_steps_too():
    x, t = _data()
    loss = control.squared_fit(t)
    torch.manual_seed(1)
    a = VariableStepResNet(2, 3, T=2.0, dtype=D)
    with torch.no_grad():
        a.steps.copy_(torch.tensor([0.2, 1.1, 0.7], dtype=D))
    b = VariableStepResNet(2, 3, T=2.0, dtype=D)
    b.load_state_dict(a.state_dict())
    control.sgd(a, x, loss, tau=0.2, iterations=5)
    opt = torch.optim.SGD(b.parameters(), lr=0.2)
    for _ in range(5):
        opt.zero_grad()
        loss(b(x)).backward()
        opt.step()
    for name, p in b.named_parameters():
        assert torch.allclose(getattr(a, name), p, atol=1e-12), name
    assert not torch.allclose(a.steps, torch.tensor([0.2, 1.1, 0.7], dtype=D))


def test_costates_and_stationarity_34_equal_minus_gradient():
    x, t = _data()
    net = ResNet(2, 3, dtype=D)
    loss = control.squared_fit(t)
    z, p, _ = control.costates(net, x, loss)
    zK = z[-1].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(zK), zK)
    d = discrete_adjoint(net, x, g, return_costates=True)
    assert torch.allclose(p, -x.shape[0] * d["p"])
    # dH^k/dtheta^k at theta^k = -(gradient of the loss)
    theta = {n: v.detach().clone().requires_grad_(True) for n, v in net.named_parameters()}
    gA, gb = torch.autograd.grad(control.hamiltonian(net, z, p, theta).sum(), list(theta.values()))
    assert torch.allclose(gA, -d["A"], atol=1e-13) and torch.allclose(gb, -d["b"], atol=1e-13)
    # the ResNet's layer Hamiltonian is (h / N) sum_n <p^(k+1), f(z^k)>
    H = control.hamiltonian(net, z, p)
    f = torch.stack([net.field(k, z[k]) for k in range(3)])
    assert torch.allclose(H, net.h * (p[1:] * f).sum(-1).mean(-1), atol=1e-14)
    H0 = control.extended_hamiltonian(net, z, p, 0.0, theta)
    H1 = control.extended_hamiltonian(net, z, p, 3.0, theta)
    assert torch.allclose(H0, H1, atol=1e-12)  # residuals vanish at the current parameters
    shifted = {n: v + 0.1 for n, v in theta.items()}
    H2 = control.extended_hamiltonian(net, z, p, 3.0, shifted)
    assert (control.hamiltonian(net, z, p, shifted) - H2).min() > 1e-6  # penalties bite
    s = control.hamiltonian_stationarity(net, x, loss)
    expect = torch.stack(
        [torch.cat([d["A"][k].reshape(-1), d["b"][k]]).norm() / net.h for k in range(3)]
    )
    assert torch.allclose(s, expect)


class _Decay(torch.nn.Module):
    """A layered field without parameters, f(z) = -z (FIELD_PROTOCOL)."""

    depth, dim = 3, 2

    def field(self, k, z, theta=None):
        return -z

    def layer_parameters(self, k):
        return {}

    def lift(self, x):
        return x

    def project(self, u):
        return u


def test_stationarity_34_of_a_network_without_layer_parameters_is_zero():
    # every point is critical when there is nothing to train: zeros, not a TypeError from
    # torch.sqrt of the empty sum 0 (found by mypy)
    x, t = _data(8)
    net = ODENet(_Decay(), "explicit_euler")
    s = control.hamiltonian_stationarity(net, x, control.squared_fit(t))
    assert s.dtype == D and torch.equal(s, torch.zeros(3, dtype=D))


def test_stationarity_11_34_fails_at_a_minimiser_with_a_regulariser():
    """Errata E1.3: at a minimiser of (4) with R = lambda/2 |theta|^2 the left side of (11)/(34),
    (1/N) sum_n d_theta f^T p_n per layer, is not zero; it equals lambda |theta^k| / h, the
    gradient of the regulariser per unit time (the corrected condition d_theta H + r' = 0)."""
    x, _ = _data(16, seed=1)
    y = 0.5 * torch.randn(16, 2, generator=torch.Generator().manual_seed(2), dtype=D)
    fit = control.squared_fit(y, coordinate=None)
    lam = 1e-2
    torch.manual_seed(0)
    net = ResNet(2, 4, T=1.0, dtype=D)
    params = list(net.parameters())
    opt = torch.optim.LBFGS(
        params,
        max_iter=1000,
        tolerance_grad=1e-14,
        tolerance_change=0.0,
        history_size=50,
        line_search_fn="strong_wolfe",
    )

    def objective():
        opt.zero_grad()
        E = fit(net(x)) + 0.5 * lam * sum(p.pow(2).sum() for p in params)
        E.backward()
        return E

    for _ in range(5):
        opt.step(objective)
    objective()
    grad_E = float(torch.sqrt(sum(p.grad.pow(2).sum() for p in params)))
    assert grad_E < 1e-7  # a minimiser of (4) with the regulariser, to the solver's accuracy
    left_side = control.hamiltonian_stationarity(net, x, fit)  # (11), (34) per layer
    theta = torch.sqrt(net.A.detach().pow(2).sum((1, 2)) + net.b.detach().pow(2).sum(1))
    assert (left_side > 1e4 * grad_E).all()  # the printed condition fails there
    torch.testing.assert_close(left_side, lam * theta / net.h, rtol=1e-5, atol=0.0)


def test_msa_and_emsa_decrease_the_loss():
    x, t = _data(64)
    loss = control.squared_fit(t)
    torch.manual_seed(0)
    net = ResNet(2, 4, T=2.0, dtype=D)
    start = float(loss(net(x)).detach())
    hist = control.msa(net, x, loss, iterations=8, rho=1.0, inner_steps=5, inner_lr=0.2)
    # History.loss: the loss before each iteration (full batch here); the series "full_loss":
    # the loss on all samples after each iteration
    after = hist.series["full_loss"]
    assert hist.loss[0] == pytest.approx(start, rel=1e-14) and hist.loss[1:] == after[:-1]
    assert min(after) < start and len(hist.seconds) == len(after) == 8
    # quantised parameters: exhaustive maximisation over candidates
    vals = torch.tensor(list(itertools.product([-0.5, 0.0, 0.5], repeat=6)), dtype=D)
    cand = {"A": vals[:, :4].reshape(-1, 2, 2), "b": vals[:, 4:]}
    net = ResNet(2, 4, T=2.0, init_std=0.0, dtype=D)
    hist = control.msa(
        net,
        x,
        loss,
        iterations=4,
        rho=1.0,
        candidates=cand,
        batch_size=32,
        generator=torch.Generator().manual_seed(0),
    )
    assert min(hist.series["full_loss"]) < start
    assert set(net.A.detach().unique().tolist()) <= {-0.5, 0.0, 0.5}


def test_exhaustive_maximisation_picks_the_best_candidate_of_each_layer():
    """maximise_hamiltonian over candidates against a loop over every candidate and layer."""
    x, t = _data(16)
    torch.manual_seed(3)
    net = ODENet(PlainField(2, 3, dtype=D), "heun", T=1.5)
    z, p, _ = control.costates(net, x, control.squared_fit(t))
    cand = {
        "vector_field.A": torch.randn(7, 2, 2, dtype=D),
        "vector_field.b": torch.randn(7, 2, dtype=D),
    }
    new = control.maximise_hamiltonian(net, z, p, rho=0.5, candidates=cand)
    for k in range(3):
        values = []
        for c in range(7):
            theta = {n: v.detach().clone() for n, v in net.named_parameters()}
            for n in theta:
                theta[n][k] = cand[n][c]
            values.append(control.extended_hamiltonian(net, z, p, 0.5, theta)[k])
        best = int(torch.stack(values).argmax())
        assert all(torch.equal(new[n][k], cand[n][best]) for n in cand)


def test_msa_bad_inputs():
    x, _ = _data(8)
    loss = control.squared_fit(torch.zeros(8, dtype=D))
    net = ResNet(2, 2, dtype=D)
    with pytest.raises(ValueError, match="rho"):
        control.msa(net, x, loss, rho=-1.0)
    with pytest.raises(ValueError, match=r"candidates\['A'\] must have shape \(C, 2, 2\)"):
        control.msa(
            net,
            x,
            loss,
            candidates={"A": torch.zeros(3, 2, 3, dtype=D), "b": torch.zeros(3, 2, dtype=D)},
        )
    with pytest.raises(TypeError, match="candidates must be a dict"):
        control.msa(net, x, loss, candidates=(torch.zeros(3, 2, 2), torch.zeros(3, 2)))
    with pytest.raises(ValueError, match="candidates must have the layer parameters"):
        control.msa(net, x, loss, candidates={"A": torch.zeros(3, 2, 2, dtype=D)})
    with pytest.raises(TypeError, match="loss"):
        control.msa(net, x, None)
    with pytest.raises(ValueError, match="batch_size"):
        control.msa(net, x, loss, batch_size=9)
    z, p, _ = control.costates(net, x, loss)
    with pytest.raises(ValueError, match=r"theta must have the layer parameters"):
        control.hamiltonian(net, z, p, {"A": net.A})
    with pytest.raises(ValueError, match=r"z must have shape \(K \+ 1, N, D\)"):
        control.hamiltonian(net, z[1:], p[1:])


@settings(max_examples=40, deadline=None)
@given(h=st.lists(st.floats(-5, 5), min_size=1, max_size=12), T=st.floats(0.01, 10))
def test_project_simplex_is_the_projection(h, T):
    h = torch.tensor(h, dtype=D)
    q = project_simplex(h, T)
    assert control.time_step_indicator(q, T, tol=1e-9) == 0.0
    # optimality: <h - q, y - q> <= 0 for vertices y = T e_i of the set
    for i in range(len(h)):
        y = torch.zeros_like(h)
        y[i] = T
        assert float((h - q) @ (y - q)) <= 1e-9
    assert torch.allclose(project_simplex(q, T), q, atol=1e-12)
    assert torch.equal(control.simplex_prox(T)(h, 0.3), q)


def test_project_simplex_bad_inputs_and_float32():
    assert project_simplex(torch.tensor([0.2, 0.3]), 1.0).dtype == torch.float32
    with pytest.raises(ValueError, match="T"):
        project_simplex(torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="vector"):
        project_simplex(torch.ones(2, 2), 1.0)
    with pytest.raises(ValueError, match="finite"):
        project_simplex(torch.tensor([float("nan")]), 1.0)
    assert control.time_step_indicator(torch.tensor([0.5, 0.6]), 1.0) == float("inf")


@settings(max_examples=20, deadline=None)
@given(
    theta=st.lists(st.floats(-4, 4), min_size=1, max_size=6),
    lam=st.floats(0, 2),
    tau=st.floats(0.01, 2),
)
def test_prox_maps_minimise_their_objectives(theta, lam, tau):
    """prox_{tau R}(theta) minimises tau R(v) + |v - theta|^2 / 2 (checked at nearby points)."""
    theta = torch.tensor(theta, dtype=D)
    for R, prox in (
        (lambda v: lam * v.abs().sum(), control.l1_prox(lam)),
        (lambda v: lam * v.pow(2).sum(), control.squared_l2_prox(lam)),
    ):
        v = prox(theta, tau)
        value = tau * R(v) + 0.5 * (v - theta).pow(2).sum()
        for i, step in itertools.product(range(len(theta)), (-1e-3, 1e-3)):
            w = v.clone()
            w[i] += step
            assert value <= tau * R(w) + 0.5 * (w - theta).pow(2).sum() + 1e-12


def test_regularisers_and_soft_threshold():
    net = ResNet(2, 3, dtype=D)
    assert torch.allclose(control.l1_norm(net), net.A.abs().sum() + net.b.abs().sum())
    assert torch.allclose(control.squared_l2_norm(net), net.A.pow(2).sum() + net.b.pow(2).sum())
    s = control.soft_threshold(torch.tensor([-2.0, 0.5, 3.0]), 1.0)
    assert torch.equal(s, torch.tensor([-1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="tau"):
        control.soft_threshold(s, -1.0)
    const = ResNet(2, 4, T=2.0, init_std=0.0, dtype=D)
    with torch.no_grad():
        const.A[:] = 1.0
    assert float(control.h1_discrete(const).detach()) == pytest.approx(4.0)
    with torch.no_grad():
        const.A[2:] = 2.0  # one jump of size 1 in 4 entries, h = 1/2
    assert float(control.h1_discrete(const).detach()) == pytest.approx(4.0 + 4.0 / 0.5)
    var = VariableStepResNet(2, 3, dtype=D)
    assert torch.allclose(control.squared_l2_norm(var), var.A.pow(2).sum() + var.b.pow(2).sum())
    with pytest.raises(TypeError, match="h1_discrete needs fixed step sizes"):
        control.h1_discrete(var)
    with pytest.raises(TypeError, match="layered-network protocol"):
        control.l1_norm(torch.nn.Linear(2, 2))


def test_variable_step_resnet_and_proximal_gradient():
    x, t = _data()
    net = VariableStepResNet(2, 4, T=2.0, dtype=D)
    ref = ResNet(2, 4, T=2.0, dtype=D)
    ref.load_state_dict({k: v for k, v in net.state_dict().items() if k != "steps"})
    assert torch.allclose(net(x), ref(x))
    loss = control.squared_fit(t)
    hist = control.proximal_gradient(
        net, x, loss, prox={"steps": control.simplex_prox(2.0)}, tau=0.1, iterations=20
    )
    assert hist.loss[-1] < hist.loss[0]
    assert control.time_step_indicator(net.steps.detach(), 2.0) == 0.0
    assert not torch.allclose(net.steps, torch.full((4,), 0.5, dtype=D))
    with pytest.raises(ValueError, match="parameter"):
        control.proximal_gradient(net, x, loss, prox={"h": control.simplex_prox(2.0)})


def test_deep_limit_sequence_and_l2_distance():
    """Theorem 3.3 in small: consecutive minimal values and minimisers come closer as K doubles."""
    x, t = _data(16)
    loss = control.squared_fit(t)
    torch.manual_seed(0)
    net = ResNet(2, 2, T=1.0, dtype=D)
    fine = control.prolong(net, 4)
    assert torch.allclose(fine(x), control.ode_flow(net, x, "explicit_euler", 4))
    assert control.l2_distance(net, fine) == pytest.approx(0.0, abs=1e-14)
    other = ResNet(2, 2, T=1.0, dtype=D)
    with torch.no_grad():
        expected = ((net.A - other.A).pow(2).sum() + (net.b - other.b).pow(2).sum()) * 0.5
    assert control.l2_distance(net, other) == pytest.approx(float(expected.sqrt()))
    out = control.deep_limit_sequence(net, x, loss, 0.01, [2, 4, 8, 16], max_iter=100)
    values, distances = out["values"], out["distances"]
    gaps = [abs(a - b) for a, b in itertools.pairwise(values)]
    assert all(g1 < g0 for g0, g1 in itertools.pairwise(gaps)), gaps
    assert all(d1 < d0 for d0, d1 in itertools.pairwise(distances)), distances
    for K, model, value in zip([2, 4, 8, 16], out["models"], values, strict=True):
        E = control.deep_limit_objective(model, x, loss, 0.01)
        assert model.depth == K and E.item() == pytest.approx(value)
        assert control.gradient_norm(control.autograd_gradient(model, E)) < 1e-5  # a minimiser
    with pytest.raises(ValueError, match="multiple"):
        control.deep_limit_sequence(net, x, loss, 0.01, [2, 3])
    with pytest.raises(ValueError, match="lam"):
        control.deep_limit_objective(net, x, loss, 0.0)
    # depths that do not divide one another compare on the merged grid: on [0, 1], b = (0, 1)
    # on halves against b = (1, 0, 0) on thirds differ by 1 on [0, 1/3) and [1/2, 1): 5/6
    two, three = (
        ResNet(1, 2, T=1.0, init_std=0.0, dtype=D),
        ResNet(1, 3, T=1.0, init_std=0.0, dtype=D),
    )
    with torch.no_grad():
        two.b[1] = 1.0
        three.b[0] = 1.0
    assert control.l2_distance(two, three) == pytest.approx((5 / 6) ** 0.5, rel=1e-12)
    with pytest.raises(TypeError, match=r"model must be a spdl_ref\.ode\.ResNet with fixed steps"):
        control.prolong(VariableStepResNet(2, 2))


def _root_loss(z, idx=None):
    """|z|^(1/2) summed: finite at z = 0, where its derivative is NaN (issue 15)."""
    return z.abs().sqrt().sum()


@pytest.mark.parametrize("driver", ["msa", "sgd", "proximal_gradient"])
def test_section3_drivers_stop_before_writing_nan(driver):
    """A finite loss with a NaN gradient: NonFiniteError, the parameters bit for bit unchanged."""
    net = ResNet(2, 3, init_std=0.0)
    x = torch.zeros(5, 2)
    before = [p.detach().clone() for p in net.parameters()]
    run = {
        "msa": lambda: control.msa(net, x, _root_loss, iterations=1),
        "sgd": lambda: control.sgd(net, x, _root_loss, iterations=3),
        "proximal_gradient": lambda: control.proximal_gradient(
            net, x, _root_loss, prox={"A": control.l1_prox(0.1)}, iterations=3
        ),
    }[driver]
    with pytest.raises(NonFiniteError, match="gradient") as info:
        run()
    err = info.value
    assert err.kind == "gradient" and err.iteration == 0 and set(err.names) == {"A", "b"}
    after = list(net.parameters())
    assert all(torch.equal(a.detach(), b) for a, b in zip(after, before, strict=True))
    assert all(bool(torch.isfinite(p).all()) for p in after)


def test_msa_stops_at_the_first_non_finite_iteration_and_keeps_the_last_finite_one():
    """Two finite iterations, then a NaN gradient: the parameters are those after iteration 2."""
    x, t = _data(16)
    fit = control.squared_fit(t)
    torch.manual_seed(1)
    net = ResNet(2, 3, T=1.0, dtype=D)
    calls = []

    def loss(z, idx):
        calls.append(1)
        if len(calls) <= 2:
            return fit(z, idx)
        return (z - z.detach()).abs().sqrt().sum()  # finite (0), NaN gradient

    with pytest.raises(NonFiniteError) as info:
        control.msa(net, x, loss, iterations=5, inner_steps=2, full_loss=False)
    assert info.value.iteration == 2
    torch.manual_seed(1)
    reference = ResNet(2, 3, T=1.0, dtype=D)
    control.msa(reference, x, fit, iterations=2, inner_steps=2, full_loss=False)
    pairs = zip(net.parameters(), reference.parameters(), strict=True)
    assert all(torch.equal(a.detach(), b.detach()) for a, b in pairs)


def test_minimise_stops_on_a_nan_gradient_with_the_parameters_untouched():
    net = ResNet(2, 4, T=1.0, dtype=D)
    x = torch.zeros(3, 2, dtype=D)
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(NonFiniteError, match="gradient") as info:
        control.minimise(net, lambda: net(x).sub(net(x).detach()).abs().sqrt().sum())
    assert info.value.kind == "gradient"
    assert all(torch.equal(a.detach(), b) for a, b in zip(net.parameters(), before, strict=True))
    # a finite problem: the minimiser of a strictly convex quadratic, to L-BFGS accuracy
    w = torch.zeros(3, dtype=D, requires_grad=True)
    target = torch.tensor([1.0, -2.0, 0.5], dtype=D)
    value = control.minimise({"w": w}, lambda: (w - target).pow(2).sum())
    assert value < 1e-20 and torch.allclose(w.detach(), target, atol=1e-10)
    with pytest.raises(TypeError, match="model must be"):
        control.minimise([w], lambda: w.sum())
