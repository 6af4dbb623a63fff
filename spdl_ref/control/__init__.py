"""Deep learning as optimal control (Section 3 of the review).

* :mod:`spdl_ref.control.adjoint` -- the discrete adjoint (28) of the ResNet, i.e.
  backpropagation written out (Theorem 3.2);
* :mod:`spdl_ref.control.continuous_adjoint` -- the adjoint ODE (26) and gradient integral (27)
  of Theorem 3.1, solved with Runge–Kutta methods (optimise-then-discretise);
* :mod:`spdl_ref.control.msa` -- the method of successive approximations (31)-(33) and the
  extended MSA of Li, Chen, Tai & E;
* :mod:`spdl_ref.control.problems` -- the reduced (23) and full-space (24) problems, SGD (25);
* :mod:`spdl_ref.control.regularisers` -- 1-norm, squared 2-norm, discrete :math:`H^1` (37)/(40),
  the time-step indicator (39) and the proximal maps (Section 3.2);
* :mod:`spdl_ref.control.time_steps` -- the ResNet with learnt steps (38), proximal gradient;
* :mod:`spdl_ref.control.deep_limits` -- the problems (40) for growing depth (Theorem 3.3).
"""

from .adjoint import discrete_adjoint
from .continuous_adjoint import continuous_adjoint, ode_flow
from .deep_limits import deep_limit_objective, deep_limit_sequence, l2_distance, minimise, prolong
from .msa import costates, extended_hamiltonian, hamiltonian, hamiltonian_stationarity, msa
from .problems import full_space_objective, reduced_objective, sgd
from .regularisers import (
    h1_discrete,
    l1_norm,
    project_simplex,
    soft_threshold,
    squared_l2_norm,
    time_step_indicator,
)
from .time_steps import VariableStepResNet, proximal_gradient

__all__ = [
    "VariableStepResNet",
    "continuous_adjoint",
    "costates",
    "deep_limit_objective",
    "deep_limit_sequence",
    "discrete_adjoint",
    "extended_hamiltonian",
    "full_space_objective",
    "h1_discrete",
    "hamiltonian",
    "hamiltonian_stationarity",
    "l1_norm",
    "l2_distance",
    "minimise",
    "msa",
    "ode_flow",
    "project_simplex",
    "prolong",
    "proximal_gradient",
    "reduced_objective",
    "sgd",
    "soft_threshold",
    "squared_l2_norm",
    "time_step_indicator",
]
