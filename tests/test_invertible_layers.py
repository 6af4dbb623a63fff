"""Round trip, log-determinant and bad-input tests for every layer of spdl_ref.invertible (Section
4.1)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref import invertible as inv

TOL_ROUND_TRIP = {torch.float64: 1e-10, torch.float32: 1e-4}


def _randomise(layer, seed=0):
    """Give every parameter random values (the default zero initialisation is the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))
    return layer


VECTOR_LAYERS = {
    "additive-halves": lambda m, dt: _randomise(inv.AdditiveCoupling(m, dtype=dt)),
    "additive-alternating": lambda m, dt: _randomise(
        inv.AdditiveCoupling(m, "alternating", True, dtype=dt)
    ),
    "affine": lambda m, dt: _randomise(inv.AffineCoupling(m, dtype=dt)),
    "affine-alternating": lambda m, dt: _randomise(inv.AffineCoupling(m, "alternating", dtype=dt)),
    "affine-relu": lambda m, dt: _randomise(inv.AffineCoupling(m, dtype=dt, activation="relu")),
    "spline-relu": lambda m, dt: _randomise(
        inv.SplineCoupling(m, "alternating", bins=5, bound=2.0, dtype=dt, activation="relu")
    ),
    "spline": lambda m, dt: _randomise(
        inv.SplineCoupling(m, "alternating", bins=5, bound=2.0, dtype=dt)
    ),
    "residual": lambda m, dt: inv.InvertibleResidual(
        m, c=0.6, hidden=16, n_layers=2, dtype=dt
    ).eval(),
    "1x1": lambda m, dt: _randomise(inv.Invertible1x1Conv(m, dtype=dt)),
    "householder": lambda m, dt: inv.HouseholderOrthogonal(m, dtype=dt),
    "expskew": lambda m, dt: inv.ExpSkewOrthogonal(m, dtype=dt),
    "cayley": lambda m, dt: inv.CayleyOrthogonal(m, dtype=dt),
    "givens": lambda m, dt: inv.GivensOrthogonal(m, dtype=dt),
}

IMAGE_LAYERS = {
    "additive-channels": lambda s, dt: _randomise(
        inv.AdditiveCoupling(s, "channels", dtype=dt, hidden=8)
    ),
    "affine-checkerboard": lambda s, dt: _randomise(
        inv.AffineCoupling(s, "checkerboard", dtype=dt, hidden=8)
    ),
    "affine-checkerboard-relu": lambda s, dt: _randomise(
        inv.AffineCoupling(s, "checkerboard", dtype=dt, hidden=8, activation="relu")
    ),
    "spline-checkerboard": lambda s, dt: _randomise(
        inv.SplineCoupling(s, "checkerboard", dtype=dt, hidden=8, bins=4)
    ),
    "residual-conv": lambda s, dt: inv.InvertibleResidual(s, c=0.5, hidden=4, dtype=dt).eval(),
    "1x1": lambda s, dt: _randomise(inv.Invertible1x1Conv(s[0], dtype=dt)),
    "householder": lambda s, dt: inv.HouseholderOrthogonal(s[0], dtype=dt),
    "pixel-shuffle": lambda s, dt: inv.PixelShuffleDown(s[0]),
    "orthogonal-down": lambda s, dt: inv.OrthogonalDownsampling(s[0], dtype=dt),
}

dtypes = st.sampled_from([torch.float32, torch.float64])


def _exact_logdet(layer, x):
    """log|det| of the autograd Jacobian, sample by sample."""
    out = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda a: layer(a[None])[0], xi)
        jac = jac.reshape(xi.numel(), xi.numel())
        out.append(torch.linalg.slogdet(jac).logabsdet)
    return torch.stack(out)


