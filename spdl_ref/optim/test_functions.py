r"""Test functions for optimisers: the camelback function of Figure 4 (Section 6.1).

The function of Figure 4 is the three-hump camel function

.. math::

    V(x, y) = 2x^2 - 1.05x^4 + \tfrac16 x^6 + xy + y^2 ,

with its global minimum :math:`V = 0` at :math:`(0, 0)`, two local minima at
:math:`\pm(1.7476, -0.8738)` and two saddles at :math:`\pm(1.0705, -0.5353)`. The review starts the
optimisers of Figure 4 at :math:`(-0.5, 0.8)`.
"""

from __future__ import annotations

import math

import torch

from .. import _validate

__all__ = ["camelback", "camelback_stationary_points", "nearest_stationary_point"]

#: The starting point of Figure 4.
CAMELBACK_START = (-0.5, 0.8)


def camelback(xy: torch.Tensor) -> torch.Tensor:
    r"""The camelback (three-hump camel) function :math:`V(x, y)` of Figure 4.

    Parameters
    ----------
    xy : torch.Tensor
        Points of shape ``(..., 2)``, last axis :math:`(x, y)`; any floating dtype and device.

    Returns
    -------
    torch.Tensor
        :math:`V(x, y) = 2x^2 - 1.05x^4 + x^6/6 + xy + y^2` of shape ``(...)``.
    """
    if not isinstance(xy, torch.Tensor):
        raise TypeError(f"xy must be a torch.Tensor, got {type(xy).__name__}")
    if not xy.is_floating_point():
        raise TypeError(f"xy must have a floating-point dtype, got {xy.dtype}")
    _validate.last_dim(xy, 2, "xy")
    x, y = xy[..., 0], xy[..., 1]
    x2 = x * x
    return 2 * x2 - 1.05 * x2 * x2 + x2 * x2 * x2 / 6 + x * y + y * y


def camelback_stationary_points(*, device=None, dtype=None) -> dict[str, torch.Tensor]:
    r"""The five stationary points of the camelback function of Figure 4, by name.

    Setting :math:`\partial_y V = x + 2y = 0` gives :math:`y = -x/2`; then
    :math:`\partial_x V = x(3.5 - 4.2x^2 + x^4) = 0`, so :math:`x = 0` or
    :math:`x^2 = 2.1 \pm \sqrt{0.91}` (the larger root a minimum, the smaller a saddle).
    Keys: ``"global"``, ``"local+"``, ``"local-"``, ``"saddle+"``, ``"saddle-"``.
    """
    dtype = dtype or torch.get_default_dtype()
    xm = math.sqrt(2.1 + math.sqrt(0.91))
    xs = math.sqrt(2.1 - math.sqrt(0.91))
    pts = {"global": (0.0, 0.0), "local+": (xm, -xm / 2), "local-": (-xm, xm / 2),
           "saddle+": (xs, -xs / 2), "saddle-": (-xs, xs / 2)}
    return {k: torch.tensor(v, device=device, dtype=dtype) for k, v in pts.items()}


def nearest_stationary_point(xy: torch.Tensor) -> tuple[str, float]:
    """Name of the camelback stationary point (Figure 4) nearest to ``xy``, and its distance."""
    _validate.tensor(xy, "xy")
    if xy.shape != (2,):
        raise ValueError(f"xy must have shape (2,), got {tuple(xy.shape)}")
    pts = camelback_stationary_points(device=xy.device, dtype=xy.dtype)
    dist = {k: float((xy - v).norm()) for k, v in pts.items()}
    name = min(dist, key=dist.get)
    return name, dist[name]
