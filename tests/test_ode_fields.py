import pytest
import torch
from control_helpers import tensors
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref.ode import (
    DissipativeField,
    GradientField,
    HamiltonianField,
    ODENet,
    PlainField,
    ReLUField,
)
from spdl_ref.ode.fields import activation_antiderivative

D = torch.float64


def test_plain_and_dissipative_formulas():
    f = PlainField(3, 2, dtype=D)
    z = torch.randn(4, 3, dtype=D)
    assert torch.allclose(f(1, z), torch.tanh(z @ f.A[1].T + f.b[1]))
    g = DissipativeField(3, 2, gamma=0.2, dtype=D)
    A = g.A[0]
    assert torch.allclose(A + A.T, -0.4 * torch.eye(3, dtype=D))  # skew part plus -gamma I
    assert {n for n, _ in g.named_parameters()} == {"S", "b"}
    assert torch.allclose(g(0, z), torch.tanh(z @ A.T + g.b[0]))


def test_relu_field_15():
    f = ReLUField(2, 3, width=5, dtype=D)
    z = torch.randn(7, 2, dtype=D)
    expected = -torch.relu(z @ f.A1[2].T + f.b1[2]) @ f.A2[2].T + f.b2[2]
    assert torch.allclose(f(2, z), expected)


@pytest.mark.parametrize("activation", ["tanh", "relu", "identity", "sigmoid"])
@settings(max_examples=10, deadline=None)
@given(width=st.integers(1, 4), n=st.integers(1, 6), data=st.data())
def test_gradient_field_is_minus_grad_V(activation, width, n, data):
    f = GradientField(3, 2, width=width, activation=activation, dtype=D)
    with torch.no_grad():
        f.A.copy_(data.draw(tensors((2, width, 3))))
        f.b.copy_(data.draw(tensors((2, width))))
    z = data.draw(tensors((n, 3), -3.0, 3.0)).requires_grad_(True)
    (gV,) = torch.autograd.grad(f.potential(1, z).sum(), z)
    assert torch.allclose(f(1, z), -gV, atol=1e-12)
    assert f.A.shape == (2, width, 3) and f.b.shape == (2, width)


