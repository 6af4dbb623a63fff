r"""Adam, eq. (53) of Section 6, in two forms: as printed in the review and as Kingma & Ba wrote it.

Kingma and Ba keep *uncorrected* moment estimates in the recursion and apply the bias correction
only where the step is taken:

.. math::

    m^j = \beta_1 m^{j-1} + (1-\beta_1) g^j, \quad v^j = \beta_2 v^{j-1} + (1-\beta_2) g^j \odot
    g^j, \quad \theta^j = \theta^{j-1} - \alpha \frac{m^j / (1-\beta_1^j)}{\sqrt{v^j/(1-\beta_2^j)}
    + \varepsilon}.

Eq. (53) divides by :math:`1-\beta^j` *inside* the recursion, so the corrected moment is fed
back and corrected again at every later step. With :math:`m^0 = v^0 = 0` both agree at
:math:`j = 1` and differ from :math:`j = 2` on; for a constant gradient (53) gives
:math:`m^2 = g/(1-\beta_1^2)` instead of :math:`g`, and :math:`v^j` grows roughly like
:math:`\prod_{i \le j} \beta_2/(1-\beta_2^i)`, which overflows: the printed iteration stalls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, overload

import torch

from .. import _validate
from ._checks import CheckedOptimizer, Loss, begin_step, check_hyperparameters, flag, one_of

__all__ = ["Adam"]

FORMS = ("kingma_ba", "review")


def _betas(value: Any, name: str) -> tuple[float, float]:
    """``(beta_1, beta_2)``, each a real number in [0, 1)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair of floats, got {value!r}")
    out: list[float] = []
    for i, b in enumerate(value):
        b = _validate.real(b, f"{name}[{i}]")
        if not 0.0 <= b < 1.0:
            raise ValueError(f"{name}[{i}] must lie in [0, 1), got {b}")
        out.append(b)
    return out[0], out[1]


class Adam(CheckedOptimizer):
    r"""Adam, eq. (53): ``form="kingma_ba"`` (the published method) or ``form="review"`` (as
    printed).

    ``form="kingma_ba"`` keeps raw moments :math:`m^j, v^j` and divides by
    :math:`1-\beta_1^j`, :math:`1-\beta_2^j` only in the update; its iterates equal those of
    ``torch.optim.Adam`` to round-off. ``form="review"`` stores the bias-corrected moments of (53)
    and feeds them back into the recursion (Section 6, eq. (53); see the book's errata).

    Parameters
    ----------
    params : iterable
        Parameters :math:`\theta`.
    lr : float
        Step size :math:`\alpha > 0`.
    betas : tuple of float
        :math:`(\beta_1, \beta_2)`, each in :math:`[0, 1)`.
    eps : float
        :math:`\varepsilon > 0` added to :math:`\sqrt{v}`.
    form : {"kingma_ba", "review"}
        Which iteration to run.
    check_finite : bool
        Check the gradients for NaN/inf before each step (default); ``False`` skips the check.

    Notes
    -----
    A step whose gradients hold NaN or inf raises :class:`~spdl_ref.optim.NonFiniteGradientError`
    and changes nothing. A group added by :meth:`add_param_group` is checked like the
    constructor's arguments (a negative ``lr`` is refused there too).

    >>> theta = torch.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = Adam([theta], lr=0.1)
    >>> theta.pow(2).sum().backward()
    >>> opt.step()
    >>> theta.detach()
    tensor([ 0.9000, -1.9000])
    """

    hyperparameter_checks: ClassVar[dict] = {
        "lr": _validate.positive_real,
        "betas": _betas,
        "eps": _validate.positive_real,
        "form": one_of(FORMS),
    }

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        form: str = "kingma_ba",
        check_finite: bool = True,
    ):
        defaults = check_hyperparameters(
            self.hyperparameter_checks, dict(lr=lr, betas=betas, eps=eps, form=form)
        )
        self.check_finite = flag(check_finite, "check_finite")
        super().__init__(params, defaults)

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], Loss]) -> Loss: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], Loss] | None = None) -> Loss | None:
        """One Adam step (eq. (53) in the chosen form); ``closure`` re-evaluates the loss."""
        loss, work = begin_step(self, closure, self.check_finite)
        for group, params, grads in work:
            if not params:
                continue
            b1, b2 = group["betas"]
            buckets: dict = {}  # parameters that have taken the same number of steps
            for p, g in zip(params, grads, strict=True):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                bucket = buckets.setdefault(state["step"], ([], [], [], []))
                for lst, t in zip(
                    bucket, (p, g, state["exp_avg"], state["exp_avg_sq"]), strict=True
                ):
                    lst.append(t)
            for j, (ps, gs, ms, vs) in buckets.items():
                self._update(ps, gs, ms, vs, j, b1, b2, group)
        return loss

    @staticmethod
    def _update(
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        ms: list[torch.Tensor],
        vs: list[torch.Tensor],
        j: int,
        b1: float,
        b2: float,
        group: dict[str, Any],
    ) -> None:
        c1, c2 = 1.0 - b1**j, 1.0 - b2**j
        torch._foreach_lerp_(ms, grads, 1.0 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, grads, grads, value=1.0 - b2)
        if group["form"] == "review":  # (53) as printed: the corrected moments are stored
            torch._foreach_div_(ms, c1)
            torch._foreach_div_(vs, c2)
            denom = torch._foreach_sqrt(vs)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(params, ms, denom, value=-group["lr"])
        else:  # Kingma & Ba: raw moments stored, the correction only in the step
            denom = torch._foreach_sqrt(vs)
            torch._foreach_div_(denom, math.sqrt(c2))
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(params, ms, denom, value=-group["lr"] / c1)
