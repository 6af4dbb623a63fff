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
* checks and measurements: :func:`randomise_parameters`, :func:`autograd_log_abs_det`,
  :func:`mixed_invertible_network`, :func:`contractive_residual`, :func:`fixed_point_errors`,
  :func:`observed_contraction_rate`, :func:`largest_lipschitz_bound`, :func:`coupling_step_memory`.

Every layer has ``forward``, ``inverse`` and ``log_abs_det_jacobian`` (one value per sample).
"""

from ._base import InvertibleModule
from .checks import autograd_log_abs_det, mixed_invertible_network, randomise_parameters
from .coupling import AdditiveCoupling, AffineCoupling, partition_mask, subnetwork
from .downsampling import OrthogonalDownsampling, PixelShuffleDown
from .flows import NormalisingFlow, coupling_flow, fit_flow, log_density_grid, residual_flow
from .linear import ActNorm, ChannelLinear, Invertible1x1Conv
from .logdet import logdet_exact, logdet_power_series, logdet_russian_roulette
from .memory import coupling_step_memory, peak_memory
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
    "autograd_log_abs_det",
    "contractive_residual",
    "coupling_flow",
    "coupling_step_memory",
    "fit_flow",
    "fixed_point_errors",
    "frozen_power_iteration",
    "largest_lipschitz_bound",
    "log_density_grid",
    "logdet_exact",
    "logdet_power_series",
    "logdet_russian_roulette",
    "mixed_invertible_network",
    "observed_contraction_rate",
    "partition_mask",
    "peak_memory",
    "randomise_parameters",
    "rational_quadratic_spline",
    "residual_flow",
    "subnetwork",
]
