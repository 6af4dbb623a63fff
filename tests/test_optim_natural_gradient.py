"""Natural gradient (60) and Gauss-Newton (Section 6.2.2): spdl_ref.optim.natural_gradient."""

import copy

import pytest
import torch
from torch import nn

from spdl_ref.optim import (
    NonFiniteGradientError,
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


def _rank_deficient(dtype=torch.float64):
    """A 2-8-1 tanh network (33 parameters) and 3 samples: G has rank 3."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)
    x = torch.randn(3, 2, dtype=dtype)
    return net, x, torch.sin(x.sum(1, keepdim=True))


def test_singular_fisher_takes_the_least_norm_step():
    """Without damping, N m = 3 < L = 33: the step solves G delta = grad E with least norm (the
    Gauss-Newton step); a plain solve with the singular G, as before, takes a step dozens of times
    longer, set by round-off in the null space of G, and raises the loss."""
    net, x, y = _rank_deficient()
    assert torch.linalg.matrix_rank(fisher_squared_loss(net, x)).item() == 3
    ng, gn, plain = copy.deepcopy(net), copy.deepcopy(net), copy.deepcopy(net)
    before = natural_gradient_step(ng, x, y, lr=1.0).item()
    gauss_newton_step(gn, x, y)
    assert (_vec(ng) - _vec(gn)).norm() / (_vec(gn) - _vec(net)).norm() < 1e-8
    after = squared_error(ng, x, y).item()
    assert after < 0.05 * before
    # the old behaviour, torch.linalg.solve(G, g): round-off in the null space of G dominates.
    # How far the step goes depends on the LAPACK build (50 to 100 times the least-norm step
    # measured with two MKL code paths), so the bounds leave room for that.
    params = list(plain.parameters())
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(squared_error(plain, x, y), params)])
    delta = torch.linalg.solve(fisher_squared_loss(plain, x), g)
    assert delta.norm() > 10 * (_vec(gn) - _vec(net)).norm()
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(_vec(plain) - delta, params)
    assert squared_error(plain, x, y).item() > 2 * before


def test_too_small_damping_is_refused():
    net, x, y = _rank_deficient()
    before = _vec(net)
    with pytest.raises(ValueError, match="damping = 1e-30 is too small"):
        natural_gradient_step(net, x, y, lr=1.0, damping=1e-30)
    assert torch.equal(_vec(net), before)
    natural_gradient_step(net, x, y, lr=1.0, damping=1e-6)  # large enough: accepted


@pytest.mark.parametrize(
    "call",
    [
        lambda net, x, y: squared_error(net, x, y),
        lambda net, x, y: natural_gradient_step(net, x, y, lr=1.0, damping=1e-3),
        lambda net, x, y: gauss_newton_step(net, x, y),
    ],
    ids=["squared_error", "natural_gradient_step", "gauss_newton_step"],
)
def test_targets_must_have_the_output_shape(call):
    net, x, _ = _problem(outputs=1)
    before = _vec(net)
    for y in (torch.zeros(20, 3, dtype=torch.float64), torch.zeros(20, dtype=torch.float64)):
        with pytest.raises(
            ValueError, match=r"y must have the shape of the model output \(20, 1\)"
        ):
            call(net, x, y)
    with pytest.raises(ValueError, match="same number of samples"):
        call(net, x, torch.zeros(5, 1, dtype=torch.float64))
    assert torch.equal(_vec(net), before)


def test_overflowing_model_is_refused_unchanged():
    net, x, y = _problem()
    with torch.no_grad():
        net[2].weight.fill_(1e308)  # the six tanh features summed: the output overflows
        net[2].bias.fill_(1e308)
    assert not torch.isfinite(net(x)).all()
    before = _vec(net)
    for step in (
        lambda: natural_gradient_step(net, x, y, lr=1.0, damping=1e-3),
        lambda: gauss_newton_step(net, x, y, damping=1e-3),
    ):
        with pytest.raises(NonFiniteGradientError, match="left unchanged"):
            step()
        assert torch.equal(_vec(net), before)
