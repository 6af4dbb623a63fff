import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

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
    errs = [
        (torch.cat(method(dT, dV, z0, p0, 1 / n, n)) - ref).norm().item() for n in (32, 64, 128)
    ]
    rates = [math.log2(a / b) for a, b in itertools.pairwise(errs)]
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


# ---- the symplecticity test M^T J M = J and the extended-phase-space history (Section 2.2.2) ----

from spdl_ref.ode import (  # noqa: E402
    ExtendedPhaseSpaceRun,
    extended_phase_space_run,
    separable_step_map,
    step_jacobian,
    symplecticity_defect,
)


@pytest.mark.parametrize(
    "name, method", [("symplectic_euler", symplectic_euler), ("stormer_verlet", stormer_verlet)]
)
def test_separable_step_map_matches_one_step(name, method):
    u = torch.randn(7, 4, generator=torch.Generator().manual_seed(0), dtype=D)
    step = separable_step_map(name, dT, dV, 0.3, t0=0.4)
    out = step(u)
    assert out.shape == u.shape
    for k in range(u.shape[0]):
        assert torch.equal(out[k], _one_step(method, u[k]))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.floats(0.05, 1.0))
def test_step_jacobian_and_defect_of_symplectic_steps(seed, h):
    u = torch.randn(4, generator=torch.Generator().manual_seed(seed), dtype=D)
    for name in ("symplectic_euler", "stormer_verlet"):
        M = step_jacobian(separable_step_map(name, dT, dV, h, t0=0.4), u)
        assert M.shape == (4, 4)
        assert symplecticity_defect(M) < 1e-12


def test_rk4_step_has_a_symplecticity_defect():
    from spdl_ref.ode import rk_step

    # a pendulum step of RK4 is not symplectic: a defect of order h^5, well above round-off
    f = lambda t, w: torch.cat([w[2:], -torch.sin(w[:2])])  # noqa: E731
    M = step_jacobian(
        lambda w: rk_step(f, 0.0, w, 0.5, "rk4"), torch.tensor([1.0, -0.5, 0.3, 0.2], dtype=D)
    )
    assert symplecticity_defect(M) > 1e-5


def test_step_jacobian_is_the_exact_jacobian_and_defect_formula():
    A = torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=D)
    M = step_jacobian(lambda v: A @ v, torch.ones(4, dtype=D))
    assert torch.allclose(M, A)
    J = canonical_J(4, dtype=D)
    assert torch.isclose(symplecticity_defect(A), (A.T @ J @ A - J).abs().max())
    # a rotation in the (z, p) plane is symplectic, a scaling by 2 is not: defect 4 - 1 = 3
    c, s = math.cos(0.7), math.sin(0.7)
    R = torch.tensor([[c, s], [-s, c]], dtype=D)
    batch = torch.stack([R, 2 * torch.eye(2, dtype=D)])
    d = symplecticity_defect(batch, J=canonical_J(2, dtype=D))
    assert d.shape == (2,) and d[0] < 1e-15 and abs(d[1].item() - 3.0) < 1e-15
    assert symplecticity_defect(R.float()).dtype == torch.float32


def test_symplectic_test_bad_inputs():
    step = separable_step_map("symplectic_euler", dT, dV, 0.1)
    with pytest.raises(ValueError, match="method"):
        separable_step_map("rk4", dT, dV, 0.1)
    with pytest.raises(ValueError, match="h"):
        separable_step_map("stormer_verlet", dT, dV, 0.0)
    with pytest.raises(TypeError, match="dT"):
        separable_step_map("stormer_verlet", None, dV, 0.1)
    with pytest.raises(ValueError, match="even"):
        step(torch.zeros(3, dtype=D))
    with pytest.raises(TypeError, match="step"):
        step_jacobian(3, torch.zeros(4, dtype=D))
    with pytest.raises(ValueError, match="v must be a vector"):
        step_jacobian(step, torch.zeros(2, 4, dtype=D))
    with pytest.raises(ValueError, match="step must map"):
        step_jacobian(lambda v: v[:2], torch.zeros(4, dtype=D))
    with pytest.raises(TypeError, match="v"):
        step_jacobian(step, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="M must have shape"):
        symplecticity_defect(torch.zeros(4, 3, dtype=D))
    with pytest.raises(ValueError, match="even"):
        symplecticity_defect(torch.zeros(3, 3, dtype=D))
    with pytest.raises(ValueError, match="J must have shape"):
        symplecticity_defect(torch.zeros(4, 4, dtype=D), J=canonical_J(2, dtype=D))
    with pytest.raises(ValueError, match="finite"):
        symplecticity_defect(torch.full((2, 2), float("nan"), dtype=D))


