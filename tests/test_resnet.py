import itertools
import math

import pytest
import torch
from control_helpers import tensors
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref.ode import (
    ClassifierHead,
    LayeredNetwork,
    ResNet,
    VariableStepResNet,
    check_layered,
    example_control,
    layer_step,
    network_states,
)

D = torch.float64


@given(
    dim=st.integers(1, 5),
    depth=st.integers(1, 8),
    T=st.floats(0.1, 5.0),
    n=st.integers(1, 7),
    data=st.data(),
)
def test_trajectory_is_forward_euler(dim, depth, T, n, data):
    net = ResNet(dim, depth, T=T, init_std=0.0, dtype=D)
    with torch.no_grad():
        net.A.copy_(data.draw(tensors((depth, dim, dim))))
        net.b.copy_(data.draw(tensors((depth, dim))))
    x = data.draw(tensors((n, dim), -3.0, 3.0))
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


@pytest.mark.parametrize("cls", [ResNet, VariableStepResNet])
def test_gradcheck_of_the_network_itself(cls):
    """Finite differences against autograd through the module's own forward (every parameter)."""
    torch.manual_seed(2)
    net = cls(2, 3, T=1.5, dtype=D)
    x = torch.randn(3, 2, dtype=D, requires_grad=True)
    names = [n for n, _ in net.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in net.named_parameters()]

    def output(x, *values):
        return torch.func.functional_call(net, dict(zip(names, values, strict=True)), (x,))

    assert torch.autograd.gradcheck(output, (x, *params))


def test_costates_equal_backpropagation():
    torch.manual_seed(3)
    net = ResNet(3, 6, T=2.0, dtype=torch.float64)
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    states = net.states(x)
    loss = 0.5 * states[-1].pow(2).sum()
    p_autograd = torch.autograd.grad(loss, states)
    p = net.costates(x, states[-1].detach())
    assert len(p) == 7
    for a, b in zip(p, p_autograd, strict=True):
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
    A, b = example_control(torch.float32)
    net = ResNet.from_control(A, b, depth=4, T=2.0)
    assert torch.allclose(net.A[3], A(1.5)) and torch.allclose(net.b[2], b(1.0))
    assert net.A.dtype == torch.float32 and net.A[3, 0, 1].item() == pytest.approx(1.5 - 2.0)
    assert net.b[2, 0].item() == pytest.approx(math.sin(2.0))
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
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
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


def test_example_control_converges_with_order_one():
    """Chapter 1's experiment in small: (6) tends to the flow of (7) like h."""
    A, b = example_control()
    x0 = torch.tensor([[1.0, -0.5]], dtype=D)
    with torch.no_grad():
        ref = ResNet.from_control(A, b, depth=2**12, T=2.0)(x0)
        errs = [
            (ResNet.from_control(A, b, depth=K, T=2.0)(x0) - ref).norm().item()
            for K in (64, 128, 256)
        ]
    assert all(abs(math.log2(e0 / e1) - 1) < 0.1 for e0, e1 in itertools.pairwise(errs))


def test_resnet_satisfies_the_layered_protocol():
    net = ResNet(3, 4, T=2.0, dtype=D)
    assert isinstance(net, LayeredNetwork) and check_layered(net) is net
    assert net.integrator.name == "explicit_euler" and net.step_size(2) == net.h == 0.5
    assert set(net.layer_parameters(1)) == {"A", "b"} and net.step_parameter is None
    x = torch.randn(5, 3, dtype=D)
    states = network_states(net, x)
    assert torch.equal(states[-1], net(x)) and torch.equal(torch.stack(states), net.trajectory(x))
    assert torch.equal(layer_step(net, 1, states[1]), states[2])
    theta = {"A": torch.zeros(3, 3, dtype=D), "b": torch.ones(3, dtype=D)}
    assert torch.allclose(layer_step(net, 0, x, theta), x + 0.5 * math.tanh(1.0))
    with pytest.raises(
        TypeError, match=r"does not satisfy the layered-network protocol .*: it has no 'depth'"
    ):
        check_layered(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        check_layered(lambda v: v)


def test_generator_makes_the_initialisation_reproducible():
    a = ResNet(3, 2, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(0)
    b = ResNet(3, 2, generator=torch.Generator().manual_seed(7))
    c = ResNet(3, 2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.A, b.A) and torch.equal(a.b, b.b) and not torch.equal(a.A, c.A)
    torch.manual_seed(3)
    d = ResNet(3, 2)
    torch.manual_seed(3)
    e = ResNet(3, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(d.A, e.A)  # the same draws as the global generator seeded alike
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        ResNet(2, 2, generator=3)


@given(data=st.data(), K=st.integers(1, 5), N=st.integers(1, 4), M=st.integers(1, 3))
def test_variable_steps_are_the_recursion_38_and_its_costates(data, K, N, M):
    """(38) with drawn steps, and ResNet.costates with those steps (not the nominal h)."""
    net = VariableStepResNet(M, K, T=2.0, init_std=0.0, dtype=D)
    with torch.no_grad():
        net.A.copy_(data.draw(tensors((K, M, M))))
        net.b.copy_(data.draw(tensors((K, M))))
        net.steps.copy_(data.draw(tensors((K,), 0.0, 1.0)))
    x = data.draw(tensors((N, M)))
    states = net.states(x.requires_grad_(True))
    for k in range(K):
        step = states[k] + net.steps[k] * torch.tanh(states[k] @ net.A[k].T + net.b[k])
        assert torch.allclose(states[k + 1], step, rtol=0, atol=1e-13)
    p_K = data.draw(tensors((N, M)))
    p_autograd = torch.autograd.grad(states[-1], states, grad_outputs=p_K)
    for a, b in zip(net.costates(x.detach(), p_K), p_autograd, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_printed_sign_costates_differ_from_backpropagation():
    """Errata E1: the recursion with the printed sign of (12) is not backpropagation."""
    torch.manual_seed(5)
    net = ResNet(2, 6, T=3.0, dtype=D)
    x = torch.randn(7, 2, dtype=D)
    p_K = torch.randn(7, 2, dtype=D)
    right = net.costates(x, p_K)
    printed = net.costates(x, p_K, printed_sign=True)
    states = net.states(x)
    # one step with each sign, written out: p^k = p^(k+1) +- h (df/dz)^T p^(k+1)
    vjp = net.field_vjp(5, states[5].detach(), p_K)
    assert torch.allclose(right[5], p_K + net.h * vjp, atol=1e-14)
    assert torch.allclose(printed[5], p_K - net.h * vjp, atol=1e-14)
    assert (printed[0] - right[0]).norm() > 0.1 * right[0].norm()
