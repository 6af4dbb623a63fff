import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref.ode import (
    circle_distance,
    hat,
    lie_euler,
    so3_curve_distance,
    so3_exp,
    so3_log,
    spd_distance,
    spd_inner,
    vee,
)
from spdl_ref.ode.manifolds import spd_power

D = torch.float64


def _spd(g, n=3):
    X = torch.randn(n, n, generator=g, dtype=D)
    return X @ X.T + 0.5 * torch.eye(n, dtype=D)


def _rot(g, scale=1.0):
    return so3_exp(hat(scale * torch.randn(3, generator=g, dtype=D)))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_spd_distance_is_affine_invariant_metric(seed):
    g = torch.Generator().manual_seed(seed)
    A, B, C = _spd(g), _spd(g), _spd(g)
    G = torch.randn(3, 3, generator=g, dtype=D) + 3 * torch.eye(3, dtype=D)
    dAB = spd_distance(A, B)
    assert torch.allclose(dAB, spd_distance(G @ A @ G.T, G @ B @ G.T), atol=1e-8)
    assert torch.allclose(dAB, spd_distance(B, A), atol=1e-8)
    assert spd_distance(A, A) < 1e-6
    assert dAB <= spd_distance(A, C) + spd_distance(C, B) + 1e-9
    # the geodesic A^{1/2} exp(s log(A^{-1/2} B A^{-1/2})) A^{1/2} has constant speed d(A, B)
    Ah, Aih = spd_power(A, 0.5), spd_power(A, -0.5)
    C0 = Aih @ B @ Aih
    Lg = (spd_power(0.5 * (C0 + C0.T), 1e-6) - torch.eye(3, dtype=D)) / 1e-6  # ~ log C0
    speed2 = spd_inner(A, Ah @ Lg @ Ah, Ah @ Lg @ Ah)
    assert torch.allclose(speed2.sqrt(), dAB, rtol=1e-4)


