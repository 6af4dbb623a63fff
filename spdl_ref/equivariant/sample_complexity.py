r"""Sample complexity of the two denoisers, an open problem of Section 5.3.

Section 5.3 asks how much data an equivariant network needs compared with an ordinary one.
:func:`sample_complexity` measures it empirically for the denoising problem (52): it trains
both denoisers of Figure 3 on nested training sets of growing size and records the test
error of each.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import _validate
from ._checks import images
from .actions import rotate
from .denoisers import KINDS, make_denoiser
from .equivariance import disc_mask
from .training import add_noise, denoising_objective, psnr, train_denoiser

__all__ = ["sample_complexity"]


def sample_complexity(
    clean: torch.Tensor,
    clean_val: torch.Tensor,
    clean_test: torch.Tensor,
    n_train: Sequence[int],
    *,
    kinds: Sequence[str] = KINDS,
    width: int = 16,
    depth: int = 2,
    kernel_size: int = 3,
    noise: float = 0.15,
    iterations: int = 200,
    batch_size: int = 8,
    lr: float = 3e-3,
    lam: float = 2e-2,
    eps: float = 1e-2,
    runs: int = 1,
    angle: float = 45.0,
    fresh_noise: bool = False,
    seed: int = 0,
) -> list:
    r"""Test error against the number of training images for each denoiser (Section 5.3).

    For every kind in ``kinds``, every size :math:`n` in ``n_train`` and every run, a fresh denoiser
    :math:`\Psi` (:func:`~spdl_ref.equivariant.make_denoiser`) is trained with
    :func:`~spdl_ref.equivariant.train_denoiser` on the first :math:`n` images of ``clean`` (nested
    sets, no augmentation; by default each training image carries one fixed noise draw,
    ``fresh_noise=False``, so the training set is :math:`n` (noisy, clean) pairs), then evaluated on
    ``clean_test`` with one fixed noise draw per test image: the objective (52), the PSNR, and the
    PSNR on the test images rotated by ``angle`` degrees (over the inscribed disc, fresh noise). Run
    ``r`` of every kind and size is seeded with ``seed + r``.

    Parameters
    ----------
    clean, clean_val, clean_test : torch.Tensor
        Clean training, validation and test images :math:`x^*`, shape ``(B, 1, H, W)``.
    n_train : sequence of int
        Training-set sizes, each between ``batch_size`` and ``len(clean)``.
    kinds : sequence of str
        Subset of ``("ordinary", "equivariant")``.
    width, depth, kernel_size : int
        Passed to :func:`~spdl_ref.equivariant.make_denoiser`.
    noise, iterations, batch_size, lr, lam, eps, fresh_noise
        Passed to :func:`~spdl_ref.equivariant.train_denoiser`.
    runs : int
        Independent trainings per kind and size.
    angle : float
        Rotation of the second test set, in degrees.
    seed : int
        Base seed of initialisation, minibatches and noise.

    Returns
    -------
    list of dict
        One row per (kind, n, run) with keys ``kind``, ``n``, ``run``, ``test_objective``,
        ``test_psnr`` and ``rotated_psnr`` (floats; PSNR in dB, mean over test images).
    """
    for name, u in (("clean", clean), ("clean_val", clean_val), ("clean_test", clean_test)):
        images(u, name)
        if u.shape[1] != 1:
            raise ValueError(f"{name} must have one channel, got shape {tuple(u.shape)}")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    if isinstance(n_train, (int, str)) or len(n_train) == 0:
        raise TypeError("n_train must be a non-empty sequence of ints")
    sizes = [_validate.positive_int(n, "n_train") for n in n_train]
    for n in sizes:
        if not batch_size <= n <= clean.shape[0]:
            raise ValueError(
                f"n_train entries must lie in [batch_size, len(clean)] = "
                f"[{batch_size}, {clean.shape[0]}], got {n}"
            )
    if isinstance(kinds, str) or len(kinds) == 0 or any(k not in KINDS for k in kinds):
        raise ValueError(
            f"kinds must be a non-empty sequence of 'ordinary'/'equivariant', got {kinds!r}"
        )
    runs = _validate.positive_int(runs, "runs")
    angle = _validate.real(angle, "angle")
    seed = _validate.nonnegative_int(seed, "seed")
    noise = _validate.nonnegative_real(noise, "noise")
    for name, u in (("clean", clean), ("clean_val", clean_val)):
        _validate.like(u, clean_test, name, "clean_test")

    g = torch.Generator(device=clean_test.device).manual_seed(seed)
    noisy_test = add_noise(clean_test, noise, g)
    rotated = rotate(clean_test, angle)
    noisy_rot = add_noise(rotated, noise, g)
    mask = disc_mask(clean_test.shape[-1], device=clean_test.device, dtype=clean_test.dtype)
    rows = []
    for kind in kinds:
        for n in sizes:
            for r in range(runs):
                torch.manual_seed(seed + r)
                model = make_denoiser(
                    kind,
                    width=width,
                    depth=depth,
                    kernel_size=kernel_size,
                    device=clean_test.device,
                    dtype=clean_test.dtype,
                )
                train_denoiser(
                    model,
                    clean[:n],
                    clean_val,
                    noise=noise,
                    iterations=iterations,
                    batch_size=batch_size,
                    lr=lr,
                    lam=lam,
                    eps=eps,
                    fresh_noise=fresh_noise,
                    generator=torch.Generator(device=clean.device).manual_seed(seed + r),
                )
                with torch.no_grad():
                    out = model(noisy_test)
                    rows.append(
                        {
                            "kind": kind,
                            "n": n,
                            "run": r,
                            "test_objective": float(denoising_objective(out, clean_test, lam, eps)),
                            "test_psnr": float(psnr(out, clean_test).mean()),
                            "rotated_psnr": float(
                                psnr(model(noisy_rot), rotated, mask=mask).mean()
                            ),
                        }
                    )
    return rows
