"""Mean-field two-layer ReLU networks (Section 6.3, eqs. (61)-(62), Theorem 6.1)."""

import pytest
import torch

from spdl_ref.optim import MeanFieldReLU, nested_deviation, particle_distance, train_mean_field
from spdl_ref.train import History, NonFiniteError


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


@pytest.mark.parametrize("M, J", [(2, 8), (3, 4), (3, 5), (1, 16), (1, 7), (14, 3), (20, 5)])
def test_nested_initialisation(M, J):
    """The 2J-neuron network holds the J particles first, whatever J (M + 2) is (Theorem 6.1)."""
    small = MeanFieldReLU(M, J, generator=torch.Generator().manual_seed(1))
    big = MeanFieldReLU(M, 2 * J, generator=torch.Generator().manual_seed(1))
    huge = MeanFieldReLU(M, 4 * J + 1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(small.particles(), big.particles()[:J])
    assert torch.equal(big.particles(), huge.particles()[: 2 * J])
    assert not torch.equal(big.particles()[:J], big.particles()[J:])  # not one row repeated


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
    start = net.particles()
    run = train_mean_field(net, x, y, lr=0.05, steps=400, lam=1e-4, snapshots=3)
    assert isinstance(run, History) and len(run.loss) == 400
    assert run.loss[-1] < 0.6 * run.loss[0]
    assert run.series["snapshot_steps"] == [0, 100, 200, 300, 400]
    snaps = run.series["snapshots"]
    assert torch.equal(snaps[0], start) and torch.equal(snaps[-1], net.particles())
    assert not torch.equal(snaps[1], snaps[0])
    assert "snapshots" not in train_mean_field(net, x, y, lr=0.05, steps=2).series


def test_is_forward_euler_with_the_mean_field_scaling(dtype):
    """One step is theta_j <- theta_j - h J grad_(theta_j) E, eq. (62), regulariser included."""
    x, y = _data(dtype)
    net = MeanFieldReLU(1, 6, generator=torch.Generator().manual_seed(2), dtype=dtype)
    params = (net.a, net.b, net.c)
    E = 0.5 * (net(x) - y).pow(2).mean() + 0.01 * sum(p.pow(2).sum() for p in params) / 6
    grads = torch.autograd.grad(E, params)
    expected = [(p - 0.1 * 6 * g).detach() for p, g in zip(params, grads, strict=True)]
    run = train_mean_field(net, x, y, lr=0.1, steps=1, lam=0.01)
    assert run.loss == [E.item()]
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.detach(), e)


def test_a_huge_step_stops_with_the_last_finite_particles():
    """Issue 15: forward Euler at h = 1e4 (lambda = 0.1) blows up; the guard stops before inf."""
    x, y = _data()
    net = MeanFieldReLU(1, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(NonFiniteError) as info:
        train_mean_field(net, x, y, lr=1e4, steps=200, lam=0.1)
    err = info.value
    assert err.iteration > 0 and err.kind == "loss" and "overflowed" in str(err)
    assert bool(torch.isfinite(net.particles()).all())
    # the particles are those of the last finite step: redo the err.iteration finite steps
    again = MeanFieldReLU(1, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    train_mean_field(again, x, y, lr=1e4, steps=err.iteration, lam=0.1)
    assert torch.equal(net.particles(), again.particles())


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


def test_ntk_scaling_network_and_step():
    """scaling="ntk": Phi = J^(-1/2) sum_j f(theta_j, x), and a step is theta - h grad E."""
    x, y = _data()
    gen = torch.Generator().manual_seed(5)
    net = MeanFieldReLU(1, 9, generator=gen, scaling="ntk", dtype=torch.float64)
    mf = MeanFieldReLU(1, 9, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(net(x), mf(x) * 3.0)  # sqrt(9) / 9 * 9 = 3 times the mean
    params = (net.a, net.b, net.c)
    E = 0.5 * (net(x) - y).pow(2).mean()
    grads = torch.autograd.grad(E, params)
    expected = [(p - 0.1 * g).detach() for p, g in zip(params, grads, strict=True)]
    velocities = net.particle_velocities(x, y)
    before = net.particles()
    train_mean_field(net, x, y, lr=0.1, steps=1)
    for p, e in zip(params, expected, strict=True):
        torch.testing.assert_close(p.detach(), e)
    torch.testing.assert_close(net.particles(), before + 0.1 * velocities)
    with pytest.raises(ValueError, match="scaling"):
        MeanFieldReLU(1, 3, scaling="lazy")


def test_particle_velocities_are_the_mean_field_step(dtype):
    """One unregularised step of (62) moves the particles by h times particle_velocities."""
    x, y = _data(dtype)
    net = MeanFieldReLU(2, 7, generator=torch.Generator().manual_seed(6), dtype=dtype)
    x2 = torch.cat([x, -x], 1)
    V = net.particle_velocities(x2, y)
    assert V.shape == (7, 2 + 2)
    before = net.particles()
    train_mean_field(net, x2, y, lr=0.05, steps=1)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(net.particles(), before + 0.05 * V, atol=tol, rtol=0)
    with pytest.raises(ValueError, match="x must"):
        net.particle_velocities(x, y[:3])


def test_nested_deviation():
    P = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    Q = torch.tensor([[0.0, 1.0], [3.0, 4.0], [9.0, 9.0]])
    assert nested_deviation(P, Q) == pytest.approx((1 / 2) ** 0.5)  # rows 0, 1 only
    assert nested_deviation(P, P) == 0.0
    with pytest.raises(ValueError, match="J' >= J"):
        nested_deviation(Q, P)


def test_from_particles_round_trip(dtype):
    net = MeanFieldReLU(2, 5, generator=torch.Generator().manual_seed(7), dtype=dtype)
    copy = MeanFieldReLU.from_particles(net.particles())
    x = torch.randn(4, 2, dtype=dtype)
    assert torch.equal(copy.particles(), net.particles()) and torch.equal(copy(x), net(x))
    ntk = MeanFieldReLU.from_particles(net.particles(), scaling="ntk")
    torch.testing.assert_close(ntk(x), net(x) * 5**0.5)
    with pytest.raises(ValueError, match="P must"):
        MeanFieldReLU.from_particles(torch.zeros(4, 2, dtype=dtype))