@pytest.mark.parametrize("variant", ["second_order", "two_layer"])
def test_hamiltonian_field(variant):
    f = HamiltonianField(2, 3, variant=variant, dtype=D)
    u = torch.randn(6, 4, dtype=D, requires_grad=True)
    (gH,) = torch.autograd.grad(f.hamiltonian(0, u).sum(), u)
    J = torch.zeros(4, 4, dtype=D)
    J[:2, 2:], J[2:, :2] = torch.eye(2), -torch.eye(2)
    assert torch.allclose(f(0, u), gH @ J.T, atol=1e-12)  # u' = J grad H
    x = torch.randn(6, 2, dtype=D)
    assert torch.equal(f.lift(x)[:, 2:], torch.zeros_like(x)) and torch.equal(
        f.project(f.lift(x)), x
    )
    if variant == "second_order":
        assert torch.equal(f.dT(0, x), x)
        assert torch.allclose(f.acceleration(1, x), -torch.tanh(x @ f.A2[1].T + f.b2[1]) @ f.A2[1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="activation"):
        PlainField(2, 2, activation="swish")
    with pytest.raises(TypeError, match="activation"):
        PlainField(2, 2, activation=torch.tanh)
    with pytest.raises(ValueError, match="dim"):
        GradientField(0, 2)
    with pytest.raises(ValueError, match="gamma"):
        DissipativeField(2, 2, gamma=-1.0)
    with pytest.raises(ValueError, match="variant"):
        HamiltonianField(2, 2, variant="x")
    f = PlainField(2, 2)
    with pytest.raises(ValueError, match="k must"):
        f(2, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="last dimension"):
        f(0, torch.zeros(1, 3))
    with pytest.raises(TypeError, match="floating"):
        f(0, torch.zeros(1, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="antiderivative"):
        GradientField(2, 1, activation="softplus").potential(0, torch.zeros(1, 2))
    assert activation_antiderivative("relu")[1](torch.tensor(-1.0)) == 0


FIELDS = [
    (lambda dt: PlainField(2, 4, dtype=dt), "rk4"),
    (lambda dt: DissipativeField(2, 4, dtype=dt), "implicit_midpoint"),
    (lambda dt: GradientField(2, 4, dtype=dt), "implicit_euler"),
    (lambda dt: ReLUField(2, 4, dtype=dt), "explicit_euler"),
    (lambda dt: HamiltonianField(2, 4, dtype=dt), "stormer_verlet"),
    (lambda dt: HamiltonianField(2, 4, variant="two_layer", dtype=dt), "symplectic_euler"),
]


@pytest.mark.parametrize("make, method", FIELDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_odenet_runs_and_trains(make, method, dtype):
    torch.manual_seed(0)
    net = ODENet(make(dtype), method, T=1.0)
    x = torch.randn(16, 2, dtype=dtype)
    y = net(x)
    assert y.shape == x.shape and y.dtype == dtype
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((net(x) - 0.5 * x) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_odenet_explicit_euler_is_resnet_and_gradcheck():
    f = PlainField(2, 3, dtype=D)
    net = ODENet(f, "explicit_euler", T=1.5)
    x = torch.randn(4, 2, dtype=D)
    z = x
    for k in range(3):
        z = z + 0.5 * torch.tanh(z @ f.A[k].T + f.b[k])
    assert torch.allclose(net(x), z, atol=1e-14)
    gnet = ODENet(GradientField(2, 2, dtype=D), "gauss4", T=1.0)
    assert torch.autograd.gradcheck(gnet, (x.requires_grad_(True),))


def test_odenet_bad_inputs():
    with pytest.raises(ValueError, match="unknown method"):
        ODENet(PlainField(2, 2), "rk5")
    with pytest.raises(ValueError, match="Hamiltonian"):
        ODENet(PlainField(2, 2), "stormer_verlet")
    with pytest.raises(TypeError, match=r"field .*Linear.* has no 'depth', 'dim', 'field'"):
        ODENet(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"field must be a torch\.nn\.Module"):
        ODENet("plain")
    with pytest.raises(ValueError, match="T"):
        ODENet(PlainField(2, 2), T=0.0)
    with pytest.raises(ValueError, match="last dimension"):
        ODENet(PlainField(2, 2))(torch.zeros(3, 3))


CLOSED_FORM = [
    (lambda: PlainField(3, 2, activation="tanh", dtype=D), {"A", "b"}),
    (lambda: PlainField(3, 2, activation="sigmoid", dtype=D), {"A", "b"}),
    (lambda: PlainField(3, 2, activation="softplus", dtype=D), {"A", "b"}),
    (lambda: PlainField(3, 2, activation="identity", dtype=D), {"A", "b"}),
    (lambda: DissipativeField(3, 2, gamma=0.3, dtype=D), {"S", "b"}),
]


@pytest.mark.parametrize("make, names", CLOSED_FORM)
@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 5), data=st.data())
def test_closed_form_vjps_of_field_8_equal_autograd(make, names, n, data):
    """The closed forms of (8) (PlainField, DissipativeField) against torch.func.vjp."""
    f = make()
    with torch.no_grad():
        for p in f.parameters():
            p.copy_(data.draw(tensors(tuple(p.shape))))
    z, p = data.draw(tensors((n, 3))), data.draw(tensors((n, 3)))
    dz, dtheta = f.vjp(1, z, p)
    assert set(dtheta) == names == set(f.layer_parameters(1))
    _, pullback = torch.func.vjp(lambda v, th: f.field(1, v, th), z, f.layer_parameters(1))
    ref_z, ref_theta = pullback(p)
    assert torch.allclose(dz, ref_z, rtol=1e-12, atol=1e-13)
    for name in names:
        assert torch.allclose(dtheta[name], ref_theta[name], rtol=1e-12, atol=1e-13), name


@pytest.mark.parametrize(
    "make",
    [
        lambda: PlainField(2, 3, dtype=D),
        lambda: DissipativeField(2, 3, dtype=D),
        lambda: ReLUField(2, 3, width=4, dtype=D),
        lambda: GradientField(2, 3, width=3, dtype=D),
        lambda: HamiltonianField(2, 3, variant="two_layer", dtype=D),
    ],
)
def test_fields_evaluate_at_given_layer_parameters(make):
    """field(k, z, theta) is the field of a layer that carries theta (what MSA maximises over)."""
    torch.manual_seed(0)
    f, g = make(), make()
    z = torch.randn(4, f.state_dim, dtype=D)
    theta = g.layer_parameters(2)
    assert {n for n, _ in f.named_parameters()} == set(theta)
    assert all(v.shape == getattr(f, n)[2].shape for n, v in theta.items())
    assert torch.equal(f.field(0, z, theta), g.field(2, z))
    assert not torch.allclose(f.field(0, z), g.field(2, z))
