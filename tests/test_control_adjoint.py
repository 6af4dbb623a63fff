"""Discrete adjoint (28) and continuous adjoint (26)-(27) of spdl_ref.control, on every network."""

import itertools
import math

import pytest
import torch
from control_helpers import one_thread, tensors  # noqa: F401 (one_thread: a fixture)
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref import control
from spdl_ref.control import continuous_adjoint, discrete_adjoint, ode_flow
from spdl_ref.ode import (
    DissipativeField,
    GradientField,
    ODENet,
    PlainField,
    ReLUField,
    ResNet,
    VariableStepResNet,
)

D = torch.float64
EXPLICIT = ["explicit_euler", "heun", "kutta3", "rk4"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _loss(z):
    return 0.5 * (z[:, 0] - 1).pow(2).mean() + 0.1 * z[:, -1].sin().mean()


def _grad_zK(net, x):
    return control.terminal_costate(net, x, _loss)


def test_terminal_costate_is_the_derivative_of_the_loss_at_the_output():
    torch.manual_seed(8)
    net = ODENet(PlainField(2, 3, dtype=D), "heun")
    x = torch.randn(4, 2, dtype=D)
    zK = net(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(_loss(zK), zK)
    assert torch.equal(control.terminal_costate(net, x, _loss), g)
    with pytest.raises(ValueError, match="scalar"):
        control.terminal_costate(net, x, lambda z: z)


def _draw_parameters(net, data, steps=(0.0, 1.0)):
    """Draw every parameter's entries (learnt steps in ``steps``), in place."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            low, high = steps if name == "steps" else (-1.5, 1.5)
            p.copy_(data.draw(tensors(tuple(p.shape), low, high)))


def _assert_gradients_equal(d, ref, rtol=1e-10):
    assert set(d) - {"p"} == set(ref)
    for name, g in ref.items():
        err = float((d[name] - g).norm())
        assert err <= rtol * float(g.norm()) + 1e-14, (name, err, float(g.norm()))


@settings(max_examples=15, deadline=None)
@given(
    M=st.integers(1, 4),
    K=st.integers(1, 6),
    N=st.integers(1, 5),
    T=st.floats(0.1, 3.0),
    act=st.sampled_from(["tanh", "sigmoid", "softplus"]),
    data=st.data(),
)
def test_discrete_adjoint_of_the_resnet_equals_autograd(M, K, N, T, act, data):
    sigma = {
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "softplus": torch.nn.functional.softplus,
    }[act]
    net = ResNet(M, K, T=T, activation=sigma, dtype=D)
    _draw_parameters(net, data)
    x = data.draw(tensors((N, M)))
    ref = control.autograd_gradient(net, _loss(net(x)))
    g = _grad_zK(net, x)
    d = discrete_adjoint(net, x, g, return_costates=True)
    assert d["A"].shape == (K, M, M) and d["b"].shape == (K, M) and d["p"].shape == (K + 1, N, M)
    _assert_gradients_equal(d, ref)
    assert torch.equal(d["p"][-1], g)


@settings(max_examples=20, deadline=None)
@given(
    method=st.sampled_from(EXPLICIT),
    field=st.sampled_from(["plain", "dissipative", "relu", "gradient"]),
    K=st.integers(1, 4),
    N=st.integers(1, 4),
    T=st.floats(0.2, 2.0),
    data=st.data(),
)
def test_discrete_adjoint_of_explicit_rk_networks_equals_autograd(method, field, K, N, T, data):
    """The written-out adjoint Runge-Kutta method (Hager; Sanz-Serna) is backpropagation."""
    make = {
        "plain": lambda: PlainField(2, K, dtype=D),
        "dissipative": lambda: DissipativeField(2, K, gamma=0.2, dtype=D),
        "relu": lambda: ReLUField(2, K, width=3, activation="tanh", dtype=D),
        "gradient": lambda: GradientField(2, K, width=3, dtype=D),
    }[field]
    net = ODENet(make(), method, T=T)
    _draw_parameters(net, data)
    x = data.draw(tensors((N, 2)))
    d = discrete_adjoint(net, x, _grad_zK(net, x))
    _assert_gradients_equal(d, control.autograd_gradient(net, _loss(net(x))))


@settings(max_examples=20, deadline=None)
@given(K=st.integers(1, 6), N=st.integers(1, 5), M=st.integers(1, 3), data=st.data())
def test_discrete_adjoint_with_random_variable_steps_equals_autograd(K, N, M, data):
    """(38) with drawn non-uniform steps (zero included): A, b and the steps' own gradient."""
    net = VariableStepResNet(M, K, T=2.0, dtype=D)
    _draw_parameters(net, data)
    x = data.draw(tensors((N, M)))
    ref = control.autograd_gradient(net, _loss(net(x)))
    d = discrete_adjoint(net, x, _grad_zK(net, x))
    assert set(d) == {"A", "b", "steps"} and d["steps"].shape == (K,)
    _assert_gradients_equal(d, ref)


def test_the_learnt_steps_are_used_not_the_nominal_h():
    """The defect this protocol fixes: (38) with random steps, 45 % off before (float64)."""
    torch.manual_seed(0)
    net = VariableStepResNet(3, 6, T=2.0, dtype=D)
    with torch.no_grad():
        net.steps.copy_(torch.rand(6, dtype=D) * 0.6)
    x = torch.randn(8, 3, dtype=D)
    ref = control.autograd_gradient(net, _loss(net(x)))
    d = discrete_adjoint(net, x, _grad_zK(net, x))
    assert control.relative_error(d, ref) < 1e-12
    nominal = ResNet(3, 6, T=2.0, dtype=D)
    nominal.load_state_dict({k: v for k, v in net.state_dict().items() if k != "steps"})
    wrong = discrete_adjoint(nominal, x, _grad_zK(net, x))
    assert control.relative_error(wrong, {"A": ref["A"], "b": ref["b"]}) > 0.1


@pytest.mark.parametrize("method", EXPLICIT)
def test_adjoint_pair_conserves_the_bilinear_form(method):
    """p^k . du^k is the same at every layer for (forward RK step, adjoint step).

    The discrete analogue of d/dt <p, dz> = 0 along (24b) linearised and (26). The continuous
    adjoint solved backwards with the same method (optimise-then-discretise) does not conserve it.
    """
    torch.manual_seed(1)
    net = ODENet(PlainField(2, 6, dtype=D), method, T=3.0)
    x, dx = torch.randn(5, 2, dtype=D), torch.randn(5, 2, dtype=D)
    du = torch.func.jvp(net.trajectory, (x,), (dx,))[1].detach()
    p = discrete_adjoint(net, x, _grad_zK(net, x), return_costates=True)["p"]
    form = (p * du).sum(dim=(1, 2))
    assert float((form - form[-1]).abs().max()) < 1e-13 * float(form.abs().max())
    otd = continuous_adjoint(net, x, _loss, method=method, return_costates=True)["p"]
    drift = (otd * du).sum(dim=(1, 2))
    assert float((drift - drift[-1]).abs().max()) > 1e-6 * float(drift.abs().max())


def test_bilinear_form_with_variable_steps():
    torch.manual_seed(2)
    net = VariableStepResNet(3, 5, T=2.0, dtype=D)
    with torch.no_grad():
        net.steps.copy_(torch.tensor([0.7, 0.0, 0.4, 0.6, 0.3], dtype=D))
    x, dx = torch.randn(4, 3, dtype=D), torch.randn(4, 3, dtype=D)
    du = torch.func.jvp(net.trajectory, (x,), (dx,))[1].detach()
    p = discrete_adjoint(net, x, _grad_zK(net, x), return_costates=True)["p"]
    form = (p * du).sum(dim=(1, 2))
    assert float((form - form[-1]).abs().max()) < 1e-13 * float(form.abs().max())


def test_discrete_adjoint_costates_match_resnet_costates():
    torch.manual_seed(0)
    net = ResNet(3, 5, T=2.0, dtype=D)
    x = torch.randn(4, 3, dtype=D)
    g = torch.randn(4, 3, dtype=D)
    p = discrete_adjoint(net, x, g, return_costates=True)["p"]
    assert torch.allclose(p, torch.stack(net.costates(x, g)), atol=1e-13)
    assert torch.allclose(p, torch.stack(control.discrete_costates(net, x, g)), atol=1e-13)


def test_discrete_adjoint_float32_and_relu():
    torch.manual_seed(1)
    net = ResNet(2, 3, activation=torch.relu)
    x = torch.randn(6, 2)
    ref = control.autograd_gradient(net, _loss(net(x)))
    d = discrete_adjoint(net, x, _grad_zK(net, x))
    assert d["A"].dtype == torch.float32
    assert torch.allclose(d["A"], ref["A"], atol=1e-5) and torch.allclose(
        d["b"], ref["b"], atol=1e-5
    )


class _SharedBias(ResNet):
    """A ResNet with one more parameter that no layer owns: not a layered network's layout."""

    def __init__(self):
        super().__init__(2, 3, dtype=D)
        self.shift = torch.nn.Parameter(torch.zeros(2, dtype=D))


def test_discrete_adjoint_bad_inputs():
    net = ResNet(2, 3, dtype=D)
    x = torch.zeros(4, 2, dtype=D)
    with pytest.raises(TypeError, match=r"model \(Linear\) does not satisfy .* no 'depth'"):
        discrete_adjoint(torch.nn.Linear(2, 2), x, x)
    with pytest.raises(TypeError, match=r"\['shift'\] do not"):
        discrete_adjoint(_SharedBias(), x, x)
    with pytest.raises(ValueError, match="grad_zK"):
        discrete_adjoint(net, x, torch.zeros(3, 2, dtype=D))
    with pytest.raises(ValueError, match="x must have shape"):
        discrete_adjoint(net, torch.zeros(4, 3, dtype=D), x)
    with pytest.raises(ValueError, match="finite"):
        discrete_adjoint(net, x, torch.full((4, 2), float("nan"), dtype=D))
    with pytest.raises(TypeError, match="dtype"):
        discrete_adjoint(net, x.float(), x.float())
    with pytest.raises(ValueError, match="printed_sign"):
        control.adjoint_step(
            ODENet(PlainField(2, 2, dtype=D), "gauss4"), 0, x, x, printed_sign=True
        )


@pytest.mark.parametrize(
    "make",
    [
        lambda: ResNet(2, 4, T=2.0, dtype=D),
        lambda: VariableStepResNet(2, 4, T=2.0, dtype=D),
        lambda: ODENet(ReLUField(2, 4, activation="tanh", dtype=D), "explicit_euler", T=2.0),
    ],
)
def test_rectangle_adjoint_with_euler_is_the_discrete_adjoint(make):
    """(29)-(30): OTD with piecewise-constant quadrature equals DTO for forward Euler."""
    torch.manual_seed(2)
    net = make()
    if isinstance(net, VariableStepResNet):
        with torch.no_grad():
            net.steps.copy_(torch.tensor([0.9, 0.1, 0.0, 1.0], dtype=D))
    x = torch.randn(8, 2, dtype=D)
    ref = control.autograd_gradient(net, _loss(net(x)))
    c = continuous_adjoint(net, x, _loss, method="explicit_euler", adjoint="rectangle")
    _assert_gradients_equal({n: c[n] for n in ref}, ref)
    assert torch.equal(c["z_T"], net(x).detach())


@pytest.mark.parametrize("method, order", [("explicit_euler", 1), ("heun", 2), ("rk4", 4)])
def test_continuous_adjoint_converges_with_the_method_order(method, order):
    torch.manual_seed(3)
    net = ResNet(2, 2, T=1.0, dtype=D)
    x = torch.randn(5, 2, dtype=D)
    ref = continuous_adjoint(net, x, _loss, method="rk4", steps_per_layer=128)
    errors = []
    for s in (4, 8, 16):
        c = continuous_adjoint(net, x, _loss, method=method, steps_per_layer=s)
        errors.append(control.relative_error(c, {"A": ref["A"], "b": ref["b"]}))
    rates = [math.log2(a / b) for a, b in itertools.pairwise(errors)]
    assert all(abs(r - order) < 0.2 for r in rates), rates


def test_continuous_adjoint_matches_dto_in_the_limit_and_forward_flow():
    torch.manual_seed(4)
    net = ResNet(2, 3, T=1.5, dtype=D)
    x = torch.randn(3, 2, dtype=D)
    z = ode_flow(net, x, "rk4", 8)
    ref = control.autograd_gradient(net, _loss(z))
    c = continuous_adjoint(net, x, _loss, method="rk4", steps_per_layer=8)
    assert torch.allclose(c["z_T"], z.detach(), atol=1e-14)
    assert 1e-12 < control.relative_error(c, ref) < 1e-5
    assert torch.allclose(ode_flow(net, x, "explicit_euler", 1), net(x), atol=1e-14)


def test_continuous_step_gradient_is_the_hamiltonian_at_the_interval_end():
    """d l / d h_k = <p, f> at t^(k+1): against autograd through a fine flow of (38)."""
    torch.manual_seed(5)
    net = VariableStepResNet(2, 3, T=1.5, dtype=D)
    with torch.no_grad():
        net.steps.copy_(torch.tensor([0.2, 0.9, 0.4], dtype=D))
    x = torch.randn(4, 2, dtype=D)
    ref = control.autograd_gradient(net, _loss(ode_flow(net, x, "rk4", 128)))
    errors = []
    for s in (4, 8, 16):
        c = continuous_adjoint(net, x, _loss, method="rk4", steps_per_layer=s)
        errors.append(control.relative_error(c, {"steps": ref["steps"]}))
    rates = [math.log2(a / b) for a, b in itertools.pairwise(errors)]
    assert errors[-1] < 1e-6 and all(abs(r - 4) < 0.3 for r in rates), (errors, rates)


def test_continuous_adjoint_of_a_hamiltonian_network():
    """Lifted states (z, p = 0): the adjoint runs on the phase space and projects back."""
    from spdl_ref.ode import HamiltonianField

    torch.manual_seed(6)
    net = ODENet(HamiltonianField(2, 3, variant="two_layer", dtype=D), "stormer_verlet")
    x = torch.randn(4, 2, dtype=D)
    ref = control.autograd_gradient(net, _loss(ode_flow(net, x, "rk4", 16)))
    c = continuous_adjoint(net, x, _loss, method="rk4", steps_per_layer=16, return_costates=True)
    assert control.relative_error(c, ref) < 1e-6 and c["p"].shape == (4, 4, 4)


def test_continuous_adjoint_implicit_method_and_float32():
    torch.manual_seed(5)
    net = ResNet(2, 1, T=1.0)
    x = torch.randn(3, 2)
    c = continuous_adjoint(net, x, _loss, method="implicit_midpoint", steps_per_layer=2)
    ref = continuous_adjoint(net, x, _loss, method="rk4", steps_per_layer=8)
    assert c["A"].dtype == torch.float32
    assert float((c["A"] - ref["A"]).norm() / ref["A"].norm()) < 0.05


def test_continuous_adjoint_bad_inputs():
    net = ResNet(2, 2, dtype=D)
    x = torch.zeros(3, 2, dtype=D)
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
        continuous_adjoint(net, torch.full((3, 2), float("inf"), dtype=D), _loss)
    with pytest.raises(TypeError, match="unknown keyword arguments"):
        continuous_adjoint(net, x, _loss, tolerance=1e-3)
    with pytest.raises(TypeError, match="does not satisfy the layered-network protocol"):
        ode_flow(torch.nn.Linear(2, 2), x)


def test_gradcheck_of_ode_flow():
    torch.manual_seed(6)
    net = VariableStepResNet(2, 2, dtype=D)
    x = torch.randn(2, 2, dtype=D, requires_grad=True)
    steps = net.steps.detach().clone().requires_grad_(True)

    def flow(v, h):
        return torch.func.functional_call(net, {"steps": h}, (v,), strict=False)

    assert torch.autograd.gradcheck(lambda v: ode_flow(net, v, "rk4", 2), (x,))
    assert torch.autograd.gradcheck(flow, (x, steps))


def test_continuous_adjoint_agrees_with_torchdiffeq():
    """The same algorithm as torchdiffeq's odeint_adjoint (benchmarks/adjoint_torchdiffeq.py)."""
    torchdiffeq = pytest.importorskip("torchdiffeq")
    torch.manual_seed(7)
    net = ResNet(3, 1, T=1.0, dtype=D)
    x = torch.randn(6, 3, dtype=D)

    class Field(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.A = torch.nn.Parameter(net.A.detach()[0].clone())
            self.b = torch.nn.Parameter(net.b.detach()[0].clone())

        def forward(self, t, z):
            return torch.tanh(z @ self.A.T + self.b)

    func = Field()
    t = torch.tensor([0.0, 1.0], dtype=D)
    z = torchdiffeq.odeint_adjoint(func, x, t, method="euler", options={"step_size": 1 / 16})
    _loss(z[-1]).backward()
    c = continuous_adjoint(net, x, _loss, method="explicit_euler", steps_per_layer=16)
    ref = {"A": func.A.grad[None], "b": func.b.grad[None]}
    assert control.relative_error(c, ref) < 1e-12
