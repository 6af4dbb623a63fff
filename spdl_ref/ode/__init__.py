"""ODE networks and their integrators (Sections 1-2 of the review).

* :mod:`spdl_ref.ode.layered` -- the layered-network protocol every ODE network satisfies, and
  the one function that computes the states of any of them;
* :mod:`spdl_ref.ode.resnet` -- the ResNet (5)-(8) as forward Euler for an ODE, the ResNet with
  learnt steps (38), and the output layer :math:`\\eta` of Section 1.2;
* :mod:`spdl_ref.ode.runge_kutta` -- Runge–Kutta methods from Butcher tableaux, explicit and
  implicit, and the algebraic-stability test (Section 2.2);
* :mod:`spdl_ref.ode.fields` -- the vector fields of Section 2.1: (8), dissipative, (15), the
  gradient flow (16), Hamiltonian models;
* :mod:`spdl_ref.ode.network` -- an ODE network combining any field with any integrator;
* :mod:`spdl_ref.ode.stability` -- Lipschitz and one-sided Lipschitz estimates, Theorem 2.1;
* :mod:`spdl_ref.ode.growth_bounds` -- bounds :math:`e^{T\\nu}`, :math:`e^{TL}` for trained fields,
  and a non-autonomous system whose frozen-time eigenvalues mislead (Section 2.1);
* :mod:`spdl_ref.ode.problems` -- separable Hamiltonian test problems (18)-(19);
* :mod:`spdl_ref.ode.extended` -- the form :math:`\\omega_H` and its matrix :math:`J_H` (2.1.2);
* :mod:`spdl_ref.ode.backward_error` -- the modified Hamiltonian of symplectic Euler (2.2.2);
* :mod:`spdl_ref.ode.sphere` -- ODE networks on the sphere (Sections 2.3, 2.4.3);
* :mod:`spdl_ref.ode.symplectic` -- symplectic Euler (22), Störmer–Verlet, extended phase space
  (20), the symplecticity test :math:`M^T J M = J`;
* :mod:`spdl_ref.ode.discrete_gradient` -- energy-preserving discrete-gradient methods;
* :mod:`spdl_ref.ode.splitting` -- shears, the standard map, volume-preserving shear networks;
* :mod:`spdl_ref.ode.lie_group` and :mod:`spdl_ref.ode.manifolds` -- Section 2.3.
"""

from .backward_error import energy_errors, modified_hamiltonian, observed_order
from .discrete_gradient import (
    CountingFunction,
    avf_gradient,
    canonical_J,
    discrete_gradient_step,
    gonzalez_gradient,
)
from .extended import (
    extended_energy_error,
    extended_euler_map,
    form_pullback_defect,
    omega_H_matrix,
)
from .fields import (
    DissipativeField,
    GradientField,
    HamiltonianField,
    PlainField,
    ReLUField,
    frozen_field,
)
from .growth_bounds import RotatingFrameSystem, euler_growth_bound, field_bounds
from .layered import LayeredNetwork, check_layered, layer_step, network_states
from .lie_group import hat, lie_euler, so3_curve, so3_exp, so3_log, vee
from .manifolds import circle_distance, so3_curve_distance, spd_distance, spd_inner
from .network import ODENet
from .problems import (
    SeparableHamiltonian,
    coupled_anharmonic,
    harmonic_oscillator,
    layer_hamiltonian,
    modulated_pendulum,
    pendulum,
    softplus_ridge_potential,
    tanh_potential_model,
)
from .resnet import ClassifierHead, ResNet, VariableStepResNet, example_control
from .runge_kutta import (
    TABLEAUX,
    ButcherTableau,
    as_tableau,
    butcher_tableau,
    fitted_order,
    is_algebraically_stable,
    observed_orders,
    odeint,
    rk_step,
)
from .sphere import (
    SphereODENet,
    sphere_constraint,
    sphere_field,
    sphere_flow,
    sphere_potential,
    sphere_step,
    tangent_projection,
)
from .splitting import (
    ShearNet,
    jacobian_determinant,
    polygon_area,
    shear_p,
    shear_z,
    square_boundary,
    standard_map,
)
from .stability import (
    contraction_ratios,
    diagonal_nu_bound,
    gradient_flow_field,
    lipschitz_bound,
    one_sided_lipschitz_jacobian,
    one_sided_lipschitz_pairs,
    perturbation_growth,
    stability_constant,
    theorem21_interval,
)
from .symplectic import (
    SYMPLECTIC_METHODS,
    ExtendedPhaseSpaceRun,
    SymplecticStepper,
    extended_phase_space_run,
    extended_symplectic_euler,
    separable_step_map,
    step_jacobian,
    stormer_verlet,
    symplectic_euler,
    symplecticity_defect,
)

__all__ = [
    "SYMPLECTIC_METHODS",
    "TABLEAUX",
    "ButcherTableau",
    "ClassifierHead",
    "CountingFunction",
    "DissipativeField",
    "ExtendedPhaseSpaceRun",
    "GradientField",
    "HamiltonianField",
    "LayeredNetwork",
    "ODENet",
    "PlainField",
    "ReLUField",
    "ResNet",
    "RotatingFrameSystem",
    "SeparableHamiltonian",
    "ShearNet",
    "SphereODENet",
    "SymplecticStepper",
    "VariableStepResNet",
    "as_tableau",
    "avf_gradient",
    "butcher_tableau",
    "canonical_J",
    "check_layered",
    "circle_distance",
    "contraction_ratios",
    "coupled_anharmonic",
    "diagonal_nu_bound",
    "discrete_gradient_step",
    "energy_errors",
    "euler_growth_bound",
    "example_control",
    "extended_energy_error",
    "extended_euler_map",
    "extended_phase_space_run",
    "extended_symplectic_euler",
    "field_bounds",
    "fitted_order",
    "form_pullback_defect",
    "frozen_field",
    "gonzalez_gradient",
    "gradient_flow_field",
    "harmonic_oscillator",
    "hat",
    "is_algebraically_stable",
    "jacobian_determinant",
    "layer_hamiltonian",
    "layer_step",
    "lie_euler",
    "lipschitz_bound",
    "modified_hamiltonian",
    "modulated_pendulum",
    "network_states",
    "observed_order",
    "observed_orders",
    "odeint",
    "omega_H_matrix",
    "one_sided_lipschitz_jacobian",
    "one_sided_lipschitz_pairs",
    "pendulum",
    "perturbation_growth",
    "polygon_area",
    "rk_step",
    "separable_step_map",
    "shear_p",
    "shear_z",
    "so3_curve",
    "so3_curve_distance",
    "so3_exp",
    "so3_log",
    "softplus_ridge_potential",
    "spd_distance",
    "spd_inner",
    "sphere_constraint",
    "sphere_field",
    "sphere_flow",
    "sphere_potential",
    "sphere_step",
    "square_boundary",
    "stability_constant",
    "standard_map",
    "step_jacobian",
    "stormer_verlet",
    "symplectic_euler",
    "symplecticity_defect",
    "tangent_projection",
    "tanh_potential_model",
    "theorem21_interval",
    "vee",
]
