"""One figure style for the whole book (the figures of every Section), and shared plots.

Importing this module imports matplotlib (the ``book`` extra: ``pip install "spdl-ref[book]"``;
without it the import raises an :class:`ImportError` that says so); ``import spdl_ref`` does not.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from . import _validate
from ._optional import optional_dependency

with optional_dependency("book", "spdl_ref.plotting"):
    import matplotlib
    import matplotlib.axes
    import matplotlib.pyplot as plt
    from matplotlib import ticker

__all__ = ["CLASS_COLOURS", "feature_evolution", "loss_curves", "plain_log_ticks", "use_style"]

#: Colours of class 0 and class 1 in every scatter plot of the book.
CLASS_COLOURS = ("#1b6ca8", "#d1495b")

_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "lines.linewidth": 1.4,
    "scatter.edgecolors": "none",
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply the book's matplotlib settings (small fonts, no top/right spines).

    Every figure of the book uses them, Figures 1-4 of the review included."""
    matplotlib.rcParams.update(_STYLE)  # type: ignore[arg-type]  # keys are valid rc names


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _array(t: Any, name: str) -> np.ndarray:
    """``t`` (a tensor or array-like) as a finite float array, else a clear error."""
    try:
        a = np.asarray(_np(t), dtype=float)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a tensor or array of numbers, got {type(t).__name__}"
        ) from err
    if not np.isfinite(a).all():
        raise ValueError(f"{name} must contain only finite values")
    return a


def feature_evolution(
    states: Any,
    labels: Any,
    layers: Sequence[int],
    *,
    W: Any = None,
    mu: Any = None,
    axes: Any = None,
    title: str | None = None,
    point_size: float = 4.0,
) -> Any:
    """Scatter the features :math:`z^k` of selected layers, coloured by class (Figure 1).

    Parameters
    ----------
    states : tensor of shape ``(K + 1, N, M)`` with ``M`` 2 or 3
        Features after each layer, e.g. :meth:`spdl_ref.ode.ResNet.trajectory`.
    labels : tensor of shape ``(N,)``
        Classes 0 and 1.
    layers : sequence of int
        Which layers ``k`` to draw, one panel each.
    W, mu : tensors or None
        The output layer :math:`\\eta(z) = W z + \\mu` (one output); its zero set, the decision
        boundary, is drawn in the last panel.
    axes : sequence of matplotlib axes or None
        Where to draw (3-D axes when ``M = 3``); new ones in a row when ``None``.
    """
    z = _array(states, "states")
    if z.ndim != 3 or z.shape[2] not in (2, 3):
        raise ValueError(f"states must have shape (K+1, N, 2 or 3), got {z.shape}")
    y = _array(labels, "labels")
    if y.shape != (z.shape[1],) or not np.isin(y, (0, 1)).all():
        raise ValueError(
            f"labels must be {z.shape[1]} classes 0 or 1, shape ({z.shape[1]},), got shape "
            f"{y.shape}"
        )
    y = y.astype(int)
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__") or len(layers) == 0:
        raise ValueError(f"layers must be a non-empty sequence of layer indices, got {layers!r}")
    for k in layers:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k < z.shape[0]:
            raise ValueError(f"layers must hold integers in [0, {z.shape[0] - 1}], got {k!r}")
    if (W is None) != (mu is None):
        raise ValueError("W and mu must be given together (the output layer) or not at all")
    if W is not None:
        w = _array(W, "W").reshape(-1)
        if w.shape != (z.shape[2],) or not np.any(w):
            raise ValueError(f"W must hold {z.shape[2]} weights, not all zero, got {w.shape}")
        if _array(mu, "mu").size != 1:
            raise ValueError("mu must be a single number (one output)")
    point_size = _validate.positive_real(point_size, "point_size")
    if axes is not None and (not hasattr(axes, "__len__") or len(axes) != len(layers)):
        raise ValueError(f"axes must hold one axis per layer ({len(layers)})")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a string or None, got {type(title).__name__}")
    dim = z.shape[2]
    if axes is None:
        fig = plt.figure(figsize=(2.2 * len(layers), 2.3))
        kw = {"projection": "3d"} if dim == 3 else {}
        axes = [fig.add_subplot(1, len(layers), i + 1, **kw) for i in range(len(layers))]
    for i, (ax, k) in enumerate(zip(axes, layers, strict=True)):
        pts = z[k]
        for c in (0, 1):
            sel = y == c
            ax.scatter(*pts[sel].T, s=point_size, color=CLASS_COLOURS[c], alpha=0.8)
        ax.set_title(f"k = {k}" if title is None or i else f"{title}\nk = {k}")
        if W is not None and mu is not None and i == len(layers) - 1:
            _decision_boundary(ax, pts, _np(W).reshape(-1), float(_np(mu).reshape(-1)[0]))
        if dim == 2:
            ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])
        ax.set_yticks([])
        if dim == 3:
            ax.set_zticks([])
    return axes


