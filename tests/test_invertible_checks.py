"""Checking helpers for invertible layers: random parameters, autograd log-determinants, mixed
networks (Sections 4.1, 4.2.1, 4.2.3)."""

import pytest
import torch

from spdl_ref import invertible as inv


def test_randomise_parameters_is_reproducible_and_dtype_independent():
    a = inv.randomise_parameters(inv.AffineCoupling(4, hidden=8), scale=0.3, generator=1)
    b = inv.randomise_parameters(
        inv.AffineCoupling(4, hidden=8, dtype=torch.float64),
        scale=0.3,
        generator=torch.Generator().manual_seed(1),
    )
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p.double(), q, atol=1e-7)
    flat = torch.cat([p.detach().double().flatten() for p in b.parameters()])
    assert 0.2 < flat.std() < 0.4  # scale 0.3, a few hundred draws
    # no longer the identity: the zero-initialised last layer of the coupling was overwritten
    x = torch.randn(3, 4, dtype=torch.float64)
    assert (b(x) - x).abs().max() > 1e-3


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(layer=torch.zeros(3)), TypeError),
        (dict(layer=torch.nn.Linear(2, 2), scale=0.0), ValueError),
        (dict(layer=torch.nn.Linear(2, 2), scale="big"), TypeError),
        (dict(layer=torch.nn.Linear(2, 2), generator="seed"), TypeError),
    ],
)
def test_randomise_parameters_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        inv.randomise_parameters(**kwargs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_autograd_log_abs_det_of_a_linear_map_is_log_abs_det_of_its_matrix(dtype):
    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 5, dtype=dtype)
    x = torch.randn(3, 5, dtype=dtype)
    got = inv.autograd_log_abs_det(lin, x)
    assert got.shape == (3,) and got.dtype == dtype
    want = torch.linalg.slogdet(lin.weight.detach()).logabsdet
    assert torch.allclose(got, want.expand(3), atol=1e-5 if dtype == torch.float32 else 1e-12)


def test_autograd_log_abs_det_matches_coupling_and_residual_log_det():
    torch.manual_seed(0)
    x = torch.randn(4, 6, dtype=torch.float64)
    aff = inv.randomise_parameters(
        inv.AffineCoupling(6, "alternating", hidden=8), generator=2
    ).double()
    res = inv.InvertibleResidual(6, c=0.8, hidden=8, dtype=torch.float64).eval()
    for layer in (aff, res):
        assert torch.allclose(
            inv.autograd_log_abs_det(layer, x), layer.log_abs_det_jacobian(x), atol=1e-10
        )
    img = inv.randomise_parameters(
        inv.AffineCoupling((2, 2, 2), "checkerboard", hidden=4), generator=3
    ).double()
    xi = torch.randn(2, 2, 2, 2, dtype=torch.float64)
    assert torch.allclose(
        inv.autograd_log_abs_det(img, xi), img.log_abs_det_jacobian(xi), atol=1e-10
    )


def test_autograd_log_abs_det_rejects_bad_input():
    with pytest.raises(TypeError, match="layer"):
        inv.autograd_log_abs_det(3, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="x"):
        inv.autograd_log_abs_det(torch.nn.Identity(), torch.zeros(2))
    with pytest.raises(TypeError, match="x"):
        inv.autograd_log_abs_det(torch.nn.Identity(), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="square"):
        inv.autograd_log_abs_det(torch.nn.Linear(3, 2), torch.zeros(2, 3))


def test_mixed_invertible_network_has_every_layer_kind_and_inverts():
    torch.manual_seed(0)
    net = inv.mixed_invertible_network(dim=4, n_repeats=2, hidden=8, dtype=torch.float64).eval()
    assert isinstance(net, inv.InvertibleSequential) and len(net) == 10
    kinds = [type(layer).__name__ for layer in net.layers]
    assert (
        kinds[:5]
        == [
            "AffineCoupling",
            "InvertibleResidual",
            "Invertible1x1Conv",
            "SplineCoupling",
            "HouseholderOrthogonal",
        ]
        and kinds[5:] == kinds[:5]
    )
    assert not torch.equal(net.layers[0].mask, net.layers[5].mask)
    x = 0.5 * torch.randn(6, 4, dtype=torch.float64)
    assert (net.inverse(net(x)) - x).abs().max() < 1e-9
    assert not torch.allclose(net(x), x)  # random, not identity, initialisation


def test_mixed_invertible_network_memory_efficient_gradients_agree():
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    grads = []
    for me in (False, True):
        torch.manual_seed(3)
        net = inv.mixed_invertible_network(
            dim=4, n_repeats=1, hidden=8, memory_efficient=me, dtype=torch.float64
        )
        z, logdet = net.forward_and_log_det(x)
        grads.append(torch.autograd.grad(z.square().sum() + logdet.sum(), [x, *net.parameters()]))
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-8)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(dim=1), ValueError),
        (dict(dim=2.5), TypeError),
        (dict(n_repeats=0), ValueError),
        (dict(hidden=0), ValueError),
        (dict(c=1.5), ValueError),
        (dict(memory_efficient="yes"), TypeError),
        (dict(dtype=torch.int32), TypeError),
    ],
)
def test_mixed_invertible_network_rejects_bad_input(kwargs, error):
    with pytest.raises(error):
        inv.mixed_invertible_network(**kwargs)


