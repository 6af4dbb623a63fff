r"""Log-determinants of residual layers, Section 4.2.3.

For :math:`g(x) = x + f(x)` with :math:`\mathrm{Lip}(f) < 1` (eq. (44)),

.. math:: \log|\det(I + J_f)| = \operatorname{tr}\log(I + J_f)
          = \sum_{k \ge 1} \frac{(-1)^{k+1}}{k} \operatorname{tr}(J_f^k).

:func:`logdet_power_series` truncates the series after ``n_terms`` terms and estimates each trace
with Hutchinson's estimator :math:`\operatorname{tr}(B) \approx v^\top B v`,
:math:`\mathbb{E}[v v^\top] = I` (invertible ResNets): the truncation makes it biased.
:func:`logdet_russian_roulette` truncates at a random :math:`n` and reweights term :math:`k` by
:math:`1/P(n \ge k)`, which makes the estimate unbiased (Residual Flows). :func:`logdet_exact`
forms the Jacobian and is the reference. Products :math:`v^\top J_f^k` are vector-Jacobian
products, so no Jacobian is formed by the estimators.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from .. import _validate
from ._base import check_batch

__all__ = ["logdet_exact", "logdet_power_series", "logdet_russian_roulette"]


DISTRIBUTIONS = ("rademacher", "gaussian")


def _prepare(f, x):
    _validate.function(f, "f")
    check_batch(x, "x")
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        xg = x if x.requires_grad else x.detach().requires_grad_(True)
        fx = f(xg)
    if not isinstance(fx, torch.Tensor) or fx.shape != x.shape:
        got = tuple(fx.shape) if isinstance(fx, torch.Tensor) else type(fx).__name__
        raise ValueError(
            f"f must map x to a tensor of the same shape, got {got} from {tuple(x.shape)}"
        )
    _validate.finite_result(fx, "f(x)")
    return xg, fx, create_graph


def logdet_exact(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    r"""Exact :math:`\log|\det(I + \partial_x f(x))|` per sample, from the full Jacobian (Section
    4.2.3).

    Costs one vector-Jacobian product per feature; meant as the reference on small dimensions
    (and for training in two dimensions). Differentiable when grad mode is on.
    """
    xg, fx, create_graph = _prepare(f, x)
    n = x.shape[0]
    d = fx[0].numel()
    rows = []
    with torch.enable_grad():
        flat = fx.reshape(n, d)
        for j in range(d):
            (g,) = torch.autograd.grad(
                flat[:, j].sum(), xg, retain_graph=True, create_graph=create_graph
            )
            rows.append(g.reshape(n, d))
    jac = torch.stack(rows, dim=1)
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    return torch.linalg.slogdet(eye + jac).logabsdet


def _probe(x, generator, distribution):
    # drawn where the generator lives (x's device for the global one): no transfer per step
    where = generator.device if generator is not None else x.device
    if distribution == "rademacher":
        v = torch.randint(0, 2, x.shape, generator=generator, device=where).to(x.dtype) * 2 - 1
    else:
        v = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=where)
    return v if v.device == x.device else v.to(x.device)


def _series(f, x, n_max, weights, n_samples, generator, distribution):
    xg, fx, create_graph = _prepare(f, x)
    total = x.new_zeros(x.shape[0])
    growth = []  # |J^T w| / |w| per sample and term: at most Lip(f), and tends to rho(J_f)
    with torch.enable_grad():
        for _ in range(n_samples):
            v = _probe(x, generator, distribution)
            w = v
            for k in range(1, n_max + 1):
                norm = w.detach().flatten(1).norm(dim=1)
                (w,) = torch.autograd.grad(fx, xg, w, retain_graph=True, create_graph=create_graph)
                new = w.detach().flatten(1).norm(dim=1)
                growth.append(torch.where(norm > 0, new / norm.clamp_min(1e-30), 0 * new))
                term = (w * v).flatten(1).sum(1)
                total = total + weights[k - 1] * (-1) ** (k + 1) / k * term
    _check_convergence(torch.stack(growth).reshape(n_samples, n_max, -1), x.dtype)
    return total / n_samples


def _check_convergence(growth, dtype):
    r"""Refuse a series whose terms still grow at the truncation; warn when Lip(f) < 1 fails.

    ``growth[s, k, n]`` is :math:`\|J^\top w_{k}\| / \|w_{k}\|` for probe ``s``, term ``k``
    and sample ``n``. Each ratio is at most :math:`\|J_f(x_n)\|_2 \le \mathrm{Lip}(f)`, so a
    ratio above 1 proves :math:`\mathrm{Lip}(f) > 1`; the last ratios estimate the spectral
    radius of :math:`J_f`, and above 1 the terms of the series grow without bound.
    """
    one = 1 + 100 * torch.finfo(dtype).eps
    if not bool(torch.isfinite(growth).all()) or bool((growth[:, -1] > one).any()):
        worst = float(growth[:, -1].nan_to_num(float("inf")).max())
        raise ValueError(
            "f must have Lip(f) < 1 for the log-determinant series to converge: at x its terms "
            f"still grow by a factor {worst:.3g} per term at the truncation, so the estimate "
            "would be meaningless (use logdet_exact, or a residual branch with Lip(f) < 1)"
        )
    if bool((growth > one).any()):
        warnings.warn(
            f"Lip(f) > 1 at x: |J_f^T w| / |w| reached {float(growth.max()):.3g} > 1, so the "
            "convergence of the log-determinant series is not guaranteed (it needs Lip(f) < 1)",
            RuntimeWarning,
            stacklevel=4,
        )


def logdet_power_series(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    n_terms: int = 8,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    distribution: str = "rademacher",
) -> torch.Tensor:
    r"""Truncated power series of :math:`\log\det(I + J_f)` with Hutchinson traces (Section 4.2.3).

    .. math:: \log|\det(I + J_f(x))| \approx \sum_{k=1}^{n} \frac{(-1)^{k+1}}{k}\, v^\top J_f^k v

    averaged over ``n_samples`` probes :math:`v`. Biased by the truncation (the error is of
    order :math:`\mathrm{Lip}(f)^{n+1}/(n+1)` per dimension); converges only for
    :math:`\mathrm{Lip}(f) < 1`.

    Parameters
    ----------
    f : callable
        The residual branch :math:`f` of :math:`g = \mathrm{id} + f` (eq. (44)), mapping
        ``(N, ...)`` to the same shape.
    x : torch.Tensor
        Points ``(N, ...)``.
    n_terms : int
        Number of series terms :math:`n \ge 1`.
    n_samples : int
        Hutchinson probes per point.
    generator : torch.Generator or None
        Source of the probes.
    distribution : str
        ``"rademacher"`` or ``"gaussian"`` probes.

    Raises
    ------
    ValueError
        When the terms still grow at the truncation (:math:`\|J_f^\top w\| > \|w\|` for the
        last product at some sample: the series diverges there, as for
        :math:`\mathrm{Lip}(f) > 1`). A :class:`RuntimeWarning` is issued when an earlier
        product grew, which proves :math:`\mathrm{Lip}(f) > 1` although the terms decay.
    """
    n_terms = _validate.positive_int(n_terms, "n_terms")
    n_samples = _validate.positive_int(n_samples, "n_samples")
    _validate.generator(generator)
    _validate.choice(distribution, DISTRIBUTIONS, "distribution")
    return _series(f, x, n_terms, [1.0] * n_terms, n_samples, generator, distribution)


def logdet_russian_roulette(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    p: float = 0.5,
    n_exact: int = 2,
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    distribution: str = "rademacher",
) -> torch.Tensor:
    r"""Unbiased Russian-roulette estimate of :math:`\log\det(I + J_f)` (Residual Flows, Section
    4.2.3).

    The series is truncated at :math:`n = n_\mathrm{exact} + G`, :math:`G` geometric with
    :math:`P(G \ge j) = (1 - p)^j`, and term :math:`k` is divided by :math:`P(n \ge k)`; the
    expectation over :math:`n` and the Hutchinson probe is the full series, so the estimator is
    unbiased (given :math:`\mathrm{Lip}(f) < 1`). One truncation :math:`n` is drawn per call
    and shared by the batch.

    Parameters
    ----------
    f, x, n_samples, generator, distribution :
        As in :func:`logdet_power_series`.
    p : float
        Stopping probability :math:`p \in (0, 1)`.
    n_exact : int
        Terms always included (:math:`\ge 1`); lowers the variance.

    Raises
    ------
    ValueError
        As :func:`logdet_power_series`, when the terms grow at the drawn truncation.
    """
    p = _validate.open_unit_interval(p, "p")
    n_exact = _validate.positive_int(n_exact, "n_exact")
    n_samples = _validate.positive_int(n_samples, "n_samples")
    _validate.generator(generator)
    _validate.choice(distribution, DISTRIBUTIONS, "distribution")
    _validate.function(f, "f")
    check_batch(x, "x")
    # the truncation is a Python number: drawn on the CPU unless the generator lives elsewhere
    where = generator.device if generator is not None else torch.device("cpu")
    u = float(torch.rand((), generator=generator, dtype=torch.float64, device=where))
    extra = 0
    while u > p and extra < 10_000:  # P(G >= j) = (1 - p)^j
        extra += 1
        u = float(torch.rand((), generator=generator, dtype=torch.float64, device=where))
    n_max = n_exact + extra
    weights = [1.0 if k <= n_exact else (1 - p) ** -(k - n_exact) for k in range(1, n_max + 1)]
    return _series(f, x, n_max, weights, n_samples, generator, distribution)