def test_circle_distance():
    a = torch.tensor([0.1, 3.0, -3.0], dtype=D)
    b = torch.tensor([2 * math.pi - 0.1, -3.0, 3.0], dtype=D)
    assert torch.allclose(
        circle_distance(a, b), torch.tensor([0.2, 2 * math.pi - 6.0, 2 * math.pi - 6.0], dtype=D)
    )


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_so3_log_exp_roundtrip_and_hat_vee(seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(5, 3, generator=g, dtype=D)
    w = w / w.norm(dim=-1, keepdim=True) * torch.rand(5, 1, generator=g, dtype=D) * 3.0
    assert torch.allclose(vee(hat(w)), w)
    assert torch.allclose(vee(so3_log(so3_exp(hat(w)))), w, atol=1e-9)
    assert torch.allclose(so3_log(torch.eye(3, dtype=D)), torch.zeros(3, 3, dtype=D))


def test_curve_distance_invariances():
    g = torch.Generator().manual_seed(0)
    c1 = torch.stack([_rot(g, 0.5) for _ in range(6)])
    c2 = torch.stack([_rot(g, 0.5) for _ in range(6)])
    d = so3_curve_distance(c1, c2)
    assert d > 0.1 and so3_curve_distance(c1, c1) < 1e-12
    R1, R2, L = _rot(g), _rot(g), _rot(g)
    assert torch.allclose(so3_curve_distance(c1 @ R1, c2 @ R2), d, atol=1e-10)
    assert torch.allclose(so3_curve_distance(L @ c1, L @ c2), d, atol=1e-10)
    const = c1[:1].expand(6, 3, 3)
    assert torch.isfinite(so3_curve_distance(const, c2))


def test_lie_euler_stays_on_manifold_and_euler_drifts():
    omega = torch.tensor([0.3, -1.0, 0.5], dtype=D)
    xi = lambda z: hat(omega + (z[..., :, 0] if z.dim() > 1 and z.shape[-2:] == (3, 3) else z))  # noqa: E731
    R0 = torch.eye(3, dtype=D)
    lie = lie_euler(xi, R0, 0.1, 200, manifold="SO3")
    eul = lie_euler(xi, R0, 0.1, 200, method="euler", manifold="SO3")
    orth = lambda R: (R.mT @ R - torch.eye(3, dtype=D)).abs().amax((-2, -1))  # noqa: E731
    assert orth(lie).max() < 1e-12
    assert orth(eul)[-1] > 1e-1
    v0 = torch.tensor([1.0, 0.0, 0.0], dtype=D)
    sph = lie_euler(xi, v0, 0.1, 200)
    assert (sph.norm(dim=-1) - 1).abs().max() < 1e-12
    R = lie_euler(lambda z: hat(z[..., :, 0]), R0.float(), 0.1, 2, manifold="SO3")
    assert R.dtype == torch.float32


def test_lie_euler_batch_of_three_vectors_is_not_read_as_a_rotation():
    # A (3, 3) state is three 3-vectors or one rotation: the caller must say which, and a batch
    # of three vectors then steps exactly as each vector alone, keeping its norm.
    omega = torch.tensor([0.3, -1.0, 0.5], dtype=D)
    xi = lambda v: hat(omega + torch.linalg.cross(omega.expand_as(v), v))  # noqa: E731
    V = torch.randn(3, 3, dtype=D, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="manifold must be given"):
        lie_euler(xi, V, 0.1, 20)
    batch = lie_euler(xi, V, 0.1, 20, manifold="sphere")[-1]
    alone = torch.stack([lie_euler(xi, v, 0.1, 20)[-1] for v in V])
    assert (batch - alone).abs().max() < 1e-13
    assert (batch.norm(dim=-1) - V.norm(dim=-1)).abs().max() < 1e-13
    with pytest.raises(ValueError, match="rotation matrices"):
        lie_euler(xi, V, 0.1, 20, manifold="SO3")
    with pytest.raises(ValueError, match="skew-symmetric"):
        lie_euler(lambda R: torch.ones_like(R), torch.eye(3, dtype=D), 0.1, 1, manifold="SO3")


def test_bad_inputs():
    A = torch.eye(3, dtype=D)
    with pytest.raises(ValueError, match="positive definite"):
        spd_distance(A, -A)
    with pytest.raises(ValueError, match="symmetric"):
        spd_distance(A, torch.triu(torch.ones(3, 3, dtype=D)))
    with pytest.raises(ValueError, match="square"):
        spd_inner(torch.ones(3, dtype=D), A, A)
    with pytest.raises(ValueError, match="m >= 2"):
        so3_curve_distance(A[None], A[None])
    with pytest.raises(ValueError, match="same shape"):
        so3_curve_distance(A.expand(3, 3, 3), A.expand(2, 3, 3))
    with pytest.raises(ValueError, match="h"):
        lie_euler(hat, torch.ones(3), 0.0, 1)
    with pytest.raises(ValueError, match="method"):
        lie_euler(hat, torch.ones(3), 0.1, 1, method="rk4")
    with pytest.raises(ValueError, match="last dimension"):
        hat(torch.ones(2))


def test_so3_curve_left_multiplies_exponentials():
    from spdl_ref.ode import so3_curve

    s = 0.3 * torch.randn(5, 3, generator=torch.Generator().manual_seed(2), dtype=D)
    c = so3_curve(s)
    assert c.shape == (6, 3, 3) and torch.equal(c[0], torch.eye(3, dtype=D))
    for k in range(5):
        assert torch.allclose(c[k + 1], so3_exp(hat(s[k])) @ c[k])
        # consecutive points differ by the increment: log(c_{k+1} c_k^T) = hat(s_k) (angles < pi)
        assert torch.allclose(vee(so3_log(c[k + 1] @ c[k].T)), s[k], atol=1e-12)
    eye = torch.eye(3, dtype=D)
    assert torch.allclose(c @ c.mT, eye.expand(6, 3, 3), atol=1e-13)
    R = so3_exp(hat(torch.tensor([0.1, 0.2, -0.3], dtype=D)))
    assert torch.allclose(so3_curve(s, start=R), c @ R)  # right-translation of the whole curve
    assert so3_curve(s[:0]).shape == (1, 3, 3)
    assert so3_curve(s.float()).dtype == torch.float32


def test_so3_curve_bad_inputs():
    from spdl_ref.ode import so3_curve

    with pytest.raises(ValueError, match="increments must have shape"):
        so3_curve(torch.zeros(4, 2, dtype=D))
    with pytest.raises(ValueError, match="increments must have shape"):
        so3_curve(torch.zeros(3, dtype=D))
    with pytest.raises(TypeError, match="increments"):
        so3_curve([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="start must have shape"):
        so3_curve(torch.zeros(2, 3, dtype=D), start=torch.eye(2, dtype=D))
