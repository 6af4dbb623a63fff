import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref import data
from spdl_ref.equivariant import (
    denoising_objective,
    equivariance_error,
    make_denoiser,
    parameter_count,
    psnr,
    rotate90,
    smoothed_tv,
    train_denoiser,
    translate,
)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return {
        k: make_denoiser(k, width=16, depth=2, kernel_size=3).eval()
        for k in ("ordinary", "equivariant")
    }


def test_shapes_and_commutation_with_90_degree_rotations(small):
    x = data.random_rectangles(3, size=20, seed=0)
    for kind, model in small.items():
        assert model(x).shape == x.shape
        errors = [equivariance_error(model, x, a) for a in (90, 180, 270)]
        if kind == "equivariant":
            assert max(errors) < 1e-4  # float32, eval mode
        else:
            assert min(errors) > 1e-2


def test_equivariant_denoiser_commutes_with_translations(small):
    x = torch.zeros(1, 1, 24, 24)
    x[..., 8:14, 6:12] = 1.0

    def shift(y):
        return translate(y, (3, -2))  # the support stays away from the border

    m = small["equivariant"]
    with torch.no_grad():
        lhs, rhs = m(shift(x)), shift(m(x))
    inner = (slice(None), slice(None), slice(6, 18), slice(6, 18))
    assert float((lhs - rhs)[inner].abs().max()) < 1e-5


def test_parameter_counts_at_paper_size():
    ordinary, equivariant = make_denoiser("ordinary"), make_denoiser("equivariant")
    assert parameter_count(ordinary) == 739_777
    assert parameter_count(equivariant) == 61_705
    assert parameter_count(equivariant) < 0.1 * parameter_count(ordinary)


def test_float64_and_harmonic_variant():
    x = data.random_rectangles(2, size=16, seed=1, dtype=torch.float64)
    for kw in ({}, {"fields": "harmonic", "max_order": 1}):
        m = make_denoiser(
            "equivariant", width=8 if not kw else 6, depth=1, dtype=torch.float64, **kw
        ).eval()
        y = m(x)
        assert y.dtype == torch.float64
        assert torch.allclose(m(rotate90(x)), rotate90(y), atol=1e-6)


@pytest.mark.parametrize("fields", ["regular", "harmonic"])
def test_float64_denoiser_is_equivariant_to_float64_round_off(fields):
    # escnn samples its bases in float32; the bridge makes them float64 (escnn_float64), so the
    # float64 network commutes with 90-degree rotations to ~1e-16, not to escnn's ~1e-7.
    width = 16 if fields == "regular" else 14
    x = data.random_rectangles(2, size=15, seed=3, dtype=torch.float64)
    torch.manual_seed(0)
    m = make_denoiser("equivariant", width=width, depth=2, fields=fields, dtype=torch.float64)
    errors = [equivariance_error(m.eval(), x, a) for a in (90, 180, 270)]
    assert max(errors) < 1e-13
    assert all(b.dtype == torch.float64 for b in m.buffers() if b.is_floating_point())
    # the same under a float64 default dtype (escnn alone fails: "Float did not match Double")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        m = make_denoiser("equivariant", width=width, depth=1, fields=fields).eval()
    finally:
        torch.set_default_dtype(old)
    assert m(x).dtype == torch.float64
    assert max(equivariance_error(m, x, a) for a in (90, 180, 270)) < 1e-13
    # and the float32 network afterwards is unaffected (no float64 basis cached for it)
    m32 = make_denoiser("equivariant", width=width, depth=1, fields=fields).eval()
    assert m32(x.float()).dtype == torch.float32
    assert 1e-9 < max(equivariance_error(m32, x.float(), a) for a in (90, 180, 270)) < 1e-5


def test_denoiser_bad_inputs():
    with pytest.raises(ValueError, match="kind must be 'ordinary' or 'equivariant'"):
        make_denoiser("unet")
    with pytest.raises(ValueError, match="width must be a multiple of 8"):
        make_denoiser("equivariant", width=12, depth=1)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        make_denoiser("ordinary", width=4, depth=1, kernel_size=4)
    with pytest.raises(ValueError, match="fields must be"):
        make_denoiser("equivariant", width=8, depth=1, fields="spherical")
    with pytest.raises(ValueError, match="only to kind='equivariant'"):
        make_denoiser("ordinary", width=8, depth=1, fields="harmonic")
    m = make_denoiser("ordinary", width=4, depth=1)
    with pytest.raises(ValueError, match=r"x must be a batch of one-channel images \(B, 1, H, W\)"):
        m(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="x must be a batch"):
        m(torch.zeros(8, 8))
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        parameter_count(lambda x: x)


