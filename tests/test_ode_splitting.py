import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref.ode import (
    ResNet,
    ShearNet,
    canonical_J,
    jacobian_determinant,
    shear_p,
    shear_z,
    standard_map,
    symplectic_euler,
)

D = torch.float64


def test_symplectic_euler_is_two_shears():
    dT = lambda t, p: torch.sinh(p)  # noqa: E731
    dV = lambda t, z: z**3  # noqa: E731
    h = 0.2
    u = torch.randn(5, 4, dtype=D)
    composed = shear_p(lambda z: -h * dV(0, z))(shear_z(lambda p: h * dT(0, p))(u))
    z1, p1 = symplectic_euler(dT, dV, u[:, :2], u[:, 2:], h, 1)
    assert torch.allclose(composed, torch.cat([z1, p1], -1), atol=1e-15)


@settings(max_examples=6, deadline=None)
@given(K=st.floats(0.0, 5.0), seed=st.integers(0, 1000))
def test_standard_map_preserves_area_and_is_symplectic(K, seed):
    u = torch.rand(20, 2, generator=torch.Generator().manual_seed(seed), dtype=D) * 2 * math.pi
    det = jacobian_determinant(lambda v: standard_map(v, K, wrap=False), u)
    assert torch.allclose(det, torch.ones_like(det), atol=1e-12)
    out = standard_map(u, K)
    assert bool(((out >= 0) & (out < 2 * math.pi)).all())


@pytest.mark.parametrize("gradient", [False, True])
def test_shear_net_volume_preserving_and_invertible(gradient):
    torch.manual_seed(0)
    net = ShearNet(4, 6, T=2.0, gradient=gradient, dtype=D)
    u = torch.randn(10, 4, dtype=D)
    det = jacobian_determinant(net, u)
    assert torch.allclose(det, torch.ones_like(det), atol=1e-12)
    assert torch.allclose(net.inverse(net(u)), u, atol=1e-12)
    assert torch.equal(net.log_abs_det_jacobian(u), torch.zeros(10, dtype=D))
    if gradient:  # symplectic as well
        Jm = torch.func.jacrev(lambda v: net(v.unsqueeze(0)).squeeze(0))(u[0])
        J = canonical_J(4, dtype=D)
        assert (Jm.T @ J @ Jm - J).abs().max() < 1e-12


def test_resnet_is_not_volume_preserving():
    torch.manual_seed(0)
    net = ResNet(4, 6, T=2.0, dtype=D)
    det = jacobian_determinant(net, torch.randn(10, 4, dtype=D))
    assert (det - 1).abs().max() > 1e-2


def test_bad_inputs():
    with pytest.raises(ValueError, match="even"):
        shear_z(lambda p: p)(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="g must"):
        shear_z(3)
    with pytest.raises(TypeError, match="f must"):
        shear_p(None)
    with pytest.raises(ValueError, match="last dimension"):
        standard_map(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="dim"):
        ShearNet(3, 2)
    with pytest.raises(ValueError, match="shape"):
        jacobian_determinant(lambda v: v, torch.zeros(3))
    assert ShearNet(2, 1)(torch.zeros(1, 2)).dtype == torch.float32
