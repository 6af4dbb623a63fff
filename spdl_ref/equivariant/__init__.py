r"""Equivariant networks (Section 5 of the review).

* :mod:`~spdl_ref.equivariant.groups` -- the point groups :math:`C_N`, :math:`D_N` that map the
  pixel grid to itself, and their trivial, regular and irreducible representations;
* :mod:`~spdl_ref.equivariant.actions` -- group actions on images and fields (eq. (50));
* :mod:`~spdl_ref.equivariant.equivariance` -- the equivariance error of any map;
* :mod:`~spdl_ref.equivariant.kernels` -- the kernel constraint of Section 5.1.2 solved by SVD,
  and a group convolution built on the resulting basis;
* :mod:`~spdl_ref.equivariant.nonlinearities` -- the norm nonlinearity of Section 5.1.3;
* :mod:`~spdl_ref.equivariant.denoisers`, :mod:`~spdl_ref.equivariant.training` -- the two
  denoisers of Figure 3 and the denoising problem (52);
* :mod:`~spdl_ref.equivariant.sample_complexity` -- test error against the number of training
  images (Section 5.3.1);
* :mod:`~spdl_ref.equivariant.approximation` -- fitting a known equivariant map (Section 5.3.2).

The experiments that the chapter and ``python -m spdl_ref.reproduce`` run on these pieces
(Figure 3, the sample-complexity sweep, the approximation study) live in
:mod:`spdl_ref.experiments`.

Importing this package does not import escnn: only
:mod:`~spdl_ref.equivariant.escnn_bridge`, :mod:`~spdl_ref.equivariant.equivariant_denoiser`
and ``make_denoiser("equivariant")`` do.
"""

from .actions import act_on_field, act_on_image, reflect, rotate, rotate90, translate
from .approximation import fit_map, gradient_magnitude
from .denoisers import OrdinaryDenoiser, make_denoiser, parameter_count
from .equivariance import (
    commutation_error,
    disc_mask,
    equivariance_error,
    group_commutation_error,
)
from .groups import FiniteGroup, Representation, direct_sum
from .kernels import (
    SteerableConv2d,
    basis_dimension,
    constraint_matrix,
    invariant_vectors,
    kernel_basis,
    kernel_constraint_residual,
)
from .nonlinearities import NormReLU, norm_nonlinearity
from .sample_complexity import sample_complexity
from .training import add_noise, denoising_objective, psnr, smoothed_tv, train_denoiser

__all__ = [
    "FiniteGroup",
    "NormReLU",
    "OrdinaryDenoiser",
    "Representation",
    "SteerableConv2d",
    "act_on_field",
    "act_on_image",
    "add_noise",
    "basis_dimension",
    "commutation_error",
    "constraint_matrix",
    "denoising_objective",
    "direct_sum",
    "disc_mask",
    "equivariance_error",
    "fit_map",
    "gradient_magnitude",
    "group_commutation_error",
    "invariant_vectors",
    "kernel_basis",
    "kernel_constraint_residual",
    "make_denoiser",
    "norm_nonlinearity",
    "parameter_count",
    "psnr",
    "reflect",
    "rotate",
    "rotate90",
    "sample_complexity",
    "smoothed_tv",
    "train_denoiser",
    "translate",
]
