r"""The denoising problem (52) of Section 5.2: objective, smoothed TV, PSNR and a training loop.

.. math:: \min_{\Psi \in C} \tfrac12\, \mathbf{E}\big[\|\Psi(x) - x^*\|_2^2
          + \lambda \|\nabla(\Psi(x) - x^*)\|_{1,\varepsilon}\big]

with clean images :math:`x^*`, noisy images :math:`x = x^* + \text{noise}`, forward
differences :math:`\nabla` and the smoothed 1-norm of :func:`smoothed_tv`.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import _validate
from ..loop import History, train_loop
from ._checks import generator_on, images

__all__ = [
    "add_noise",
    "denoising_objective",
    "psnr",
    "smoothed_tv",
    "train_denoiser",
]


def smoothed_tv(u: torch.Tensor, eps: float) -> torch.Tensor:
    r"""The smoothed 1-norm of the image gradient, :math:`\|\nabla u\|_{1,\varepsilon}` in (52).

    .. math:: \|\nabla u\|_{1,\varepsilon} = \sum_{p} \Big(\sqrt{|\nabla u(p)|^2 + \varepsilon^2}
              - \varepsilon\Big),

    with forward differences :math:`\nabla u(p) = (u(p + e_1) - u(p), u(p + e_2) - u(p))` (zero
    across the last row and column) and the Euclidean norm over the two directions and the
    channels, so it is isotropic up to the discretisation. Subtracting :math:`\varepsilon` makes
    it vanish for constant images; as :math:`\varepsilon \to 0` it tends to the total variation.
    ``u`` has shape ``(B, C, H, W)``; returns one value per image, shape ``(B,)``.
    """
    images(u, "u")
    eps = _validate.positive_real(eps, "eps")
    dx = torch.zeros_like(u)
    dy = torch.zeros_like(u)
    dx[..., :-1, :] = u[..., 1:, :] - u[..., :-1, :]
    dy[..., :, :-1] = u[..., :, 1:] - u[..., :, :-1]
    sq = (dx.pow(2) + dy.pow(2)).sum(dim=1)
    return (torch.sqrt(sq + eps * eps) - eps).flatten(1).sum(dim=1)


def denoising_objective(
    output: torch.Tensor, target: torch.Tensor, lam: float, eps: float
) -> torch.Tensor:
    r"""The sample mean of :math:`\tfrac12(\|\Psi(x) - x^*\|_2^2 + \lambda\|\nabla(\Psi(x) -
    x^*)\|_{1,\varepsilon})`, eq. (52)."""
    images(output, "output")
    images(target, "target")
    _validate.same_shape(output, target, "output", "target")
    _validate.like(target, output, "target", "output")
    lam = _validate.nonnegative_real(lam, "lam")
    eps = _validate.positive_real(eps, "eps")
    r = output - target
    value = r.pow(2).flatten(1).sum(1)
    if lam > 0:
        value = value + lam * smoothed_tv(r, eps)
    return 0.5 * value.mean()


def psnr(
    estimate: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Peak signal-to-noise ratio per image, :math:`10 \log_{10}(\text{range}^2 / \text{MSE})` in
    dB (Figure 3).

    ``mask`` (0/1, broadcast against the images) restricts the mean squared error to a region,
    e.g. the inscribed disc of rotated images; it must keep at least one pixel of every image.
    Returns shape ``(B,)``, :math:`+\infty` where the estimate equals the target.
    """
    images(estimate, "estimate")
    images(target, "target")
    _validate.same_shape(estimate, target, "estimate", "target")
    _validate.like(target, estimate, "target", "estimate")
    data_range = _validate.positive_real(data_range, "data_range")
    if mask is None:
        m = torch.ones_like(target)
    else:
        _validate.tensor(mask, "mask")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must hold only 0 and 1")
        try:
            m = mask.to(target).expand_as(target)
        except RuntimeError as err:
            raise ValueError(
                f"mask must broadcast against the images {tuple(target.shape)}, got "
                f"{tuple(mask.shape)}"
            ) from err
        if bool((m.flatten(1).sum(1) == 0).any()):
            raise ValueError("mask must keep at least one pixel of every image")
    mse = ((estimate - target).pow(2) * m).flatten(1).sum(1) / m.flatten(1).sum(1)
    return 10 * torch.log10(data_range**2 / mse)


