import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref.equivariant import (
    FiniteGroup,
    act_on_field,
    act_on_image,
    commutation_error,
    direct_sum,
    disc_mask,
    equivariance_error,
    reflect,
    rotate,
    rotate90,
    translate,
)

NAMES = ["C1", "C2", "C4", "D1", "D2", "D4"]


@pytest.mark.parametrize("name", NAMES)
def test_group_axioms_and_matrices(name):
    G = FiniteGroup(name)
    e = G.elements[0]
    assert G.order == len(set(G.elements)) == (2 if G.reflections else 1) * G.N
    for g in G.elements:
        assert G.compose(e, g) == g == G.compose(g, e)
        assert G.compose(g, G.inverse(g)) == e
        for h in G.elements:
            # the matrices form a representation on the plane
            assert torch.equal(G.matrix(G.compose(g, h)), G.matrix(g) @ G.matrix(h))
            for k in G.elements:
                assert G.compose(G.compose(g, h), k) == G.compose(g, G.compose(h, k))
    # the generators generate the group
    seen, frontier = {e}, [e]
    while frontier:
        g = frontier.pop()
        for s in G.generators:
            h = G.compose(s, g)
            if h not in seen:
                seen.add(h)
                frontier.append(h)
    assert seen == set(G.elements)


@pytest.mark.parametrize("name", NAMES)
def test_representations_are_homomorphisms(name):
    G = FiniteGroup(name)
    kinds = ["trivial", "regular", *G.irreps()]
    for kind in kinds:
        rho = G.representation(kind)
        assert rho.is_homomorphism()
        # orthogonal
        for g in G.elements:
            assert torch.allclose(rho(g) @ rho(g).T, torch.eye(rho.dim, dtype=torch.float64))
    # characters of distinct real irreps are orthogonal; <chi, chi> is 1 (real type) or 2
    chars = [torch.stack([G.representation(k)(g).trace() for g in G.elements]) for k in G.irreps()]
    gram = torch.stack(chars) @ torch.stack(chars).T / G.order
    assert torch.allclose(gram, torch.diag(torch.diag(gram)))
    assert all(float(v) in (1.0, 2.0) for v in torch.diag(gram))
    # the regular representation contains each irrep d / <chi, chi> times
    reg = torch.stack([G.representation("regular")(g).trace() for g in G.elements])
    for k, chi in zip(G.irreps(), chars, strict=True):
        mult = float(reg @ chi) / G.order / float(chi @ chi / G.order)
        assert mult == pytest.approx(G.representation(k).dim / float(chi @ chi / G.order))
    s = direct_sum(G.representation("trivial"), G.representation("regular"))
    assert s.dim == 1 + G.order and s.is_homomorphism()


def test_bad_group_and_representation_names():
    with pytest.raises(ValueError, match="name must be one of"):
        FiniteGroup("C3")
    with pytest.raises(ValueError, match="name must be one of"):
        FiniteGroup("SO2")
    with pytest.raises(TypeError, match="name must be a string"):
        FiniteGroup(4)
    G = FiniteGroup("C4")
    with pytest.raises(ValueError, match="kind must be 'trivial', 'regular'"):
        G.representation("standard")
    with pytest.raises(ValueError, match="kind must be one of"):
        G.representation(("irrep", 5))
    with pytest.raises(ValueError, match="g must be an element"):
        G.compose((4, 0), (0, 0))
    with pytest.raises(ValueError, match="same group"):
        direct_sum(G.representation("trivial"), FiniteGroup("D4").representation("trivial"))


@pytest.mark.parametrize("name", NAMES)
def test_image_action_is_an_action_and_matches_the_matrices(name):
    G = FiniteGroup(name)
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    for g in G.elements:
        for h in G.elements:
            assert torch.equal(
                act_on_image(act_on_image(x, h, G), g, G), act_on_image(x, G.compose(g, h), G)
            )
    # [T_g x](p) = x(g^{-1} p): a delta at p moves to g p
    for g in G.elements:
        delta = torch.zeros(1, 1, 7, 7, dtype=torch.float64)
        delta[0, 0, 1, 5] = 1.0  # x = 2, y = 2
        moved = act_on_image(delta, g, G)
        i, j = (int(v) for v in torch.nonzero(moved[0, 0])[0])
        p = G.matrix(g) @ torch.tensor([2.0, 2.0], dtype=torch.float64)
        assert (j - 3, 3 - i) == (int(p[0]), int(p[1]))


