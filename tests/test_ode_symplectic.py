import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from spdl_ref.ode import canonical_J, extended_symplectic_euler, stormer_verlet, symplectic_euler

D = torch.float64


def dT(t, p):
    return p * (1.0 + 0.3 * math.sin(t))


def dV(t, z):
    return torch.sin(z) * (1.0 + 0.2 * math.cos(t))


def _one_step(method, u, h=0.3, t0=0.4):
    m = u.shape[-1] // 2
    z, p = method(dT, dV, u[:m], u[m:], h, 1, t0=t0)
    return torch.cat([z, p])


@pytest.mark.parametrize("method", [symplectic_euler, stormer_verlet])
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.floats(0.01, 1.0))
def test_one_step_is_symplectic(method, seed, h):
    u = torch.randn(6, generator=torch.Generator().manual_seed(seed), dtype=D)
    M = torch.autograd.functional.jacobian(lambda v: _one_step(method, v, h), u)
    J = canonical_J(6, dtype=D)
    assert (M.T @ J @ M - J).abs().max() < 1e-12


@pytest.mark.parametrize("method, order", [(symplectic_euler, 1), (stormer_verlet, 2)])
def test_measured_order(method, order):
    z0 = torch.tensor([[1.0, 0.3], [-0.5, 0.1]], dtype=D)
    p0 = torch.tensor([[0.0, 0.5], [0.2, -0.4]], dtype=D)
    ref = torch.cat(stormer_verlet(dT, dV, z0, p0, 1 / 2048, 2048))
    errs = [(torch.cat(method(dT, dV, z0, p0, 1 / n, n)) - ref).norm().item() for n in (32, 64, 128)]
    rates = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(abs(r - order) < 0.1 for r in rates), rates


def test_euler_formula_22_and_zero_steps():
    z, p = torch.tensor([[0.7]], dtype=D), torch.tensor([[0.2]], dtype=D)
    z1, p1 = symplectic_euler(dT, dV, z, p, 0.1, 1, t0=0.5)
    z_exp = z + 0.1 * dT(0.6, p)
    assert torch.equal(z1, z_exp)
    assert torch.equal(p1, p - 0.1 * dV(0.6, z_exp))
    z0, p0 = stormer_verlet(dT, dV, z, p, 0.1, 0)
    assert torch.equal(z0, z) and torch.equal(p0, p)


def test_float32_and_batch_shapes():
    z, p = torch.randn(5, 3), torch.randn(5, 3)
    for method in (symplectic_euler, stormer_verlet):
        z1, p1 = method(dT, dV, z, p, 0.1, 3)
        assert z1.shape == (5, 3) and p1.dtype == torch.float32


def test_extended_phase_space_matches_and_tracks_H():
    T = lambda t, p: 0.5 * (p**2).sum(-1) * (1 + 0.3 * torch.sin(t)).squeeze(-1)  # noqa: E731
    V = lambda t, z: -(torch.cos(z) * (1 + 0.2 * torch.cos(t))).sum(-1)  # noqa: E731
    z0 = torch.tensor([[1.0, 0.3], [-0.5, 0.1]], dtype=D)
    p0 = torch.tensor([[0.0, 0.5], [0.2, -0.4]], dtype=D)
    z, p, t, pt = extended_symplectic_euler(T, V, z0, p0, 0.01, 300)
    z_ref, p_ref = symplectic_euler(dT, dV, z0, p0, 0.01, 300)
    assert torch.allclose(z, z_ref, atol=1e-13) and torch.allclose(p, p_ref, atol=1e-13)
    tt = torch.full((2, 1), t, dtype=D)
    tt0 = torch.zeros(2, 1, dtype=D)
    K0 = T(tt0, p0) + V(tt0, z0)
    K = T(tt, p) + V(tt, z) + pt
    assert (K - K0).abs().max() < 0.05  # O(h) error of a first-order method
    assert (T(tt, p) + V(tt, z) - K0).abs().max() > 0.05  # while H itself changed


@pytest.mark.parametrize("method", [symplectic_euler, stormer_verlet])
def test_bad_inputs(method):
    z = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="h"):
        method(dT, dV, z, z, 0.0, 1)
    with pytest.raises(ValueError, match="steps"):
        method(dT, dV, z, z, 0.1, -1)
    with pytest.raises(TypeError, match="steps"):
        method(dT, dV, z, z, 0.1, 1.5)
    with pytest.raises(ValueError, match="same shape"):
        method(dT, dV, z, torch.zeros(2, 3), 0.1, 1)
    with pytest.raises(TypeError, match="dT"):
        method(None, dV, z, z, 0.1, 1)
    with pytest.raises(TypeError, match="z0"):
        method(dT, dV, [0.0], z, 0.1, 1)
