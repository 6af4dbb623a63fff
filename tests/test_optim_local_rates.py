"""Local rates of descent methods (Section 6.4.2): the Hessian, the linearised rate, the order."""

import copy

import pytest
import torch
from torch import nn

from spdl_ref.optim import fisher_squared_loss, natural_gradient_step, squared_error
from spdl_ref.optim.local_rates import linearised_rate, loss_hessian, observed_order

F64 = torch.float64


def _net(seed, M=2, W=3):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(M, W), nn.Tanh(), nn.Linear(W, 1)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    return net, torch.randn(20, M, generator=g, dtype=F64)


def test_loss_hessian_equals_finite_differences_of_the_gradient():
    net, x = _net(0)
    y = torch.sin(x.sum(1, keepdim=True))
    H = loss_hessian(net, x, y)
    theta = torch.nn.utils.parameters_to_vector(net.parameters()).detach()

    def grad_at(v):
        m = copy.deepcopy(net)
        torch.nn.utils.vector_to_parameters(v, m.parameters())
        grads = torch.autograd.grad(squared_error(m, x, y), list(m.parameters()))
        return torch.cat([g.flatten() for g in grads])

    eps = 1e-6
    fd = torch.stack(
        [(grad_at(theta + eps * e) - grad_at(theta - eps * e)) / (2 * eps) for e in torch.eye(13)]
    )
    assert torch.allclose(H, fd, atol=1e-7)
    assert torch.allclose(H, H.T, atol=1e-12)


def test_hessian_is_the_fisher_matrix_exactly_at_zero_residual():
    net, x = _net(1)
    with torch.no_grad():
        y = net(x)
    G = fisher_squared_loss(net, x)
    assert (loss_hessian(net, x, y) - G).abs().max() < 1e-13
    # with a residual the curvature term S appears
    assert (loss_hessian(net, x, y + 0.3) - G).abs().max() > 1e-3


def test_linearised_rate_of_gradient_descent_and_of_a_metric():
    g = torch.Generator().manual_seed(2)
    Q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=F64))[0]
    lam = torch.tensor([0.1, 1.0, 3.0, 10.0], dtype=F64)
    H = Q @ torch.diag(lam) @ Q.T
    rho, it = linearised_rate(H, 0.15)
    assert abs(rho - max(abs(1 - 0.15 * lam))) < 1e-14
    assert torch.allclose(it, torch.eye(4, dtype=F64) - 0.15 * H)
    rho, it = linearised_rate(H, 0.3, metric=H)
    assert abs(rho - 0.7) < 1e-12 and torch.allclose(it, 0.7 * torch.eye(4, dtype=F64))
    G = H + torch.eye(4, dtype=F64)
    expected = (1 - 0.5 * torch.linalg.eigvals(torch.linalg.solve(G, H)).real).abs().max()
    assert abs(linearised_rate(H, 0.5, metric=G)[0] - float(expected)) < 1e-12


def test_natural_gradient_error_follows_the_linear_iteration_near_a_zero_residual_minimum():
    net, x = _net(3)
    with torch.no_grad():
        y = net(x)
    star = torch.nn.utils.parameters_to_vector(net.parameters()).detach()
    rho, it = linearised_rate(loss_hessian(net, x, y), 0.5, fisher_squared_loss(net, x))
    assert abs(rho - 0.5) < 1e-10
    delta = 1e-4 * torch.randn(star.shape, generator=torch.Generator().manual_seed(4), dtype=F64)
    torch.nn.utils.vector_to_parameters(star + delta, net.parameters())
    e = delta
    for _ in range(10):
        natural_gradient_step(net, x, y, lr=0.5)
        e = it @ e
        err = torch.nn.utils.parameters_to_vector(net.parameters()).detach() - star
        assert (err - e).norm() < 1e-2 * e.norm()


@pytest.mark.parametrize("q", [1.0, 2.0, 3.0])
def test_observed_order_of_model_sequences(q):
    e = [0.5]
    for _ in range(6):
        e.append(0.5 * e[-1] ** q)
    errors = torch.tensor(e, dtype=F64)
    assert abs(observed_order(errors, floor=1e-300) - q) < 0.02


def test_bad_input_is_refused():
    H = torch.eye(2, dtype=F64)
    with pytest.raises(ValueError, match="metric must be symmetric positive definite"):
        linearised_rate(H, 0.1, metric=-H)
    with pytest.raises(ValueError, match="hessian must be a square"):
        linearised_rate(torch.ones(2, 3, dtype=F64), 0.1)
    with pytest.raises(ValueError, match="h must be > 0"):
        linearised_rate(H, -1.0)
    with pytest.raises(ValueError, match="at least three errors"):
        observed_order(torch.tensor([1e-1, 1e-20, 1e-30]), floor=1e-12)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        loss_hessian("net", torch.ones(2, 1), torch.ones(2, 1))
