"""Bad inputs to spdl_ref.ode's discrete-gradient, Lie-group, manifold, splitting and stability
modules (Sections 2.1-2.4): a table of clear errors.

See tests/bad_input_harness.py for what each case must satisfy. The other modules of
spdl_ref.ode (ResNets, Runge-Kutta, fields, symplectic methods) have their own table.
"""

import pytest
import torch
from bad_input_harness import Case, check_coverage, ids, run_case, track
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref.ode import discrete_gradient as dg
from spdl_ref.ode import lie_group as lg
from spdl_ref.ode import manifolds as mf
from spdl_ref.ode import splitting as sp
from spdl_ref.ode import stability as stab

D = torch.float64
NAN, INF = float("nan"), float("inf")
EYE = torch.eye(3, dtype=D)
OMEGA = torch.tensor([0.3, -1.0, 0.5], dtype=D)


def t64(*shape):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(0))


def nonfinite(x, value=NAN):
    x = x.clone()
    x.view(-1)[0] = value
    return x


def H(u):
    return 0.5 * (u * u).sum(-1)


def xi(R):
    return lg.hat(OMEGA).expand(*R.shape[:-2], 3, 3)


def shear():
    return track(sp.ShearNet(4, 2, dtype=D))


def spd():
    a = t64(3, 3)
    return a @ a.T + torch.eye(3, dtype=D)


C = Case

