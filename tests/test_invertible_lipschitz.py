"""Measurements for the open problems of Section 4.3: cheap norm estimates, the power method under
drifting weights, the inverse's error amplification, Jacobian fill, inverse iteration counts."""

import pytest
import torch

from spdl_ref import invertible as inv

D = torch.float64


def test_norm_estimates_bound_the_spectral_norm_and_the_reshaped_kernel_does_not():
    torch.manual_seed(0)
    for _ in range(5):
        lin = inv.SpectralNormLinear(7, 5, dtype=D)
        est = inv.norm_estimates(lin)
        assert est["frobenius"] >= est["exact"] - 1e-12 and est["holder"] >= est["exact"] - 1e-12
    below = 0
    for _ in range(8):
        conv = inv.SpectralNormConv2d(3, 3, 3, (6, 6), dtype=D)
        est = inv.norm_estimates(conv)
        assert est["reshaped_bound"] >= est["exact"] - 1e-12
        below += est["reshaped"] < est["exact"]
    assert below >= 4  # normalising by the reshaped kernel's norm often leaves Lip > c
    with pytest.raises(TypeError, match="layer"):
        inv.norm_estimates(torch.nn.Linear(2, 2))


def test_power_method_under_drift_underestimates_more_when_weights_move_faster():
    slow = inv.power_method_under_drift(dim=16, steps=40, drift=0.001, iterations=(1, 5))
    fast = inv.power_method_under_drift(dim=16, steps=40, drift=0.3, iterations=(1, 5))
    for r in (slow, fast):
        assert (r["power 1"] >= 1 - 1e-12).all() and (r["power 5"] >= 1 - 1e-12).all()
        assert (r["frobenius"] <= 1 + 1e-12).all() and (r["holder"] <= 1 + 1e-12).all()
    assert float(slow["power 1"].max()) < 1.001 < float(fast["power 1"].max())
    assert float(fast["power 5"].mean()) < float(fast["power 1"].mean())
    with pytest.raises(ValueError, match="iterations"):
        inv.power_method_under_drift(iterations=())
    with pytest.raises(ValueError, match="drift"):
        inv.power_method_under_drift(drift=0.0)


@pytest.mark.parametrize("c", [0.5, 0.9, 0.99])
def test_inverse_amplification_attains_one_over_one_minus_c_in_the_worst_case(c):
    x = torch.randn(4, 8, dtype=D, generator=torch.Generator().manual_seed(0))
    worst = inv.contractive_residual(c, symmetric_linear=True, negative_definite=True, dtype=D)
    a = inv.inverse_amplification(worst, x, max_iter=50_000)
    assert torch.allclose(a["linearised"], torch.full((4,), 1 / (1 - c), dtype=D), rtol=1e-8)
    assert torch.allclose(a["measured"], a["linearised"], rtol=1e-4)
    mlp = inv.contractive_residual(c, dtype=D)
    b = inv.inverse_amplification(mlp, x)
    assert float(b["measured"].max()) <= 1 / (1 - c)


def test_inverse_amplification_exceeds_the_bound_when_the_power_method_has_not_converged():
    """With one power iteration from a random start, Lip(f) > c and the bound 1/(1-c) fails."""
    torch.manual_seed(0)
    layer = inv.contractive_residual(
        0.5, symmetric_linear=True, negative_definite=True, power_iterations=1, dtype=D
    )
    lip = layer.lipschitz_bound()
    assert 0.5 < lip < 1
    x = torch.randn(2, 8, dtype=D)
    amplification = inv.inverse_amplification(layer, x, max_iter=50_000)
    assert float(amplification["measured"].max()) > 1.2 * 2  # bound 1 / (1 - c) = 2
    assert float(amplification["linearised"].max()) == pytest.approx(1 / (1 - lip), rel=1e-8)


def test_jacobian_fill_of_coupling_and_residual_layers():
    x = torch.randn(3, 8, dtype=D)
    coupling = inv.randomise_parameters(inv.AffineCoupling(8, "alternating"), generator=1).double()
    assert inv.jacobian_fill(coupling, x) == pytest.approx((4 + 4 * 5) / 64)
    assert inv.jacobian_fill(inv.contractive_residual(0.5, dtype=D), x) == 1.0
    mixed = inv.InvertibleSequential(
        coupling, inv.randomise_parameters(inv.Invertible1x1Conv(8), generator=2).double()
    )
    assert inv.jacobian_fill(mixed, x) == 1.0


def test_inverse_iterations_grow_with_c_for_fixed_point_but_not_for_newton():
    x = torch.randn(4, 8, dtype=D, generator=torch.Generator().manual_seed(0))
    counts = {}
    for c in (0.5, 0.9):
        layer = inv.contractive_residual(c, symmetric_linear=True, negative_definite=True, dtype=D)
        with torch.no_grad():
            y = layer(x)
        counts[c] = (inv.inverse_iterations(layer, y), inv.inverse_iterations(layer, y, "newton"))
    assert counts[0.5][0] < counts[0.9][0] and counts[0.9][0] > 100
    assert counts[0.5][1] <= 3 and counts[0.9][1] <= 3
    with pytest.raises(ValueError, match="max_iter"):
        inv.inverse_iterations(layer, y, max_iter=5)
