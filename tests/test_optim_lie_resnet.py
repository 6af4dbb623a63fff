"""The ResNet with weights on SO(n) along the depth, eqs. (58)-(59) (Section 6.2.1)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref import data
from spdl_ref.control import discrete_adjoint
from spdl_ref.ode import ResNet
from spdl_ref.optim import LieGroupResNet, fit_orthogonal_resnet, stiefel_error
from spdl_ref.train import accuracy


@given(
    n=st.integers(2, 6),
    depth=st.integers(1, 6),
    scale=st.floats(0.0, 20.0),
    retraction=st.sampled_from(["exp", "cayley"]),
    seed=st.integers(0, 1000),
)
def test_every_weight_is_a_rotation_whatever_the_generators(n, depth, scale, retraction, seed):
    net = LieGroupResNet(
        n,
        depth,
        T=3.0,
        retraction=retraction,
        init_std=scale,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64,
    )
    theta = net.weights().detach()
    assert theta.shape == (depth, n, n)
    assert stiefel_error(theta).max().item() < 1e-12 * max(1.0, scale)
    assert torch.allclose(torch.linalg.det(theta), torch.ones(depth, dtype=torch.float64))


def test_weights_follow_59_and_states_follow_58():
    """theta^(k+1) = exp(h M^k) theta^k (an independent matrix exponential), and the states are
    forward Euler of the field (8) with A^k = theta^k: a ResNet with those weights."""
    net = LieGroupResNet(
        4, 5, T=2.0, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    theta, M = net.weights().detach(), net.generators().detach()
    assert torch.allclose(M, -M.mT)
    for k in range(4):
        step = torch.linalg.matrix_exp(net.h * M[k])
        torch.testing.assert_close(theta[k + 1], step @ theta[k], rtol=0, atol=1e-13)
    ref = ResNet(4, 5, T=2.0, init_std=0.0, dtype=torch.float64)
    with torch.no_grad():
        ref.A.copy_(theta)
        ref.b.copy_(net.b)
    x = torch.randn(7, 4, dtype=torch.float64)
    torch.testing.assert_close(net(x), ref(x), rtol=0, atol=1e-14)
    torch.testing.assert_close(net.trajectory(x), ref.trajectory(x), rtol=0, atol=1e-14)


def test_gradients_by_gradcheck():
    net = LieGroupResNet(3, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = torch.randn(4, 3, dtype=torch.float64)

    def out(theta0, W, b):
        params = {"theta0": theta0, "W": W, "b": b}
        return torch.func.functional_call(net, params, (x,))

    assert torch.autograd.gradcheck(out, (net.theta0, net.W, net.b))


def test_section_3_adjoint_refuses_it():
    """theta^k depends on every earlier layer, so the layer-by-layer adjoint does not apply."""
    net = LieGroupResNet(3, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(TypeError, match="layer"):
        discrete_adjoint(net, torch.randn(5, 3), torch.randn(5, 3))


def test_orthogonal_resnet_trains_and_keeps_its_weights_on_so_n():
    x2, labels = data.rings(128, seed=0, dtype=torch.float64)
    x = torch.cat([x2, torch.zeros(128, 1, dtype=torch.float64)], 1)
    runs = {
        k: fit_orthogonal_resnet(k, x, labels, depth=6, T=4.0, steps=120) for k in ("lie", "free")
    }
    for kind, (model, history) in runs.items():
        assert history.loss[-1] < 0.2 * history.loss[0], kind
        assert accuracy(model(x).detach(), labels) > 0.9, kind
    lie, free = (
        runs["lie"][1].series["constraint_error"],
        runs["free"][1].series["constraint_error"],
    )
    assert max(lie) < 1e-13 and free[-1] > max(0.1, free[0])


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: LieGroupResNet(0, 3), ValueError, "dim"),
        (lambda: LieGroupResNet(3, 3, retraction="qr"), ValueError, "retraction"),
        (lambda: LieGroupResNet(3, 3, activation=1), TypeError, "activation"),
        (lambda: LieGroupResNet(3, 3, generator=1), TypeError, "generator"),
        (lambda: LieGroupResNet(3, 3).layer_parameters(3), ValueError, "k must"),
        (
            lambda: fit_orthogonal_resnet("rot", torch.zeros(4, 2), torch.zeros(4)),
            ValueError,
            "kind",
        ),
        (
            lambda: fit_orthogonal_resnet("lie", torch.zeros(4), torch.zeros(4)),
            ValueError,
            "x must",
        ),
        (
            lambda: fit_orthogonal_resnet("lie", torch.zeros(4, 2), torch.zeros(3)),
            ValueError,
            "labels",
        ),
        (lambda: fit_orthogonal_resnet("lie", torch.zeros(4, 2), [0, 1]), TypeError, "labels"),
        (
            lambda: fit_orthogonal_resnet("lie", torch.zeros(4, 2), torch.zeros(4), steps=0),
            ValueError,
            "steps",
        ),
    ],
)
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
