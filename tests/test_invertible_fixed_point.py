"""Fixed-point inversion (46) of residual layers, its contraction rate (45) and Lipschitz monitoring
(47) (Section 4.1.2)."""

import pytest
import torch

from spdl_ref import invertible as inv


@pytest.mark.parametrize("symmetric_linear", [True, False])
def test_contractive_residual_has_lipschitz_bound_c(symmetric_linear):
    torch.manual_seed(0)
    layer = inv.contractive_residual(
        0.6, dim=4, hidden=8, symmetric_linear=symmetric_linear, dtype=torch.float64
    )
    assert not layer.training
    assert len(layer.spectral_layers()) == (1 if symmetric_linear else 2)
    assert abs(layer.lipschitz_bound() - 0.6) < 1e-8
    if symmetric_linear:
        w = layer.spectral_layers()[0].weight
        assert torch.equal(w, w.T)


def test_contractive_residual_follows_dtype():
    layer = inv.contractive_residual(0.5, dim=3, hidden=4, dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in layer.parameters())


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(c=1.0), ValueError),
        (dict(c=0.5, symmetric_linear=1), TypeError),
        (dict(c=0.5, std=0.0), ValueError),
        (dict(c=0.5, power_iterations=0), ValueError),
        (dict(c=0.5, dim=0), ValueError),
    ],
)
def test_contractive_residual_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        inv.contractive_residual(**kwargs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fixed_point_errors_obey_the_contraction_bound(dtype):
    torch.manual_seed(1)
    layer = inv.contractive_residual(0.7, dim=4, hidden=8, dtype=dtype)
    x = torch.randn(6, 4, dtype=dtype)
    err = inv.fixed_point_errors(layer, x, 25)
    assert err.shape == (26,) and err.dtype == dtype
    with torch.no_grad():
        assert torch.allclose(err[0], (layer(x) - x).norm())
    lip = layer.lipschitz_bound()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    bound = lip ** torch.arange(26, dtype=torch.float64) * err[0].double()
    assert (err.double() <= bound * (1 + 1e-6) + tol).all()
    assert inv.fixed_point_errors(layer, x, 0).shape == (1,)


def test_fixed_point_errors_rejects_bad_input():
    layer = inv.contractive_residual(0.5, dim=3, hidden=4, dtype=torch.float64)
    with pytest.raises(TypeError, match="layer"):
        inv.fixed_point_errors(torch.nn.Linear(3, 3), torch.zeros(2, 3), 3)
    with pytest.raises(ValueError, match="x"):
        inv.fixed_point_errors(layer, torch.zeros(2, 4, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="iterations"):
        inv.fixed_point_errors(layer, torch.zeros(2, 3, dtype=torch.float64), -1)


def test_observed_contraction_rate_of_a_geometric_sequence():
    err = 3.0 * 0.8 ** torch.arange(40, dtype=torch.float64)
    assert abs(inv.observed_contraction_rate(err) - 0.8) < 1e-12
    # entries at or below the floor (round-off) are ignored
    err = torch.cat([err[:20], torch.full((10,), 1e-13, dtype=torch.float64)])
    assert abs(inv.observed_contraction_rate(err, floor=1e-11) - 0.8) < 1e-12


def test_observed_contraction_rate_of_symmetric_linear_layer_is_c():
    torch.manual_seed(2)
    layer = inv.contractive_residual(0.5, dim=4, symmetric_linear=True, dtype=torch.float64)
    err = inv.fixed_point_errors(layer, torch.randn(8, 4, dtype=torch.float64), 200)
    assert abs(inv.observed_contraction_rate(err) - 0.5) < 5e-3


@pytest.mark.parametrize(
    "args, error",
    [
        ((torch.ones(2, 3),), ValueError),
        (([1.0, 0.5],), TypeError),
        ((torch.tensor([1.0, 1e-13]),), ValueError),
        ((torch.tensor([1.0, 0.5]), 0.0), ValueError),
    ],
)
def test_observed_contraction_rate_rejects_bad_input(args, error):
    with pytest.raises(error):
        inv.observed_contraction_rate(*args)


def test_largest_lipschitz_bound_is_the_max_over_residual_blocks():
    torch.manual_seed(0)
    flow = inv.residual_flow(2, n_blocks=3, c=0.9, hidden=8, n_layers=2, dtype=torch.float64)
    blocks = [m for m in flow.modules() if isinstance(m, inv.InvertibleResidual)]
    assert len(blocks) == 3
    assert inv.largest_lipschitz_bound(flow) == max(b.lipschitz_bound() for b in blocks)
    assert inv.largest_lipschitz_bound(blocks[1]) == blocks[1].lipschitz_bound()
    with pytest.raises(ValueError, match="InvertibleResidual"):
        inv.largest_lipschitz_bound(inv.AdditiveCoupling(2))
    with pytest.raises(TypeError, match="module"):
        inv.largest_lipschitz_bound("flow")


def test_refreshed_bound_is_the_one_the_next_training_step_uses():
    torch.manual_seed(0)
    block = inv.InvertibleResidual(4, c=0.9, hidden=8, n_power_iterations=300, dtype=torch.float64)
    for s in block.spectral_layers():
        s.power_iteration(500)
    with torch.no_grad():  # an optimiser step: the kept singular vectors are now stale
        for s in block.spectral_layers():
            s.weight.add_(0.5 * torch.randn_like(s.weight))
    state = {k: v.clone() for k, v in block.state_dict().items()}
    stale, fresh = inv.largest_lipschitz_bound(block), inv.largest_lipschitz_bound(block, True)
    assert all(torch.equal(v, block.state_dict()[k]) for k, v in state.items())  # unchanged
    assert stale > 0.9 + 1e-3 and abs(fresh - 0.9) < 1e-8
    block.train()(torch.randn(2, 4, dtype=torch.float64))  # the forward runs the iterations
    assert abs(block.lipschitz_bound() - fresh) < 1e-12
    with pytest.raises(TypeError, match="refresh"):
        inv.largest_lipschitz_bound(block, refresh=1)


def test_fit_flow_records_monitor_every_k_steps():
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    flow = inv.residual_flow(2, n_blocks=2, c=0.9, hidden=8, n_layers=2)
    seen = []
    hist = inv.fit_flow(
        flow,
        x,
        iterations=7,
        batch_size=16,
        monitor=inv.largest_lipschitz_bound,
        monitor_every=3,
        callback=lambda i, f: seen.append(i),
    )
    monitored = hist.series["monitor"]
    assert len(monitored) == 3 and all(isinstance(v, float) for v in monitored)
    assert seen == list(range(7))
    assert "monitor" not in inv.fit_flow(flow, x, iterations=1, batch_size=16).series
    with pytest.raises(TypeError, match="monitor"):
        inv.fit_flow(flow, x, iterations=1, monitor=3)
    with pytest.raises(ValueError, match="monitor_every"):
        inv.fit_flow(flow, x, iterations=1, monitor=inv.largest_lipschitz_bound, monitor_every=0)
