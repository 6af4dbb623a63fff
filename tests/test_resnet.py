import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref.ode import ClassifierHead, ResNet


@given(dim=st.integers(1, 5), depth=st.integers(1, 8), T=st.floats(0.1, 5.0), n=st.integers(1, 7))
def test_trajectory_is_forward_euler(dim, depth, T, n):
    torch.manual_seed(0)
    net = ResNet(dim, depth, T=T, dtype=torch.float64)
    x = torch.randn(n, dim, dtype=torch.float64)
    z = net.trajectory(x)
    assert z.shape == (depth + 1, n, dim)
    assert net.A.shape == (depth, dim, dim) and net.b.shape == (depth, dim)
    assert math.isclose(net.h, T / depth)
    assert torch.equal(z[0], x)
    for k in range(depth):
        step = z[k] + (T / depth) * torch.tanh(z[k] @ net.A[k].T + net.b[k])
        assert torch.allclose(z[k + 1], step, rtol=0, atol=1e-14)
    assert torch.equal(z[-1], net(x))


def test_review_resnet_is_T_equals_K():
    torch.manual_seed(1)
    net = ResNet(3, 4, T=4.0, activation=torch.relu, dtype=torch.float64)
    x = torch.randn(5, 3, dtype=torch.float64)
    z = x
    for k in range(4):  # eq. (5): no step size
        z = z + torch.relu(z @ net.A[k].T + net.b[k])
    assert torch.allclose(net(x), z, atol=1e-14)


def test_device_dtype_and_batch_shapes(device, dtype):
    net = ResNet(3, 5, device=device, dtype=dtype)
    x = torch.randn(2, 4, 3, device=device, dtype=dtype)
    out = net(x)
    assert out.shape == x.shape and out.dtype == dtype and out.device.type == device.type
    assert net.trajectory(x).shape == (6, 2, 4, 3)
    assert net.times.shape == (6,) and net.times[-1].item() == pytest.approx(1.0)


def test_init_std_zero_is_identity():
    net = ResNet(2, 3, init_std=0.0)
    x = torch.randn(4, 2)
    assert torch.allclose(net(x), x)


def test_gradcheck_float64():
    torch.manual_seed(2)
    net = ResNet(2, 3, T=1.5, dtype=torch.float64)
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, A, b: _functional(net, x, A, b), (x, net.A, net.b))


def _functional(net, x, A, b):
    z = x
    for k in range(net.depth):
        z = z + net.h * torch.tanh(z @ A[k].T + b[k])
    return z


def test_costates_equal_backpropagation():
    torch.manual_seed(3)
    net = ResNet(3, 6, T=2.0, dtype=torch.float64)
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    states = net.states(x)
    loss = 0.5 * states[-1].pow(2).sum()
    p_autograd = torch.autograd.grad(loss, states)
    p = net.costates(x, states[-1].detach())
    assert len(p) == 7
    for a, b in zip(p, p_autograd):
        assert torch.allclose(a, b, atol=1e-13)


def test_field_vjp_and_layer_jacobian_agree():
    torch.manual_seed(4)
    net = ResNet(3, 2, dtype=torch.float64)
    z = torch.randn(5, 3, dtype=torch.float64)
    p = torch.randn(5, 3, dtype=torch.float64)
    J = net.layer_jacobian(1, z)
    assert J.shape == (5, 3, 3)
    vjp = net.field_vjp(1, z, p)
    expected = torch.einsum("nij,ni->nj", (J - torch.eye(3, dtype=torch.float64)) / net.h, p)
    assert torch.allclose(vjp, expected, atol=1e-13)


def test_from_control_samples_the_control():
    def A(t):
        return torch.tensor([[0.0, -1.0 - t], [1.0, 0.0]])

    def b(t):
        return torch.tensor([t, 0.0])

    net = ResNet.from_control(A, b, depth=4, T=2.0)
    assert torch.allclose(net.A[3], A(1.5)) and torch.allclose(net.b[2], b(1.0))
    with pytest.raises(ValueError, match="square"):
        ResNet.from_control(lambda t: torch.zeros(2, 3), b, depth=2)
    with pytest.raises(ValueError, match="shapes"):
        ResNet.from_control(A, lambda t: torch.zeros(3), depth=2)
    with pytest.raises(TypeError, match="callables"):
        ResNet.from_control(torch.eye(2), b, depth=2)


@pytest.mark.parametrize("depth", [0, -1])
def test_depth_below_one_rejected(depth):
    with pytest.raises(ValueError, match="depth must be >= 1"):
        ResNet(2, depth)


def test_depth_must_be_integer():
    with pytest.raises(TypeError, match="depth must be an integer"):
        ResNet(2, 2.5)


@pytest.mark.parametrize("T", [0.0, -1.0, float("nan"), float("inf")])
def test_nonpositive_or_nonfinite_T_rejected(T):
    with pytest.raises(ValueError, match="T must be"):
        ResNet(2, 3, T=T)


def test_dim_mismatch_rejected():
    net = ResNet(3, 2)
    with pytest.raises(ValueError, match=r"x must have last dimension 3, got shape \(4, 2\)"):
        net(torch.randn(4, 2))
    with pytest.raises(ValueError, match="x must have last dimension 3"):
        net.trajectory(torch.randn(4, 5))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        net([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.ones(2, 3, dtype=torch.long))


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="dim must be >= 1"):
        ResNet(0, 2)
    with pytest.raises(TypeError, match="activation must be callable"):
        ResNet(2, 2, activation="tanh")
    with pytest.raises(ValueError, match="init_std"):
        ResNet(2, 2, init_std=-1.0)
    net = ResNet(2, 2)
    with pytest.raises(ValueError, match="k must be in"):
        net.field(2, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="p_K must have the shape"):
        net.costates(torch.zeros(3, 2), torch.zeros(4, 2))


def test_classifier_head():
    head = ClassifierHead(3, 2, activation=torch.sigmoid, dtype=torch.float64)
    z = torch.randn(7, 3, dtype=torch.float64)
    out = head(z)
    assert out.shape == (7, 2)
    assert torch.allclose(out, torch.sigmoid(z @ head.W.T + head.mu))
    model = torch.nn.Sequential(
        ResNet(3, 4, dtype=torch.float64), ClassifierHead(3, 1, dtype=torch.float64)
    )
    assert model(z).shape == (7, 1)
    with pytest.raises(ValueError, match="z must have last dimension 3"):
        head(torch.randn(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="out_features must be >= 1"):
        ClassifierHead(3, 0)
    with pytest.raises(TypeError, match="activation must be callable or None"):
        ClassifierHead(3, 1, activation=1)
