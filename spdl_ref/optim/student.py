r"""A teacher--student network with weights on the Stiefel manifold, Section 6.2.1.

The experiment of the chapter's Section 6.2.1: a one-hidden-layer network

.. math::

    \Phi(x) = w^T \tanh(\theta^T x + b), \qquad \theta \in V_{n,p},

is fitted by least squares to the outputs :math:`y = c^T \tanh(\theta_*^T x)` of a teacher with
:math:`\theta_* \in V_{n,p}` and fixed :math:`c = (-1, \dots, 1)` (evenly spaced). The constrained
weight :math:`\theta` is trained by :class:`~spdl_ref.optim.StiefelSGD` (exponential or Cayley map)
or by geoopt's ``RiemannianSGD`` on its canonical Stiefel manifold, the unconstrained
:math:`w, b` by plain SGD, so the runs differ only in the update of :math:`\theta`.
"""

from __future__ import annotations

import torch

from .. import _validate
from .._optional import optional_dependency
from ..loop import History, train_loop
from .riemannian import StiefelSGD, random_stiefel, stiefel_error

__all__ = ["stiefel_student"]

KINDS = ("exp", "cayley", "geoopt")


def _import_geoopt():
    with optional_dependency("riemannian", "stiefel_student(kind='geoopt')"):
        import geoopt
    return geoopt


def stiefel_student(
    kind: str,
    steps: int,
    *,
    lr: float = 0.1,
    n: int = 32,
    p: int = 8,
    samples: int = 256,
    seed: int = 1,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> History:
    r"""Train the student network with :math:`\theta \in V_{n,p}` (Section 6.2.1).

    A driver of :func:`spdl_ref.train.train_loop`, with two optimisers stepped in turn (one for
    :math:`\theta`, one for :math:`w, b`) or geoopt's one for all three.

    The data, teacher and initial :math:`\theta_0 \in V_{n,p}` are drawn from a CPU generator
    seeded with ``seed`` (so every ``kind`` starts from the same point); :math:`w = b = 0`
    initially. Each step minimises
    :math:`E = \frac{1}{2N}\sum_{k=1}^N (\Phi(x_k) - y_k)^2` over ``samples`` :math:`= N` points
    :math:`x_k \sim \mathcal N(0, I_n)`.

    Parameters
    ----------
    kind : {"exp", "cayley", "geoopt"}
        The update of :math:`\theta`: :class:`~spdl_ref.optim.StiefelSGD` with the exponential or
        the Cayley map, or ``geoopt.optim.RiemannianSGD`` on ``geoopt.Stiefel(canonical=True)``
        (geoopt is imported only for this kind; :class:`ImportError` if it is missing).
    steps : int
        Number of steps, :math:`\ge 1`.
    lr : float
        The step :math:`h > 0`, for all parameters.
    n, p : int
        :math:`\theta` is :math:`n \times p` with :math:`1 \le p \le n`.
    samples : int
        Number of training points :math:`N \ge 1`.
    seed : int
        Seed of the generator for the data and the initial point.
    device, dtype : optional
        Of all tensors (default: the CPU and the default dtype).

    Returns
    -------
    spdl_ref.train.History
        ``loss``: the training loss before each step; ``seconds``: the wall-clock time since
        the start after each step (it depends on the machine and its load);
        ``series["constraint_error"]``: :math:`\|\theta^T\theta - I_p\|_F` after each step.
    """
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a string, got {type(kind).__name__}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    steps = _validate.positive_int(steps, "steps")
    lr = _validate.positive_real(lr, "lr")
    n = _validate.positive_int(n, "n")
    p = _validate.positive_int(p, "p")
    if p > n:
        raise ValueError(f"p must be <= n for V_(n,p), got n={n}, p={p}")
    samples = _validate.positive_int(samples, "samples")
    seed = _validate.nonnegative_int(seed, "seed")
    _validate.float_dtype(dtype)
    geoopt = _import_geoopt() if kind == "geoopt" else None
    dtype = dtype or torch.get_default_dtype()

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, n, generator=gen, dtype=dtype).to(device or "cpu")
    teacher = random_stiefel(n, p, generator=gen, device=device, dtype=dtype)
    y = torch.tanh(x @ teacher) @ torch.linspace(-1, 1, p, dtype=dtype, device=device)
    theta0 = random_stiefel(n, p, generator=gen, device=device, dtype=dtype)
    w = torch.nn.Parameter(torch.zeros(p, dtype=dtype, device=device))
    b = torch.nn.Parameter(torch.zeros(p, dtype=dtype, device=device))
    if geoopt is not None:
        theta = geoopt.ManifoldParameter(theta0.clone(), manifold=geoopt.Stiefel(canonical=True))
        opts = [geoopt.optim.RiemannianSGD([theta, w, b], lr=lr)]
    else:
        theta = torch.nn.Parameter(theta0.clone())
        opts = [StiefelSGD([theta], lr=lr, retraction=kind), torch.optim.SGD([w, b], lr=lr)]

    def objective(_):
        return 0.5 * (torch.tanh(x @ theta + b) @ w - y).pow(2).mean()

    def constraint(i, history):
        history.record(constraint_error=stiefel_error(theta.detach()).item())

    return train_loop(
        {"theta": theta, "w": w, "b": b},
        objective,
        iterations=steps,
        optimizer=opts,
        callbacks=[constraint],
    )
