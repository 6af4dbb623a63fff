"""Section 5 additions: the group-wide commutation error, the noise of (52), the target map and
fitting routine of Section 5.3.2, the trivial-field and bias options of the denoisers, and the
parameter-count formula of the two denoisers of Figure 3."""

import pytest
import torch

from spdl_ref import data
from spdl_ref import equivariant as eq

D = torch.float64


def test_group_commutation_error_zero_for_equivariant_and_large_for_generic_maps():
    torch.manual_seed(0)
    D4 = eq.FiniteGroup("D4")
    triv, reg = D4.representation("trivial"), D4.representation("regular")
    x = torch.randn(2, 1, 11, 11, dtype=D)
    lift = eq.SteerableConv2d(triv, reg, 1, 1, 3, dtype=D)
    assert eq.group_commutation_error(lift, x, triv, reg) < 1e-13
    # the same layer read as a map of regular fields on both sides is not equivariant
    xr = torch.randn(2, 8, 11, 11, dtype=D)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, dtype=D)
    assert eq.group_commutation_error(conv, xr, reg) > 0.1
    # a pointwise map commutes with permutations (regular) but a generic 3x3 blur does not
    assert eq.group_commutation_error(torch.relu, xr, reg) == 0.0
    blur = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False, dtype=D)
    assert eq.group_commutation_error(blur, x, triv) > 0.1


def test_add_noise_scale_reproducibility_and_dtype():
    clean = torch.zeros(4, 1, 32, 32, dtype=D)
    a = eq.add_noise(clean, 0.3, torch.Generator().manual_seed(5))
    b = eq.add_noise(clean, 0.3, torch.Generator().manual_seed(5))
    assert a.dtype == D and torch.equal(a, b)
    assert abs(float(a.std()) - 0.3) < 0.02 and abs(float(a.mean())) < 0.02
    assert torch.equal(eq.add_noise(clean + 1, 0.0), clean + 1)


def test_gradient_magnitude_is_d4_equivariant_even_and_not_rotation_invariant():
    x = data.random_rectangles(3, size=17, seed=1, dtype=D)
    F = eq.gradient_magnitude
    for T in (eq.rotate90, eq.reflect, lambda y: eq.rotate90(y, 3)):
        assert float((F(T(x)) - T(F(x))).abs().max()) < 1e-13
    assert torch.equal(F(-x), F(x))
    assert float(F(x).abs().max()) > 0.1
    ramp = torch.arange(9.0, dtype=D).repeat(9, 1)[None, None] * 0.5
    assert abs(float(F(ramp, eps=1e-8)[0, 0, 4, 4]) - 0.5) < 1e-6


def test_fit_map_lowers_the_error_of_a_linear_target():
    torch.manual_seed(0)
    x = data.random_rectangles(16, size=10, seed=2)
    model = eq.make_denoiser("ordinary", width=4, depth=1)
    with torch.no_grad():
        before = float((model(x) - 2 * x).pow(2).mean())
    h = eq.fit_map(model, lambda y: 2 * y, x, iterations=150, batch_size=8, lr=1e-2)
    with torch.no_grad():
        after = float((model(x) - 2 * x).pow(2).mean())
    assert len(h.loss) == 150 and not model.training
    assert after < 0.05 * before


def test_trivial_fields_are_equivariant_and_bias_false_drops_the_biases():
    pytest.importorskip("escnn")
    torch.manual_seed(0)
    x = data.random_rectangles(2, size=13, seed=3, dtype=D)
    net = eq.make_denoiser("equivariant", width=4, depth=1, fields="trivial", dtype=D).eval()
    assert eq.equivariance_error(net, x, 90.0) < 1e-12
    ordinary = eq.make_denoiser("ordinary", width=4, depth=2)
    no_bias = eq.make_denoiser("ordinary", width=4, depth=2, bias=False)
    # biases: 4 (lift) + 2 x 4 (layers) + 1 (projection)
    assert eq.parameter_count(ordinary) - eq.parameter_count(no_bias) == 13


@pytest.mark.parametrize("w, d, k", [(4, 1, 3), (8, 3, 5), (16, 2, 3), (64, 20, 3)])
def test_parameter_count_formula_of_the_ordinary_denoiser(w, d, k):
    # lifting k^2 w + w, each residual layer k^2 w^2 + w, projection k^2 w + 1
    formula = k * k * (2 * w + d * w * w) + (d + 1) * w + 1
    assert eq.parameter_count(eq.make_denoiser("ordinary", w, d, k)) == formula


def test_parameter_count_formula_of_the_equivariant_denoiser():
    """A residual layer between f regular fields of C8 (3 x 3 kernels) has 48 f^2 + f parameters:
    48 basis coefficients per pair of fields (escnn's basis, 48 of the 8 * 8 * 9 = 576 entries
    of an unconstrained kernel, the ratio 0.083 of the chapter) and one bias per field."""
    pytest.importorskip("escnn")
    for f in (1, 2, 4):
        counts = [
            eq.parameter_count(eq.make_denoiser("equivariant", 8 * f, depth)) for depth in (1, 2)
        ]
        assert counts[1] - counts[0] == 48 * f * f + f
    # lifting and projection: the rest of the count, linear in f (f = 8 is the review's width 64)
    rest = {
        f: eq.parameter_count(eq.make_denoiser("equivariant", 8 * f, 1)) - (48 * f * f + f)
        for f in (1, 2, 8)
    }
    slope = rest[2] - rest[1]
    assert rest[8] == rest[1] + 7 * slope
    assert rest[8] + 20 * (48 * 64 + 8) == 61_705


@pytest.mark.parametrize("name", ["fig3", "sample_complexity", "equivariant_approximation"])
def test_smoke_task_of_each_chapter_5_experiment(name):
    pytest.importorskip("escnn")
    from spdl_ref import experiments

    exp = experiments.get(name)
    result = exp.run(exp.smoke(0), budget="ci", device="cpu")
    numbers = [v for v in result.values() if isinstance(v, float)]
    assert numbers and all(v == v for v in numbers)
    assert result == exp.run(exp.smoke(0), budget="ci", device="cpu")


def test_fig3_curve_helpers():
    from spdl_ref.experiments import fig3

    assert fig3.smoothed([1.0, 3.0, 5.0], window=2) == [2.0, 4.0]
    assert fig3.iterations_to_reach([9.0, 1.0, 1.0], 1.0, window=2) == 3
    with pytest.raises(ValueError, match="window"):
        fig3.smoothed([1.0], window=2)
    assert fig3.settings("ci", {"width": 8, "unknown": 1})["width"] == 8
    with pytest.raises(ValueError, match="budget"):
        fig3.settings("huge")