CASES = [
    # --- discrete gradients (Section 2.2.2) ---
    C("discrete_gradient.CountingFunction", lambda: dg.CountingFunction(3), "fn"),
    C("discrete_gradient.canonical_J", lambda: dg.canonical_J(3), "dim"),
    C("discrete_gradient.canonical_J", lambda: dg.canonical_J(0), "dim", note="zero"),
    C("discrete_gradient.canonical_J", lambda: dg.canonical_J(4, dtype=torch.int64), "dtype"),
    C(
        "discrete_gradient.gonzalez_gradient",
        lambda: dg.gonzalez_gradient(3, t64(2, 4), t64(2, 4)),
        "H",
    ),
    C(
        "discrete_gradient.gonzalez_gradient",
        lambda: dg.gonzalez_gradient(H, nonfinite(t64(2, 4)), t64(2, 4)),
        "u",
    ),
    C(
        "discrete_gradient.gonzalez_gradient",
        lambda: dg.gonzalez_gradient(H, t64(2, 4), t64(3, 4)),
        "u",
        note="shapes",
    ),
    C(
        "discrete_gradient.gonzalez_gradient",
        lambda: dg.gonzalez_gradient(lambda u: u, t64(2, 4), t64(2, 4)),
        "H",
        note="not an energy",
    ),
    C(
        "discrete_gradient.avf_gradient",
        lambda: dg.avf_gradient(H, t64(2, 4), t64(2, 4), nodes=0),
        "nodes",
    ),
    C(
        "discrete_gradient.avf_gradient",
        lambda: dg.avf_gradient(H, t64(2, 4), nonfinite(t64(2, 4), INF)),
        "v",
    ),
    C(
        "discrete_gradient.avf_gradient",
        lambda: dg.avf_gradient(H, t64(2, 4), t64(2, 4).float()),
        "v",
        note="float32",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(3, t64(2, 4), 0.1),
        "H",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, torch.tensor(1.0, dtype=D), 0.1),
        "u",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, t64(2, 4), 0),
        "h",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, t64(2, 4), 0.1, J=torch.eye(3, dtype=D)),
        "J",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, t64(2, 4), 0.1, J=torch.eye(4, dtype=D)),
        "J",
        note="not skew",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, t64(2, 4), 0.1, method="midpoint"),
        "method",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, t64(2, 4), 0.1, tol=0),
        "tol",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, t64(2, 4), 0.1, max_iter=0),
        "max_iter",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, t64(2, 4), 0.1, nodes=0),
        "nodes",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(lambda u: u.sum(), t64(2, 4), 0.1),
        "H",
        note="shape",
    ),
    C(
        "discrete_gradient.discrete_gradient_step",
        lambda: dg.discrete_gradient_step(H, t64(3), 0.1),
        "dim",
        note="odd",
    ),
    # --- Lie groups (Section 2.3) ---
    C("lie_group.hat", lambda: lg.hat(t64(2)), "w"),
    C("lie_group.hat", lambda: lg.hat(nonfinite(t64(3))), "w", note="nan"),
    C("lie_group.hat", lambda: lg.hat(torch.ones(3, dtype=torch.int64)), "w", note="int"),
    C("lie_group.vee", lambda: lg.vee(t64(3, 2)), "W"),
    C("lie_group.vee", lambda: lg.vee([[0.0] * 3] * 3), "W", note="list"),
    C("lie_group.so3_exp", lambda: lg.so3_exp(t64(2, 2)), "W"),
    C("lie_group.so3_exp", lambda: lg.so3_exp(nonfinite(t64(3, 3), INF)), "W", note="inf"),
    C("lie_group.so3_log", lambda: lg.so3_log(t64(3)), "R"),
    C("lie_group.so3_log", lambda: lg.so3_log(nonfinite(EYE)), "R", note="nan"),
    C("lie_group.so3_curve", lambda: lg.so3_curve(t64(4, 2)), "increments"),
    C("lie_group.so3_curve", lambda: lg.so3_curve(t64(4, 3), start=t64(3)), "start"),
    C("lie_group.so3_curve", lambda: lg.so3_curve(nonfinite(t64(4, 3))), "increments", note="nan"),
    C("lie_group.lie_euler", lambda: lg.lie_euler(3, EYE, 0.1, 2, manifold="SO3"), "xi"),
    C("lie_group.lie_euler", lambda: lg.lie_euler(xi, EYE, 0.1, 2), "manifold", note="ambiguous"),
    C("lie_group.lie_euler", lambda: lg.lie_euler(xi, EYE, 0.1, 2, manifold="torus"), "manifold"),
    C("lie_group.lie_euler", lambda: lg.lie_euler(xi, EYE, -1, 2, manifold="SO3"), "h"),
    C("lie_group.lie_euler", lambda: lg.lie_euler(xi, EYE, 0.1, -1, manifold="SO3"), "steps"),
    C(
        "lie_group.lie_euler",
        lambda: lg.lie_euler(xi, EYE, 0.1, 2, method="rk4", manifold="SO3"),
        "method",
    ),
    C(
        "lie_group.lie_euler",
        lambda: lg.lie_euler(xi, 2 * EYE, 0.1, 2, manifold="SO3"),
        "z0",
        note="not a rotation",
    ),
    C(
        "lie_group.lie_euler",
        lambda: lg.lie_euler(xi, -EYE, 0.1, 2, manifold="SO3"),
        "z0",
        note="reflection",
    ),
    C(
        "lie_group.lie_euler",
        lambda: lg.lie_euler(xi, t64(2, 4), 0.1, 2, manifold="sphere"),
        "z0",
        note="last dim",
    ),
    C(
        "lie_group.lie_euler",
        lambda: lg.lie_euler(xi, t64(4, 3), 0.1, 2, manifold="SO3"),
        "z0",
        note="vectors as SO3",
    ),
    C(
        "lie_group.lie_euler",
        lambda: lg.lie_euler(lambda R: R, EYE, 0.1, 2, manifold="SO3"),
        "xi",
        note="not skew",
    ),
    C(
        "lie_group.lie_euler",
        lambda: lg.lie_euler(lambda v: lg.hat(OMEGA), t64(4, 3), 0.1, 2),
        "xi",
        note="shape",
    ),
    C(
        "lie_group.lie_euler",
        lambda: lg.lie_euler(xi, nonfinite(EYE), 0.1, 2, manifold="SO3"),
        "z0",
        note="nan",
    ),
    # --- manifold-valued features (Section 2.3) ---
    C("manifolds.circle_distance", lambda: mf.circle_distance(nonfinite(t64(3)), t64(3)), "a"),
    C("manifolds.circle_distance", lambda: mf.circle_distance(t64(3), [0.0, 1.0, 2.0]), "b"),
    C("manifolds.so3_curve_distance", lambda: mf.so3_curve_distance(EYE[None], EYE[None]), "c1"),
    C(
        "manifolds.so3_curve_distance",
        lambda: mf.so3_curve_distance(EYE.expand(3, 3, 3), EYE.expand(2, 3, 3)),
        "c1",
        note="shapes",
    ),
    C(
        "manifolds.so3_curve_distance",
        lambda: mf.so3_curve_distance(EYE.expand(3, 3, 3), nonfinite(EYE.expand(3, 3, 3).clone())),
        "c2",
    ),
    C("manifolds.spd_distance", lambda: mf.spd_distance(spd(), -spd()), "B"),
    C(
        "manifolds.spd_distance",
        lambda: mf.spd_distance(torch.triu(torch.ones(3, 3, dtype=D)), spd()),
        "A",
    ),
    C("manifolds.spd_inner", lambda: mf.spd_inner(spd(), t64(2, 2), t64(3, 3)), "X"),
    C("manifolds.spd_inner", lambda: mf.spd_inner(t64(3), t64(3, 3), t64(3, 3)), "A"),
    C("manifolds.spd_inner", lambda: mf.spd_inner(spd(), t64(3, 3), nonfinite(t64(3, 3))), "Y"),
    C("manifolds.spd_power", lambda: mf.spd_power(spd(), NAN), "s"),
    C("manifolds.spd_power", lambda: mf.spd_power(-spd(), 0.5), "A"),
    # --- shears and volume preservation (Sections 2.2.3, 2.4.2) ---
    C("splitting.ShearNet", lambda: sp.ShearNet(3, 2), "dim"),
    C("splitting.ShearNet", lambda: sp.ShearNet(4, 0), "depth"),
    C("splitting.ShearNet", lambda: sp.ShearNet(4, 2, T=0), "T"),
    C("splitting.ShearNet", lambda: sp.ShearNet(4, 2, gradient="yes"), "gradient"),
    C("splitting.ShearNet", lambda: sp.ShearNet(4, 2, init_std=-1), "init_std"),
    C("splitting.ShearNet", lambda: sp.ShearNet(4, 2, dtype=torch.int64), "dtype"),
    C("splitting.ShearNet", lambda: shear()(t64(3, 6)), "u", note="dim"),
    C("splitting.ShearNet", lambda: shear()(t64(3, 4).float()), "u", note="float32"),
    C("splitting.ShearNet", lambda: shear()(nonfinite(t64(3, 4))), "u", note="nan"),
    C("splitting.ShearNet", lambda: shear().inverse(t64(3, 5)), "u", note="odd"),
    C("splitting.ShearNet", lambda: shear().log_abs_det_jacobian(t64(3, 2)), "u", note="log det"),
    C("splitting.jacobian_determinant", lambda: sp.jacobian_determinant(3, t64(3, 2)), "phi"),
    C("splitting.jacobian_determinant", lambda: sp.jacobian_determinant(torch.tanh, t64(2)), "u"),
    C(
        "splitting.jacobian_determinant",
        lambda: sp.jacobian_determinant(torch.tanh, nonfinite(t64(3, 2))),
        "u",
        note="nan",
    ),
    C("splitting.shear_p", lambda: sp.shear_p(3), "f"),
    C("splitting.shear_p", lambda: sp.shear_p(torch.tanh)(t64(2, 3)), "u"),
    C("splitting.shear_z", lambda: sp.shear_z("tanh"), "g"),
    C("splitting.shear_z", lambda: sp.shear_z(torch.tanh)(nonfinite(t64(2, 4))), "u"),
    C("splitting.polygon_area", lambda: sp.polygon_area(t64(2, 2)), "P"),
    C(
        "splitting.polygon_area",
        lambda: sp.polygon_area([[0, 0], [1, 0], [0, 1]]),
        "P",
        note="list",
    ),
    C("splitting.square_boundary", lambda: sp.square_boundary(0), "n"),
    C("splitting.standard_map", lambda: sp.standard_map(t64(3, 3)), "u"),
    C("splitting.standard_map", lambda: sp.standard_map(t64(3, 2), K=INF), "K"),
    C("splitting.standard_map", lambda: sp.standard_map(t64(3, 2), wrap=1), "wrap"),
    C("splitting.standard_map", lambda: sp.standard_map(nonfinite(t64(3, 2))), "u", note="nan"),
    # --- stability (Section 2.1) ---
    C("stability.lipschitz_bound", lambda: stab.lipschitz_bound(t64(3)), "A"),
    C("stability.lipschitz_bound", lambda: stab.lipschitz_bound(t64(3, 3), L_sigma=-1), "L_sigma"),
    C(
        "stability.lipschitz_bound",
        lambda: stab.lipschitz_bound(nonfinite(t64(3, 3))),
        "A",
        note="nan",
    ),
    C("stability.stability_constant", lambda: stab.stability_constant(1.0, -1), "T"),
    C("stability.stability_constant", lambda: stab.stability_constant(NAN, 1), "L"),
    C(
        "stability.stability_constant",
        lambda: stab.stability_constant(1e3, 1e3),
        "T",
        note="overflow",
    ),
    C(
        "stability.one_sided_lipschitz_pairs",
        lambda: stab.one_sided_lipschitz_pairs(3, t64(3, 2), t64(3, 2)),
        "f",
    ),
    C(
        "stability.one_sided_lipschitz_pairs",
        lambda: stab.one_sided_lipschitz_pairs(torch.tanh, t64(3, 2), nonfinite(t64(3, 2))),
        "z2",
    ),
    C(
        "stability.one_sided_lipschitz_pairs",
        lambda: stab.one_sided_lipschitz_pairs(lambda z: z.sum(), t64(3, 2), 2 * t64(3, 2)),
        "f",
        note="shape",
    ),
    C(
        "stability.one_sided_lipschitz_pairs",
        lambda: stab.one_sided_lipschitz_pairs(torch.tanh, t64(3, 2), t64(3, 2)),
        "z1",
        note="equal rows",
    ),
    C(
        "stability.one_sided_lipschitz_jacobian",
        lambda: stab.one_sided_lipschitz_jacobian(3, t64(3, 2)),
        "f",
    ),
    C(
        "stability.one_sided_lipschitz_jacobian",
        lambda: stab.one_sided_lipschitz_jacobian(torch.tanh, t64(2)),
        "z",
    ),
    C("stability.diagonal_nu_bound", lambda: stab.diagonal_nu_bound(t64(3, 2)), "A"),
    C(
        "stability.diagonal_nu_bound",
        lambda: stab.diagonal_nu_bound(t64(3, 3), d_range=(1, 0)),
        "d_range",
    ),
    C(
        "stability.diagonal_nu_bound",
        lambda: stab.diagonal_nu_bound(t64(3, 3), d_range=1),
        "d_range",
        note="scalar",
    ),
    C(
        "stability.diagonal_nu_bound",
        lambda: stab.diagonal_nu_bound(t64(3, 3), exact_max_dim=0, samples=0),
        "samples",
    ),
    C(
        "stability.diagonal_nu_bound",
        lambda: stab.diagonal_nu_bound(t64(3, 3), exact_max_dim=-1),
        "exact_max_dim",
    ),
    C(
        "stability.diagonal_nu_bound",
        lambda: stab.diagonal_nu_bound(t64(30, 30), exact_max_dim=40),
        "exact_max_dim",
        note="too costly",
    ),
    C(
        "stability.diagonal_nu_bound",
        lambda: stab.diagonal_nu_bound(t64(3, 3), exact_max_dim=0, generator=1),
        "generator",
    ),
    C("stability.gradient_flow_field", lambda: stab.gradient_flow_field(3), "V"),
    C(
        "stability.gradient_flow_field",
        lambda: stab.gradient_flow_field(H)(t64(3)),
        "z",
        note="1-D",
    ),
    C("stability.theorem21_interval", lambda: stab.theorem21_interval([[1.0]]), "A"),
    C(
        "stability.theorem21_interval",
        lambda: stab.theorem21_interval(t64(2, 2, 2, 2)),
        "A",
        note="4-D",
    ),
    C("stability.perturbation_growth", lambda: stab.perturbation_growth(3, t64(3, 2)), "net"),
    C(
        "stability.perturbation_growth",
        lambda: stab.perturbation_growth(torch.tanh, t64(3, 2), eps=0),
        "eps",
    ),
    C("stability.perturbation_growth", lambda: stab.perturbation_growth(torch.tanh, t64(3)), "x"),
    C(
        "stability.contraction_ratios",
        lambda: stab.contraction_ratios(3, t64(3, 2), 2 * t64(3, 2)),
        "step",
    ),
    C(
        "stability.contraction_ratios",
        lambda: stab.contraction_ratios(torch.tanh, t64(3, 2), t64(2, 2)),
        "z1",
    ),
    C(
        "stability.contraction_ratios",
        lambda: stab.contraction_ratios(torch.tanh, t64(3, 2), t64(3, 2)),
        "z1",
        note="equal rows",
    ),
    C(
        "stability.contraction_ratios",
        lambda: stab.contraction_ratios(torch.tanh, t64(3, 2), t64(3, 2).float()),
        "z2",
        note="float32",
    ),
]

