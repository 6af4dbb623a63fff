"""Mean-field two-layer ReLU networks (Section 6.3, eqs. (61)-(62), Theorem 6.1)."""

import pytest
import torch

from spdl_ref.optim import MeanFieldReLU, particle_distance, train_mean_field


def _data(dtype=torch.float64):
    x = torch.linspace(-1, 1, 30, dtype=dtype)[:, None]
    return x, x[:, 0].abs() - 0.5


def test_network_is_61_and_starts_on_the_cone(dtype):
    net = MeanFieldReLU(3, 17, generator=torch.Generator().manual_seed(0), dtype=dtype)
    x = torch.randn(5, 3, dtype=dtype)
    expected = sum(net.c[j] * torch.relu(x @ net.a[j] + net.b[j]) for j in range(17)) / 17
    assert torch.allclose(net(x), expected, atol=1e-6)
    assert net.particles().shape == (17, 3 + 2)  # theta_j in R^(M+2)
    assert net.cone_defect().abs().max().item() < 1e-5


def test_nested_initialisation():
    small = MeanFieldReLU(2, 8, generator=torch.Generator().manual_seed(1))
    big = MeanFieldReLU(2, 16, generator=torch.Generator().manual_seed(1))
    assert torch.equal(small.particles(), big.particles()[:8])


def test_flow_keeps_cone_to_first_order():
    """The unregularised flow conserves |c|^2 - |a|^2 - |b|^2; forward Euler to O(h)."""
    x, y = _data()
    defects = []
    for h in (0.04, 0.02):
        net = MeanFieldReLU(1, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        train_mean_field(net, x, y, lr=h, steps=int(4 / h))
        defects.append(net.cone_defect().abs().max().item())
    assert defects[1] < 0.6 * defects[0]


def test_training_decreases_loss_and_records_snapshots():
    x, y = _data(torch.float32)
    net = MeanFieldReLU(1, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    run = train_mean_field(net, x, y, lr=0.05, steps=400, lam=1e-4, snapshots=3)
    assert run.loss[-1] < 0.6 * run.loss[0]
    assert run.snapshot_steps[0] == 0 and run.snapshot_steps[-1] == 400 and len(run.snapshots) == 5


def test_particle_distance():
    P = torch.randn(6, 3, dtype=torch.float64)
    assert particle_distance(P, P.flip(0)) < 1e-12
    assert particle_distance(P, P.repeat(2, 1)) < 1e-12
    assert particle_distance(P, P + 1.0) == pytest.approx(3**0.5)


def test_bad_input():
    x, y = _data()
    net = MeanFieldReLU(1, 4)
    with pytest.raises(ValueError, match="J"):
        MeanFieldReLU(1, 0)
    with pytest.raises(ValueError, match="lr"):
        train_mean_field(net, x, y, lr=0.0, steps=1)
    with pytest.raises(ValueError, match="shape"):
        train_mean_field(net, x, y[:, None], lr=0.1, steps=1)
    with pytest.raises(ValueError, match="last dimension"):
        net(torch.ones(3, 2))


def test_gradcheck_network():
    net = MeanFieldReLU(2, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b, c, xx: torch.func.functional_call(net, {"a": a, "b": b, "c": c}, (xx,)),
        (
            net.a.detach().clone().requires_grad_(True),
            net.b.detach().clone().requires_grad_(True),
            net.c.detach().clone().requires_grad_(True),
            x,
        ),
    )
