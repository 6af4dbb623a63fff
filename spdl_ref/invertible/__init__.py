r"""Invertible networks and normalising flows (Section 4 of the review).

* coupling layers (Section 4.1.1, eqs. (42)-(43)): :class:`AdditiveCoupling`,
  :class:`AffineCoupling`, :class:`SplineCoupling`, masks from :func:`partition_mask`;
* invertible residual layers (Section 4.1.2, eqs. (44)-(47)): :class:`InvertibleResidual`,
  spectral normalisation :class:`SpectralNormLinear`, :class:`SpectralNormConv2d`;
* linear invertible layers (Section 4.1.3): :class:`Invertible1x1Conv`,
  :class:`HouseholderOrthogonal`, :class:`ExpSkewOrthogonal`, :class:`CayleyOrthogonal`,
  :class:`GivensOrthogonal`, :class:`PixelShuffleDown`, :class:`OrthogonalDownsampling`;
* networks and memory-efficient backpropagation (Section 4.2.1): :class:`InvertibleSequential`;
* log-determinants and flows (Section 4.2.3, eqs. (48)-(49)): :func:`logdet_exact`,
  :func:`logdet_power_series`, :func:`logdet_russian_roulette`, :class:`NormalisingFlow`;
* ODE flows (Section 4.2.3, ref. [24], and the ResNet remark of Section 4.1.2): the continuous
  normalising flow :class:`ContinuousFlow` with :class:`TraceAugmentedField` and
  :func:`discretisation_errors`, and :func:`euler_step_inverse` (a ResNet step inverted by
  implicit Euler on the backward ODE);
* checks and measurements: :func:`randomise_parameters`, :func:`example_layers`,
  :func:`autograd_log_abs_det`, :func:`finite_difference_log_abs_det`,
  :func:`mixed_invertible_network`, :func:`contractive_residual`, :func:`fixed_point_errors`,
  :func:`observed_contraction_rate`, :func:`largest_lipschitz_bound`, :func:`coupling_step_memory`;
* the open problems of Section 4.3: :func:`norm_estimates`, :func:`power_method_under_drift`,
  :func:`inverse_amplification`, :func:`jacobian_fill`, :func:`inverse_iterations`.

Every layer has ``forward``, ``inverse`` and ``log_abs_det_jacobian`` (one value per sample).
"""

from ._base import InvertibleModule
from .checks import (
    autograd_log_abs_det,
    example_layers,
    finite_difference_log_abs_det,
    mixed_invertible_network,
    randomise_parameters,
)
from .continuous import (
    ContinuousFlow,
    TraceAugmentedField,
    discretisation_errors,
    euler_step_inverse,
)
from .coupling import AdditiveCoupling, AffineCoupling, partition_mask, subnetwork
from .downsampling import OrthogonalDownsampling, PixelShuffleDown
from .flows import NormalisingFlow, coupling_flow, fit_flow, log_density_grid, residual_flow
from .linear import ActNorm, ChannelLinear, Invertible1x1Conv
from .lipschitz import (
    inverse_amplification,
    inverse_iterations,
    jacobian_fill,
    norm_estimates,
    power_method_under_drift,
)
from .logdet import logdet_exact, logdet_power_series, logdet_russian_roulette
from .memory import coupling_stack, coupling_step, coupling_step_memory, peak_memory
from .orthogonal import CayleyOrthogonal, ExpSkewOrthogonal, GivensOrthogonal, HouseholderOrthogonal
from .residual import (
    InversionError,
    InvertibleResidual,
    LipSwish,
    contractive_residual,
    fixed_point_errors,
    frozen_power_iteration,
    largest_lipschitz_bound,
    observed_contraction_rate,
)
from .sequential import InvertibleSequential
from .spectral import SpectralNormConv2d, SpectralNormLinear
from .spline import SplineCoupling, rational_quadratic_spline

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "CayleyOrthogonal",
    "ChannelLinear",
    "ContinuousFlow",
    "ExpSkewOrthogonal",
    "GivensOrthogonal",
    "HouseholderOrthogonal",
    "InversionError",
    "Invertible1x1Conv",
    "InvertibleModule",
    "InvertibleResidual",
    "InvertibleSequential",
    "LipSwish",
    "NormalisingFlow",
    "OrthogonalDownsampling",
    "PixelShuffleDown",
    "SpectralNormConv2d",
    "SpectralNormLinear",
    "SplineCoupling",
    "TraceAugmentedField",
    "autograd_log_abs_det",
    "contractive_residual",
    "coupling_flow",
    "coupling_stack",
    "coupling_step",
    "coupling_step_memory",
    "discretisation_errors",
    "euler_step_inverse",
    "example_layers",
    "finite_difference_log_abs_det",
    "fit_flow",
    "fixed_point_errors",
    "frozen_power_iteration",
    "inverse_amplification",
    "inverse_iterations",
    "jacobian_fill",
    "largest_lipschitz_bound",
    "log_density_grid",
    "logdet_exact",
    "logdet_power_series",
    "logdet_russian_roulette",
    "mixed_invertible_network",
    "norm_estimates",
    "observed_contraction_rate",
    "partition_mask",
    "peak_memory",
    "power_method_under_drift",
    "randomise_parameters",
    "rational_quadratic_spline",
    "residual_flow",
    "subnetwork",
]
