"""Formulations (23)-(25), MSA (31)-(34), regularisers (35)-(40) and deep limits of spdl_ref.control."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref import control
from spdl_ref.control import (
    VariableStepResNet,
    discrete_adjoint,
    project_simplex,
)
from spdl_ref.ode import ResNet


@pytest.fixture(autouse=True)
def _one_thread():
    """The tensors here are tiny: one thread avoids contention on shared CPUs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(N=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 2, generator=g, dtype=torch.float64)
    t = torch.sign(x[:, 0] * x[:, 1])
    return x, t


def test_reduced_and_full_space_agree_on_the_trajectory():
    x, t = _data()
    net = ResNet(2, 4, dtype=torch.float64)

    def loss(z):
        return 0.5 * (z[:, 0] - t).pow(2).mean()

    E = control.reduced_objective(net, x, loss, control.squared_l2_norm)
    E2, res = control.full_space_objective(net, net.trajectory(x), x, loss, control.squared_l2_norm)
    assert torch.allclose(E, E2) and float(res.detach().abs().max()) < 1e-14
    _, res = control.full_space_objective(net, net.trajectory(x) + 0.1, x, loss)
    assert float(res[0].detach().abs().max()) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="z must have shape"):
        control.full_space_objective(net, torch.zeros(4, 32, 2, dtype=torch.float64), x, loss)


def test_sgd_with_adjoint_gradients_equals_torch_sgd():
    x, t = _data()

    def loss(z, idx):
        return 0.5 * (z[:, 0] - t[idx]).pow(2).mean()

    torch.manual_seed(0)
    a = ResNet(2, 3, dtype=torch.float64)
    b = ResNet(2, 3, dtype=torch.float64)
    b.load_state_dict(a.state_dict())
    hist = control.sgd(a, x, loss, tau=0.3, iterations=20)
    opt = torch.optim.SGD(b.parameters(), lr=0.3)
    for _ in range(20):
        opt.zero_grad()
        loss(b(x), torch.arange(32)).backward()
        opt.step()
    assert torch.allclose(a.A, b.A, atol=1e-12) and hist.loss[-1] < hist.loss[0]
    with pytest.raises(ValueError, match="batch_size"):
        control.sgd(a, x, loss, batch_size=64)
    with pytest.raises(ValueError, match="tau"):
        control.sgd(a, x, loss, tau=-1.0)


def test_costates_and_stationarity_34_equal_minus_gradient():
    x, t = _data()
    net = ResNet(2, 3, dtype=torch.float64)

    def loss(z):
        return 0.5 * (z[:, 0] - t).pow(2).mean()

    z, p, value = control.costates(net, x, loss)
    zK = z[-1].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(zK), zK)
    d = discrete_adjoint(net, x, g, return_costates=True)
    assert torch.allclose(p, -x.shape[0] * d["p"])
    # dH^k/dtheta^k at theta^k = -(gradient of the loss)
    A = net.A.detach().clone().requires_grad_(True)
    b = net.b.detach().clone().requires_grad_(True)
    gA, gb = torch.autograd.grad(control.hamiltonian(A, b, torch.tanh, net.h, z, p).sum(), [A, b])
    assert torch.allclose(gA, -d["A"], atol=1e-13) and torch.allclose(gb, -d["b"], atol=1e-13)
    H0 = control.extended_hamiltonian(A, b, torch.tanh, net.h, z, p, 0.0)
    H1 = control.extended_hamiltonian(A, b, torch.tanh, net.h, z, p, 3.0)
    assert torch.allclose(H0, H1, atol=1e-12)  # residuals vanish at the current parameters
    s = control.hamiltonian_stationarity(net, x, loss)
    expect = torch.stack(
        [torch.cat([d["A"][k].reshape(-1), d["b"][k]]).norm() / net.h for k in range(3)]
    )
    assert torch.allclose(s, expect)


def test_msa_and_emsa_decrease_the_loss():
    x, t = _data(64)

    def loss(z, idx):
        return 0.5 * (z[:, 0] - t[idx]).pow(2).mean()

    torch.manual_seed(0)
    net = ResNet(2, 4, T=2.0, dtype=torch.float64)
    start = float(loss(net(x), torch.arange(64)).detach())
    hist = control.msa(net, x, loss, iterations=8, rho=1.0, inner_steps=5, inner_lr=0.2)
    assert min(hist.loss) < start and len(hist.seconds) == 8
    # quantised parameters: exhaustive maximisation over candidates
    vals = torch.tensor(list(itertools.product([-0.5, 0.0, 0.5], repeat=6)), dtype=torch.float64)
    cand = (vals[:, :4].reshape(-1, 2, 2), vals[:, 4:])
    net = ResNet(2, 4, T=2.0, init_std=0.0, dtype=torch.float64)
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
    assert min(hist.loss) < start
    assert set(net.A.detach().unique().tolist()) <= {-0.5, 0.0, 0.5}


