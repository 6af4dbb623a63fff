r"""The continuous :math:`H^1`-regularised problem (41) of Theorem 3.3, evaluated by a fine solve.

Theorem 3.3 compares the discrete problems (40) with

.. math::

    E^\infty(\theta) = \frac1N \sum_{n=1}^N L_n(\Psi(x_n, \theta))
    + \lambda \Big( \|\theta(0)\|^2 + \int_0^T \|\partial_t \theta(t)\|^2 \, dt \Big),
    \qquad \theta \in H^1([0, T], \mathbb{R}^{M^2 + M}), \tag{41}

where :math:`\Psi(x, \theta) = z(T)` solves the ODE (7) with the control :math:`\theta(t)`. A
piecewise-constant :math:`\theta` has no derivative in :math:`L^2`, so (41) needs a continuous
control. :class:`PiecewiseLinearControl` is the simplest such class: continuous and linear
between the nodes :math:`t_j = jT/J`. For it the :math:`H^1` term of (41) is exact,
:math:`\|\theta(t_0)\|^2 + \sum_j \|\theta(t_{j+1}) - \theta(t_j)\|^2 / (T/J)`, and the data fit is
computed by a Runge–Kutta solve of (7) with several steps per interval (the control is smooth
on each interval, so the method keeps its order). :func:`continuous_objective` is (41).

Two uses in the book:

* the minimiser :math:`\theta^{(K)}` of (40) is identified with the interpolant
  :meth:`PiecewiseLinearControl.from_network` (:math:`\theta(t^k) = \theta^k`,
  :math:`\theta(T) = \theta^{K-1}`), whose :math:`H^1` term equals the discrete one of (40) (read
  as in the book's errata, E3.2); :math:`E^\infty` of it is an upper bound on
  :math:`\min E^\infty`;
* minimising (41) over the node values, with a fine solve, gives a reference value and control
  for :math:`\min E^\infty` and its minimiser (:func:`spdl_ref.control.minimise`).

The field is the network's own: :math:`f(u, \theta(t))` is ``model.field(0, u, theta)`` with the
interpolated values (the fields of :mod:`spdl_ref.ode` depend on the layer only through
:math:`\theta^k`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .. import _validate
from ..ode.layered import check_layered, parameter_layout
from ..ode.runge_kutta import as_tableau
from .adjoint import check_batch

__all__ = ["PiecewiseLinearControl", "continuous_objective", "l2_distance"]


def _uniform_steps(model, name="model"):
    """The common step ``h`` of a layered network with fixed, equal steps (else TypeError)."""
    _, step_name = parameter_layout(model)
    if step_name is not None:
        raise TypeError(
            f"{name} must have fixed steps; {type(model).__name__} learns them ({step_name!r})"
        )
    steps = [float(model.step_size(k)) for k in range(model.depth)]
    h = steps[0]
    if any(abs(s - h) > 1e-12 * h for s in steps):
        raise TypeError(f"{name} must have equal steps h_k = T/K, got {steps}")
    return h


class PiecewiseLinearControl:
    r"""A control :math:`\theta \in H^1([0, T])`, linear between nodes :math:`t_j = jT/J` (§3.3).

    Parameters
    ----------
    model : spdl_ref.ode.LayeredNetwork
        Supplies the field :math:`f(u, \theta)`, ``lift`` and ``project`` and the names and
        shapes of :math:`\theta` (those of ``model.layer_parameters``); its own parameter
        values are not used.
    values : dict
        ``{name: tensor (J + 1, ...)}``, the node values :math:`\theta(t_0), \dots,
        \theta(t_J)` of every layer parameter of ``model``; copied into leaf tensors that
        require gradients (:meth:`parameters`).
    T : float
        The final time :math:`T > 0`.

    Examples
    --------
    The interpolant of a ResNet's piecewise-constant :math:`\theta^{(K)}` has the discrete
    :math:`H^1` norm of (40) as its :math:`H^1` norm (37):

    >>> from spdl_ref.ode import ResNet
    >>> from spdl_ref.control import h1_discrete
    >>> net = ResNet(2, 4, T=2.0, dtype=torch.float64)
    >>> control = PiecewiseLinearControl.from_network(net)
    >>> control.intervals, bool(torch.isclose(control.h1_norm_squared(), h1_discrete(net)))
    (4, True)
    """

    def __init__(self, model: Any, values: dict, T: float) -> None:
        self.model = check_layered(model)
        self.T = _validate.positive_real(T, "T")
        if not isinstance(values, dict):
            raise TypeError(f"values must be a dict {{name: tensor}}, got {type(values).__name__}")
        names = list(model.layer_parameters(0))
        if list(values) != names:
            raise ValueError(f"values must hold the layer parameters {names}, got {list(values)}")
        counts = set()
        for name in names:
            v = _validate.tensor(values[name], f"values[{name!r}]")
            want = tuple(model.layer_parameters(0)[name].shape)
            if v.dim() != len(want) + 1 or tuple(v.shape[1:]) != want or v.shape[0] < 2:
                raise ValueError(
                    f"values[{name!r}] must have shape (J + 1, {', '.join(map(str, want))}) "
                    f"with J >= 1, got {tuple(v.shape)}"
                )
            counts.add(v.shape[0])
        if len(counts) != 1:
            raise ValueError(f"values must all have the same number of nodes, got {counts}")
        self.values = {n: values[n].detach().clone().requires_grad_(True) for n in names}

    @classmethod
    def from_network(cls, model: Any) -> PiecewiseLinearControl:
        r"""The interpolant of a network's piecewise-constant :math:`\theta^{(K)}` (§3.3, (40)).

        Nodes :math:`t_k = kT/K`, :math:`\theta(t_k) = \theta^k` for :math:`k < K` and
        :math:`\theta(T) = \theta^{K-1}`. Its :math:`H^1` norm (37) equals
        :func:`~spdl_ref.control.h1_discrete` of the network. ``model`` must have fixed, equal
        steps (a :class:`~spdl_ref.ode.ResNet` or an :class:`~spdl_ref.ode.ODENet`).
        """
        model = check_layered(model)
        h = _uniform_steps(model)
        params = dict(model.named_parameters())
        values = {
            name: torch.cat([params[name], params[name][-1:]]).detach()
            for name in model.layer_parameters(0)
        }
        return cls(model, values, h * model.depth)

    @property
    def intervals(self) -> int:
        """The number :math:`J` of intervals."""
        return next(iter(self.values.values())).shape[0] - 1

    @property
    def times(self) -> torch.Tensor:
        """The nodes :math:`t_j = jT/J`, shape ``(J + 1,)``."""
        v = next(iter(self.values.values()))
        return torch.linspace(0.0, self.T, self.intervals + 1, dtype=v.dtype, device=v.device)

    def parameters(self) -> dict:
        """The node values ``{name: leaf tensor (J + 1, ...)}``, what minimising (41) changes."""
        return dict(self.values)

    def at(self, t: float) -> dict:
        r""":math:`\theta(t)` by linear interpolation between the nodes, ``{name: tensor}``."""
        t = _validate.real(t, "t")
        if not 0.0 <= t <= self.T:
            raise ValueError(f"t must lie in [0, T] = [0, {self.T}], got {t}")
        J = self.intervals
        j = min(int(t / self.T * J), J - 1)
        s = t / self.T * J - j
        return {n: v[j] + s * (v[j + 1] - v[j]) for n, v in self.values.items()}

    def h1_norm_squared(self) -> torch.Tensor:
        r"""The squared :math:`H^1` norm (37), :math:`\|\theta(0)\|^2 + \int_0^T \|\dot\theta\|^2`.

        Exact for a piecewise-linear :math:`\theta`:
        :math:`\|\theta(t_0)\|^2 + \frac{J}{T} \sum_j \|\theta(t_{j+1}) - \theta(t_j)\|^2`.
        """
        first = sum(v[0].pow(2).sum() for v in self.values.values())
        jumps = sum((v[1:] - v[:-1]).pow(2).sum() for v in self.values.values())
        return first + jumps * (self.intervals / self.T)

    def flow(
        self, x: torch.Tensor, steps_per_interval: int = 4, method: str | Sequence[Any] = "rk4"
    ) -> torch.Tensor:
        r""":math:`\Psi(x, \theta) = z(T)` of the ODE (7) with this control, by a Runge–Kutta solve.

        Each interval :math:`[t_j, t_{j+1}]` is split into ``steps_per_interval`` steps of the
        explicit ``method`` (a name or a tableau, :func:`spdl_ref.ode.rk_step`); the stages see
        :math:`\theta` at their own times. ``x`` has shape ``(N, M)``; differentiable with
        respect to the node values.
        """
        model = self.model
        x = check_batch(model, x)
        n = _validate.positive_int(steps_per_interval, "steps_per_interval")
        tableau = as_tableau(method)
        if not tableau.explicit:
            raise ValueError("method must be an explicit Runge-Kutta method")
        J = self.intervals
        width = self.T / J
        dt = width / n
        u = model.lift(x)
        for j in range(J):
            start = {name: v[j] for name, v in self.values.items()}
            slope = {name: (v[j + 1] - v[j]) / width for name, v in self.values.items()}
            field = _interval_field(model, j * width, start, slope)
            for i in range(n):
                u = tableau.step(field, j * width + i * dt, u, dt)
        return model.project(u)

    def __repr__(self) -> str:
        return f"PiecewiseLinearControl(J={self.intervals}, T={self.T}, names={list(self.values)})"


def _interval_field(model, t0, start, slope):
    """The field :math:`f(u, \\theta(t))` on one interval, :math:`\\theta` linear from ``t0``."""

    def field(t, u):
        theta = {name: start[name] + (t - t0) * slope[name] for name in start}
        return model.field(0, u, theta)

    return field


def continuous_objective(
    control: PiecewiseLinearControl,
    x: torch.Tensor,
    loss: Callable,
    lam: float,
    *,
    steps_per_interval: int = 4,
    method: str | Sequence[Any] = "rk4",
) -> torch.Tensor:
    r"""The continuous objective :math:`E^\infty(\theta)` of (41) for a piecewise-linear control.

    :math:`\ell(z(T)) + \lambda \|\theta\|_{H^1}^2`, with ``loss(z_T)`` the mean data fit
    :math:`\frac1N \sum_n L_n`, :math:`z(T)` from :meth:`PiecewiseLinearControl.flow` (``method``
    with ``steps_per_interval`` steps per interval) and the :math:`H^1` term exact
    (:meth:`PiecewiseLinearControl.h1_norm_squared`); :math:`\lambda` = ``lam`` :math:`> 0`.
    Differentiable with respect to the control's node values, so
    :func:`spdl_ref.control.minimise` can minimise it.

    Examples
    --------
    For the interpolant of a network, (41) differs from (40) only in the data fit: the
    piecewise-linear control against the network's piecewise-constant one and its Euler steps.

    >>> from spdl_ref.ode import ResNet
    >>> from spdl_ref.control import deep_limit_objective, squared_fit
    >>> net = ResNet(2, 8, T=1.0, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> fit = squared_fit(torch.sign(x[:, 0]))
    >>> E_inf = continuous_objective(PiecewiseLinearControl.from_network(net), x, fit, 0.01)
    >>> E_K = deep_limit_objective(net, x, fit, 0.01)
    >>> bool(abs(E_inf - E_K) < 0.05 * E_K)
    True
    """
    if not isinstance(control, PiecewiseLinearControl):
        raise TypeError(
            f"control must be a spdl_ref.control.PiecewiseLinearControl, got "
            f"{type(control).__name__}"
        )
    lam = _validate.positive_real(lam, "lam")
    if not callable(loss):
        raise TypeError(f"loss must be callable, got {type(loss).__name__}")
    z_T = control.flow(x, steps_per_interval, method)
    return loss(z_T) + lam * control.h1_norm_squared()


def _pieces(c):
    """``(breakpoints, kind, values)`` of a control for :func:`l2_distance`."""
    if isinstance(c, PiecewiseLinearControl):
        return c.T, c.intervals, "linear", [v.detach() for v in c.values.values()]
    model = check_layered(c)
    h = _uniform_steps(model)
    params = dict(model.named_parameters())
    return (
        h * model.depth,
        model.depth,
        "constant",
        [params[n].detach() for n in model.layer_parameters(0)],
    )


def _evaluate(kind, values, J, T, t, interval):
    """Values at the points ``t`` (tensor), each inside the piece ``interval`` (long tensor)."""
    if kind == "constant":
        return [v[interval].reshape(len(t), -1) for v in values]
    s = (t / T * J - interval).reshape(-1, 1)
    return [
        (v[interval].reshape(len(t), -1) + s * (v[interval + 1] - v[interval]).reshape(len(t), -1))
        for v in values
    ]


def l2_distance(
    a: PiecewiseLinearControl | nn.Module, b: PiecewiseLinearControl | nn.Module
) -> float:
    r""":math:`\|\theta_a - \theta_b\|_{L^2(0, T)}` of two controls (Section 3.3), exactly.

    Section 3.3 compares minimisers of (40) for different depths, and with a minimiser of (41),
    as functions of :math:`t` in :math:`L^2(0, T)`.

    Each of ``a`` and ``b`` is a :class:`PiecewiseLinearControl` or a layered network with fixed,
    equal steps, read as its piecewise-constant :math:`\theta(t) = \theta^k` on
    :math:`[t^k, t^{k+1})` (the identification of Section 3.3). The final times must agree and
    the parameters match in the order of ``layer_parameters`` with equal shapes (so a
    :class:`~spdl_ref.ode.ResNet` and an :class:`~spdl_ref.ode.ODENet` of the field (8) compare).
    On every piece of the merged grid the difference is linear, its square quadratic, and
    Simpson's rule is exact.

    Examples
    --------
    >>> from spdl_ref.ode import ResNet
    >>> net = ResNet(1, 2, T=1.0, init_std=0.0, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     net.b[1] = 1.0  # theta = 0 on [0, 1/2), b = 1 on [1/2, 1)
    >>> round(l2_distance(net, ResNet(1, 2, init_std=0.0, dtype=torch.float64)), 12)
    0.707106781187
    """
    Ta, Ja, kind_a, va = _pieces(a)
    Tb, Jb, kind_b, vb = _pieces(b)
    if abs(Ta - Tb) > 1e-12 * Ta:
        raise ValueError(f"a and b must have the same final time T, got {Ta} and {Tb}")
    shapes_a = [tuple(v.shape[1:]) for v in va]
    shapes_b = [tuple(v.shape[1:]) for v in vb]
    if shapes_a != shapes_b:
        raise ValueError(
            f"a and b must have parameters of the same shapes, got {shapes_a} and {shapes_b}"
        )
    ref = va[0]
    L = math.lcm(Ja, Jb)  # every node of either grid is a multiple of T / L
    nodes = sorted({i * (L // Ja) for i in range(Ja + 1)} | {j * (L // Jb) for j in range(Jb + 1)})
    grid = torch.tensor(nodes, dtype=torch.float64) * (Ta / L)
    left, right = grid[:-1], grid[1:]
    mid = 0.5 * (left + right)
    total = torch.zeros((), dtype=ref.dtype, device=ref.device)
    weights = ((right - left) / 6).to(dtype=ref.dtype, device=ref.device)
    for points, w in ((left, 1.0), (mid, 4.0), (right, 1.0)):
        t = points.to(dtype=ref.dtype, device=ref.device)
        ia = torch.clamp((mid / Ta * Ja).floor().long(), max=Ja - 1).to(ref.device)
        ib = torch.clamp((mid / Ta * Jb).floor().long(), max=Jb - 1).to(ref.device)
        da = _evaluate(kind_a, va, Ja, Ta, t, ia)
        db = _evaluate(kind_b, vb, Jb, Ta, t, ib)
        sq = sum((p - q).pow(2).sum(1) for p, q in zip(da, db, strict=True))
        total = total + w * (weights * sq).sum()
    return float(total.sqrt())
