"""Deep learning as optimal control (Section 3 of the review).

Every algorithm here works on any network of the layered-network protocol
:class:`spdl_ref.ode.LayeredNetwork` (the ResNet (6), the ResNet with learnt steps (38), an
:class:`~spdl_ref.ode.ODENet` with any field and integrator) and refuses anything else with a
:class:`TypeError` that names what is missing.

* :mod:`spdl_ref.control.adjoint` -- the discrete adjoint (28), i.e. backpropagation written out
  (Theorem 3.2), for explicit Runge–Kutta layers the adjoint Runge–Kutta method;
* :mod:`spdl_ref.control.continuous_adjoint` -- the adjoint ODE (26) and gradient integral (27)
  of Theorem 3.1, solved with Runge–Kutta methods (optimise-then-discretise);
* :mod:`spdl_ref.control.msa` -- the method of successive approximations (31)-(33) and the
  extended MSA of Li, Chen, Tai & E;
* :mod:`spdl_ref.control.problems` -- the reduced (23) and full-space (24) problems, SGD (25),
  the squared data fit;
* :mod:`spdl_ref.control.regularisers` -- 1-norm, squared 2-norm, discrete :math:`H^1` (37)/(40),
  the time-step indicator (39) and the proximal maps (Section 3.2);
* :mod:`spdl_ref.control.time_steps` -- proximal-gradient training, e.g. of the ResNet with learnt
  steps (38), :class:`spdl_ref.ode.VariableStepResNet`, which is also importable from here;
* :mod:`spdl_ref.control.deep_limits` -- the problems (40) for growing depth (Theorem 3.3);
* :mod:`spdl_ref.control.continuous_problem` -- the continuous problem (41) on piecewise-linear
  controls, evaluated by a fine ODE solve, and the :math:`L^2` distance of controls;
* :mod:`spdl_ref.control.gradients` -- gradients as dictionaries by parameter name: autograd's,
  their norm and relative differences, for comparing the adjoints.
"""

from ..ode.resnet import VariableStepResNet
from .adjoint import (
    adjoint_step,
    backward_sweep,
    costates,
    discrete_adjoint,
    discrete_costates,
    terminal_costate,
)
from .continuous_adjoint import continuous_adjoint, ode_flow
from .continuous_problem import PiecewiseLinearControl, continuous_objective, l2_distance
from .deep_limits import deep_limit_objective, deep_limit_sequence, minimise, prolong
from .gradients import autograd_gradient, gradient_norm, relative_error
from .msa import (
    extended_hamiltonian,
    hamiltonian,
    hamiltonian_stationarity,
    maximise_hamiltonian,
    msa,
)
from .problems import (
    SquaredFit,
    full_space_objective,
    minibatches,
    reduced_objective,
    sgd,
    squared_fit,
)
from .regularisers import (
    h1_discrete,
    l1_norm,
    l1_prox,
    project_simplex,
    simplex_prox,
    soft_threshold,
    squared_l2_norm,
    squared_l2_prox,
    time_step_indicator,
    tv_denoise,
    tv_norm,
    tv_prox,
)
from .time_steps import proximal_gradient

__all__ = [
    "PiecewiseLinearControl",
    "SquaredFit",
    "VariableStepResNet",
    "adjoint_step",
    "autograd_gradient",
    "backward_sweep",
    "continuous_adjoint",
    "continuous_objective",
    "costates",
    "deep_limit_objective",
    "deep_limit_sequence",
    "discrete_adjoint",
    "discrete_costates",
    "extended_hamiltonian",
    "full_space_objective",
    "gradient_norm",
    "h1_discrete",
    "hamiltonian",
    "hamiltonian_stationarity",
    "l1_norm",
    "l1_prox",
    "l2_distance",
    "maximise_hamiltonian",
    "minibatches",
    "minimise",
    "msa",
    "ode_flow",
    "project_simplex",
    "prolong",
    "proximal_gradient",
    "reduced_objective",
    "relative_error",
    "sgd",
    "simplex_prox",
    "soft_threshold",
    "squared_fit",
    "squared_l2_norm",
    "squared_l2_prox",
    "terminal_costate",
    "time_step_indicator",
    "tv_denoise",
    "tv_norm",
    "tv_prox",
]
