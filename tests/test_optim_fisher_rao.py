"""The Fisher-Rao flow on the particle weights (Section 6.4.3)."""

import itertools

import pytest
import torch

from spdl_ref.ode import odeint
from spdl_ref.optim import MeanFieldReLU
from spdl_ref.optim.fisher_rao import FisherRaoDescent, ReweightedReLU

F64 = torch.float64


def test_network_equals_the_mean_field_network_at_uniform_weights(device, dtype):
    mf = MeanFieldReLU(
        2, 12, generator=torch.Generator().manual_seed(0), device=device, dtype=dtype
    )
    net = ReweightedReLU.from_mean_field(mf)
    x = torch.randn(7, 2, device=device, dtype=dtype)
    assert net(x).device.type == device.type and net(x).dtype == dtype
    assert torch.allclose(net(x), mf(x), atol=1e-6)
    assert abs(net.effective_size() - 12) < 1e-4


def test_step_stays_on_the_simplex_even_for_huge_gradients():
    w = torch.full((5,), 0.2, dtype=F64, requires_grad=True)
    opt = FisherRaoDescent([w], lr=10.0)
    w.grad = torch.tensor([1e3, -1e3, 0.0, 5.0, -2e3], dtype=F64)
    opt.step()
    assert bool(torch.isfinite(w).all()) and bool((w >= 0).all())
    assert abs(float(w.detach().sum()) - 1) < 1e-15
    # additive gradient descent on w would leave the simplex at once
    assert float((0.2 - 10.0 * w.grad).min()) < 0


def test_step_is_first_order_consistent_with_the_replicator_flow():
    g = torch.Generator().manual_seed(1)
    A = torch.randn(6, 6, generator=g, dtype=F64)
    A = A @ A.T / 6
    b = torch.randn(6, generator=g, dtype=F64)

    def grad(w):  # E(w) = w^T A w / 2 + b^T w
        return A @ w + b

    def flow(t, w):
        v = grad(w)
        return -w * (v - w @ v)

    w0 = torch.full((6,), 1 / 6, dtype=F64)
    exact = odeint(flow, w0, 0.0, 1.0, 400)[-1]
    errors = []
    for steps in (20, 40, 80):
        w = w0.clone().requires_grad_(True)
        opt = FisherRaoDescent([w], lr=1.0 / steps)
        for _ in range(steps):
            w.grad = grad(w.detach())
            opt.step()
        errors.append(float((w.detach() - exact).norm()))
    ratios = [a / b for a, b in itertools.pairwise(errors)]
    assert all(1.8 < r < 2.2 for r in ratios), ratios


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="probability vector"):
        FisherRaoDescent([torch.tensor([0.5, 0.6], requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="each parameter must be a vector"):
        FisherRaoDescent([torch.full((2, 2), 0.25, requires_grad=True)], lr=0.1)
    opt = FisherRaoDescent([torch.full((2,), 0.5, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="probability vector"):
        opt.add_param_group({"params": [torch.tensor([-0.5, 1.5], requires_grad=True)]})
    with pytest.raises(ValueError, match="lr must be > 0"):
        FisherRaoDescent([torch.full((2,), 0.5, requires_grad=True)], lr=0.0)
    P = torch.randn(4, 3, dtype=F64)
    with pytest.raises(ValueError, match="weights must be positive and sum to one"):
        ReweightedReLU(P, torch.full((4,), 0.3, dtype=F64))
    with pytest.raises(ValueError, match="particles must be a"):
        ReweightedReLU(torch.randn(4, 2, dtype=F64))
    with pytest.raises(TypeError, match="model must be a MeanFieldReLU"):
        ReweightedReLU.from_mean_field(torch.nn.Linear(1, 1))
