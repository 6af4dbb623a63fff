r"""Conformal Hamiltonian optimisers, Section 6.1, eqs. (54)-(57).

The gradient flow (54), :math:`\dot\theta = -\nabla E(\theta)`, discretised by explicit Euler is
gradient descent. Replacing it by the conformal Hamiltonian system (56),

.. math::

    \dot p = -\nabla E(\theta) - \gamma p, \qquad \dot\theta = \nabla T(p),

with a separable energy :math:`H(\theta, p) = T(p) + E(\theta)` gives momentum methods:
:math:`T(p) = \|p\|^2 / (2\mu)` is (55), the heavy ball; the relativistic kinetic energy
:math:`T(p) = \sqrt{\|p\|^2/\mu + \varepsilon}` is (57) for :math:`\mu = 1`.

One step of :class:`ConformalHamiltonian` is the exact flow of the dissipation
:math:`\dot p = -\gamma p` over a time :math:`h` followed by one step of symplectic Euler
for :math:`H`:

.. math::

    p_{k+1} = e^{-\gamma h} p_k - h \nabla E(\theta_k), \qquad
    \theta_{k+1} = \theta_k + h \nabla T(p_{k+1}).

The dissipation map scales the symplectic form by :math:`e^{-\gamma h}` and symplectic Euler keeps
it, so the Jacobian :math:`M` of a step satisfies :math:`M^T J M = e^{-\gamma h} J`: the scheme is
conformal symplectic. Along (56) the energy decays at the rate :math:`\frac{d}{dt} H = -\gamma\, p^T
\nabla T(p)`, which is :math:`-\frac{\gamma}{\mu} p^T p` for (55) (the review prints
:math:`-\frac{\gamma}{2\mu} p^T p`; see the book's errata).

With :math:`b = -p/h` the quadratic step is ``torch.optim.SGD`` with momentum
:math:`e^{-\gamma h}` and learning rate :math:`h^2/\mu`; ``nesterov=True`` moves :math:`\theta` with
the momentum after one more dissipation and kick, which is SGD's Nesterov option under the same map.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeAlias, overload

import torch

from .. import _validate
from ..ode import canonical_J
from ._checks import CheckedOptimizer, Loss, begin_step, check_hyperparameters, flag, one_of

__all__ = [
    "ConformalHamiltonian",
    "conformal_step",
    "conformal_step_map",
    "conformal_symplecticity_defect",
    "heavy_ball_parameters",
    "kinetic_energy",
    "kinetic_gradient",
    "relativistic_parameters",
]

KINETICS = ("quadratic", "relativistic")
_kinetic = one_of(KINETICS)

# What the torch._foreach_* functions take (their stubs return tuples, our state holds lists).
_Tensors: TypeAlias = list[torch.Tensor] | tuple[torch.Tensor, ...]


def _check_kinetic(kinetic: Any) -> str:
    return _kinetic(kinetic, "kinetic")


def _energy_arguments(p: Any, mass: Any, kinetic: Any, eps: Any) -> tuple[float, str, float]:
    """The checked arguments of :func:`kinetic_energy` and :func:`kinetic_gradient`."""
    _validate.tensor(p, "p")
    return (
        _validate.positive_real(mass, "mass"),
        _check_kinetic(kinetic),
        _validate.positive_real(eps, "eps"),
    )


def kinetic_energy(
    p: torch.Tensor, mass: float = 1.0, kinetic: str = "quadratic", eps: float = 1.0
) -> torch.Tensor:
    r"""Kinetic energy :math:`T(p)` of (55) or (57), with the norm over all entries of ``p``.

    ``"quadratic"``: :math:`T(p) = \|p\|^2/(2\mu)` (eq. (55)); ``"relativistic"``:
    :math:`T(p) = \sqrt{\|p\|^2/\mu + \varepsilon}` (eq. (57) for :math:`\mu = 1`).
    ``p`` must be a finite floating-point tensor, :math:`\mu` (``mass``) and
    :math:`\varepsilon` (``eps``) finite and positive.

    >>> kinetic_energy(torch.tensor([3.0, 4.0]), mass=2.0)
    tensor(6.2500)
    """
    mass, kinetic, eps = _energy_arguments(p, mass, kinetic, eps)
    sq = p.pow(2).sum()
    if kinetic == "quadratic":
        return sq / (2 * mass)
    return torch.sqrt(sq / mass + eps)


def kinetic_gradient(
    p: torch.Tensor, mass: float = 1.0, kinetic: str = "quadratic", eps: float = 1.0
) -> torch.Tensor:
    r"""The velocity :math:`\dot\theta = \nabla T(p)` of (56): :math:`p/\mu` for (55), and
    :math:`p / (\mu \sqrt{\|p\|^2/\mu + \varepsilon})` for the relativistic energy (57).

    The arguments are checked as in :func:`kinetic_energy`.
    """
    return _velocity(p, *_energy_arguments(p, mass, kinetic, eps))


def _velocity(p: torch.Tensor, mass: float, kinetic: str, eps: float) -> torch.Tensor:
    if kinetic == "quadratic":
        return p / mass
    return p / (mass * torch.sqrt(p.pow(2).sum() / mass + eps))


def conformal_step(
    theta: torch.Tensor,
    p: torch.Tensor,
    grad_E: Callable[[torch.Tensor], torch.Tensor],
    h: float,
    gamma: float,
    mass: float = 1.0,
    kinetic: str = "quadratic",
    eps: float = 1.0,
    nesterov: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One conformal symplectic step for (56), as a pure function of :math:`(\theta, p)`.

    Returns :math:`(\theta_{k+1}, p_{k+1})` with :math:`p_{k+1} = e^{-\gamma h} p_k - h\nabla
    E(\theta_k)` and :math:`\theta_{k+1} = \theta_k + h\nabla T(p_{k+1})` (Section 6.1). With
    ``nesterov=True`` the position moves with :math:`\nabla T(e^{-\gamma h}p_{k+1} - h\nabla
    E(\theta_k))` instead (Nesterov's method; not conformal symplectic).
    :class:`ConformalHamiltonian` applies the same map in place; this form is differentiable, for
    Jacobian checks.

    ``theta`` and ``p`` are finite tensors of one shape, ``grad_E(theta)`` must return a finite
    tensor of that shape, :math:`h > 0`, :math:`\gamma \ge 0`, :math:`\mu > 0`,
    :math:`\varepsilon > 0`.

    >>> theta, p = conformal_step(
    ...     torch.tensor([1.0]), torch.tensor([0.0]), lambda t: 2 * t, h=0.1, gamma=1.0
    ... )
    >>> theta, p
    (tensor([0.9800]), tensor([-0.2000]))
    """
    _validate.tensor(theta, "theta")
    _validate.tensor(p, "p")
    if p.shape != theta.shape:
        raise ValueError(
            f"p must have the shape of theta, {tuple(theta.shape)}, got {tuple(p.shape)}"
        )
    if not callable(grad_E):
        raise TypeError(f"grad_E must be callable, got {type(grad_E).__name__}")
    h = _validate.positive_real(h, "h")
    gamma = _validate.nonnegative_real(gamma, "gamma")
    mass = _validate.positive_real(mass, "mass")
    kinetic = _check_kinetic(kinetic)
    eps = _validate.positive_real(eps, "eps")
    nesterov = flag(nesterov, "nesterov")
    decay = math.exp(-gamma * h)
    g = grad_E(theta)
    if not isinstance(g, torch.Tensor) or g.shape != theta.shape:
        shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
        raise ValueError(
            f"grad_E(theta) must return a tensor of the shape of theta, {tuple(theta.shape)}, "
            f"got {shape}"
        )
    if not bool(torch.isfinite(g).all()):
        raise ValueError("grad_E(theta) must be finite; it holds NaN or inf")
    p_new = decay * p - h * g
    q = decay * p_new - h * g if nesterov else p_new
    return theta + h * _velocity(q, mass, kinetic, eps), p_new


