import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref.equivariant import (
    FiniteGroup,
    SteerableConv2d,
    act_on_field,
    constraint_matrix,
    invariant_vectors,
    kernel_basis,
    kernel_constraint_residual,
)


def orbit_count_dimension(G, rho_in, rho_out, size):
    """dim = sum over orbits of grid points of dim Hom_{stabiliser}(rho_in, rho_out)."""
    c = (size - 1) // 2
    points = [(x, y) for x in range(-c, c + 1) for y in range(-c, c + 1)]
    seen, total = set(), 0
    for p in points:
        if p in seen:
            continue
        orbit = set()
        stab = []
        for g in G.elements:
            q = G.matrix(g) @ torch.tensor(p, dtype=torch.float64)
            orbit.add((int(q[0]), int(q[1])))
            if (int(q[0]), int(q[1])) == p:
                stab.append(g)
        seen |= orbit
        # dim Hom_S(rho_in, rho_out) = (1/|S|) sum_s chi_in(s) chi_out(s) (real orthogonal reps)
        total += round(sum(float(rho_in(s).trace() * rho_out(s).trace()) for s in stab) / len(stab))
    return total


CASES = [
    (g, a, b)
    for g in ["C2", "C4", "D1", "D4"]
    for a in ["trivial", "regular", "irrep"]
    for b in ["trivial", "regular", "irrep"]
]


def _rep(G, kind):
    return G.representation(G.irreps()[1] if kind == "irrep" else kind)


@pytest.mark.parametrize("name, a, b", CASES)
@pytest.mark.parametrize("size", [3, 5])
def test_basis_dimension_equals_orbit_count_and_satisfies_constraint(name, a, b, size):
    G = FiniteGroup(name)
    r1, r2 = _rep(G, a), _rep(G, b)
    B = kernel_basis(r1, r2, size)
    assert B.shape[0] == orbit_count_dimension(G, r1, r2, size)
    assert B.shape[1:] == (r2.dim, r1.dim, size, size)
    # orthonormal and inside the null space of the constraints
    gram = B.flatten(1) @ B.flatten(1).T
    assert torch.allclose(gram, torch.eye(B.shape[0], dtype=torch.float64), atol=1e-12)
    if B.shape[0]:
        assert float((constraint_matrix(r1, r2, size) @ B.flatten(1).T).abs().max()) < 1e-12
    for K in B[:3]:
        assert kernel_constraint_residual(K, r1, r2) < 1e-12


def test_disc_support_and_known_dimensions():
    G = FiniteGroup("C4")
    t, r = G.representation("trivial"), G.representation("regular")
    assert kernel_basis(t, t, 3).shape[0] == 3  # centre, edge orbit, corner orbit
    assert kernel_basis(t, t, 3, support="disc").shape[0] == 2
    assert kernel_basis(r, r, 3).shape[0] == 36
    B = kernel_basis(t, r, 5, support="disc")
    assert float(B[..., 0, 0].abs().max()) == 0.0  # corners are outside the disc


def test_random_kernel_violates_constraint():
    G = FiniteGroup("D4")
    r = G.representation("regular")
    assert kernel_constraint_residual(torch.randn(8, 8, 3, 3, dtype=torch.float64), r, r) > 0.5


@settings(deadline=None, max_examples=12)
@given(
    name=st.sampled_from(["C4", "D4", "D2"]),
    a=st.sampled_from(["trivial", "regular", "irrep"]),
    b=st.sampled_from(["trivial", "regular", "irrep"]),
    c_in=st.integers(1, 2),
    c_out=st.integers(1, 2),
    seed=st.integers(0, 1000),
)
def test_steerable_conv_is_equivariant(name, a, b, c_in, c_out, seed):
    G = FiniteGroup(name)
    r1, r2 = _rep(G, a), _rep(G, b)
    torch.manual_seed(seed)
    if kernel_basis(r1, r2, 3).shape[0] == 0:  # e.g. D4: trivial -> reflection sign on 3 x 3
        with pytest.raises(ValueError, match="no nonzero equivariant kernel"):
            SteerableConv2d(r1, r2, c_in, c_out, 3)
        return
    conv = SteerableConv2d(r1, r2, c_in, c_out, 3, dtype=torch.float64)
    if conv.bias is not None:
        conv.bias.data.normal_()
    x = torch.randn(2, c_in * r1.dim, 9, 9, dtype=torch.float64)
    y = conv(x)
    assert y.shape == (2, c_out * r2.dim, 9, 9)
    for g in G.elements:
        assert torch.allclose(conv(act_on_field(x, g, r1)), act_on_field(y, g, r2), atol=1e-12)
    assert kernel_constraint_residual(conv.kernel().detach(), r1, r2) < 1e-12


def test_steerable_conv_dtype_device_and_gradcheck(dtype, device):
    G = FiniteGroup("C4")
    conv = SteerableConv2d(
        G.representation("trivial"),
        G.representation("regular"),
        1,
        2,
        3,
        dtype=dtype,
        device=device,
    )
    x = torch.randn(1, 1, 5, 5, dtype=dtype, device=device)
    y = conv(x)
    assert y.dtype == dtype and y.device.type == device.type
    conv64 = SteerableConv2d(
        G.representation("regular"), G.representation("trivial"), 1, 1, 3, dtype=torch.float64
    )
    xg = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: conv64(v), (xg,))


def test_invariant_biases():
    G = FiniteGroup("C4")
    assert invariant_vectors(G.representation("regular")).shape == (1, 4)
    assert invariant_vectors(G.representation("trivial")).shape == (1, 1)
    assert invariant_vectors(G.representation(("irrep", 1))).shape == (0, 2)


def test_kernel_bad_inputs():
    G, H = FiniteGroup("C4"), FiniteGroup("D4")
    t = G.representation("trivial")
    with pytest.raises(ValueError, match="size must be odd"):
        kernel_basis(t, t, 4)
    with pytest.raises(TypeError, match="rho_in must be a Representation"):
        kernel_basis("trivial", t, 3)
    with pytest.raises(ValueError, match="same group"):
        kernel_basis(t, H.representation("trivial"), 3)
    with pytest.raises(ValueError, match="support must be"):
        kernel_basis(t, t, 3, support="hexagon")
    with pytest.raises(ValueError, match="K must have shape"):
        kernel_constraint_residual(torch.zeros(3, 1, 3, 3), G.representation("regular"), t)
    with pytest.raises(ValueError, match="no nonzero equivariant kernel"):
        SteerableConv2d(G.representation(("irrep", 2)), t, 1, 1, 1)
