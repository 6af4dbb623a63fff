r"""Deep limits over the depth :math:`K` (Theorem 3.3, Section 3.4.3), seeds as independent tasks.

Registered as ``deep_limits``; Chapter 3 runs it. The data are 32 two-moons points, the
network's field is (8) with :math:`\sigma = \tanh` on :math:`[0, T]`, :math:`T = 2`, the data fit
:math:`\frac1N \sum_n \frac12 (z_{n,1}(T) - y_n)^2`. Task kinds (``"problem"``, ``"method"``):

``("h1", "explicit_euler")`` and ``("h1", "heun")``
    Minimise (40) with :math:`\lambda = 10^{-2}` for one depth :math:`K` from a random start
    drawn with the task's seed (a *cold* start: no depth sees another's minimiser), by L-BFGS
    (:func:`spdl_ref.control.minimise`). Explicit Euler is the ResNet (6); Heun's method is an
    :class:`~spdl_ref.ode.ODENet` of the same field, another architecture with the same
    continuous limit (41) (Section 3.4.3). Both start from the same :math:`\theta`. Besides the
    minimal value the task returns :math:`E^\infty` (41) of the minimiser's interpolant, by a
    fine RK4 solve (:func:`spdl_ref.control.continuous_objective`), twice, with :math:`n` and
    :math:`2n` steps per interval, whose difference bounds the solve's error.
``("h1", "continuous")``
    Minimise (41) itself over piecewise-linear controls with :math:`J` intervals
    (:class:`~spdl_ref.control.PiecewiseLinearControl`), fine RK4 solve: the reference value
    for :math:`\min E^\infty` and its minimiser.
``("tv", "explicit_euler")``
    The total-variation question of Section 3.4.3: (40) with the :math:`H^1` term replaced by
    :math:`\|\theta^0\|^2 + \mathrm{TV}(\theta)` (:func:`spdl_ref.control.tv_norm`), by
    proximal gradient steps with the exact TV prox (:func:`spdl_ref.control.tv_prox`), along one
    branch: each depth starts from the previous minimiser refined
    (:func:`spdl_ref.control.prolong`). One task runs the whole branch.

Every task builds its data, networks and generators on ``device``; :func:`summarise` turns the
results into the quantities Chapter 3 shows and asserts (best value over seeds, spread over
seeds, distances to the reference minimiser, fitted rates in :math:`K`).
"""

from __future__ import annotations

import functools
import itertools
import time
from pathlib import Path
from typing import TypedDict, cast

import torch

from .. import _validate, config
from ..config import BUDGETS
from ..control import (
    PiecewiseLinearControl,
    SquaredFit,
    autograd_gradient,
    continuous_objective,
    deep_limit_objective,
    gradient_norm,
    h1_discrete,
    l2_distance,
    minimise,
    prolong,
    proximal_gradient,
    squared_fit,
    tv_norm,
    tv_prox,
)
from ..data import labels_to_signs, two_moons
from ..ode import ODENet, PlainField, ResNet, fitted_order
from ._registry import Experiment, register, save_figure

__all__ = [
    "EXPERIMENT",
    "FINAL_TIME",
    "INIT_STD",
    "LAMBDA",
    "SIZES",
    "TV_LAMBDA",
    "network",
    "plot",
    "problem_data",
    "run",
    "summarise",
    "tasks",
]

#: Final time :math:`T`, weight :math:`\lambda` of (40)-(41), spread of the random starts.
FINAL_TIME, LAMBDA, INIT_STD = 2.0, 1e-2, 0.5
#: Weight of the total variation (and of :math:`\|\theta^0\|^2`) in the TV problems.
TV_LAMBDA = 1e-2


class _Sizes(TypedDict):
    depths: list[int]
    max_iter: int
    reference: int
    substeps: int
    tv_depths: list[int]
    tv_iterations: int