def _decision_boundary(ax, pts, w, mu):
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.1 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    if pts.shape[1] == 2:
        if abs(w[1]) > abs(w[0]):
            xs = np.linspace(lo[0], hi[0], 2)
            ax.plot(xs, -(w[0] * xs + mu) / w[1], "k--", lw=1)
        else:
            ys = np.linspace(lo[1], hi[1], 2)
            ax.plot(-(w[1] * ys + mu) / w[0], ys, "k--", lw=1)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
    else:
        j = int(np.argmax(np.abs(w)))
        others = [i for i in range(3) if i != j]
        g0, g1 = np.meshgrid(*(np.linspace(lo[i], hi[i], 2) for i in others))
        coords: list[Any] = [None] * 3
        coords[others[0]], coords[others[1]] = g0, g1
        coords[j] = -(w[others[0]] * g0 + w[others[1]] * g1 + mu) / w[j]
        ax.plot_surface(*coords, color="0.5", alpha=0.25)


def loss_curves(
    histories: dict, ax: Any = None, xlabel: str = "iteration", ylabel: str = "objective E"
) -> Any:
    """Plot several loss histories (name -> sequence of values) on a log scale.

    The values are objectives such as (4) or the flows' (49), as plotted in Section 4.2.3."""
    if not isinstance(histories, dict) or not histories:
        raise TypeError(
            f"histories must be a non-empty dict name -> values, got {type(histories).__name__}"
        )
    for name, values in histories.items():
        v = _array(values, f"histories[{name!r}]")
        if v.ndim != 1 or v.size == 0 or (v <= 0).any():
            raise ValueError(
                f"histories[{name!r}] must be a non-empty sequence of positive values (log scale)"
            )
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 2.6))
    for name, values in histories.items():
        ax.semilogy(np.arange(1, len(values) + 1), values, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    return ax


def plain_log_ticks(ax: Any, axis: str = "x", values: Any = None) -> None:
    """Readable ticks on a logarithmic axis: plain numbers, no labelled minor ticks.

    Used by the book's log-scale figures (e.g. the sample complexity of Section 5.3).

    matplotlib labels the minor ticks of a log axis that spans less than about a decade in
    scientific notation ("3×10⁰ 6×10⁰ 2×10¹" between the plotted 2, 4, 8, 16). With ``values``
    (the sizes that were plotted, e.g. depths ``[2, 4, 8, 16, 32]``) the ticks sit at exactly
    those values, labelled as plain numbers, and minor ticks are removed. Without ``values`` the
    ticks sit at 1, 2 and 5 times each power of ten, labelled as plain numbers (``0.05``,
    ``0.1``, ``0.2``), and minor ticks keep their marks but carry no label.

    Parameters
    ----------
    ax : matplotlib axes
        Axes whose ``axis`` is already on a log scale.
    axis : {"x", "y"}
        Which axis to fix.
    values : sequence of positive numbers or None
        Where to put the ticks.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.loglog([2, 4, 8, 16], [1.0, 0.5, 0.3, 0.2])
    >>> plain_log_ticks(ax, "x", [2, 4, 8, 16])
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['2', '4', '8', '16']
    >>> plt.close(fig)
    """
    if not isinstance(ax, matplotlib.axes.Axes):
        raise TypeError(f"ax must be matplotlib axes, got {type(ax).__name__}")
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    if target.get_scale() != "log":
        raise ValueError(
            f"ax must have its {axis} axis on a log scale, got {target.get_scale()!r} "
            f"(call ax.set_{axis}scale('log') first)"
        )
    formatter = ticker.FuncFormatter(lambda v, _: f"{v:g}")
    if values is None:
        target.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        target.set_major_formatter(formatter)
        target.set_minor_formatter(ticker.NullFormatter())
        return
    try:
        flat = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as err:
        raise TypeError(f"values must be a sequence of numbers, got {values!r}") from err
    if flat.size == 0 or not np.all(np.isfinite(flat)) or flat.min() <= 0:
        raise ValueError(f"values must be finite positive numbers, got {flat.tolist()}")
    values = sorted({float(v) for v in flat})
    target.set_major_locator(ticker.FixedLocator(values))
    target.set_major_formatter(formatter)
    target.set_minor_locator(ticker.NullLocator())
