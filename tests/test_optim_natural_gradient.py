"""Natural gradient (60) and Gauss-Newton (Section 6.2.2): spdl_ref.optim.natural_gradient."""

import copy

import pytest
import torch
from torch import nn

from spdl_ref.optim import (
    fisher_squared_loss,
    gauss_newton_step,
    jacobian,
    natural_gradient_step,
    squared_error,
)


def _problem(dtype=torch.float64, outputs=1, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, outputs)).to(dtype)
    x = torch.randn(20, 2, dtype=dtype)
    y = torch.sin(x.sum(1, keepdim=True)).repeat(1, outputs)
    return net, x, y


def _vec(net):
    return torch.nn.utils.parameters_to_vector(net.parameters()).detach()


@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("damping", [1e-3, 0.1])
def test_natural_gradient_euler_step_is_gauss_newton(outputs, damping):
    net, x, y = _problem(outputs=outputs)
    gn = copy.deepcopy(net)
    natural_gradient_step(net, x, y, lr=1.0, damping=damping)
    gauss_newton_step(gn, x, y, damping=damping)
    assert (_vec(net) - _vec(gn)).norm() / _vec(gn).norm() < 1e-10


def test_jacobian_and_fisher_against_autograd():
    net, x, _ = _problem(outputs=2)
    J = jacobian(net, x)
    L = sum(p.numel() for p in net.parameters())
    assert J.shape == (20, 2, L)
    n, i = 3, 1
    rows = torch.autograd.grad(net(x)[n, i], list(net.parameters()))
    assert torch.allclose(J[n, i], torch.cat([r.reshape(-1) for r in rows]), atol=1e-14)
    G = fisher_squared_loss(net, x)
    assert torch.allclose(G, G.T) and torch.linalg.eigvalsh(G).min().item() > -1e-12


def test_gradient_is_fisher_times_residual_jacobian():
    """grad E = (1/N) sum_n J_n^T r_n for the squared loss (the identity behind Gauss-Newton)."""
    net, x, y = _problem()
    grads = torch.autograd.grad(squared_error(net, x, y), list(net.parameters()))
    g = torch.cat([gr.reshape(-1) for gr in grads])
    r = (net(x) - y).detach()
    assert torch.allclose(g, torch.einsum("nmi,nm->i", jacobian(net, x), r) / 20, atol=1e-14)


def test_natural_gradient_decreases_loss_float32():
    net, x, y = _problem(torch.float32)
    losses = [natural_gradient_step(net, x, y, lr=0.5, damping=1e-2).item() for _ in range(10)]
    assert losses[-1] < 0.2 * losses[0]


def test_bad_input():
    net, x, y = _problem()
    with pytest.raises(ValueError, match="lr"):
        natural_gradient_step(net, x, y, lr=0.0)
    with pytest.raises(ValueError, match="damping"):
        gauss_newton_step(net, x, y, damping=-1.0)
    with pytest.raises(ValueError, match="same number of samples"):
        squared_error(net, x, y[:3])
    with pytest.raises(TypeError, match="model"):
        jacobian(lambda t: t, x)
    with pytest.raises(ValueError, match="finite"):
        natural_gradient_step(net, x, y * float("nan"), lr=1.0)