@pytest.mark.parametrize("name", list(VECTOR_LAYERS))
@settings(max_examples=8)
@given(half=st.integers(1, 3), n=st.integers(1, 5), dtype=dtypes, seed=st.integers(0, 99))
def test_vector_layers_round_trip_and_log_det(name, half, n, dtype, seed):
    m = 2 * half
    layer = VECTOR_LAYERS[name](m, dtype)
    x = 1.5 * torch.randn(
        n, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    ).to(dtype)
    y = layer(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert (layer.inverse(y) - x).abs().max() < TOL_ROUND_TRIP[dtype]
    assert (layer(layer.inverse(x)) - x).abs().max() < TOL_ROUND_TRIP[dtype]
    ld = layer.log_abs_det_jacobian(x)
    assert ld.shape == (n,)
    if dtype == torch.float64:
        assert torch.allclose(ld[:2], _exact_logdet(layer, x[:2]), atol=1e-8, rtol=0)
        y2, ld2 = layer.forward_and_log_det(x)
        assert torch.allclose(y2, y, atol=1e-12) and torch.allclose(ld2, ld, atol=1e-12)


@pytest.mark.parametrize("name", list(IMAGE_LAYERS))
@settings(max_examples=4)
@given(c=st.sampled_from([2, 4]), hw=st.sampled_from([2, 4]), n=st.integers(1, 3), dtype=dtypes)
def test_image_layers_round_trip_and_log_det(name, c, hw, n, dtype):
    layer = IMAGE_LAYERS[name]((c, hw, hw), dtype)
    x = torch.randn(
        n, c, hw, hw, generator=torch.Generator().manual_seed(c + hw), dtype=torch.float64
    ).to(dtype)
    y = layer(x)
    assert y.numel() == x.numel()
    assert (layer.inverse(y) - x).abs().max() < TOL_ROUND_TRIP[dtype]
    ld = layer.log_abs_det_jacobian(x)
    assert ld.shape == (n,)
    if dtype == torch.float64 and x[0].numel() <= 32:
        exact = _exact_logdet(lambda a: layer(a).reshape(a.shape), x[:1])
        assert torch.allclose(ld[:1], exact, atol=1e-8, rtol=0)


@pytest.mark.parametrize(
    "cls",
    [inv.HouseholderOrthogonal, inv.ExpSkewOrthogonal, inv.CayleyOrthogonal, inv.GivensOrthogonal],
)
@given(c=st.integers(1, 7))
def test_orthogonal_layers_are_orthogonal(cls, c):
    w = cls(c, dtype=torch.float64).weight()
    assert (w.T @ w - torch.eye(c, dtype=torch.float64)).abs().max() < 1e-10


def test_orthogonal_downsampling_is_orthogonal_and_identity_is_pixel_shuffle():
    layer = inv.OrthogonalDownsampling(3, stride=2, dtype=torch.float64)
    q = layer.matrices()
    assert (q.transpose(1, 2) @ q - torch.eye(4, dtype=torch.float64)).abs().max() < 1e-10
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    assert torch.allclose(layer(x).norm(), x.norm(), atol=1e-12)
    with torch.no_grad():
        layer.param.zero_()
    assert torch.equal(layer(x), inv.PixelShuffleDown(3)(x))
    assert inv.PixelShuffleDown(3, stride=(1, 2))(x).shape == (2, 6, 4, 3)


def test_1x1_conv_diagonal_floor_and_determinant():
    layer = inv.Invertible1x1Conv(5, eps=0.1, dtype=torch.float64)
    with torch.no_grad():
        layer.rho.fill_(-50.0)
    assert (layer.diagonal().abs() >= 0.1).all()
    w = layer.weight()
    assert torch.allclose(layer.log_abs_det_weight(), torch.linalg.slogdet(w).logabsdet, atol=1e-10)
    assert torch.allclose(layer.weight_inverse() @ w, torch.eye(5, dtype=torch.float64), atol=1e-8)
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64)
    assert torch.allclose(layer.log_abs_det_jacobian(x), 9 * layer.log_abs_det_weight().expand(2))


def test_additive_coupling_is_a_shear():
    layer = _randomise(inv.AdditiveCoupling(4, dtype=torch.float64))
    x = torch.randn(4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda a: layer(a[None])[0], x)
    eye = torch.eye(2, dtype=torch.float64)
    assert torch.equal(jac[:2, :2], eye) and torch.equal(jac[2:, 2:], eye)
    assert torch.equal(jac[:2, 2:], torch.zeros(2, 2, dtype=torch.float64))
    assert jac[2:, :2].abs().max() > 1e-3


