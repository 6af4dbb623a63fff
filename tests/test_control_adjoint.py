"""Discrete adjoint (28) and continuous adjoint (26)-(27) of spdl_ref.control."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref.control import continuous_adjoint, discrete_adjoint, ode_flow
from spdl_ref.ode import ResNet


@pytest.fixture(autouse=True)
def _one_thread():
    """The tensors here are tiny: one thread avoids contention on shared CPUs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _loss(z):
    return 0.5 * (z[:, 0] - 1).pow(2).mean() + 0.1 * z[:, -1].sin().mean()


def _autograd(net, x):
    gA, gb = torch.autograd.grad(_loss(net(x)), [net.A, net.b])
    zK = net(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(_loss(zK), zK)
    return gA, gb, g


@settings(max_examples=15, deadline=None)
@given(
    M=st.integers(1, 4),
    K=st.integers(1, 6),
    N=st.integers(1, 5),
    T=st.floats(0.1, 3.0),
    act=st.sampled_from(["tanh", "sigmoid", "softplus"]),
)
def test_discrete_adjoint_equals_autograd(M, K, N, T, act):
    torch.manual_seed(K + 10 * M)
    sigma = {
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "softplus": torch.nn.functional.softplus,
    }[act]
    net = ResNet(M, K, T=T, activation=sigma, dtype=torch.float64)
    x = torch.randn(N, M, dtype=torch.float64)
    gA, gb, g = _autograd(net, x)
    d = discrete_adjoint(net, x, g, return_costates=True)
    assert d["A"].shape == (K, M, M) and d["b"].shape == (K, M) and d["p"].shape == (K + 1, N, M)
    assert torch.allclose(d["A"], gA, rtol=1e-10, atol=1e-13)
    assert torch.allclose(d["b"], gb, rtol=1e-10, atol=1e-13)
    assert torch.allclose(d["p"][-1], g)


def test_discrete_adjoint_costates_match_resnet_costates():
    torch.manual_seed(0)
    net = ResNet(3, 5, T=2.0, dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)
    g = torch.randn(4, 3, dtype=torch.float64)
    p = discrete_adjoint(net, x, g, return_costates=True)["p"]
    assert torch.allclose(p, torch.stack(net.costates(x, g)), atol=1e-13)


def test_discrete_adjoint_float32_and_relu():
    torch.manual_seed(1)
    net = ResNet(2, 3, activation=torch.relu)
    x = torch.randn(6, 2)
    gA, gb, g = _autograd(net, x)
    d = discrete_adjoint(net, x, g)
    assert d["A"].dtype == torch.float32
    assert torch.allclose(d["A"], gA, atol=1e-5) and torch.allclose(d["b"], gb, atol=1e-5)


def test_discrete_adjoint_bad_inputs():
    net = ResNet(2, 3, dtype=torch.float64)
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="model"):
        discrete_adjoint(torch.nn.Linear(2, 2), x, x)
    with pytest.raises(ValueError, match="grad_zK"):
        discrete_adjoint(net, x, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have shape"):
        discrete_adjoint(net, torch.zeros(4, 3, dtype=torch.float64), x)
    with pytest.raises(ValueError, match="finite"):
        discrete_adjoint(net, x, torch.full((4, 2), float("nan"), dtype=torch.float64))
    with pytest.raises(TypeError, match="dtype"):
        discrete_adjoint(net, x.float(), x.float())


def test_rectangle_adjoint_with_euler_is_the_discrete_adjoint():
    """(29)-(30): OTD with piecewise-constant quadrature equals DTO for forward Euler."""
    torch.manual_seed(2)
    net = ResNet(2, 4, T=2.0, dtype=torch.float64)
    x = torch.randn(8, 2, dtype=torch.float64)
    gA, gb, _ = _autograd(net, x)
    c = continuous_adjoint(net, x, _loss, method="explicit_euler", adjoint="rectangle")
    assert torch.allclose(c["A"], gA, rtol=1e-10, atol=1e-14)
    assert torch.allclose(c["b"], gb, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("method, order", [("explicit_euler", 1), ("rk4", 4)])
def test_continuous_adjoint_converges_with_the_method_order(method, order):
    torch.manual_seed(3)
    net = ResNet(2, 2, T=1.0, dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64)
    ref = continuous_adjoint(net, x, _loss, method="rk4", steps_per_layer=128)
    errors = []
    for s in (4, 8, 16):
        c = continuous_adjoint(net, x, _loss, method=method, steps_per_layer=s)
        errors.append(
            math.sqrt(float((c["A"] - ref["A"]).pow(2).sum() + (c["b"] - ref["b"]).pow(2).sum()))
        )
    rates = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert all(abs(r - order) < 0.2 for r in rates), rates


def test_continuous_adjoint_matches_dto_in_the_limit_and_forward_flow():
    torch.manual_seed(4)
    net = ResNet(2, 3, T=1.5, dtype=torch.float64)
    x = torch.randn(3, 2, dtype=torch.float64)
    z = ode_flow(net, x, "rk4", 8)
    gA, gb = torch.autograd.grad(_loss(z), [net.A, net.b])
    c = continuous_adjoint(net, x, _loss, method="rk4", steps_per_layer=8)
    assert torch.allclose(c["z_T"], z.detach(), atol=1e-14)
    assert float((c["A"] - gA).norm() / gA.norm()) < 1e-5
    assert torch.allclose(ode_flow(net, x, "explicit_euler", 1), net(x), atol=1e-14)


def test_continuous_adjoint_implicit_method_and_float32():
    torch.manual_seed(5)
    net = ResNet(2, 1, T=1.0)
    x = torch.randn(3, 2)
    c = continuous_adjoint(net, x, _loss, method="implicit_midpoint", steps_per_layer=2)
    ref = continuous_adjoint(net, x, _loss, method="rk4", steps_per_layer=8)
    assert c["A"].dtype == torch.float32
    assert float((c["A"] - ref["A"]).norm() / ref["A"].norm()) < 0.05


def test_continuous_adjoint_bad_inputs():
    net = ResNet(2, 2, dtype=torch.float64)
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="loss"):
        continuous_adjoint(net, x, 3.0)
    with pytest.raises(ValueError, match="steps_per_layer"):
        continuous_adjoint(net, x, _loss, steps_per_layer=0)
    with pytest.raises(ValueError, match="adjoint"):
        continuous_adjoint(net, x, _loss, adjoint="stored")
    with pytest.raises(ValueError, match="unknown method"):
        continuous_adjoint(net, x, _loss, method="rk5")
    with pytest.raises(ValueError, match="scalar"):
        continuous_adjoint(net, x, lambda z: z)
    with pytest.raises(ValueError, match="finite"):
        continuous_adjoint(net, torch.full((3, 2), float("inf"), dtype=torch.float64), _loss)


def test_gradcheck_of_ode_flow():
    torch.manual_seed(6)
    net = ResNet(2, 2, dtype=torch.float64)
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: ode_flow(net, v, "rk4", 2), (x,))