MODULES = [
    ("discrete_gradient", "spdl_ref.ode.discrete_gradient"),
    ("lie_group", "spdl_ref.ode.lie_group"),
    ("manifolds", "spdl_ref.ode.manifolds"),
    ("splitting", "spdl_ref.ode.splitting"),
    ("stability", "spdl_ref.ode.stability"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, monkeypatch):
    run_case(case, monkeypatch)


def test_every_public_name_has_a_case():
    check_coverage(CASES, MODULES, {})


class _NoEnv:
    def setenv(self, *args):  # pragma: no cover - hypothesis cases set no environment
        raise AssertionError("no environment in hypothesis cases")


VECTOR_FUNCTIONS = {  # name: (call, argument, width of the state)
    "hat": (lambda u: lg.hat(u), "w", 3),
    "standard_map": (lambda u: sp.standard_map(u), "u", 2),
    "ShearNet": (lambda u: shear()(u), "u", 4),
    "shear_z": (lambda u: sp.shear_z(torch.tanh)(u), "u", 4),
    "circle_distance": (lambda u: mf.circle_distance(u, u), "a", 4),
    "discrete_gradient_step": (lambda u: dg.discrete_gradient_step(H, u, 0.1), "u", 4),
    "one_sided_lipschitz_jacobian": (
        lambda u: stab.one_sided_lipschitz_jacobian(torch.tanh, u),
        "z",
        4,
    ),
    "lipschitz_bound": (lambda u: stab.lipschitz_bound(u), "A", 4),
}


@pytest.mark.parametrize("name", sorted(VECTOR_FUNCTIONS))
@given(value=st.sampled_from([NAN, INF, -INF]), where=st.integers(0, 1000), rows=st.integers(1, 4))
def test_non_finite_states_are_refused(name, value, where, rows):
    fn, arg, width = VECTOR_FUNCTIONS[name]
    u = t64(rows, width)
    u.view(-1)[where % u.numel()] = value
    run_case(Case(name, lambda: fn(u), arg), _NoEnv())


@pytest.mark.parametrize("name", sorted(VECTOR_FUNCTIONS))
@given(dtype=st.sampled_from([torch.int64, torch.bool, torch.int8]))
def test_states_of_integer_dtype_are_refused(name, dtype):
    fn, arg, width = VECTOR_FUNCTIONS[name]
    run_case(Case(name, lambda: fn(t64(2, width).to(dtype)), arg), _NoEnv())