#: Sizes by budget: depths K of the cold starts, intervals J and RK4 steps per interval n of the
#: reference (the fine step T / (J n) of every evaluation of (41)), the TV branch's depths and
#: proximal-gradient iterations per depth.
SIZES: dict[str, _Sizes] = {
    "ci": {
        "depths": [4, 8, 16, 32],
        "max_iter": 400,
        "reference": 32,
        "substeps": 1,
        "tv_depths": [4, 8, 16, 32],
        "tv_iterations": 1500,
    },
    "paper": {
        "depths": [4, 8, 16, 32, 64, 128],
        "max_iter": 1500,
        "reference": 128,
        "substeps": 1,
        "tv_depths": [4, 8, 16, 32, 64, 128],
        "tv_iterations": 6000,
    },
}

_DISCRETE = ("explicit_euler", "heun")


def problem_data(
    device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, SquaredFit]:
    """The 32 two-moons points (seed 3, noise 0.1, centred) and their data fit, on ``device``.
    See Theorem 3.3 in Section 3.3 of the review.

    ``device`` defaults to :func:`spdl_ref.config.device`. The points are drawn on the CPU, as
    :func:`spdl_ref.data.two_moons` does, so they are the same on every device.
    """
    device = torch.device(device) if device is not None else config.device()
    with torch.device("cpu"):
        x, y = two_moons(32, noise=0.1, seed=3, dtype=dtype, device=device)
    x = x - torch.tensor([0.5, 0.25], dtype=dtype, device=x.device)
    return x, squared_fit(labels_to_signs(y, dtype=dtype)[:, 0].to(x.device))