def test_zero_initialised_couplings_start_as_identity():
    x = torch.randn(3, 6)
    for cls in (inv.AdditiveCoupling, inv.AffineCoupling, inv.SplineCoupling):
        layer = cls(6)
        assert torch.allclose(layer(x), x, atol=1e-6)


def test_partition_masks():
    assert inv.partition_mask(4).tolist() == [1, 1, 0, 0]
    assert inv.partition_mask(4, "alternating", flip=True).tolist() == [0, 1, 0, 1]
    cb = inv.partition_mask((1, 2, 2), "checkerboard")
    assert cb[0].tolist() == [[1, 0], [0, 1]]
    ch = inv.partition_mask((4, 1, 1), "channels")
    assert ch.flatten().tolist() == [1, 1, 0, 0]


def test_spline_is_monotone_and_identity_outside_bound():
    g = torch.Generator().manual_seed(0)
    x = torch.linspace(-4, 4, 401, dtype=torch.float64)
    w, h, d = (torch.randn(401, k, generator=g, dtype=torch.float64) for k in (6, 6, 5))
    y, logd = inv.rational_quadratic_spline(x, w, h, d, bound=3.0)
    inside = x.abs() < 3
    assert (y[~inside] == x[~inside]).all()
    assert (logd.exp() > 0).all()
    # the same spline for every point: monotone in x
    y1, _ = inv.rational_quadratic_spline(
        x, w[:1].expand(401, 6), h[:1].expand(401, 6), d[:1].expand(401, 5)
    )
    assert (y1.diff() > 0).all()


@pytest.mark.parametrize(
    "make, bad, match",
    [
        (lambda: inv.AffineCoupling(5), None, "even"),
        (lambda: inv.AdditiveCoupling((3, 4, 4), "channels"), None, "even"),
        (lambda: inv.AdditiveCoupling(4, "checkerboard"), None, "image"),
        (lambda: inv.SplineCoupling(4, bins=1), None, "bins"),
        (lambda: inv.InvertibleResidual(4, c=1.0), None, "c must"),
        (lambda: inv.InvertibleResidual(4, c=0.0), None, "c must"),
        (lambda: inv.InvertibleResidual(4, c=-0.5), None, "c must"),
        (lambda: inv.Invertible1x1Conv(3, eps=0.0), None, "eps"),
        (lambda: inv.OrthogonalDownsampling(0), None, "channels"),
    ],
)
def test_bad_constructor_arguments(make, bad, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "layer, x, match",
    [
        (inv.AffineCoupling(4), torch.randn(3, 5), "shape"),
        (inv.AffineCoupling(4), torch.randn(4), "batch"),
        (inv.InvertibleResidual(4), torch.randn(2, 3), "shape"),
        (inv.Invertible1x1Conv(3), torch.randn(2, 4, 2, 2), "channels"),
        (inv.PixelShuffleDown(2), torch.randn(1, 2, 3, 4), "divisible"),
        (inv.OrthogonalDownsampling(2), torch.randn(1, 3, 4, 4), "shape"),
        (inv.AffineCoupling(2), torch.tensor([[float("nan"), 0.0]]), "finite"),
    ],
)
def test_bad_inputs(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer(x)


def test_type_errors():
    with pytest.raises(TypeError):
        inv.AffineCoupling(4)(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(TypeError):
        inv.AffineCoupling(2.5)
    with pytest.raises(TypeError):
        inv.HouseholderOrthogonal(3, dtype=torch.int32)


@pytest.mark.parametrize("shape", [6, (2, 4, 4)])
def test_subnetwork_activation_is_the_one_asked_for(shape):
    for name, cls in inv.coupling.ACTIVATIONS.items():
        net = inv.subnetwork(shape, 2, 8, activation=name)
        kinds = {type(m) for m in net}
        assert cls in kinds and not (kinds & (set(inv.coupling.ACTIVATIONS.values()) - {cls}))
    # the coupling layers pass it on: same seed, other activation, other output
    x = torch.randn(5, 6, dtype=torch.float64)
    out = {}
    for name in inv.coupling.ACTIVATIONS:
        torch.manual_seed(0)
        out[name] = inv.AffineCoupling(6, zero_init=False, dtype=torch.float64, activation=name)(x)
    assert not torch.allclose(out["tanh"], out["relu"])
