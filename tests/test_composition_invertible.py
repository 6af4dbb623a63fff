"""Every invertible layer of ours inside InvertibleSequential, in both container modes.

For each layer (Sections 4.1.1-4.1.3, and the shear network of Section 2.4.2) x ordinary or
memory-efficient backpropagation (Section 4.2.1) x float32/float64, on a batch of one sample:

* the round trip Psi^{-1}(Psi(x)) = x,
* the log-determinant of the change of variables (48) against the autograd Jacobian,
* the gradients of a loss that uses both outputs equal between the two modes (the
  memory-efficient backward rebuilds every input by inversion and replays the random draws of
  the stochastic log-determinants).
"""

import copy

import pytest
import torch

from spdl_ref import invertible as inv
from spdl_ref.ode import ShearNet

VEC, IMG = 4, (2, 2, 2)


def _residual(shape, logdet="exact"):
    def make(**kw):
        layer = inv.InvertibleResidual(shape, c=0.7, hidden=4, logdet=logdet, **kw)
        inv.randomise_parameters(layer, 0.5, generator=1)
        for s in layer.spectral_layers():
            s.power_iteration(50)  # converge (47) for the new weights
        return layer

    return make


def _random(cls, *args, **extra):
    def make(**kw):
        return inv.randomise_parameters(cls(*args, **extra, **kw), 0.3, generator=2)

    return make


LAYERS = {
    "AdditiveCoupling": _random(inv.AdditiveCoupling, VEC, hidden=4),
    "AffineCoupling": _random(inv.AffineCoupling, VEC, hidden=4),
    "SplineCoupling": _random(inv.SplineCoupling, VEC, "alternating", hidden=4, bins=4),
    "AdditiveCoupling-image": _random(inv.AdditiveCoupling, IMG, "checkerboard", hidden=4),
    "AffineCoupling-image": _random(inv.AffineCoupling, IMG, hidden=4),
    "SplineCoupling-image": _random(inv.SplineCoupling, IMG, "checkerboard", hidden=4, bins=3),
    "InvertibleResidual": _residual(VEC),
    "InvertibleResidual-series": _residual(VEC, "series"),
    "InvertibleResidual-roulette": _residual(VEC, "roulette"),
    "InvertibleResidual-image": _residual(IMG),
    "ActNorm": _random(inv.ActNorm, VEC),
    "ActNorm-image": _random(inv.ActNorm, IMG[0]),
    "Invertible1x1Conv": _random(inv.Invertible1x1Conv, VEC),
    "Invertible1x1Conv-image": _random(inv.Invertible1x1Conv, IMG[0]),
    "HouseholderOrthogonal": _random(inv.HouseholderOrthogonal, VEC),
    "ExpSkewOrthogonal": _random(inv.ExpSkewOrthogonal, VEC),
    "CayleyOrthogonal": _random(inv.CayleyOrthogonal, VEC),
    "GivensOrthogonal": _random(inv.GivensOrthogonal, VEC),
    "PixelShuffleDown": lambda **kw: inv.PixelShuffleDown(IMG[0]),
    "OrthogonalDownsampling": _random(inv.OrthogonalDownsampling, IMG[0]),
    "InvertibleSequential": lambda **kw: inv.InvertibleSequential(
        _random(inv.AffineCoupling, VEC, hidden=4)(**kw),
        _residual(VEC, "series")(**kw),
        memory_efficient=True,
    ),
    "ShearNet": lambda **kw: inv.randomise_parameters(ShearNet(VEC, 2, **kw), 0.5, generator=3),
}
STOCHASTIC = {"InvertibleResidual-series", "InvertibleResidual-roulette", "InvertibleSequential"}
IMAGES = {name for name in LAYERS if name.endswith("-image")} | {
    "PixelShuffleDown",
    "OrthogonalDownsampling",
}
TOL = {torch.float32: 2e-4, torch.float64: 1e-10}


def _pair(name, dtype):
    """The same layer (same parameters) in an ordinary and a memory-efficient container."""
    torch.manual_seed(0)
    layer = LAYERS[name](dtype=dtype)
    plain = inv.InvertibleSequential(layer, memory_efficient=False)
    efficient = inv.InvertibleSequential(copy.deepcopy(layer), memory_efficient=True)
    shape = IMG if name in IMAGES else (VEC,)
    x = torch.randn(1, *shape, dtype=dtype, generator=torch.Generator().manual_seed(5))
    return plain, efficient, x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_round_trip_and_log_det(name, dtype):
    plain, efficient, x = _pair(name, dtype)
    for net in (plain, efficient):
        net.eval()
        with torch.no_grad():
            z = net(x)
            back = net.inverse(z)
        assert (back - x).abs().max() <= TOL[dtype] * (1 + x.abs().max())
        if name in STOCHASTIC:  # Hutchinson estimates: compared with the exact value below
            continue
        _, logdet = net.forward_and_log_det(x)
        reference = inv.autograd_log_abs_det(net, x)
        assert logdet.shape == (1,)
        assert (logdet - reference).abs().max() <= 10 * TOL[dtype] * (1 + reference.abs().max())
    if name.startswith("InvertibleResidual"):
        layer = plain[0]
        exact = layer.log_abs_det_jacobian(x, method="exact")
        assert (exact - inv.autograd_log_abs_det(plain, x)).abs().max() <= 10 * TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_equal_in_both_container_modes(name, dtype):
    plain, efficient, x0 = _pair(name, dtype)
    shape = copy.deepcopy(plain)(x0).shape  # a copy: a training-mode call advances (47)
    r = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(6))
    grads, states = [], []
    for net in (plain, efficient):
        x = x0.clone().requires_grad_(True)
        torch.manual_seed(7)  # the same probes for the stochastic log-determinants
        z, logdet = net.forward_and_log_det(x)
        loss = (z * r).sum() + logdet.sum()
        grads.append(torch.autograd.grad(loss, [x, *net.parameters()], allow_unused=True))
        states.append(torch.get_rng_state())
    assert torch.equal(*states)  # the memory-efficient backward leaves the generator as is
    for a, b in zip(*grads, strict=True):
        if a is None or b is None:
            assert a is None and b is None
            continue
        assert (a - b).abs().max() <= 50 * TOL[dtype] * (1 + a.abs().max())