def network(
    method: str,
    depth: int,
    seed: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> ResNet | ODENet:
    r"""A network of ``depth`` layers with a random :math:`\theta` drawn from ``seed``.

    ``"explicit_euler"``: the :class:`~spdl_ref.ode.ResNet` (6); ``"heun"``: an
    :class:`~spdl_ref.ode.ODENet` of the field (8) (:class:`~spdl_ref.ode.PlainField`) with
    Heun's method, carrying the same :math:`\theta` as the ResNet of the same seed. Built on
    ``device`` (default :func:`spdl_ref.config.device`). Entries of
    :math:`A^k` are :math:`N(0, 0.5^2/2)`, of :math:`b^k` :math:`N(0, 0.5^2)`.
    """
    method = _validate.choice(method, _DISCRETE, "method")
    device = torch.device(device) if device is not None else config.device()
    gen = torch.Generator(device=device).manual_seed(_validate.nonnegative_int(seed, "seed"))
    net = ResNet(
        2, depth, T=FINAL_TIME, init_std=INIT_STD, dtype=dtype, device=device, generator=gen
    )
    if method == "explicit_euler":
        return net
    field = PlainField(2, depth, init_std=0.0, dtype=dtype, device=device)
    with torch.no_grad():
        field.A.copy_(net.A)
        field.b.copy_(net.b)
    return ODENet(field, method, T=FINAL_TIME)


def _layer_rows(model: ResNet | ODENet) -> list:
    """The parameters of each layer as one row of numbers (JSON), the layer order of the model."""
    params = dict(model.named_parameters())
    names = list(model.layer_parameters(0))
    rows = torch.cat([params[n].detach().reshape(model.depth, -1) for n in names], 1)
    return rows.cpu().tolist()


def _control_rows(control: PiecewiseLinearControl) -> list:
    J = control.intervals
    return torch.cat([v.detach().reshape(J + 1, -1) for v in control.values.values()], 1).tolist()


def _e_infinity(control, x, fit, sizes):
    r""":math:`E^\infty` (41) with the fine step :math:`T / (J n)` of the reference, and halved.

    The step is the same for every control (an interpolant with :math:`K` intervals takes
    :math:`Jn/K` steps per interval), so all values carry the same solve error; the second value,
    with half the step, measures it.
    """
    n = max(1, sizes["reference"] * sizes["substeps"] // control.intervals)
    with torch.no_grad():
        return [
            float(continuous_objective(control, x, fit, LAMBDA, steps_per_interval=m))
            for m in (n, 2 * n)
        ]


def _run_discrete(task, sizes, device):
    x, fit = problem_data(device)
    net = network(task["method"], task["K"], task["seed"], device)
    objective = functools.partial(deep_limit_objective, net, x, fit, LAMBDA)
    value = minimise(net, objective, max_iter=task.get("max_iter", sizes["max_iter"]))
    grad = gradient_norm(autograd_gradient(net, objective()))
    with torch.no_grad():
        data_fit = float(fit(net(x)))
        reg = float(h1_discrete(net))
    e_inf, e_inf_fine = _e_infinity(PiecewiseLinearControl.from_network(net), x, fit, sizes)
    return {
        "value": value,
        "data_fit": data_fit,
        "regulariser": reg,
        "gradient_norm": grad,
        "E_infinity": e_inf,
        "solve_error": abs(e_inf_fine - e_inf),
        "theta": _layer_rows(net),
    }


def _run_continuous(task, sizes, device):
    x, fit = problem_data(device)
    start = network("explicit_euler", task["K"], task["seed"], device)
    control = PiecewiseLinearControl.from_network(start)
    n = sizes["substeps"]
    objective = functools.partial(
        continuous_objective, control, x, fit, LAMBDA, steps_per_interval=n
    )
    value = minimise(
        control.parameters(), objective, max_iter=task.get("max_iter", sizes["max_iter"])
    )
    grads = torch.autograd.grad(objective(), list(control.values.values()))
    e_inf, e_inf_fine = _e_infinity(control, x, fit, sizes)
    return {
        "value": value,
        # a tensor: the sum over the (non-empty) gradients of the control's values
        "gradient_norm": float(torch.sqrt(cast(torch.Tensor, sum(g.pow(2).sum() for g in grads)))),
        "E_infinity": e_inf,
        "solve_error": abs(e_inf_fine - e_inf),
        "theta": _control_rows(control),
    }


def _tv_objective(net, x, fit):
    """The smooth part of the TV problem: data fit plus :math:`\\lambda \\|\\theta^0\\|^2`."""

    def loss(z):
        first = sum(v.pow(2).sum() for v in net.layer_parameters(0).values())
        return fit(z) + TV_LAMBDA * first

    return loss


def _run_tv(task, sizes, device):
    x, fit = problem_data(device)
    depths = list(task.get("depths", sizes["tv_depths"]))
    iterations = task.get("iterations", sizes["tv_iterations"])
    net = network("explicit_euler", depths[0], task["seed"], device)
    assert isinstance(net, ResNet)  # explicit Euler builds the ResNet (6), which prolong takes
    prox = {"A": tv_prox(TV_LAMBDA), "b": tv_prox(TV_LAMBDA)}
    out = {"depths": depths, "values": [], "jumps": [], "tv": [], "theta": [], "last_change": []}
    for i, K in enumerate(depths):
        if i:
            net = prolong(net, K // depths[i - 1])
        loss = _tv_objective(net, x, fit)
        history = proximal_gradient(net, x, loss, prox=prox, tau=1.0, iterations=iterations)
        with torch.no_grad():
            tv = float(tv_norm(net))
            rows = torch.tensor(_layer_rows(net), dtype=torch.float64, device="cpu")
            jumps = int(((rows[1:] - rows[:-1]).abs().sum(1) > 1e-9).sum())
            out["values"].append(float(loss(net(x))) + TV_LAMBDA * tv)
        out["jumps"].append(jumps)
        out["tv"].append(tv)
        out["theta"].append(rows.tolist())
        out["last_change"].append(abs(history.loss[-1] - history.loss[-2]))
    return out


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """Cold starts per seed, method and depth; the reference per seed; one TV branch (seed 0).

    See Theorem 3.3 in Section 3.3 of the review."""
    sizes = SIZES[budget]
    out = []
    for r in range(runs):
        s = seed + r
        out += [
            {"seed": s, "problem": "h1", "method": m, "K": K}
            for m in _DISCRETE
            for K in sizes["depths"]
        ]
        out.append({"seed": s, "problem": "h1", "method": "continuous", "K": sizes["reference"]})
    out.append({"seed": seed, "problem": "tv", "method": "explicit_euler", "K": 0})
    return out


def run(task: dict, *, budget: str, device: torch.device | str) -> dict:
    """Run one task (see the module text); sizes from ``budget``, everything on ``device``.
    See Theorem 3.3 in Section 3.3 of the review.

    A task may override ``"max_iter"`` (L-BFGS iterations), and a TV task ``"depths"`` and
    ``"iterations"`` (the smoke tasks do).
    """
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    sizes = SIZES[budget]
    device = torch.device(device)
    start = time.perf_counter()
    problem = _validate.choice(task["problem"], ("h1", "tv", "smoke"), "task['problem']")
    if problem == "smoke":
        out = _run_smoke(task, sizes, device)
    elif problem == "tv":
        out = _run_tv(task, sizes, device)
    elif task["method"] == "continuous":
        out = _run_continuous(task, sizes, device)
    else:
        out = _run_discrete(task, sizes, device)
    out["seconds"] = time.perf_counter() - start
    return out


def _as_control(task, theta):
    """A network or control carrying the ``theta`` rows of a result (for distances)."""
    # results are numbers: rebuilt on the CPU, in float64
    rows = torch.tensor(theta, dtype=torch.float64, device="cpu")
    if task["method"] == "continuous":
        values = {"A": rows[:, :4].reshape(-1, 2, 2), "b": rows[:, 4:]}
        resnet = ResNet(2, 1, T=FINAL_TIME, dtype=torch.float64, device="cpu")
        return PiecewiseLinearControl(resnet, values, FINAL_TIME)
    net = ResNet(2, rows.shape[0], T=FINAL_TIME, init_std=0.0, dtype=torch.float64, device="cpu")
    with torch.no_grad():
        net.A.copy_(rows[:, :4].reshape(-1, 2, 2))
        net.b.copy_(rows[:, 4:])
    return net


def summarise(task_list: list, results: list) -> dict:
    r"""What Chapter 3 shows and asserts, from the tasks and results of this experiment.
    See Theorem 3.3 in Section 3.3 of the review.

    Returns a dict with

    ``"reference"``
        the best (lowest) reference value :math:`\min E^\infty` over seeds, its spread over
        seeds, the largest solve error and gradient norm;
    ``"h1"``
        per method, per depth: the best value over seeds (the estimate of
        :math:`\min E^{(K)}`) and the spread (largest minus smallest), :math:`E^\infty` of the
        best minimiser's interpolant, the :math:`L^2` distance of the best minimiser to the
        reference minimiser (:func:`spdl_ref.control.l2_distance`), the largest gradient norm
        and solve error; and per method the fitted rates in :math:`K`
        (:func:`spdl_ref.ode.fitted_order`) of :math:`|\min E^{(K)} - \min E^\infty|`, of the
        distance, and of :math:`E^\infty(\hat\theta^{(K)}) - \min E^\infty`;
    ``"tv"``
        the TV branch's depths, values, jumps, TV, the :math:`L^2` distances of consecutive
        minimisers and their fitted rate.
    """
    by_kind: dict = {}
    for task, res in zip(task_list, results, strict=True):
        by_kind.setdefault((task["problem"], task["method"]), []).append((task, res))
    refs = by_kind[("h1", "continuous")]
    ref_task, ref_res = min(refs, key=lambda tr: tr[1]["value"])
    best_control = _as_control(ref_task, ref_res["theta"])
    E_ref = ref_res["value"]
    out = {
        "reference": {
            "J": ref_task["K"],
            "value": E_ref,
            "spread": max(r["value"] for _, r in refs) - E_ref,
            "solve_error": max(r["solve_error"] for _, r in refs),
            "gradient_norm": max(r["gradient_norm"] for _, r in refs),
            "seeds": len(refs),
        },
        "h1": {},
    }
    for method in _DISCRETE:
        rows: dict[int, list[tuple[dict, dict]]] = {}
        for task, res in by_kind.get(("h1", method), []):
            rows.setdefault(task["K"], []).append((task, res))
        depths = sorted(rows)
        table = []
        for K in depths:
            best_task, best = min(rows[K], key=lambda tr: tr[1]["value"])
            table.append(
                {
                    "K": K,
                    "value": best["value"],
                    "spread": max(r["value"] for _, r in rows[K]) - best["value"],
                    "E_infinity": best["E_infinity"],
                    "distance": l2_distance(_as_control(best_task, best["theta"]), best_control),
                    "gradient_norm": max(r["gradient_norm"] for _, r in rows[K]),
                    "solve_error": max(r["solve_error"] for _, r in rows[K]),
                    "seeds": len(rows[K]),
                }
            )
        rates = {
            "value_gap": fitted_order(depths, [abs(t["value"] - E_ref) for t in table]),
            "distance": fitted_order(depths, [t["distance"] for t in table]),
            "E_infinity_gap": fitted_order(depths, [t["E_infinity"] - E_ref for t in table]),
        }
        out["h1"][method] = {"table": table, "rates": rates}
    tv = by_kind.get(("tv", "explicit_euler"))
    if tv:
        task, res = tv[0]
        nets = [_as_control({"method": "explicit_euler"}, th) for th in res["theta"]]
        distances = [l2_distance(a, b) for a, b in itertools.pairwise(nets)]
        out["tv"] = {
            "depths": res["depths"],
            "values": res["values"],
            "jumps": res["jumps"],
            "tv": res["tv"],
            "last_change": res["last_change"],
            "distances": distances,
            "distance_rate": fitted_order(res["depths"][:-1], distances),
        }
    return out


def plot(task_list: list, results: list, out_dir: Path | str) -> list[Path]:
    """Figure: values and distances against :math:`K` (log-log), and the TV minimisers' jumps.
    See Theorem 3.3 in Section 3.3 of the review.

    Nothing for a list of smoke tasks (their results have another layout).
    """
    if all(task["problem"] == "smoke" for task in task_list):
        return []

    import matplotlib.pyplot as plt

    from ..plotting import use_style

    use_style()
    s = summarise(task_list, results)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for method, marker in zip(_DISCRETE, "os", strict=True):
        table = s["h1"][method]["table"]
        depths = [t["K"] for t in table]
        gaps = [t["value"] - s["reference"]["value"] for t in table]
        distances = [t["distance"] for t in table]
        axes[0].loglog(depths, gaps, marker + "-", label=f"value gap, {method}")
        axes[0].loglog(depths, distances, marker + "--", label=f"L2 distance, {method}")
    axes[0].set_xlabel("K")
    axes[0].legend(fontsize=7)
    if "tv" in s:
        depths = s["tv"]["depths"]
        axes[1].semilogx(depths, s["tv"]["jumps"], "o-", label="jumps, TV minimiser")
        axes[1].semilogx(depths, [K - 1 for K in depths], "k:", label="K - 1")
        axes[1].set_xlabel("K")
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_dir, "deep_limits.png", dpi=120)


def _smoke(seed: int) -> dict:
    return {"seed": seed, "problem": "smoke", "method": "all", "K": 2}


def _run_smoke(task, sizes, device):
    """Every kind of task at the smallest sizes (two layers, two iterations)."""
    small = {"seed": task["seed"], "K": 2, "max_iter": 2}
    return {
        "h1_heun": _run_discrete({**small, "method": "heun"}, sizes, device),
        "h1_continuous": _run_continuous({**small, "method": "continuous"}, sizes, device),
        "tv": _run_tv({**small, "depths": [2, 4], "iterations": 2}, sizes, device),
    }


#: The registered experiment (:class:`~spdl_ref.experiments.Experiment`); run it with
#: ``python -m spdl_ref.reproduce deep_limits``.
EXPERIMENT = register(
    Experiment(
        name="deep_limits",
        description=(
            "Theorem 3.3 and Section 3.4.3: minimisers of (40) over K from cold starts (ResNet "
            "and a Heun ODENet), the continuous problem (41) by a fine solve, a TV branch"
        ),
        chapter="chapters/ch3_optimal_control",
        tasks=tasks,
        run=run,
        plot=plot,
        smoke=_smoke,
    )
)
