r"""The same groups and kernel bases in escnn, for comparison with our solver (Section 5.1.2).

escnn (the library of Cesa, Lang and Weiler, which generalises the steerable CNNs of the
review's reference [118]) solves the kernel constraint analytically, with kernels sampled
from rings of radial Gaussians times angular harmonics. :func:`escnn_kernel_basis` builds an
``escnn.nn.R2Conv`` between single fields of the given types and expands each basis element
into a sampled ``n x n`` kernel, in the same layout as
:func:`spdl_ref.equivariant.kernel_basis`. With ``complete=True`` it places a ring at every
radius of the grid inside the inscribed disc and raises the frequency cut-off, so that the
sampled basis spans the whole space of equivariant grid kernels; escnn's default
(``complete=False``) is band-limited and spans a subspace.

This module imports escnn (the ``equivariant`` extra; without it the import raises an
:class:`ImportError` that names it); ``import spdl_ref`` and ``import spdl_ref.equivariant`` do not.
"""

from __future__ import annotations

import math
import warnings

import torch

from .._optional import optional_dependency
from .groups import FiniteGroup, Representation

with (
    optional_dependency("equivariant", "spdl_ref.equivariant.escnn_bridge"),
    warnings.catch_warnings(),
):
    warnings.simplefilter("ignore")  # py3nj is only needed for SO(3), not for the 2-D groups here
    from escnn import gspaces
    from escnn import nn as enn

__all__ = ["escnn_kernel_basis", "escnn_representation", "gspace"]


def gspace(group: FiniteGroup):
    r"""The escnn group space :math:`\mathbb{R}^2 \rtimes H` for :math:`H = C_N` or :math:`D_N`
    (Section 5.1.1)."""
    if not isinstance(group, FiniteGroup):
        raise TypeError(f"group must be a FiniteGroup, got {type(group).__name__}")
    if group.reflections:
        return gspaces.flipRot2dOnR2(group.N) if group.N > 1 else gspaces.flip2dOnR2()
    return gspaces.rot2dOnR2(group.N) if group.N > 1 else gspaces.trivialOnR2()


def _escnn_rep(gs, group, kind):
    if kind == "trivial":
        return gs.trivial_repr
    if kind == "regular":
        return gs.regular_repr
    group.representation(kind)  # validates the name
    return gs.irrep(*kind[1:]) if group.N > 1 or not group.reflections else gs.irrep(kind[1])


def _escnn_element(gs, group, g):
    k, s = group._check(g)
    fg = gs.fibergroup
    if group.reflections:
        return fg.element((s, k)) if group.N > 1 else fg.element(s)
    return fg.element(k) if group.N > 1 else fg.identity


def escnn_representation(group: FiniteGroup, kind) -> Representation:
    """escnn's matrices of the representation ``kind`` (as in :meth:`FiniteGroup.representation`),
    Section 5.1.2."""
    gs = gspace(group)
    rep = _escnn_rep(gs, group, kind)
    mats = torch.stack(
        [
            torch.as_tensor(rep(_escnn_element(gs, group, g)), dtype=torch.float64)
            for g in group.elements
        ]
    )
    return Representation(group, mats, kind)


def escnn_kernel_basis(
    group: FiniteGroup, kind_in, kind_out, size: int, complete: bool = True
) -> torch.Tensor:
    r"""escnn's basis of equivariant kernels, sampled on the ``size x size`` grid (Section 5.1.2).

    Returns a float64 tensor of shape ``(D, d2, d1, size, size)`` with escnn's basis elements
    (computed by escnn in float32). ``D`` is escnn's parameter count for one pair of fields; its
    numerical rank is the dimension of the space they span.
    """
    gs = gspace(group)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd positive integer, got {size!r}")
    kw = {}
    if complete:
        c = (size - 1) / 2
        radii = sorted(
            {
                round(math.hypot(i - c, j - c), 9)
                for i in range(size)
                for j in range(size)
                if math.hypot(i - c, j - c) <= c + 1e-9
            }
        )
        kw = dict(rings=radii, sigma=0.6, frequencies_cutoff=4.0, maximum_offset=4)
    conv = enn.R2Conv(
        enn.FieldType(gs, [_escnn_rep(gs, group, kind_in)]),
        enn.FieldType(gs, [_escnn_rep(gs, group, kind_out)]),
        kernel_size=size,
        bias=False,
        **kw,
    )
    D = conv.basisexpansion.dimension()
    kernels = []
    with torch.no_grad():
        for i in range(D):
            conv.weights.zero_()
            conv.weights[i] = 1.0
            kernels.append(conv.expand_parameters()[0].to(torch.float64))
    return torch.stack(kernels)