def test_msa_bad_inputs():
    x, t = _data(8)

    def loss(z, idx):
        return z.pow(2).mean()

    net = ResNet(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="rho"):
        control.msa(net, x, loss, rho=-1.0)
    with pytest.raises(ValueError, match="candidates"):
        control.msa(
            net,
            x,
            loss,
            candidates=(
                torch.zeros(3, 2, 3, dtype=torch.float64),
                torch.zeros(3, 2, dtype=torch.float64),
            ),
        )
    with pytest.raises(TypeError, match="loss"):
        control.msa(net, x, None)
    with pytest.raises(ValueError, match="batch_size"):
        control.msa(net, x, loss, batch_size=9)


@settings(max_examples=40, deadline=None)
@given(h=st.lists(st.floats(-5, 5), min_size=1, max_size=12), T=st.floats(0.01, 10))
def test_project_simplex_is_the_projection(h, T):
    h = torch.tensor(h, dtype=torch.float64)
    q = project_simplex(h, T)
    assert control.time_step_indicator(q, T, tol=1e-9) == 0.0
    # optimality: <h - q, y - q> <= 0 for vertices y = T e_i of the set
    for i in range(len(h)):
        y = torch.zeros_like(h)
        y[i] = T
        assert float((h - q) @ (y - q)) <= 1e-9
    assert torch.allclose(project_simplex(q, T), q, atol=1e-12)


def test_project_simplex_bad_inputs_and_float32():
    assert project_simplex(torch.tensor([0.2, 0.3]), 1.0).dtype == torch.float32
    with pytest.raises(ValueError, match="T"):
        project_simplex(torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="vector"):
        project_simplex(torch.ones(2, 2), 1.0)
    with pytest.raises(ValueError, match="finite"):
        project_simplex(torch.tensor([float("nan")]), 1.0)
    assert control.time_step_indicator(torch.tensor([0.5, 0.6]), 1.0) == float("inf")


def test_regularisers_and_soft_threshold():
    net = ResNet(2, 3, dtype=torch.float64)
    assert torch.allclose(control.l1_norm(net), net.A.abs().sum() + net.b.abs().sum())
    assert torch.allclose(control.squared_l2_norm(net), net.A.pow(2).sum() + net.b.pow(2).sum())
    s = control.soft_threshold(torch.tensor([-2.0, 0.5, 3.0]), 1.0)
    assert torch.equal(s, torch.tensor([-1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="tau"):
        control.soft_threshold(s, -1.0)
    const = ResNet(2, 4, T=2.0, init_std=0.0, dtype=torch.float64)
    with torch.no_grad():
        const.A[:] = 1.0
    assert float(control.h1_discrete(const).detach()) == pytest.approx(4.0)
    with torch.no_grad():
        const.A[2:] = 2.0  # one jump of size 1 in 4 entries, h = 1/2
    assert float(control.h1_discrete(const).detach()) == pytest.approx(4.0 + 4.0 / 0.5)


def test_variable_step_resnet_and_proximal_gradient():
    x, t = _data()
    net = VariableStepResNet(2, 4, T=2.0, dtype=torch.float64)
    ref = ResNet(2, 4, T=2.0, dtype=torch.float64)
    ref.load_state_dict({k: v for k, v in net.state_dict().items() if k != "steps"})
    assert torch.allclose(net(x), ref(x))

    def loss(z):
        return 0.5 * (z[:, 0] - t).pow(2).mean()

    hist = control.proximal_gradient(
        net, x, loss, prox={"steps": lambda h, tau: project_simplex(h, 2.0)}, tau=0.1, iterations=20
    )
    assert hist.loss[-1] < hist.loss[0]
    assert control.time_step_indicator(net.steps.detach(), 2.0) == 0.0
    with pytest.raises(ValueError, match="parameter"):
        control.proximal_gradient(net, x, loss, prox={"h": lambda h, tau: h})


def test_deep_limit_sequence_and_l2_distance():
    x, t = _data(16)

    def loss(z):
        return 0.5 * (z[:, 0] - t).pow(2).mean()

    torch.manual_seed(0)
    net = ResNet(2, 2, T=1.0, dtype=torch.float64)
    fine = control.prolong(net, 4)
    assert torch.allclose(fine(x), control.ode_flow(net, x, "explicit_euler", 4))
    assert control.l2_distance(net, fine) == pytest.approx(0.0, abs=1e-14)
    out = control.deep_limit_sequence(net, x, loss, 0.01, [2, 4, 8], max_iter=100)
    assert len(out["values"]) == 3 and len(out["distances"]) == 2
    assert all(v > 0 for v in out["values"])
    with pytest.raises(ValueError, match="multiple"):
        control.deep_limit_sequence(net, x, loss, 0.01, [2, 3])
    with pytest.raises(ValueError, match="lam"):
        control.deep_limit_objective(net, x, loss, 0.0)
    with pytest.raises(ValueError, match="divide"):
        control.l2_distance(ResNet(2, 2), ResNet(2, 3))
