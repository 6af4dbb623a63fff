r"""Fitting a known equivariant map: the approximation question of Section 5.3.2.

An equivariant architecture is fixed by choices (the group, the field types, the nonlinearity),
and Section 5.3.2 asks which choices give networks rich enough for a task. One way to probe it
is to fit a map whose symmetry is known and compare how well each architecture, at the same
number of parameters, approximates it. :func:`gradient_magnitude` is such a map: the length of
the image gradient, which commutes with every rotation of the plane, and on the pixel grid
(central differences, a symmetric blur) commutes exactly with the rotations by multiples of
90° and the reflections of :math:`D_4`. It is also an even map, :math:`F(-x) = F(x)`, which
matters for the norm nonlinearity of Section 5.1.3 (see the chapter). :func:`fit_map` trains a
network :math:`\Psi` on pairs :math:`(x, F(x))` by least squares with Adam.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as nnf
from torch import nn

from .. import _validate
from ..loop import History, train_loop
from ._checks import generator_on, images

__all__ = ["fit_map", "gradient_magnitude"]


def gradient_magnitude(x: torch.Tensor, eps: float = 1e-2) -> torch.Tensor:
    r"""The smoothed length of the gradient of a blurred image, a rotation-equivariant target
    (Section 5.3.2).

    .. math:: F(x)(p) = \sqrt{|\nabla_h (B x)(p)|^2 + \varepsilon^2} - \varepsilon,

    with :math:`B` the :math:`3 \times 3` binomial blur and :math:`\nabla_h` central
    differences, both with zero padding, applied to every channel of ``x`` ``(B, C, H, W)``.
    Both stencils are symmetric under the square's symmetries, so on square images :math:`F`
    commutes with :func:`~spdl_ref.equivariant.rotate90` and
    :func:`~spdl_ref.equivariant.reflect` up to round-off, and approximately with rotations by
    other angles; and :math:`F(-x) = F(x)`.

    >>> import torch
    >>> ramp = torch.arange(7.0).repeat(7, 1)[None, None]  # x(i, j) = j: slope 1
    >>> round(float(gradient_magnitude(ramp, eps=1e-6)[0, 0, 3, 3]), 4)
    1.0
    """
    images(x, "x")
    eps = _validate.positive_real(eps, "eps")
    b = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    blur = (b[:, None] * b[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    d = torch.tensor(
        [[0.0, 0.0, 0.0], [-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]], device=x.device, dtype=x.dtype
    )
    stencils = torch.stack([d, d.T]).unsqueeze(1).repeat(x.shape[1], 1, 1, 1)
    smooth = nnf.conv2d(x, blur, padding=1, groups=x.shape[1])
    grad = nnf.conv2d(smooth, stencils, padding=1, groups=x.shape[1])
    sq = grad.reshape(x.shape[0], x.shape[1], 2, *x.shape[2:]).pow(2).sum(dim=2)
    return torch.sqrt(sq + eps * eps) - eps


def fit_map(
    model: nn.Module,
    target: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    *,
    iterations: int,
    batch_size: int,
    lr: float = 1e-2,
    generator: torch.Generator | None = None,
) -> History:
    r"""Fit ``model`` to the map ``target`` on ``inputs`` by least squares (Section 5.3.2).

    Minimises the mean of :math:`\|\Psi(x) - F(x)\|^2 / (\text{pixels})` over minibatches of
    ``batch_size`` images drawn from ``inputs`` with ``generator`` (on the device of
    ``inputs``), with Adam at step size ``lr``, through :func:`spdl_ref.loop.train_loop`. The
    targets :math:`F(x)` are computed once. The model is left in eval mode.

    Returns
    -------
    spdl_ref.loop.History
        ``loss``: the objective on each minibatch.
    """
    _validate.module(model, "model")
    _validate.function(target, "target")
    images(inputs, "inputs")
    iterations = _validate.positive_int(iterations, "iterations")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    if batch_size > inputs.shape[0]:
        raise ValueError(
            f"batch_size must be <= the number of inputs {inputs.shape[0]}, got {batch_size}"
        )
    lr = _validate.positive_real(lr, "lr")
    generator = generator_on(generator, inputs)
    with torch.no_grad():
        outputs = target(inputs)
    if not isinstance(outputs, torch.Tensor) or outputs.shape[0] != inputs.shape[0]:
        raise ValueError("target must map the inputs (B, ...) to a tensor with the same B")
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def batches(_):
        n = inputs.shape[0]
        return torch.randperm(n, generator=generator, device=inputs.device)[:batch_size]

    def objective(idx):
        model.train()
        return (model(inputs[idx]) - outputs[idx]).pow(2).mean()

    try:
        return train_loop(model, objective, iterations=iterations, optimizer=opt, batches=batches)
    finally:
        model.eval()