def conformal_step_map(
    grad_E: Callable[[torch.Tensor], torch.Tensor],
    h: float,
    gamma: float,
    mass: float = 1.0,
    kinetic: str = "quadratic",
    eps: float = 1.0,
    nesterov: bool = False,
) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""One step of :func:`conformal_step` as a map of the stacked state :math:`u = (\theta, p)`
    (Section 6.1, eq. (56)).

    Returns ``step(u)`` for ``u`` of shape ``(2d,)`` (:math:`\theta` first, as the Darboux matrix
    :func:`spdl_ref.ode.canonical_J` orders positions and momenta), whose Jacobian
    (:func:`spdl_ref.ode.step_jacobian`) is what :func:`conformal_symplecticity_defect` tests.
    The arguments are those of :func:`conformal_step`, checked when ``step`` is called.

    >>> step = conformal_step_map(lambda t: 2 * t, h=0.1, gamma=1.0)
    >>> step(torch.tensor([1.0, 0.0]))
    tensor([ 0.9800, -0.2000])
    """
    if not callable(grad_E):
        raise TypeError(f"grad_E must be callable, got {type(grad_E).__name__}")

    def step(u: torch.Tensor) -> torch.Tensor:
        _validate.tensor(u, "u")
        if u.dim() != 1 or u.shape[0] % 2:
            raise ValueError(f"u must be a vector (theta, p) of even length, got {tuple(u.shape)}")
        d = u.shape[0] // 2
        theta, p = conformal_step(
            u[:d], u[d:], grad_E, h, gamma, mass=mass, kinetic=kinetic, eps=eps, nesterov=nesterov
        )
        return torch.cat([theta, p])

    return step


def conformal_symplecticity_defect(M: torch.Tensor, gamma: float, h: float) -> torch.Tensor:
    r"""The defect :math:`\max_{ij}|(M^TJM - e^{-\gamma h}J)_{ij}|` of a step's Jacobian (Section
    6.1).

    Zero (to round-off) when the step with Jacobian :math:`M` is conformal symplectic, i.e. it
    multiplies the symplectic form by :math:`e^{-\gamma h}`, as the exact flow of (56) over a
    time :math:`h` does; :math:`J` is :func:`spdl_ref.ode.canonical_J` (the check
    :math:`M^TJM = J` of Chapter 2, :func:`spdl_ref.ode.symplecticity_defect`, is the case
    :math:`\gamma = 0`). ``M`` has shape ``(..., 2d, 2d)``; :math:`\gamma \ge 0`, :math:`h > 0`.
    """
    _validate.tensor(M, "M")
    if M.dim() < 2 or M.shape[-1] != M.shape[-2] or M.shape[-1] % 2:
        raise ValueError(f"M must have shape (..., 2d, 2d), got {tuple(M.shape)}")
    gamma = _validate.nonnegative_real(gamma, "gamma")
    h = _validate.positive_real(h, "h")
    J = canonical_J(M.shape[-1], dtype=M.dtype, device=M.device)
    return (M.mT @ J @ M - math.exp(-gamma * h) * J).abs().amax(dim=(-2, -1))


def heavy_ball_parameters(lr: float, momentum: float, h: float = 1.0) -> dict:
    r"""Arguments of :class:`ConformalHamiltonian` that reproduce SGD with momentum (Section 6.1,
    (55)).

    ``torch.optim.SGD(lr=lr, momentum=momentum)`` (heavy ball; with ``nesterov=True``, Nesterov's
    method) is the quadratic conformal step with time step :math:`h`, friction
    :math:`\gamma = -\ln(\text{momentum})/h` and mass :math:`\mu = h^2/\text{lr}`, the momentum
    being :math:`p = -h\,b` for SGD's buffer :math:`b`. Any :math:`h > 0` gives the same iterates.
    """
    lr = _validate.positive_real(lr, "lr")
    momentum = _validate.positive_real(momentum, "momentum")
    h = _validate.positive_real(h, "h")
    if momentum > 1:
        raise ValueError(f"momentum must lie in (0, 1], got {momentum}")
    return dict(lr=h, gamma=-math.log(momentum) / h, mass=h * h / lr, kinetic="quadratic")


def relativistic_parameters(lr: float, momentum: float, delta: float) -> dict:
    r"""Arguments of :class:`ConformalHamiltonian` for relativistic gradient descent (57) in the
    scaled form of França et al. (Section 6.1, Figure 4):
    :math:`v \leftarrow \mu v - h\nabla E(\theta)`, :math:`\theta \leftarrow \theta +
    v/\sqrt{1 + \delta\|v\|^2}`, with momentum factor :math:`\mu` (``momentum``), step
    :math:`h` (``lr``) and :math:`\delta > 0` (the inverse squared speed of light).

    With :math:`p = v` this is the relativistic conformal step with time step :math:`h`, friction
    :math:`\gamma = -\ln\mu / h`, mass :math:`h^2\delta` and :math:`\varepsilon = (\delta h)^{-2}`.
    """
    lr = _validate.positive_real(lr, "lr")
    momentum = _validate.positive_real(momentum, "momentum")
    delta = _validate.positive_real(delta, "delta")
    if momentum > 1:
        raise ValueError(f"momentum must lie in (0, 1], got {momentum}")
    return dict(
        lr=lr,
        gamma=-math.log(momentum) / lr,
        mass=lr * lr * delta,
        kinetic="relativistic",
        eps=1.0 / (delta * lr) ** 2,
    )


def _squared_norm(tensors: _Tensors) -> float:
    r""":math:`\sum_i \|t_i\|^2` over a list of tensors: one fused norm, one host sync."""
    norms: _Tensors = torch._foreach_norm(tensors)
    if len({n.dtype for n in norms}) > 1:
        norms = [n.double() for n in norms]
    return float(torch.stack(norms).square().sum())


class ConformalHamiltonian(CheckedOptimizer):
    r"""Conformal Hamiltonian descent for (56), a ``torch.optim.Optimizer`` (Section 6.1).

    Each step applies :math:`p \leftarrow e^{-\gamma h} p - h \nabla E(\theta)`, then
    :math:`\theta \leftarrow \theta + h \nabla T(p)`: the exact dissipation flow composed with
    symplectic Euler, a conformal symplectic map. ``kinetic="quadratic"`` is (55) (heavy ball;
    ``torch.optim.SGD(momentum=exp(-gamma*h), lr=h**2/mass)`` gives the same iterates), and
    ``kinetic="relativistic"`` is relativistic gradient descent (57), with the norm of :math:`p`
    taken over all parameters of a parameter group.

    Parameters
    ----------
    params : iterable of tensors or dicts
        The parameters :math:`\theta`.
    lr : float
        The time step :math:`h > 0`.
    gamma : float
        The friction :math:`\gamma \ge 0` (``gamma = 0``: symplectic Euler for :math:`H`).
    mass : float
        The mass :math:`\mu > 0` in :math:`T`.
    kinetic : {"quadratic", "relativistic"}
        The kinetic energy :math:`T(p)`.
    eps : float
        :math:`\varepsilon > 0` of the relativistic energy (57).
    nesterov : bool
        Move :math:`\theta` with a look-ahead momentum: Nesterov's accelerated gradient.
    check_finite : bool
        Check the gradients for NaN/inf before each step (default). ``False`` skips the check
        (one read of the gradients less; see ``benchmarks/optimiser_step.py``).

    Notes
    -----
    The momentum :math:`p` is kept in ``state[param]["momentum"]`` (zero at the start). A step
    whose gradients hold NaN or inf raises :class:`~spdl_ref.optim.NonFiniteGradientError` and
    changes nothing. :meth:`energy` returns the discrete energy :math:`T(p) + E(\theta)`. A group
    added by :meth:`add_param_group` is checked like the constructor's arguments.

    Each step is a few multi-tensor (``torch._foreach_*``) operations over all parameters of a
    group: the heavy ball the same three as ``torch.optim.SGD(momentum, foreach=True)``, Nesterov
    one more, and the relativistic energy one fused norm of :math:`p` and one host
    synchronisation for the speed :math:`h/(\mu\sqrt{\|p\|^2/\mu + \varepsilon})`.

    >>> theta = torch.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = ConformalHamiltonian([theta], lr=0.1, gamma=1.0)
    >>> theta.pow(2).sum().backward()
    >>> opt.step()
    >>> theta.detach()
    tensor([ 0.9800, -1.9600])
    """

    hyperparameter_checks: ClassVar[dict] = {
        "lr": _validate.positive_real,
        "gamma": _validate.nonnegative_real,
        "mass": _validate.positive_real,
        "kinetic": _kinetic,
        "eps": _validate.positive_real,
        "nesterov": flag,
    }

    def __init__(
        self,
        params: Iterable,
        lr: float,
        gamma: float,
        mass: float = 1.0,
        kinetic: str = "quadratic",
        eps: float = 1.0,
        nesterov: bool = False,
        check_finite: bool = True,
    ):
        defaults = check_hyperparameters(
            self.hyperparameter_checks,
            dict(lr=lr, gamma=gamma, mass=mass, kinetic=kinetic, eps=eps, nesterov=nesterov),
        )
        self.check_finite = flag(check_finite, "check_finite")
        super().__init__(params, defaults)

    def _momenta(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for p in params:
            state = self.state[p]
            if "momentum" not in state:
                state["momentum"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            out.append(state["momentum"])
        return out

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], Loss]) -> Loss: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], Loss] | None = None) -> Loss | None:
        """One step of the conformal symplectic scheme; ``closure`` re-evaluates the loss."""
        loss, work = begin_step(self, closure, self.check_finite)
        for group, params, grads in work:
            if not params:
                continue
            h, mass = group["lr"], group["mass"]
            decay = math.exp(-group["gamma"] * h)
            momenta = self._momenta(params)
            torch._foreach_mul_(momenta, decay)
            torch._foreach_add_(momenta, grads, alpha=-h)
            scale = h / mass
            if group["kinetic"] == "relativistic":
                q: _Tensors
                if group["nesterov"]:
                    q = torch._foreach_mul(momenta, decay)
                    torch._foreach_add_(q, grads, alpha=-h)
                else:
                    q = momenta
                speed = scale / math.sqrt(_squared_norm(q) / mass + group["eps"])
                torch._foreach_add_(params, q, alpha=speed)
            elif group[
                "nesterov"
            ]:  # theta += (h/mu) (e^{-gamma h} p_new - h g), without a temporary
                torch._foreach_add_(params, momenta, alpha=scale * decay)
                torch._foreach_add_(params, grads, alpha=-scale * h)
            else:
                torch._foreach_add_(params, momenta, alpha=scale)
        return loss

    @torch.no_grad()
    def kinetic_energy(self) -> torch.Tensor:
        r"""The kinetic energy :math:`T(p)` summed over the parameter groups (Section 6.1)."""
        return self._sum_over_groups(
            lambda group, sq: (
                sq / (2 * group["mass"])
                if group["kinetic"] == "quadratic"
                else torch.sqrt(sq / group["mass"] + group["eps"])
            )
        )

    def energy(self, loss: torch.Tensor | float) -> torch.Tensor:
        r"""The discrete energy :math:`H = T(p) + E(\theta)` of (56), given the loss
        :math:`E(\theta)`."""
        loss = loss.detach() if isinstance(loss, torch.Tensor) else _validate.real(loss, "loss")
        return self.kinetic_energy() + loss

    @torch.no_grad()
    def dissipation_rate(self) -> torch.Tensor:
        r"""The rate :math:`\frac{d}{dt}H = -\gamma\, p^T \nabla T(p)` of (56) at the current
        :math:`p`.

        For (55) this is :math:`-\frac{\gamma}{\mu} p^T p` (Section 6.1; the review prints half
        of it).
        """
        return self._sum_over_groups(
            lambda group, sq: (
                -group["gamma"] * sq / group["mass"]
                if group["kinetic"] == "quadratic"
                else -group["gamma"]
                * sq
                / (group["mass"] * torch.sqrt(sq / group["mass"] + group["eps"]))
            )
        )

    def _sum_over_groups(
        self, per_group: Callable[[dict[str, Any], torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """Sum ``per_group(group, |p|^2)`` over the groups that have momenta (zero if none)."""
        total = None
        for group in self.param_groups:
            momenta = [
                self.state[p]["momentum"] for p in group["params"] if "momentum" in self.state[p]
            ]
            if not momenta:
                continue
            value = per_group(group, sum(m.pow(2).sum() for m in momenta))
            total = value if total is None else total + value
        if total is None:
            p0 = self.param_groups[0]["params"][0]
            return torch.zeros((), dtype=p0.dtype, device=p0.device)
        return total