def add_noise(
    clean: torch.Tensor, noise: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Noisy images :math:`x = x^* + \text{noise} \cdot \xi`, :math:`\xi` Gaussian white noise
    (the inputs of problem (52), Section 5.2).

    The draw is made on the device of ``clean`` with ``generator``, which must live there (a
    fresh generator seeded 0 when ``None``), in the dtype of ``clean``; nothing crosses devices.
    """
    images(clean, "clean")
    noise = _validate.nonnegative_real(noise, "noise")
    gen = generator_on(generator, clean)
    return clean + noise * torch.randn(
        clean.shape, generator=gen, device=clean.device, dtype=clean.dtype
    )


def train_denoiser(
    model: nn.Module,
    clean: torch.Tensor,
    clean_val: torch.Tensor,
    *,
    noise: float,
    iterations: int,
    batch_size: int,
    lr: float = 1e-3,
    lam: float = 1e-2,
    eps: float = 1e-2,
    val_every: int = 10,
    patience: int = 3,
    factor: float = 0.5,
    generator: torch.Generator | None = None,
    progress: bool = False,
    fresh_noise: bool = True,
) -> History:
    r"""Minimise (52) with Adam, lowering the step size when the validation error stagnates (Section
    5.2).

    A driver of :func:`spdl_ref.train.train_loop`. Each step draws ``batch_size`` clean images
    :math:`x^*` from ``clean`` and fresh Gaussian white noise of standard deviation ``noise``. The
    validation set ``clean_val`` gets one fixed noise draw; every ``val_every`` steps (and after
    the last) its objective is evaluated and fed to
    :class:`torch.optim.lr_scheduler.ReduceLROnPlateau`, which multiplies the step size by
    ``factor`` :math:`\in (0, 1)` once the validation objective has not improved for
    ``patience`` validations. The model is left in eval mode. With ``fresh_noise=False`` each
    training image instead gets one noise draw, fixed for the whole run: a finite training set of
    (noisy, clean) pairs, as in the sample-complexity study of Section 5.3. Noise and minibatches
    are drawn with ``generator`` (on the device of ``clean``; see :func:`add_noise`), so training
    on a GPU moves nothing between devices.

    Returns
    -------
    spdl_ref.train.History
        ``loss`` (and ``data_fit``): the objective (52) on each minibatch; ``seconds``;
        ``series["validation"]``: pairs (iteration counted from 1, objective (52) on the
        validation set); ``series["lr"]``: the step size after each validation.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    images(clean, "clean")
    images(clean_val, "clean_val")
    noise = _validate.nonnegative_real(noise, "noise")
    iterations = _validate.positive_int(iterations, "iterations")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    if batch_size > clean.shape[0]:
        raise ValueError(
            f"batch_size must be <= the number of images {clean.shape[0]}, got {batch_size}"
        )
    val_every = _validate.positive_int(val_every, "val_every")
    patience = _validate.nonnegative_int(patience, "patience")
    factor = _validate.positive_real(factor, "factor")
    if factor >= 1:
        raise ValueError(
            "factor must be < 1: the step size is multiplied by it when the validation "
            f"objective stagnates, so it must shrink; got {factor}"
        )
    _validate.like(clean_val, clean, "clean_val", "clean")
    gen = generator_on(generator, clean)
    opt = torch.optim.Adam(model.parameters(), lr=_validate.positive_real(lr, "lr"))
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=factor, patience=patience)
    if not isinstance(fresh_noise, bool):
        raise TypeError(f"fresh_noise must be a bool, got {type(fresh_noise).__name__}")
    noisy_val = add_noise(clean_val, noise, gen)
    noisy_train = None if fresh_noise else add_noise(clean, noise, gen)

    def batches(_):
        idx = torch.randperm(clean.shape[0], generator=gen, device=clean.device)[:batch_size]
        target = clean[idx]
        x = add_noise(target, noise, gen) if noisy_train is None else noisy_train[idx]
        return {"noisy": x, "clean": target}

    def objective(batch):
        model.train()
        return denoising_objective(model(batch["noisy"]), batch["clean"], lam, eps)

    def validate(i, history):
        it = i + 1
        if it % val_every == 0 or it == iterations:
            model.eval()
            with torch.no_grad():
                val = float(denoising_objective(model(noisy_val), clean_val, lam, eps))
            sched.step(val)
            history.record(validation=(it, val), lr=opt.param_groups[0]["lr"])

    try:
        return train_loop(
            model,
            objective,
            iterations=iterations,
            optimizer=opt,
            batches=batches,
            callbacks=[validate],
            progress=progress,
            description="denoiser",
        )
    finally:
        model.eval()
