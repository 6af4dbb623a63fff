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

import contextlib
import math
import sys
import threading
import types
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch.types import Device

from .. import _validate
from .._optional import optional_dependency
from .groups import FiniteGroup, Representation

with (
    optional_dependency("equivariant", "spdl_ref.equivariant.escnn_bridge"),
    warnings.catch_warnings(),
):
    warnings.simplefilter("ignore")  # py3nj is only needed for SO(3), not for the 2-D groups here
    from escnn import gspaces
    from escnn import nn as enn
    from escnn.nn.modules.basismanager import basisexpansion_singleblock as _singleblock

__all__ = [
    "escnn_float64",
    "escnn_kernel_basis",
    "escnn_precision",
    "escnn_representation",
    "gspace",
]

# The escnn modules that sample kernel bases: they hard-code float32 when they turn escnn's
# float64 NumPy data (change-of-basis matrices, Clebsch-Gordan coefficients, ring radii, grid
# points) into tensors.
_BASIS_MODULES = ("escnn.kernels", "escnn.nn.modules.basismanager")
_LOCK = threading.RLock()  # re-entrant: escnn_kernel_basis may run inside the context


class _Float64Torch(types.ModuleType):
    """``torch``, except that ``torch.tensor(..., dtype=torch.float32)`` makes float64."""

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def tensor(data, *args, dtype=None, **kwargs):
        if dtype is torch.float32:
            dtype = torch.float64
        # torch's stub lists dtype as a positional parameter of torch.tensor; at run time it is
        # keyword-only (tensor(data, *, dtype=None, ...)), so *args cannot also bind it
        return torch.tensor(data, *args, dtype=dtype, **kwargs)  # type: ignore[misc]


@contextlib.contextmanager
def escnn_float64() -> Iterator[None]:
    r"""Within this context escnn builds and samples its kernel bases in float64 (Section 5.1.2).

    escnn computes every basis in float32, whatever the default dtype: its modules turn their
    float64 NumPy data into tensors with an explicit ``dtype=torch.float32``, and sample the
    basis on float32 grid points. A layer cast to float64 afterwards keeps a basis that satisfies
    the kernel constraint only to float32 accuracy (a 90-degree equivariance error of about
    1e-7 instead of 1e-15), and with ``torch.set_default_dtype(torch.float64)`` the construction
    fails ("Float did not match Double"). Here the default dtype is float64 and, in escnn's basis
    modules only, those float32 requests become float64, so the basis is float64 throughout.
    escnn's cache of sampled bases is replaced by an empty one for the duration, so the layers
    built inside share their float64 bases with each other but never with float32 layers.
    """
    # escnn's modules, untyped: each has a module-level name torch, swapped below
    modules: list[Any] = [
        m
        for name, m in list(sys.modules.items())
        if name.startswith(_BASIS_MODULES) and getattr(m, "torch", None) is torch
    ]
    proxy = _Float64Torch("torch")
    with _LOCK:
        old = torch.get_default_dtype()
        cache = _singleblock._stored_filters
        torch.set_default_dtype(torch.float64)
        _singleblock._stored_filters = {}
        for m in modules:
            m.torch = proxy
        try:
            yield
        finally:
            for m in modules:
                m.torch = torch
            _singleblock._stored_filters = cache
            torch.set_default_dtype(old)


@contextlib.contextmanager
def _escnn_float32() -> Iterator[None]:
    """Build escnn layers in float32 (escnn's own precision) whatever the default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


#: escnn's caches of sampled bases, one per (device, dtype) that layers were built for: escnn
#: shares a cached basis module between every layer that needs it, so a basis made for one
#: device or precision must never be handed to a layer built for another.
_CACHES: dict[tuple[str, torch.dtype], dict] = {}


@contextlib.contextmanager
def escnn_precision(dtype: torch.dtype | None = None, device: Device = None) -> Iterator[None]:
    r"""The context in which to build escnn layers for ``dtype`` on ``device`` (Section 5.1.2).

    Inside it escnn works in :func:`escnn_float64` for ``torch.float64`` and in its own float32
    otherwise (whatever the default dtype; ``None`` means the default dtype), makes its tensors
    on ``device`` (``None``: torch's default device), and shares sampled bases only with layers
    built for the same device and dtype. Used by
    :class:`~spdl_ref.equivariant.equivariant_denoiser.EquivariantDenoiser`.
    """
    dtype = _validate.float_dtype(dtype) or torch.get_default_dtype()
    device = _validate.device(device)
    place = contextlib.nullcontext() if device is None else torch.device(device)
    precision = escnn_float64() if dtype == torch.float64 else _escnn_float32()
    with _LOCK, place, precision:
        key = (str(torch.get_default_device()), dtype)
        saved = _singleblock._stored_filters
        _singleblock._stored_filters = _CACHES.setdefault(key, {})
        try:
            yield
        finally:
            _singleblock._stored_filters = saved


def gspace(group: FiniteGroup) -> gspaces.GSpace2D:
    r"""The escnn group space :math:`\mathbb{R}^2 \rtimes H` for :math:`H = C_N` or :math:`D_N`
    (Section 5.1.1)."""
    _validate.instance(group, FiniteGroup, "group")
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
    k, s = group.check_element(g)
    fg = gs.fibergroup
    if group.reflections:
        return fg.element((s, k)) if group.N > 1 else fg.element(s)
    return fg.element(k) if group.N > 1 else fg.identity


def escnn_representation(group: FiniteGroup, kind: str | tuple[Any, ...]) -> Representation:
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
    group: FiniteGroup,
    kind_in: str | tuple[Any, ...],
    kind_out: str | tuple[Any, ...],
    size: int,
    complete: bool = True,
) -> torch.Tensor:
    r"""escnn's basis of equivariant kernels, sampled on the ``size x size`` grid (Section 5.1.2).

    Returns a float64 tensor of shape ``(D, d2, d1, size, size)`` with escnn's basis elements,
    sampled in float64 (:func:`escnn_float64`). ``D`` is escnn's parameter count for one pair of
    fields; its numerical rank is the dimension of the space they span.
    """
    gs = gspace(group)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd positive integer, got {size!r}")
    kw: dict[str, Any] = {}  # options of escnn's R2Conv
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
    _validate.boolean(complete, "complete")
    with escnn_float64():
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
