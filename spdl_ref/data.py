"""Synthetic data sets, generated on the fly and deterministic for a seed.

Nothing is downloaded: every set is drawn on the CPU from a :class:`torch.Generator` seeded by
the caller, so the same ``(n, seed)`` gives the same tensors on every machine and every device;
the finished set is then placed on ``device``. Each two-class set returns
``(x, y)`` with ``x`` of shape ``(n, d)`` and integer labels ``y`` in ``{0, 1}`` of shape ``(n,)``;
class 0 has ``n // 2`` points and class 1 the rest. These are the toy problems of Figure 1
(Section 1.2) and of the later chapters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.types import Device

from . import _validate

__all__ = [
    "checkerboard",
    "helices",
    "labels_to_signs",
    "random_rectangles",
    "rings",
    "spirals",
    "two_moons",
]


def _setup(n, noise, seed, dtype, device):
    n = _validate.positive_int(n, "n")
    noise = _validate.nonnegative_real(noise, "noise")
    seed = _validate.nonnegative_int(seed, "seed")
    dtype = _validate.float_dtype(dtype) or torch.get_default_dtype()
    _validate.device(device)
    gen = torch.Generator().manual_seed(seed)
    return n, noise, gen, dtype


def _finish(x, y, noise, gen, dtype, device):
    x = x + noise * torch.randn(x.shape, generator=gen, dtype=torch.float64, device="cpu")
    return x.to(device=device, dtype=dtype), y.to(device=device)


def _labels(n):
    n0 = n // 2
    return torch.cat(
        [
            torch.zeros(n0, dtype=torch.long, device="cpu"),
            torch.ones(n - n0, dtype=torch.long, device="cpu"),
        ]
    )


def rings(
    n: int,
    noise: float = 0.05,
    radii: Sequence[float] = (0.5, 1.0),
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: Device = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two concentric circles in 2-D: class 0 on the inner, class 1 on the outer.

    Training data :math:`(x_n, y_n)` for the learning problem (4) (as in Figure 1).

    ``radii`` are the two radii (positive, inner < outer); ``noise`` is the standard deviation
    of Gaussian noise added to each coordinate.
    """
    n, noise, gen, dtype = _setup(n, noise, seed, dtype, device)
    if not isinstance(radii, (tuple, list)) or len(radii) != 2:
        raise ValueError(f"radii must be a pair (inner, outer), got {radii!r}")
    r0, r1 = (_validate.positive_real(r, "radii") for r in radii)
    if not r0 < r1:
        raise ValueError(f"radii must be increasing (inner < outer), got {tuple(radii)}")
    y = _labels(n)
    angle = 2 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64, device="cpu")
    radius = torch.where(y == 0, r0, r1).to(torch.float64)
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return _finish(x, y, noise, gen, dtype, device)