_T = lambda t, p: 0.5 * (p**2).sum(-1) * (1 + 0.3 * torch.sin(t)).squeeze(-1)  # noqa: E731
_V = lambda t, z: -(torch.cos(z) * (1 + 0.2 * torch.cos(t))).sum(-1)  # noqa: E731


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extended_phase_space_run_records_H_and_K(dtype):
    z0 = torch.tensor([[1.0, 0.3], [-0.5, 0.1]], dtype=dtype)
    p0 = torch.tensor([[0.0, 0.5], [0.2, -0.4]], dtype=dtype)
    run = extended_phase_space_run(_T, _V, z0, p0, 0.01, 100, t0=0.5, pt0=0.25)
    assert isinstance(run, ExtendedPhaseSpaceRun)
    z, p, t, pt = extended_symplectic_euler(_T, _V, z0, p0, 0.01, 100, t0=0.5, pt0=0.25)
    assert torch.equal(run.z, z) and torch.equal(run.p, p) and torch.equal(run.p_t, pt)
    assert run.t.shape == (101,) and run.t.dtype == dtype
    assert abs(run.t[0].item() - 0.5) < 1e-7 and abs(run.t[-1].item() - t) < 1e-6
    assert run.H.shape == run.K.shape == (101, 2) and run.H.dtype == dtype
    tt = torch.full((2, 1), t, dtype=dtype)
    assert torch.allclose(run.H[-1], _T(tt, p) + _V(tt, z))
    assert torch.allclose(run.K[-1], run.H[-1] + pt)
    tt0 = torch.full((2, 1), 0.5, dtype=dtype)
    assert torch.allclose(run.K[0], _T(tt0, p0) + _V(tt0, z0) + 0.25)
    # K is nearly conserved while H changes (first-order method, h = 0.01)
    assert (run.K - run.K[0]).abs().max() < 0.05 < (run.H - run.H[0]).abs().max()


def test_extended_phase_space_run_zero_steps_and_bad_inputs():
    z0 = torch.zeros(3, 2, dtype=D)
    run = extended_phase_space_run(_T, _V, z0, z0, 0.1, 0)
    assert run.t.shape == (1,) and run.H.shape == (1, 3) and torch.equal(run.z, z0)
    with pytest.raises(TypeError, match="T and V"):
        extended_phase_space_run(None, _V, z0, z0, 0.1, 1)
    with pytest.raises(ValueError, match="h"):
        extended_phase_space_run(_T, _V, z0, z0, -0.1, 1)
    with pytest.raises(ValueError, match="steps"):
        extended_phase_space_run(_T, _V, z0, z0, 0.1, -2)
    with pytest.raises(ValueError, match="same shape"):
        extended_phase_space_run(_T, _V, z0, torch.zeros(3, 3, dtype=D), 0.1, 1)
    with pytest.raises(ValueError, match="pt0"):
        extended_phase_space_run(_T, _V, z0, z0, 0.1, 1, pt0=torch.zeros(4, dtype=D))
    with pytest.raises(TypeError, match="pt0"):
        extended_phase_space_run(_T, _V, z0, z0, 0.1, 1, pt0="0")
