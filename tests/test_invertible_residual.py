"""Invertible residual layers, spectral normalisation and log-determinant estimators (Sections
4.1.2, 4.2.3)."""

import pytest
import torch

from spdl_ref import invertible as inv


def test_spectral_normalisation_reaches_c_after_enough_power_iterations():
    torch.manual_seed(0)
    lin = inv.SpectralNormLinear(6, 5, c=0.7, dtype=torch.float64)
    lin.power_iteration(200)
    assert abs(float(lin.operator_norm()) - 0.7) < 1e-10
    conv = inv.SpectralNormConv2d(2, 3, 3, (4, 4), c=0.5, dtype=torch.float64)
    conv.power_iteration(3000)
    assert abs(float(conv.operator_norm()) - 0.5) < 1e-8
    # the adjoint used by the power method is the transpose of the operator matrix
    u, v = (
        torch.randn(1, 3, 4, 4, dtype=torch.float64),
        torch.randn(1, 2, 4, 4, dtype=torch.float64),
    )
    lhs = (u * conv._apply_op(v, conv.weight)).sum()
    rhs = (conv._adjoint(u, conv.weight) * v).sum()
    assert torch.allclose(lhs, rhs, atol=1e-12)


def test_power_estimate_is_a_lower_bound_so_lipschitz_can_exceed_c():
    torch.manual_seed(0)
    lin = inv.SpectralNormLinear(8, 8, c=0.9, n_power_iterations=0, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(8, 8, dtype=torch.float64))
    sigma_hat = float(lin.sigma().detach())
    assert sigma_hat <= float(lin.operator_norm(normalised=False)) + 1e-12
    assert float(lin.operator_norm()) >= 0.9 - 1e-12


def test_training_forward_advances_power_iteration_but_inverse_does_not():
    layer = inv.InvertibleResidual(3, c=0.9, dtype=torch.float64)
    u0 = layer.spectral_layers()[0].u.clone()
    with torch.no_grad():
        layer.spectral_layers()[0].weight.mul_(3).add_(0.1)
    layer.inverse(torch.randn(2, 3, dtype=torch.float64))
    assert torch.equal(layer.spectral_layers()[0].u, u0)
    layer.train()(torch.randn(2, 3, dtype=torch.float64))
    assert not torch.equal(layer.spectral_layers()[0].u, u0)
    u1 = layer.spectral_layers()[0].u.clone()
    with inv.frozen_power_iteration():
        layer(torch.randn(2, 3, dtype=torch.float64))
    assert torch.equal(layer.spectral_layers()[0].u, u1)


def test_fixed_point_error_is_bounded_by_c_to_the_i():
    torch.manual_seed(1)
    layer = inv.InvertibleResidual(4, c=0.8, dtype=torch.float64).eval()
    x = torch.randn(5, 4, dtype=torch.float64)
    y = layer(x)
    xs = layer.fixed_point_iterates(y, 30)
    err = (xs - x).flatten(1).norm(dim=1) / (5**0.5)
    e0 = (y - x).norm(dim=1).max()
    lip = layer.lipschitz_bound()
    for i in range(31):
        assert (xs[i] - x).norm(dim=1).max() <= lip**i * e0 * (1 + 1e-9) + 1e-14
    assert err[-1] < 1e-2 * err[0]


def test_inverse_raises_when_it_cannot_converge():
    layer = inv.InvertibleResidual(3, c=0.99, max_iter=3, dtype=torch.float64)
    with pytest.raises(inv.InversionError, match="did not converge"):
        layer.inverse(10 * torch.randn(4, 3, dtype=torch.float64), tol=1e-15)
    with pytest.raises(ValueError, match="tol"):
        layer.inverse(torch.randn(4, 3, dtype=torch.float64), tol=-1.0)


def _contraction(dim, c, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    a = c * a / torch.linalg.matrix_norm(a, 2)
    return lambda x: torch.tanh(x @ a.T)


def test_log_det_estimators_against_exact():
    f = _contraction(4, 0.5)
    x = torch.randn(3, 4, dtype=torch.float64)
    exact = inv.logdet_exact(f, x)
    g = torch.Generator().manual_seed(0)
    series = torch.stack(
        [inv.logdet_power_series(f, x, n_terms=10, generator=g) for _ in range(400)]
    )
    roulette = torch.stack([inv.logdet_russian_roulette(f, x, generator=g) for _ in range(400)])
    se_s = series.std(0) / 20
    se_r = roulette.std(0) / 20
    assert ((series.mean(0) - exact).abs() < 5 * se_s + 1e-3).all()
    assert ((roulette.mean(0) - exact).abs() < 5 * se_r + 1e-3).all()


def test_power_series_truncation_bias_with_exact_trace():
    # A linear f(x) = A x with A symmetric: Hutchinson with an orthonormal basis is exact, so the
    # deviation is the truncation only; it shrinks like c^(n+1).
    a = torch.diag(torch.tensor([0.6, -0.3, 0.1], dtype=torch.float64))
    f = lambda x: x @ a.T  # noqa: E731
    x = torch.zeros(1, 3, dtype=torch.float64)
    exact = float(inv.logdet_exact(f, x))
    assert (
        abs(exact - float(torch.log(torch.tensor([1.6, 0.7, 1.1], dtype=torch.float64)).sum()))
        < 1e-12
    )
    errs = []
    for n in (2, 4, 8):
        # with Rademacher probes and a diagonal A, v^T A^k v = tr(A^k) exactly
        errs.append(abs(float(inv.logdet_power_series(f, x, n_terms=n)) - exact))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3


def test_residual_log_det_methods_and_gradcheck():
    layer = inv.InvertibleResidual(2, c=0.7, hidden=8, dtype=torch.float64).eval()
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    exact = layer.log_abs_det_jacobian(x)
    assert exact.shape == (4,)
    assert torch.autograd.gradcheck(lambda a: layer.log_abs_det_jacobian(a), (x,))
    assert torch.autograd.gradcheck(lambda a: layer(a), (x,))
    with pytest.raises(ValueError, match="method"):
        layer.log_abs_det_jacobian(x, method="nope")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p=1.0), "p must"),
        (dict(p=0.0), "p must"),
        (dict(n_exact=0), "n_exact"),
        (dict(distribution="uniform"), "distribution"),
    ],
)
def test_estimator_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        inv.logdet_russian_roulette(
            _contraction(2, 0.5), torch.randn(2, 2, dtype=torch.float64), **kwargs
        )


def test_estimator_bad_f():
    with pytest.raises(TypeError, match="callable"):
        inv.logdet_power_series(3, torch.randn(2, 2))
    with pytest.raises(ValueError, match="same shape"):
        inv.logdet_exact(lambda x: x[:, :1], torch.randn(2, 2))
