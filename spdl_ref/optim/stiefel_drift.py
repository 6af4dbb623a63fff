r"""How far Riemannian SGD drifts off the Stiefel manifold in a long run, Section 6.2.1.

Each step :math:`\theta_{k+1} = \phi(-hB_k)\theta_k` of :class:`~spdl_ref.optim.StiefelSGD` keeps
:math:`\theta^T\theta = I_p` up to the rounding of that step, and the rounding accumulates over
many steps, most visibly in float32. :func:`stiefel_drift` measures it: a long run with random
gradients on :math:`V_{n,p}`, with or without the re-orthonormalisation that
:class:`~spdl_ref.optim.StiefelSGD` applies when the error it measures passes a threshold, and
with geoopt's ``RiemannianSGD`` for comparison.
"""

from __future__ import annotations

import math

import torch

from .. import _validate
from .._optional import optional_dependency
from ..loop import History, train_loop
from .riemannian import StiefelSGD, random_stiefel, stiefel_error

__all__ = ["stiefel_drift"]

KINDS = ("exp", "cayley", "geoopt")


def stiefel_drift(
    kind: str,
    steps: int,
    *,
    n: int = 256,
    p: int = 32,
    lr: float = 0.05,
    momentum: float = 0.5,
    reorthonormalise_at: float | None = None,
    record_every: int = 100,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = torch.float32,
) -> History:
    r"""Run ``steps`` Riemannian SGD steps on :math:`V_{n,p}` with random gradients and record
    :math:`\|\theta^T\theta - I_p\|_F` (Section 6.2.1).

    The objective of step :math:`k` is :math:`E_k(\theta) = \langle G_k, \theta\rangle` with
    Gaussian :math:`G_k` of entries of variance :math:`1/n`, drawn from a CPU generator seeded
    with ``seed`` (the same sequence for every ``kind``), so its Euclidean gradient is
    :math:`G_k`; the start is :func:`~spdl_ref.optim.random_stiefel` from the same generator. The
    loop is :func:`~spdl_ref.train.train_loop`.

    Parameters
    ----------
    kind : {"exp", "cayley", "geoopt"}
        :class:`~spdl_ref.optim.StiefelSGD` with that map, or ``geoopt.optim.RiemannianSGD`` on
        ``geoopt.Stiefel(canonical=True)`` (imported only for this kind).
    steps : int
        Number of steps, :math:`\ge 1`.
    n, p : int
        :math:`\theta` is :math:`n\times p`, :math:`1 \le p \le n`.
    lr, momentum : float
        The step :math:`h > 0` and the momentum :math:`\beta \in [0, 1)`.
    reorthonormalise_at : float or None
        Passed to :class:`~spdl_ref.optim.StiefelSGD` (``math.inf``: never re-orthonormalise);
        must be ``None`` for geoopt.
    record_every : int
        Record the error after every ``record_every``-th step (and after the last).
    seed : int
        Seed of the gradients and of the start.
    device, dtype : optional
        Of :math:`\theta` and the gradients (default: the CPU, float32).

    Returns
    -------
    History
        ``series["step"]`` and ``series["constraint_error"]``: the step counts and the errors
        after them; ``series["reorthonormalisations"]``: one entry, how many steps
        re-orthonormalised (``None`` for geoopt).

    Examples
    --------
    >>> run = stiefel_drift("cayley", 20, n=12, p=3, record_every=10)
    >>> run.series["step"], run.series["constraint_error"][-1] < 1e-5
    ([10, 20], True)
    """
    kind = _validate.choice(kind, KINDS, "kind")
    steps = _validate.positive_int(steps, "steps")
    n = _validate.positive_int(n, "n")
    p = _validate.positive_int(p, "p")
    if p > n:
        raise ValueError(f"p must be <= n for V_(n,p), got n={n}, p={p}")
    lr = _validate.positive_real(lr, "lr")
    momentum = _validate.nonnegative_real(momentum, "momentum")
    record_every = _validate.positive_int(record_every, "record_every")
    seed = _validate.nonnegative_int(seed, "seed")
    dtype = _validate.float_dtype(dtype) or torch.float32
    gen = torch.Generator().manual_seed(seed)
    theta0 = random_stiefel(n, p, generator=gen, dtype=dtype).to(device)
    if kind == "geoopt":
        if reorthonormalise_at is not None:
            raise ValueError("reorthonormalise_at must be None for kind='geoopt'")
        with optional_dependency("riemannian", "stiefel_drift(kind='geoopt')"):
            import geoopt
        theta = geoopt.ManifoldParameter(theta0, manifold=geoopt.Stiefel(canonical=True))
        opt = geoopt.optim.RiemannianSGD([theta], lr=lr, momentum=momentum)
    else:
        theta = torch.nn.Parameter(theta0)
        opt = StiefelSGD(
            [theta],
            lr=lr,
            momentum=momentum,
            retraction=kind,
            reorthonormalise_at=reorthonormalise_at,
        )
    scale = 1 / math.sqrt(n)

    def gradient(_i):
        return (torch.randn(n, p, generator=gen, dtype=dtype) * scale).to(theta.device)

    def record(i, history):
        if (i + 1) % record_every == 0 or i + 1 == steps:
            history.record(step=i + 1, constraint_error=stiefel_error(theta.detach()).item())

    history = train_loop(
        {"theta": theta},
        lambda G: (G * theta).sum(),
        iterations=steps,
        optimizer=opt,
        batches=gradient,
        callbacks=[record],
    )
    count = opt.state[theta].get("reorthonormalisations") if kind != "geoopt" else None
    history.record(reorthonormalisations=count)
    return history
