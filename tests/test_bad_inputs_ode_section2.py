"""Bad inputs to the Section 2 additions of spdl_ref.ode (growth bounds, test problems, the
extended phase space form, the modified Hamiltonian, the sphere): a table of clear errors.

See tests/bad_input_harness.py for what each case must satisfy.
"""

import pytest
import torch
from bad_input_harness import Case, check_coverage, ids, run_case, track

from spdl_ref.ode import backward_error as be
from spdl_ref.ode import extended as ex
from spdl_ref.ode import growth_bounds as gb
from spdl_ref.ode import problems as pr
from spdl_ref.ode import sphere as sph
from spdl_ref.ode.fields import GradientField, HamiltonianField

D = torch.float64
NAN = float("nan")


def t64(*shape):
    return torch.randn(*shape, dtype=D, generator=torch.Generator().manual_seed(0))


def sphere_net():
    return track(sph.SphereODENet(3, 2, dtype=D))


def energy(t, x):
    return 0.5 * (x * x).sum(-1)


C = Case

CASES = [
    # --- growth bounds (Section 2.1) ---
    C("growth_bounds.field_bounds", lambda: gb.field_bounds(torch.nn.Linear(2, 2)), "field"),
    C(
        "growth_bounds.field_bounds",
        lambda: gb.field_bounds(GradientField(2, 2), d_range=(1.0, 0.0)),
        "d_range",
    ),
    C(
        "growth_bounds.field_bounds",
        lambda: gb.field_bounds(GradientField(2, 2), d_range=1.0),
        "d_range",
        note="not a pair",
    ),
    C(
        "growth_bounds.field_bounds",
        lambda: gb.field_bounds(GradientField(6, 2), max_vertices=4),
        "max_vertices",
    ),
    C(
        "growth_bounds.euler_growth_bound",
        lambda: gb.euler_growth_bound(t64(3), t64(2), 0.1),
        "nu",
    ),
    C(
        "growth_bounds.euler_growth_bound",
        lambda: gb.euler_growth_bound(t64(3), t64(3), 0.0),
        "h",
    ),
    C(
        "growth_bounds.euler_growth_bound",
        lambda: gb.euler_growth_bound(t64(3, 2), t64(3, 2), 0.1),
        "nu",
        note="2-D",
    ),
    C("growth_bounds.RotatingFrameSystem", lambda: gb.RotatingFrameSystem(t64(3, 3), 1.0), "A0"),
    C(
        "growth_bounds.RotatingFrameSystem",
        lambda: gb.RotatingFrameSystem(t64(2, 2), NAN),
        "omega",
    ),
    C(
        "growth_bounds.RotatingFrameSystem",
        lambda: gb.RotatingFrameSystem(t64(2, 2), 1.0).field(0.0, t64(4, 3)),
        "z",
        note="field",
    ),
    C(
        "growth_bounds.RotatingFrameSystem",
        lambda: gb.RotatingFrameSystem(t64(2, 2), 1.0).solution(NAN, t64(4, 2)),
        "t",
        note="solution",
    ),
    # --- test problems (18)-(19) ---
    C("problems.SeparableHamiltonian", lambda: pr.SeparableHamiltonian(1, energy), "T"),
    C("problems.SeparableHamiltonian", lambda: pr.SeparableHamiltonian(energy, 1), "V"),
    C(
        "problems.SeparableHamiltonian",
        lambda: pr.SeparableHamiltonian(energy, energy, name=3),
        "name",
    ),
    C(
        "problems.SeparableHamiltonian",
        lambda: pr.SeparableHamiltonian(energy, energy).energy(t64(3, 3)),
        "u",
        note="odd",
    ),
    C("problems.coupled_anharmonic", lambda: pr.coupled_anharmonic().dV(0.0, t64(3, 3)), "z"),
    C("problems.modulated_pendulum", lambda: pr.modulated_pendulum(mass=1.5), "mass"),
    C("problems.modulated_pendulum", lambda: pr.modulated_pendulum(gravity=-1.0), "gravity"),
    C(
        "problems.tanh_potential_model",
        lambda: pr.tanh_potential_model(t64(2, 3), t64(2, 3), t64(2)),
        "A",
    ),
    C(
        "problems.tanh_potential_model",
        lambda: pr.tanh_potential_model(t64(2, 2), t64(2, 2), t64(3)),
        "b",
    ),
    C("problems.layer_hamiltonian", lambda: pr.layer_hamiltonian(GradientField(2, 2), 0), "field"),
    C(
        "problems.layer_hamiltonian",
        lambda: pr.layer_hamiltonian(HamiltonianField(2, 2), 5),
        "k",
    ),
    C(
        "problems.softplus_ridge_potential",
        lambda: pr.softplus_ridge_potential(t64(3), t64(3)),
        "B",
    ),
    C(
        "problems.softplus_ridge_potential",
        lambda: pr.softplus_ridge_potential(t64(3, 2), t64(3), quartic=-1),
        "quartic",
    ),
    # harmonic_oscillator and pendulum take no arguments: see EXEMPT
    # --- the form omega_H (Section 2.1.2) ---
    C("extended.omega_H_matrix", lambda: ex.omega_H_matrix(t64(3)), "grad_u"),
    C("extended.omega_H_matrix", lambda: ex.omega_H_matrix(t64(2), printed=1), "printed"),
    C("extended.extended_euler_map", lambda: ex.extended_euler_map(energy, 0.1), "H"),
    C("extended.extended_euler_map", lambda: ex.extended_euler_map(pr.pendulum(), -1), "h"),
    C(
        "extended.extended_euler_map",
        lambda: ex.extended_euler_map(pr.pendulum(), 0.1, "xyz"),
        "coordinates",
    ),
    C(
        "extended.extended_euler_map",
        lambda: ex.extended_euler_map(pr.pendulum(), 0.1)(t64(4)),
        "x",
        note="even",
    ),
    C("extended.extended_energy_error", lambda: ex.extended_energy_error(3, 0.1), "H"),
    C(
        "extended.extended_energy_error",
        lambda: ex.extended_energy_error(pr.pendulum(), 0.1)(t64(4)),
        "x",
    ),
    C(
        "extended.form_pullback_defect",
        lambda: ex.form_pullback_defect(3, t64(2, 2), t64(2)),
        "phi",
    ),
    C(
        "extended.form_pullback_defect",
        lambda: ex.form_pullback_defect(torch.tanh, t64(2, 3), t64(2)),
        "W",
    ),
    C(
        "extended.form_pullback_defect",
        lambda: ex.form_pullback_defect(torch.tanh, lambda y: t64(3, 3), t64(2)),
        "W",
        note="callable",
    ),
    # --- the modified Hamiltonian (Section 2.2.2) ---
    C("backward_error.modified_hamiltonian", lambda: be.modified_hamiltonian(3, 0.1), "H"),
    C(
        "backward_error.modified_hamiltonian",
        lambda: be.modified_hamiltonian(pr.pendulum(), 0.1, terms=3),
        "terms",
    ),
    C(
        "backward_error.modified_hamiltonian",
        lambda: be.modified_hamiltonian(pr.pendulum(), 0.0),
        "h",
    ),
    C(
        "backward_error.energy_errors",
        lambda: be.energy_errors(pr.pendulum(), t64(2, 2), [], 1.0),
        "hs",
    ),
    C(
        "backward_error.energy_errors",
        lambda: be.energy_errors(pr.pendulum(), t64(2, 2), [0.1], -1.0),
        "t_end",
    ),
    C(
        "backward_error.energy_errors",
        lambda: be.energy_errors(pr.pendulum(), t64(2, 3), [0.1], 1.0),
        "u",
    ),
    C(
        "backward_error.energy_errors",
        lambda: be.energy_errors(pr.pendulum(), t64(2, 2), [0.1], 1.0, terms=()),
        "terms",
    ),
    C("backward_error.observed_order", lambda: be.observed_order([0.1], [0.2]), "hs"),
    C(
        "backward_error.observed_order",
        lambda: be.observed_order([0.1, 0.1], [1, 2]),
        "hs",
        note="equal",
    ),
    C("backward_error.observed_order", lambda: be.observed_order([0.1, 0.2], [0, 1]), "errors"),
    # --- the sphere (Sections 2.3, 2.4.3) ---
    C("sphere.tangent_projection", lambda: sph.tangent_projection(t64(3, 3), t64(3, 2)), "z"),
    C(
        "sphere.sphere_constraint",
        lambda: sph.sphere_constraint(torch.ones(3, dtype=torch.long)),
        "z",
    ),
    C("sphere.sphere_step", lambda: sph.sphere_step(t64(3, 3), t64(3, 3), 0.0), "h"),
    C("sphere.sphere_step", lambda: sph.sphere_step(t64(3, 3), t64(3, 3), 0.1, "rk4"), "method"),
    C("sphere.sphere_step", lambda: sph.sphere_step(t64(3, 3), t64(2, 3), 0.1), "z", note="shape"),
    C("sphere.sphere_field", lambda: sph.sphere_field(t64(3, 3), t64(4, 3), t64(3)), "A"),
    C(
        "sphere.sphere_field",
        lambda: sph.sphere_field(t64(3, 3), t64(4, 3), t64(4), activation="nope"),
        "activation",
    ),
    C("sphere.sphere_potential", lambda: sph.sphere_potential(t64(3, 2), t64(4, 3), t64(4)), "z"),
    C(
        "sphere.sphere_flow",
        lambda: sph.sphere_flow(t64(3, 3), t64(4, 3), t64(4), 0.1, -1),
        "steps",
    ),
    C("sphere.SphereODENet", lambda: sph.SphereODENet(1, 2), "dim"),
    C("sphere.SphereODENet", lambda: sph.SphereODENet(3, 0), "depth"),
    C("sphere.SphereODENet", lambda: sph.SphereODENet(3, 2, field="flat"), "field"),
    C("sphere.SphereODENet", lambda: sph.SphereODENet(3, 2, method="rk4"), "method"),
    C("sphere.SphereODENet", lambda: sph.SphereODENet(3, 2, generator=1), "generator"),
    C("sphere.SphereODENet", lambda: sphere_net()(t64(4, 2)), "z", note="dim"),
    C("sphere.SphereODENet", lambda: sphere_net().velocity(5, t64(4, 3)), "k", note="layer"),
]

MODULES = [
    ("growth_bounds", "spdl_ref.ode.growth_bounds"),
    ("problems", "spdl_ref.ode.problems"),
    ("extended", "spdl_ref.ode.extended"),
    ("backward_error", "spdl_ref.ode.backward_error"),
    ("sphere", "spdl_ref.ode.sphere"),
]

EXEMPT = {
    "problems.harmonic_oscillator": "takes no arguments",
    "problems.pendulum": "takes no arguments",
}


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, monkeypatch):
    run_case(case, monkeypatch)


def test_every_public_name_has_a_case():
    check_coverage(CASES, MODULES, EXEMPT)
