"""Memory-efficient InvertibleSequential (Section 4.2.1) and normalising flows (Section 4.2.3)."""

import pytest
import torch

from spdl_ref import invertible as inv


def _network(memory_efficient, dim=4, depth=2, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(depth):
        layers += [
            inv.AffineCoupling(dim, flip=bool(i % 2), hidden=8, zero_init=False),
            inv.InvertibleResidual(dim, c=0.6, hidden=8),
            inv.Invertible1x1Conv(dim),
            inv.HouseholderOrthogonal(dim),
            inv.SplineCoupling(dim, "alternating", hidden=8, zero_init=False, bins=4),
        ]
    return inv.InvertibleSequential(*layers, memory_efficient=memory_efficient).double()


def _grads(net, x):
    z, ld = net.forward_and_log_det(x)
    loss = ((z - 1) ** 2).sum() + ld.sum()  # (z**2).sum() would not see orthogonal layers
    return torch.autograd.grad(loss, [x, *list(net.parameters())])


def test_memory_efficient_gradients_equal_backpropagation():
    plain, efficient = _network(False), _network(True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    for ga, gb in zip(_grads(plain, x), _grads(efficient, x), strict=True):
        assert (ga - gb).norm() <= 1e-10 * ga.norm()
    # the power iterations advanced identically in both (one step per forward)
    for a, b in zip(plain.buffers(), efficient.buffers(), strict=True):
        assert torch.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("logdet", ["series", "roulette"])
def test_memory_efficient_replays_the_random_log_det_draws(logdet):
    # The memory-efficient backward re-evaluates each layer from the generator state the forward
    # pass saw, so the stochastic log-determinant draws the same probes, and the global
    # generator ends where ordinary backpropagation leaves it.
    out = {}
    for me in (False, True):
        torch.manual_seed(0)
        flow = inv.residual_flow(2, n_blocks=2, hidden=8, logdet=logdet, memory_efficient=me)
        flow = flow.double()
        x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
        torch.manual_seed(1)
        flow.nll(x).backward()
        grads = torch.cat([x.grad.flatten()] + [p.grad.flatten() for p in flow.parameters()])
        out[me] = grads, torch.get_rng_state(), torch.rand(())
    (g0, s0, r0), (g1, s1, r1) = out[False], out[True]
    assert (g0 - g1).norm() <= 1e-12 * g0.norm()
    assert torch.equal(s0, s1) and r0 == r1


def test_every_layer_works_in_the_memory_efficient_container():
    from spdl_ref.ode import ShearNet

    torch.manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    grads = []
    for me in (False, True):
        torch.manual_seed(1)
        net = inv.InvertibleSequential(
            ShearNet(4, 2, dtype=torch.float64),
            inv.ActNorm(4, dtype=torch.float64),
            memory_efficient=me,
        )
        z, ld = net.forward_and_log_det(x)
        grads.append(torch.autograd.grad(((z - 1) ** 2).sum() + ld.sum(), [x, *net.parameters()]))
    for a, b in zip(*grads, strict=True):
        assert (a - b).abs().max() <= 1e-12 * (1 + a.abs().max())


def test_memory_efficient_gradcheck_and_backward_into_grad():
    net = _network(True, depth=1).eval()
    x = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: net(a), (x,))
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_memory_efficient_keeps_no_activations():
    dim, batch = 32, 64

    def peak(depth, me):
        torch.manual_seed(0)
        net = inv.InvertibleSequential(
            *[inv.AdditiveCoupling(dim, flip=bool(i % 2), hidden=16) for i in range(depth)],
            memory_efficient=me,
        )
        x = torch.randn(batch, dim)

        def step():
            net(x).square().mean().backward()

        step()  # allocate .grad first
        params = sum(p.numel() * p.element_size() for p in net.parameters())
        return inv.peak_memory(step) - (params if me else 0)

    plain = [peak(d, False) for d in (1, 4)]
    efficient = [peak(d, True) for d in (1, 4)]
    assert plain[1] > 2 * plain[0]
    assert efficient[1] <= 1.25 * efficient[0]


def test_sequential_inverse_states_and_errors():
    net = _network(False).eval()
    x = torch.randn(3, 4, dtype=torch.float64)
    assert (net.inverse(net(x)) - x).abs().max() < 1e-10
    assert len(net.states(x)) == len(net) + 1
    assert torch.allclose(
        net.log_abs_det_jacobian(x),
        sum(
            layer.log_abs_det_jacobian(z) for layer, z in zip(net, net.states(x)[:-1], strict=True)
        ),
    )
    with pytest.raises(ValueError, match="at least one"):
        inv.InvertibleSequential()
    with pytest.raises(TypeError, match="invertible"):
        inv.InvertibleSequential(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="memory_efficient"):
        inv.InvertibleSequential(inv.AffineCoupling(2), memory_efficient=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: inv.coupling_flow(2, n_layers=2, hidden=8, dtype=torch.float64),
        lambda: inv.coupling_flow(2, n_layers=2, hidden=8, kind="spline", dtype=torch.float64),
        lambda: inv.residual_flow(2, n_blocks=2, hidden=8, dtype=torch.float64),
    ],
)
def test_flow_density_integrates_to_one_and_samples(make):
    flow = make()
    for p in flow.parameters():
        torch.nn.init.normal_(p, std=0.2)
    for m in flow.modules():
        if isinstance(m, (inv.SpectralNormLinear, inv.SpectralNormConv2d)):
            m.power_iteration(100)  # new weights: converge the norm estimate (eq. (47))
    flow.eval()
    _gx, _gy, logp = inv.log_density_grid(flow, (-7, 7), (-7, 7), n=101)
    mass = float(logp.exp().sum()) * (14 / 100) ** 2
    assert abs(mass - 1) < 2e-2
    s = flow.sample(5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, 2) and s.dtype == torch.float64


def test_fit_flow_lowers_the_negative_log_likelihood():
    from spdl_ref import data

    torch.manual_seed(0)
    x, _ = data.two_moons(128, seed=0)
    flow = inv.coupling_flow(2, n_layers=2, hidden=8)
    before = float(flow.nll(x).detach())
    hist = inv.fit_flow(flow, x, iterations=30, batch_size=64, lr=2e-2)
    assert len(hist.loss) == len(hist.seconds) == 30 and hist.loss[0] == pytest.approx(before, 0.2)
    assert float(flow.nll(x).detach()) < before - 0.3
    assert not flow.training
    with pytest.raises(TypeError):
        inv.fit_flow(flow.transform, x)
    with pytest.raises(ValueError, match="x must hold at least one sample"):
        inv.fit_flow(flow, x[:0])
    with pytest.raises(ValueError, match="kind"):
        inv.coupling_flow(2, kind="nope")
    with pytest.raises(ValueError, match="2-D"):
        inv.log_density_grid(inv.coupling_flow(4))


def test_peak_memory_counts_a_large_allocation():
    nbytes = inv.peak_memory(lambda: torch.empty(1_000_000, dtype=torch.float64).fill_(1.0))
    assert 8_000_000 <= nbytes < 9_000_000
    with pytest.raises(TypeError):
        inv.peak_memory(3)
