r"""Structure-exploiting optimisation, Section 6 of the review.

* :mod:`~spdl_ref.optim.adam` -- Adam, eq. (53), as printed and as published;
* :mod:`~spdl_ref.optim.conformal` -- conformal Hamiltonian optimisers, eqs. (54)-(57);
* :mod:`~spdl_ref.optim.test_functions` -- the camelback function of Figure 4 and the loop that
  records an optimiser's path on it;
* :mod:`~spdl_ref.optim.riemannian` -- Riemannian SGD on the Stiefel manifold, Section 6.2.1;
* :mod:`~spdl_ref.optim.student` -- the Stiefel-constrained teacher--student experiment of
  Section 6.2.1;
* :mod:`~spdl_ref.optim.stiefel_drift` -- the constraint error of a long float32 run on
  :math:`V_{n,p}`, Section 6.2.1;
* :mod:`~spdl_ref.optim.lie_resnet` -- a ResNet whose weights evolve on :math:`SO(n)` along the
  depth, eqs. (58)-(59);
* :mod:`~spdl_ref.optim.natural_gradient` -- natural gradient and Gauss--Newton, eq. (60);
* :mod:`~spdl_ref.optim.mean_field` -- mean-field two-layer ReLU networks, eqs. (61)-(62).
"""

from ._checks import NonFiniteGradientError
from .adam import Adam
from .conformal import (
    ConformalHamiltonian,
    conformal_step,
    conformal_step_map,
    conformal_symplecticity_defect,
    heavy_ball_parameters,
    kinetic_energy,
    kinetic_gradient,
    relativistic_parameters,
)
from .lie_resnet import LieGroupResNet, fit_orthogonal_resnet
from .mean_field import MeanFieldReLU, nested_deviation, particle_distance, train_mean_field
from .natural_gradient import (
    fisher_squared_loss,
    gauss_newton_step,
    jacobian,
    natural_gradient_step,
    squared_error,
)
from .riemannian import StiefelSGD, cayley, expm, project_stiefel, random_stiefel, stiefel_error
from .stiefel_drift import stiefel_drift
from .student import stiefel_student
from .test_functions import (
    camelback,
    camelback_gradient,
    camelback_stationary_points,
    nearest_stationary_point,
    optimise_path,
)

__all__ = [
    "Adam",
    "ConformalHamiltonian",
    "LieGroupResNet",
    "MeanFieldReLU",
    "NonFiniteGradientError",
    "StiefelSGD",
    "camelback",
    "camelback_gradient",
    "camelback_stationary_points",
    "cayley",
    "conformal_step",
    "conformal_step_map",
    "conformal_symplecticity_defect",
    "expm",
    "fisher_squared_loss",
    "fit_orthogonal_resnet",
    "gauss_newton_step",
    "heavy_ball_parameters",
    "jacobian",
    "kinetic_energy",
    "kinetic_gradient",
    "natural_gradient_step",
    "nearest_stationary_point",
    "nested_deviation",
    "optimise_path",
    "particle_distance",
    "project_stiefel",
    "random_stiefel",
    "relativistic_parameters",
    "squared_error",
    "stiefel_drift",
    "stiefel_error",
    "stiefel_student",
    "train_mean_field",
]
