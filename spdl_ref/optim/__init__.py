r"""Structure-exploiting optimisation, Section 6 of the review.

* :mod:`~spdl_ref.optim.adam` -- Adam, eq. (53), as printed and as published;
* :mod:`~spdl_ref.optim.conformal` -- conformal Hamiltonian optimisers, eqs. (54)-(57);
* :mod:`~spdl_ref.optim.test_functions` -- the camelback function of Figure 4 and the loop that
  records an optimiser's path on it;
* :mod:`~spdl_ref.optim.riemannian` -- Riemannian SGD on the Stiefel manifold, Section 6.2.1;
* :mod:`~spdl_ref.optim.student` -- the Stiefel-constrained teacher--student experiment of
  Section 6.2.1;
* :mod:`~spdl_ref.optim.natural_gradient` -- natural gradient and Gauss--Newton, eq. (60);
* :mod:`~spdl_ref.optim.mean_field` -- mean-field two-layer ReLU networks, eqs. (61)-(62).
"""

from ._checks import NonFiniteGradientError
from .adam import Adam
from .conformal import (
    ConformalHamiltonian,
    conformal_step,
    heavy_ball_parameters,
    kinetic_energy,
    kinetic_gradient,
    relativistic_parameters,
)
from .mean_field import MeanFieldReLU, particle_distance, train_mean_field
from .natural_gradient import (
    fisher_squared_loss,
    gauss_newton_step,
    jacobian,
    natural_gradient_step,
    squared_error,
)
from .riemannian import StiefelSGD, cayley, expm, project_stiefel, random_stiefel, stiefel_error
from .student import stiefel_student
from .test_functions import (
    camelback,
    camelback_stationary_points,
    nearest_stationary_point,
    optimise_path,
)

__all__ = [
    "Adam",
    "ConformalHamiltonian",
    "MeanFieldReLU",
    "NonFiniteGradientError",
    "StiefelSGD",
    "camelback",
    "camelback_stationary_points",
    "cayley",
    "conformal_step",
    "expm",
    "fisher_squared_loss",
    "gauss_newton_step",
    "heavy_ball_parameters",
    "jacobian",
    "kinetic_energy",
    "kinetic_gradient",
    "natural_gradient_step",
    "nearest_stationary_point",
    "optimise_path",
    "particle_distance",
    "project_stiefel",
    "random_stiefel",
    "relativistic_parameters",
    "squared_error",
    "stiefel_error",
    "stiefel_student",
    "train_mean_field",
]