def test_lipswish_slope_keeps_the_lipschitz_bound_and_is_trainable():
    from spdl_ref.invertible.residual import LipSwish

    s = torch.linspace(-20, 20, 20001, dtype=torch.float64)
    for beta in (0.1, 1.0, 3.0, 50.0):
        act = LipSwish(beta, dtype=torch.float64)
        assert float(act.beta) == pytest.approx(beta)
        slope = torch.diff(act(s)) / torch.diff(s)
        assert slope.abs().max() <= 1.0
    trained = LipSwish(3.0, learnable=True)
    assert [n for n, _ in trained.named_parameters()] == ["beta_raw"]
    assert not list(LipSwish(3.0).parameters())
    with pytest.raises(ValueError, match="beta must be > 0"):
        LipSwish(0.0)
    with pytest.raises(TypeError, match="learnable must be a bool"):
        LipSwish(1.0, learnable=1)


def test_residual_flow_learns_more_than_a_gaussian():
    import math

    import spdl_ref
    from spdl_ref import data

    x, _ = data.two_moons(512, noise=0.05, seed=1)
    spdl_ref.seed_everything(0)
    flow = inv.residual_flow(2, n_blocks=4, c=0.97, hidden=32, n_layers=2, actnorm=False)
    inv.fit_flow(flow, x, iterations=300, batch_size=256, lr=3e-2)
    gaussian = math.log(2 * math.pi * math.e) + 0.5 * torch.logdet(torch.cov(x.T.double())).item()
    with torch.no_grad():
        assert flow.nll(x).item() < gaussian - 0.3


# --- an independent reference for log-determinants computed by autograd (eq. (48)) -------------


@pytest.mark.parametrize("shape", [(6,), (2, 4, 4)])
def test_finite_differences_confirm_the_residual_log_det_and_catch_errors(shape):
    """The residual layer's exact log-det uses autograd; finite differences share no code with
    it. The check fails on a perturbed input and on the classic slip log|det J_f| (no identity)."""
    torch.manual_seed(0)
    dim = shape[0] if len(shape) == 1 else shape
    layer = inv.InvertibleResidual(dim, c=0.9, hidden=4, dtype=torch.float64).eval()
    x = torch.randn(3, *shape, dtype=torch.float64)
    fd = inv.finite_difference_log_abs_det(layer, x)
    with torch.no_grad():
        assert float((layer.log_abs_det_jacobian(x) - fd).abs().max()) < 1e-8
        assert float((layer.log_abs_det_jacobian(x + 1e-3) - fd).abs().max()) > 1e-6
    without_identity = inv.autograd_log_abs_det(layer.branch, x).detach()
    assert float((without_identity - fd).abs().min()) > 1.0


def test_finite_differences_of_every_example_layer():
    torch.manual_seed(0)
    for name, (layer, shape) in inv.example_layers(dtype=torch.float64).items():
        x = torch.randn(2, *shape, dtype=torch.float64)
        fd = inv.finite_difference_log_abs_det(layer, x)
        with torch.no_grad():
            err = float((layer.log_abs_det_jacobian(x) - fd).abs().max())
            assert err < 1e-7, (name, err)
            assert float((layer.inverse(layer(x)) - x).abs().max()) < 1e-10, name


def test_finite_difference_log_abs_det_rejects_bad_input():
    lin = torch.nn.Linear(3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="float64"):
        inv.finite_difference_log_abs_det(lin.float(), torch.randn(2, 3))
    with pytest.raises(ValueError, match="eps"):
        inv.finite_difference_log_abs_det(lin, torch.randn(2, 3, dtype=torch.float64), eps=0.0)
    with pytest.raises(ValueError, match="layer"):
        inv.finite_difference_log_abs_det(
            torch.nn.Linear(3, 2, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
        )
    with pytest.raises(TypeError, match="layer"):
        inv.finite_difference_log_abs_det(3, torch.randn(2, 3, dtype=torch.float64))


def test_example_layers_are_reproducible_across_dtypes():
    torch.manual_seed(0)
    a = inv.example_layers(dtype=torch.float32)
    torch.manual_seed(0)
    b = inv.example_layers(dtype=torch.float64)
    assert list(a) == list(b) and len(a) == 14
    for name in ("AffineCoupling", "SplineCoupling", "AdditiveCoupling (channels)"):
        for p, q in zip(a[name][0].parameters(), b[name][0].parameters(), strict=True):
            assert torch.allclose(p.double(), q, atol=1e-6)
    with pytest.raises(ValueError, match="image"):
        inv.example_layers(image=(3, 4, 4))