@pytest.mark.parametrize("name", ["C4", "D4", "D2"])
def test_field_action_is_an_action(name):
    G = FiniteGroup(name)
    for kind in ["regular", *G.irreps()]:
        rho = G.representation(kind)
        x = torch.randn(2, 3 * rho.dim, 5, 5, dtype=torch.float64)
        for g in G.elements:
            for h in G.elements:
                assert torch.allclose(
                    act_on_field(act_on_field(x, h, rho), g, rho),
                    act_on_field(x, G.compose(g, h), rho),
                )


def test_rotations_reflections_translations(dtype, device):
    x = torch.randn(2, 1, 9, 9, dtype=dtype, device=device)
    for k in range(4):
        assert torch.equal(rotate(x, 90.0 * k), rotate90(x, k))
    # the interpolating rotation agrees with the exact one next to 90 degrees
    near = rotate(x, 90.0 + 1e-7)
    assert float((near - rotate90(x, 1)).abs().max()) < (1e-4 if dtype == torch.float32 else 1e-6)
    assert torch.equal(rotate90(rotate90(x, 3), 1), x)
    assert torch.equal(reflect(reflect(x)), x)
    assert torch.equal(translate(translate(x, (2, -3)), (-2, 3)), x)
    # rotating by a and then by b is rotating by a + b, up to interpolation, inside the disc
    m = disc_mask(17, radius=6, dtype=dtype, device=device)
    t = torch.arange(17.0)
    smooth = torch.exp(-((t - 8) ** 2)[:, None] / 30 - ((t - 6) ** 2)[None] / 30)
    s = smooth.to(dtype=dtype, device=device)[None, None]
    assert float((m * (rotate(rotate(s, 20.0), 25.0) - rotate(s, 45.0))).abs().max()) < 0.02


@settings(deadline=None, max_examples=20)
@given(shift=st.tuples(st.integers(-5, 5), st.integers(-5, 5)))
def test_circular_convolution_commutes_with_translations(shift):
    conv = torch.nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular", dtype=torch.float64)
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    err = commutation_error(conv, x, lambda y: translate(y, shift), lambda y: translate(y, shift))
    assert err < 1e-12


def test_equivariance_error_invariance_and_composition():
    def pool(y):
        return y.mean(dim=(-2, -1), keepdim=True)

    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    assert equivariance_error(pool, x, 90.0, invariant=True) < 1e-14
    assert equivariance_error(lambda y: y.square(), x, 270.0) < 1e-14
    assert equivariance_error(lambda y: y + torch.arange(8.0, dtype=y.dtype), x, 90.0) > 0.1

    # a composition of equivariant maps is equivariant
    def blur(y):
        return torch.nn.functional.avg_pool2d(y, 3, stride=1, padding=1)

    assert equivariance_error(lambda y: torch.relu(blur(torch.tanh(y))), x, 180.0) < 1e-14


def test_action_bad_inputs():
    G = FiniteGroup("C4")
    with pytest.raises(ValueError, match="x must have shape"):
        rotate90(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="square"):
        rotate90(torch.zeros(1, 1, 3, 4))
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor"):
        rotate([[1.0]], 10.0)
    with pytest.raises(TypeError, match="angle must be a real number"):
        rotate(torch.zeros(1, 1, 4, 4), "45")
    with pytest.raises(TypeError, match="shift must be a pair"):
        translate(torch.zeros(1, 1, 4, 4), (1.5, 0))
    with pytest.raises(ValueError, match=r"multiple of rep\.dim"):
        act_on_field(torch.zeros(1, 3, 4, 4), (1, 0), G.representation("regular"))
    with pytest.raises(ValueError, match="x must have shape"):
        equivariance_error(lambda y: y, torch.zeros(1, 4, 4), 90.0)
    with pytest.raises(ValueError, match="same shape"):
        commutation_error(lambda y: y, torch.zeros(1, 1, 4, 4), lambda y: y, lambda y: y[..., :2])