@settings(deadline=None, max_examples=20)
@given(c=st.floats(-2, 2), shift=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_smoothed_tv_properties(c, shift):
    eps = 1e-3
    flat = torch.full((1, 1, 6, 6), c, dtype=torch.float64)
    assert float(smoothed_tv(flat, eps)) == pytest.approx(0.0, abs=1e-12)
    step = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    step[..., :, 3:] = 1.0
    # one unit jump across each of 6 rows: total variation 6, approached as eps -> 0
    assert float(smoothed_tv(step, eps)) == pytest.approx(6.0, rel=1e-2)
    assert float(smoothed_tv(step + c, eps)) == pytest.approx(float(smoothed_tv(step, eps)))
    assert float(smoothed_tv(rotate90(step), eps)) == pytest.approx(6.0, rel=1e-2)


def test_smoothed_tv_isotropic_and_gradcheck():
    u = torch.tensor([[[[0.0, 1.0], [2.0, 0.0]]]], dtype=torch.float64)
    eps = 0.5
    # pixel (0,0): gradient (2, 1); (0,1): (-1, 0); (1,0): (0, -2); (1,1): 0
    expected = sum((g + eps**2) ** 0.5 - eps for g in (5.0, 1.0, 4.0, 0.0))
    assert float(smoothed_tv(u, eps)) == pytest.approx(expected)
    x = torch.randn(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: smoothed_tv(v, 0.1), (x,))
    y = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda v: denoising_objective(v, y, 0.3, 0.1), (x,))


def test_objective_and_psnr(dtype):
    t = torch.zeros(2, 1, 4, 4, dtype=dtype)
    o = t + 0.1
    assert float(denoising_objective(o, t, lam=0.5, eps=0.1)) == pytest.approx(
        0.5 * 16 * 0.01, rel=1e-5
    )
    assert torch.allclose(psnr(o, t), torch.full((2,), 20.0, dtype=dtype))
    mask = torch.zeros(4, 4)
    mask[1:3, 1:3] = 1
    o2 = o.clone()
    o2[..., 0, 0] = 5.0
    assert torch.allclose(psnr(o2, t, mask=mask), torch.full((2,), 20.0, dtype=dtype))


def test_training_lowers_the_validation_objective():
    torch.manual_seed(0)
    clean = data.random_rectangles(16, size=12, seed=0)
    val = data.random_rectangles(4, size=12, seed=1)
    model = make_denoiser("ordinary", width=4, depth=1)
    h = train_denoiser(
        model,
        clean,
        val,
        noise=0.1,
        iterations=20,
        batch_size=4,
        lr=1e-2,
        val_every=5,
        generator=torch.Generator().manual_seed(0),
    )
    validation = h.series["validation"]
    assert len(h.loss) == 20 and [v[0] for v in validation] == [5, 10, 15, 20]
    assert validation[-1][1] < validation[0][1]
    assert len(h.series["lr"]) == 4 and h.series["lr"][0] == 1e-2
    assert not model.training


def test_plateau_scheduler_lowers_the_step_size_by_factor():
    # With a step size of 1e-6 the validation objective cannot improve by the scheduler's
    # relative threshold (1e-4), so after patience + 1 validations the step size is multiplied
    # by factor, and again patience + 1 validations later.
    clean = data.random_rectangles(4, size=8, seed=0)
    model = make_denoiser("ordinary", width=2, depth=1)
    h = train_denoiser(
        model,
        clean,
        clean,
        noise=0.1,
        iterations=6,
        batch_size=2,
        lr=1e-6,
        val_every=1,
        patience=1,
        factor=0.25,
    )
    assert h.series["lr"] == pytest.approx([1e-6, 1e-6, 2.5e-7, 2.5e-7, 6.25e-8, 6.25e-8], rel=1e-9)


def test_training_bad_inputs():
    m = make_denoiser("ordinary", width=4, depth=1)
    clean = torch.zeros(4, 1, 8, 8)
    with pytest.raises(ValueError, match="batch_size must be <="):
        train_denoiser(m, clean, clean, noise=0.1, iterations=1, batch_size=5)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        train_denoiser(m, clean, clean, noise=-1.0, iterations=1, batch_size=2)
    with pytest.raises(ValueError, match="clean must have shape"):
        train_denoiser(m, clean[0], clean, noise=0.1, iterations=1, batch_size=2)
    for factor in (1.0, 2.0):
        with pytest.raises(ValueError, match="factor must be < 1"):
            train_denoiser(m, clean, clean, noise=0.1, iterations=1, batch_size=2, factor=factor)
    with pytest.raises(ValueError, match="factor must be > 0"):
        train_denoiser(m, clean, clean, noise=0.1, iterations=1, batch_size=2, factor=0.0)
    with pytest.raises(ValueError, match="patience must be >= 0"):
        train_denoiser(m, clean, clean, noise=0.1, iterations=1, batch_size=2, patience=-1)
    with pytest.raises(ValueError, match="eps must be > 0"):
        smoothed_tv(clean, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        denoising_objective(clean, clean[:2], 0.1, 0.1)
