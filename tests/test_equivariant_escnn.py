"""Our kernel-constraint solver against escnn's bases (the chapter shows the full table)."""

import pytest
import torch

from spdl_ref.equivariant import FiniteGroup, kernel_basis, kernel_constraint_residual

escnn_bridge = pytest.importorskip("spdl_ref.equivariant.escnn_bridge")


def _rank(B, tol=1e-4):
    s = torch.linalg.svdvals(B.flatten(1))
    return int((s > tol * s[0]).sum())


@pytest.mark.parametrize(
    "name, a, b, size",
    [
        ("C4", "trivial", "regular", 3),
        ("C4", ("irrep", 1), ("irrep", 1), 5),
        ("D4", "trivial", "trivial", 5),
        ("C2", "regular", "regular", 3),
    ],
)
def test_escnn_basis_spans_our_solution_space(name, a, b, size):
    G = FiniteGroup(name)
    ours = kernel_basis(G.representation(a), G.representation(b), size)
    theirs = escnn_bridge.escnn_kernel_basis(G, a, b, size, complete=True)
    assert _rank(theirs) == ours.shape[0]
    # escnn's kernels satisfy our constraint written with escnn's own matrices; sampled in
    # float64 by the bridge (escnn alone samples in float32: residuals of about 1e-7)
    r1, r2 = escnn_bridge.escnn_representation(G, a), escnn_bridge.escnn_representation(G, b)
    assert r1.is_homomorphism(1e-12) and r2.is_homomorphism(1e-12)
    assert max(kernel_constraint_residual(K, r1, r2) for K in theirs) < 1e-12
    # escnn's default basis is band-limited: a subspace
    assert _rank(escnn_bridge.escnn_kernel_basis(G, a, b, size, complete=False)) <= ours.shape[0]


def test_escnn_bridge_bad_inputs():
    with pytest.raises(TypeError, match="group must be a FiniteGroup"):
        escnn_bridge.gspace("C4")
    with pytest.raises(ValueError, match="size must be an odd"):
        escnn_bridge.escnn_kernel_basis(FiniteGroup("C4"), "trivial", "trivial", 4)
    with pytest.raises(ValueError, match="kind must be"):
        escnn_bridge.escnn_representation(FiniteGroup("C4"), "standard")


def test_escnn_float64_context_nests_and_restores_everything():
    import escnn.kernels.steerable_basis as sb

    G = FiniteGroup("C4")
    cache = escnn_bridge._singleblock._stored_filters
    with escnn_bridge.escnn_float64():
        assert torch.get_default_dtype() == torch.float64 and sb.torch is not torch
        B = escnn_bridge.escnn_kernel_basis(G, "trivial", "regular", 3)  # nested: no deadlock
    assert B.dtype == torch.float64
    assert torch.get_default_dtype() == torch.float32 and sb.torch is torch
    assert escnn_bridge._singleblock._stored_filters is cache