def spirals(
    n: int,
    noise: float = 0.03,
    turns: float = 1.0,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: Device = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals in 2-D, the second the first rotated by a half turn.

    Training data :math:`(x_n, y_n)` for the learning problem (4).

    Each arm winds ``turns`` times around the origin with radius growing from 0.1 to 1.
    """
    n, noise, gen, dtype = _setup(n, noise, seed, dtype, device)
    turns = _validate.positive_real(turns, "turns")
    y = _labels(n)
    s = torch.rand(n, generator=gen, dtype=torch.float64, device="cpu")
    radius = 0.1 + 0.9 * s
    angle = 2 * math.pi * turns * s + math.pi * y.to(torch.float64)
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    return _finish(x, y, noise, gen, dtype, device)


def checkerboard(
    n: int,
    squares: int = 2,
    noise: float = 0.0,
    margin: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: Device = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A checkerboard of ``squares`` x ``squares`` cells on ``[-1, 1]^2``.

    Training data :math:`(x_n, y_n)` for the learning problem (4).

    A point's class is the parity of its cell, so ``squares=2`` is the XOR problem. Points are
    uniform inside the cells, kept ``margin`` (a fraction of a cell's width, in ``[0, 0.5)``)
    away from the cell edges so that the two classes are separated by a gap.
    """
    n, noise, gen, dtype = _setup(n, noise, seed, dtype, device)
    squares = _validate.positive_int(squares, "squares")
    if squares < 2:
        raise ValueError(f"squares must be >= 2 to give two classes, got {squares}")
    margin = _validate.nonnegative_real(margin, "margin")
    if margin >= 0.5:
        raise ValueError(f"margin must be < 0.5 (a fraction of a cell), got {margin}")
    y = _labels(n)
    # Draw a cell of the right parity for each point, then a position inside it.
    cells = torch.randint(0, squares, (n, 2), generator=gen, device="cpu")
    wrong = (cells.sum(dim=1) % 2) != y
    cells[wrong, 0] = (cells[wrong, 0] + 1) % squares
    inside = margin + (1 - 2 * margin) * torch.rand(
        (n, 2), generator=gen, dtype=torch.float64, device="cpu"
    )
    x = -1 + 2 * (cells.to(torch.float64) + inside) / squares
    return _finish(x, y, noise, gen, dtype, device)


def helices(
    n: int,
    noise: float = 0.03,
    turns: float = 1.0,
    radius: float = 0.8,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: Device = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved helices in 3-D around the vertical axis, half a turn apart.

    Training data :math:`(x_n, y_n)` for the learning problem (4).

    Height runs over ``[-1, 1]`` while each helix winds ``turns`` times at ``radius``.
    """
    n, noise, gen, dtype = _setup(n, noise, seed, dtype, device)
    turns = _validate.positive_real(turns, "turns")
    radius = _validate.positive_real(radius, "radius")
    y = _labels(n)
    s = torch.rand(n, generator=gen, dtype=torch.float64, device="cpu")
    angle = 2 * math.pi * turns * s + math.pi * y.to(torch.float64)
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle), 2 * s - 1], dim=1)
    return _finish(x, y, noise, gen, dtype, device)


def two_moons(
    n: int,
    noise: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: Device = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-moons set: two interleaving half circles in 2-D (class 0 upper, class 1 lower).

    Data for the learning problem (4) and the flows of Section 4.2.3 (Figure 2)."""
    n, noise, gen, dtype = _setup(n, noise, seed, dtype, device)
    y = _labels(n)
    angle = math.pi * torch.rand(n, generator=gen, dtype=torch.float64, device="cpu")
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], dim=1)
    x = torch.where((y == 0)[:, None], upper, lower)
    return _finish(x, y, noise, gen, dtype, device)


def labels_to_signs(y: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Map integer labels ``{0, 1}`` to targets ``{-1, +1}`` of shape ``(n, 1)``.

    Used with the squared data fit :math:`L_n(z) = \\tfrac12 \\|z - y_n\\|^2` of Figure 1.
    """
    _validate.instance(y, torch.Tensor, "y")
    if y.dim() != 1:
        raise ValueError(f"y must be one-dimensional, got shape {tuple(y.shape)}")
    if not bool(((y == 0) | (y == 1)).all()):
        raise ValueError("y must contain only the labels 0 and 1")
    dtype = _validate.float_dtype(dtype) or torch.get_default_dtype()
    return (2 * y.to(dtype) - 1)[:, None]


def random_rectangles(
    n: int,
    size: int = 60,
    seed: int = 0,
    max_rectangles: int = 4,
    dtype: torch.dtype | None = None,
    device: Device = None,
) -> torch.Tensor:
    r"""Clean images of random axis-aligned rectangles, the data of Figure 3 (Section 5.2).

    Each image :math:`x^*` of shape ``(1, size, size)`` starts black (0) and receives between 1
    and ``max_rectangles`` rectangles, painted one over the other, each with sides parallel to
    the grid, side lengths between ``size // 8`` and ``size // 2`` pixels and an intensity drawn
    uniformly from :math:`[0.2, 1]`. The noisy inputs :math:`x` of problem (52) are these images
    plus Gaussian white noise (added by the caller).

    Returns a tensor of shape ``(n, 1, size, size)`` with values in :math:`[0, 1]`.
    """
    n, _, gen, dtype = _setup(n, 0.0, seed, dtype, device)
    size = _validate.positive_int(size, "size")
    if size < 8:
        raise ValueError(f"size must be >= 8 pixels, got {size}")
    max_rectangles = _validate.positive_int(max_rectangles, "max_rectangles")
    lo, hi = max(size // 8, 1), size // 2
    images = torch.zeros((n, 1, size, size), dtype=torch.float64, device="cpu")
    counts = torch.randint(1, max_rectangles + 1, (n,), generator=gen, device="cpu")
    for i in range(n):
        for _ in range(int(counts[i])):
            h, w = (int(v) for v in torch.randint(lo, hi + 1, (2,), generator=gen, device="cpu"))
            top = int(torch.randint(0, size - h + 1, (1,), generator=gen, device="cpu"))
            left = int(torch.randint(0, size - w + 1, (1,), generator=gen, device="cpu"))
            value = 0.2 + 0.8 * float(
                torch.rand((), generator=gen, dtype=torch.float64, device="cpu")
            )
            images[i, 0, top : top + h, left : left + w] = value
    return images.to(device=device, dtype=dtype)
