r"""Argument checks shared by the modules of Section 5 (images, denoiser sizes).

A private module of :mod:`spdl_ref.equivariant`: the denoisers of Figure 3, the denoising
problem (52) and the experiments built on them validate their arguments here, in one place,
so that no module reaches into another's private names.
"""

from __future__ import annotations

import torch

from .. import _validate

__all__ = ["denoiser_sizes", "generator_on", "image_batch", "images"]


def images(u: torch.Tensor, name: str) -> torch.Tensor:
    """``u`` as a non-empty batch of images ``(B, C, H, W)`` (Section 5.2), else a ValueError."""
    _validate.tensor(u, name)
    if u.dim() != 4 or u.numel() == 0:
        raise ValueError(
            f"{name} must have shape (B, C, H, W) with no empty dimension, got {tuple(u.shape)}"
        )
    return u


def image_batch(x: torch.Tensor) -> torch.Tensor:
    """``x`` as the input of a denoiser of Figure 3: one-channel images ``(B, 1, H, W)``."""
    _validate.tensor(x, "x")
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(
            f"x must be a batch of one-channel images (B, 1, H, W), got {tuple(x.shape)}"
        )
    return x


def denoiser_sizes(width: int, depth: int, kernel_size: int) -> tuple[int, int, int]:
    """The width, depth and (odd) kernel size shared by both denoisers of Figure 3."""
    width = _validate.positive_int(width, "width")
    depth = _validate.positive_int(depth, "depth")
    k = _validate.positive_int(kernel_size, "kernel_size")
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {k}")
    return width, depth, k


def generator_on(generator: torch.Generator | None, like: torch.Tensor) -> torch.Generator:
    """``generator`` if it lives on the device of ``like`` (a fresh one seeded 0 when ``None``).

    Random draws for data on a GPU must come from a generator on that GPU; a CPU generator
    would make them on the CPU and move them in every step.
    """
    if generator is None:
        return torch.Generator(device=like.device).manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != like.device.type or (
        like.device.index is not None and generator.device.index not in (None, like.device.index)
    ):
        raise ValueError(
            f"generator must live on the images' device {like.device}, got one on "
            f"{generator.device}: make it with torch.Generator(device=...)"
        )
    return generator
