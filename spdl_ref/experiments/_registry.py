"""The experiment registry: what a chapter and ``python -m spdl_ref.reproduce`` both run.

An experiment is split into independent *tasks* (one seed of one model at one size, say), so
that a sweep of seeds x models x sizes can run task by task on one machine or spread over a
cluster without the experiment knowing which. A chapter runs the same tasks in-process.

Each experiment is an :class:`Experiment` with

* ``tasks(budget, runs, seed)`` -- the list of task parameter dicts (JSON-serialisable, each
  with a ``"seed"``), sized by the budget (``"ci"`` or ``"paper"``, see
  :func:`spdl_ref.config.budget`);
* ``run(task, budget=..., device=...)`` -- runs one task and returns its metrics, a dict of
  JSON-serialisable values (numbers, lists of numbers, strings). It builds every model, data
  set and random generator on ``device`` and reads all its sizes from ``budget``;
* optionally ``plot(tasks, results, out_dir)`` -- writes PNG figures and returns their paths;
* optionally ``smoke(seed)`` -- one task with the smallest sizes that still run every code path
  (a second or two on a CPU), run with ``budget="ci"``: what the tests use, e.g. to catch a
  tensor made without the experiment's device (``tests/test_devices_meta.py`` runs it with
  torch's default device set to ``"meta"``: build third-party layers that make their own
  tensors, such as escnn's, inside ``with torch.device(device):``);
* optionally ``estimate(task, budget=..., device=...)`` -- the seconds one task will take,
  from timing a step or two of it: how ``./dev gpu-check`` sizes the number of runs to its
  time limit before it starts them.

:func:`run_task` runs one task the same way wherever it lands (this process, another process,
a cluster worker): ``SPDL_BUDGET`` and ``SPDL_DEVICE`` are set to the task's budget and device
while it runs, so code that reads :func:`spdl_ref.config.budget` agrees with the ``budget``
argument, and Python's, NumPy's and PyTorch's global generators are seeded with the task's
``"seed"``, so a task's numbers do not depend on what ran before it in the same process. A
process runs one task at a time (a worker's other threads wait).

:func:`aggregate` gives the mean and spread over seeds of every numeric metric, grouped by
the task's other parameters.

Example: a toy experiment with two seeds of one task each.

>>> from spdl_ref.experiments import Experiment, aggregate
>>> toy = Experiment(
...     name="toy",
...     description="mean of a few normal draws",
...     chapter="chapters/ch1_introduction",
...     tasks=lambda budget, runs, seed: [{"seed": seed + r} for r in range(runs)],
...     run=lambda task, budget, device: {
...         "mean": float(
...             torch.randn(8, generator=torch.Generator().manual_seed(task["seed"])).mean()
...         )
...     },
... )
>>> tasks = toy.make_tasks("ci", runs=2)
>>> results = [toy.run(t, budget="ci", device="cpu") for t in tasks]
>>> aggregate(tasks, results)[0]["runs"]
2
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import _validate
from ..config import BUDGETS, seed_everything

__all__ = ["Experiment", "aggregate", "get", "names", "register", "run_task", "run_tasks"]

Task = dict[str, Any]
Metrics = dict[str, Any]


@dataclass(frozen=True)
class Experiment:
    """One reproducible experiment of the book, split into independent tasks (see module text).

    Each reproduces a figure or a claim of Sections 1-6 of the review.

    Parameters
    ----------
    name : str
        The name ``python -m spdl_ref.reproduce NAME`` takes (lower case, ``[a-z0-9_]``).
    description : str
        One line: what it reproduces (figure, equation or section of the review).
    chapter : str
        The chapter page that shows it, e.g. ``"chapters/ch5_equivariant"``.
    tasks : callable
        ``tasks(budget, runs, seed) -> list[dict]``.
    run : callable
        ``run(task, *, budget, device) -> dict`` of metrics.
    plot : callable or None
        ``plot(tasks, results, out_dir) -> list[pathlib.Path]`` of written PNG files.
    peers : tuple of str
        Distribution names of peer libraries it uses, whose versions a result records.
    smoke : callable or None
        ``smoke(seed) -> dict``: one tiny task (see the module text).
    estimate : callable or None
        ``estimate(task, *, budget, device) -> float``: the seconds ``run`` will take on that
        task, from timing a step or two (see the module text).
    """

    name: str
    description: str
    chapter: str
    tasks: Callable[[str, int, int], list[Task]]
    run: Callable[..., Metrics]
    plot: Callable[[list[Task], list[Metrics], Path], list[Path]] | None = None
    peers: tuple[str, ...] = field(default_factory=tuple)
    smoke: Callable[[int], Task] | None = None
    estimate: Callable[..., float] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.replace("_", "a").isalnum():
            raise ValueError(f"name must be a non-empty identifier of [a-z0-9_], got {self.name!r}")
        if self.name != self.name.lower():
            raise ValueError(f"name must be lower case, got {self.name!r}")
        for attr in ("tasks", "run"):
            if not callable(getattr(self, attr)):
                raise TypeError(f"{attr} must be callable")
        if self.plot is not None and not callable(self.plot):
            raise TypeError("plot must be callable or None")
        if self.smoke is not None and not callable(self.smoke):
            raise TypeError("smoke must be callable or None")
        if self.estimate is not None and not callable(self.estimate):
            raise TypeError("estimate must be callable or None")

    def make_tasks(self, budget: str, runs: int = 1, seed: int = 0) -> list[Task]:
        """The validated task list for ``budget``, with ``runs`` seeds counted from ``seed``."""
        if budget not in BUDGETS:
            raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
        runs = _validate.positive_int(runs, "runs")
        seed = _validate.nonnegative_int(seed, "seed")
        tasks = self.tasks(budget, runs, seed)
        if not tasks:
            raise ValueError(f"experiment {self.name!r} made no tasks")
        for t in tasks:
            if not isinstance(t, dict) or "seed" not in t:
                raise TypeError(f"experiment {self.name!r}: each task must be a dict with a 'seed'")
        return tasks


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry (its name must be new) and return it.

    The registry holds the experiments of Sections 1-6 of the review."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be an Experiment, got {type(experiment).__name__}")
    if experiment.name in _REGISTRY and _REGISTRY[experiment.name] is not experiment:
        raise ValueError(f"an experiment named {experiment.name!r} is already registered")
    _REGISTRY[experiment.name] = experiment
    return experiment


def _discover() -> None:
    # Every public module of this package registers its experiments when imported.
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(_package_path()):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__package__}.{info.name}")


def _package_path() -> list[str]:
    return [str(Path(__file__).resolve().parent)]


def names() -> list[str]:
    """The registered experiment names, sorted (every module of this package is loaded first).

    The experiments are those of Sections 1-6 of the review."""
    _discover()
    return sorted(_REGISTRY)


def get(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name is a ValueError that lists the known ones.

    The experiments are those of Sections 1-6 of the review."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    _discover()
    if name not in _REGISTRY:
        known = ", ".join(names()) or "(none)"
        raise ValueError(f"unknown experiment {name!r}; known: {known}")
    return _REGISTRY[name]


def run_task(
    experiment: Experiment | str, task: Task, *, budget: str, device: torch.device | str
) -> Metrics:
    """Run one task of ``experiment`` here, as every backend runs it (see the module text).

    The experiments are those of Sections 1-6 of the review.

    ``SPDL_BUDGET``/``SPDL_DEVICE`` hold ``budget`` and ``device`` while it runs, the global
    generators are seeded with ``task["seed"]``, and the metrics must be a dict of JSON values.
    """
    exp = get(experiment) if isinstance(experiment, str) else experiment
    if not isinstance(exp, Experiment):
        raise TypeError(f"experiment must be an Experiment or a name, got {type(exp).__name__}")
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    return execute(exp.run, task, budget, str(_validate.device(device)), name=exp.name)[0]


def execute(
    run: Callable[..., Metrics], task: Task, budget: str, device: str, *, name: str = "?"
) -> tuple[Metrics, float, str]:
    """What a worker runs: ``run(task, budget=..., device=...)`` under :func:`run_task`'s rules.

    A module-level function of plain arguments, so that a process pool or a cluster can ship
    it. Returns ``(metrics, seconds, host)``.
    """
    if not isinstance(task, dict) or "seed" not in task:
        raise TypeError(f"experiment {name!r}: a task must be a dict with a 'seed', got {task!r}")
    # One task at a time per process: the environment and the global generators are shared by
    # its threads (a Dask worker with several threads runs its tasks one after the other).
    with _ONE_TASK_AT_A_TIME, _environment(SPDL_BUDGET=budget, SPDL_DEVICE=device):
        seed_everything(task["seed"])
        start = time.perf_counter()
        metrics = run(dict(task), budget=budget, device=torch.device(device))
        seconds = time.perf_counter() - start
    _check_metrics(metrics, name)
    return metrics, seconds, socket.gethostname()


_ONE_TASK_AT_A_TIME = threading.RLock()


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def save_figure(fig: Any, out_dir: Path | str, name: str, dpi: int | None = None) -> list[Path]:
    """Write a matplotlib figure to ``out_dir/name``, close it, and return ``[path]``: the end of
    every experiment's ``plot`` (the PNG next to ``result.json``; reproduction of Figures 1-4)."""
    import matplotlib.pyplot as plt

    path = Path(out_dir) / name
    fig.savefig(path, **({} if dpi is None else {"dpi": dpi}))
    plt.close(fig)
    return [path]


def task_sizes(
    task: Any,
    budget: str,
    sizes: dict[str, dict[str, int]],
    key: str | None = None,
    allowed: Any = None,
) -> dict[str, int]:
    """The sizes of ``budget`` (``sizes[budget]``) with the task's own integer overrides.

    Checks what every task of a sized experiment must satisfy: ``budget`` is a known budget,
    ``task`` is a dict with a non-negative ``seed``, ``task[key]`` is one of ``allowed`` (where
    ``key`` is given), and any size the task overrides is a positive integer. Shared by the
    experiments of Figure 1 and Sections 2.1, 2.3 and 2.4.1.
    """
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    if not isinstance(task, dict) or (key is not None and task.get(key) not in allowed):
        rule = f" with a {key!r} in {sorted(allowed)}" if key is not None else ""
        raise ValueError(f"task must be a dict{rule}, got {task!r}")
    _validate.nonnegative_int(task.get("seed"), "task['seed']")
    out = dict(sizes[budget])
    for name in out:
        if name in task:
            out[name] = _validate.positive_int(task[name], f"task[{name!r}]")
    return out


def _check_metrics(metrics: Any, name: str) -> None:
    if not isinstance(metrics, dict) or not all(isinstance(k, str) for k in metrics):
        raise TypeError(
            f"experiment {name!r}: run must return a dict with str keys, got "
            f"{type(metrics).__name__}"
        )
    for key, value in metrics.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"experiment {name!r}: metric {key!r} must be a JSON value (number, string, "
                f"bool, None or a list/dict of them), got {type(value).__name__}"
            ) from err


def run_tasks(
    experiment: Experiment | str,
    *,
    budget: str,
    device: torch.device | str,
    runs: int = 1,
    seed: int = 0,
) -> tuple[list[Task], list[Metrics]]:
    """Run every task of ``experiment`` here, one after the other (what a chapter does).

    The experiments are those of Sections 1-6 of the review.

    Returns ``(tasks, results)`` in task order. Each task runs through :func:`run_task`, as
    ``python -m spdl_ref.reproduce`` runs it on any backend, so both give the same numbers.
    """
    exp = get(experiment) if isinstance(experiment, str) else experiment
    if not isinstance(exp, Experiment):
        raise TypeError(f"experiment must be an Experiment or a name, got {type(exp).__name__}")
    checked = _validate.device(device, "device")
    if checked is None:
        raise TypeError("device must be a torch.device or a string, got None")
    tasks = exp.make_tasks(budget, runs, seed)
    return tasks, [run_task(exp, t, budget=budget, device=checked) for t in tasks]


def aggregate(tasks: Sequence[Task], results: Sequence[Metrics]) -> list[dict[str, Any]]:
    """Mean and spread over seeds of every numeric metric, per group of equal other parameters.

    The statistics the tables of the experiments of Sections 1-6 report.

    Tasks that differ only in ``"seed"`` form a group. For each group the result holds the
    group's parameters, ``"runs"`` (the number of seeds) and, for each metric that is a real
    number in every run, ``{"mean", "std", "min", "max"}`` (``std`` is the sample standard
    deviation, 0 for a single run).
    """
    if len(tasks) != len(results):
        raise ValueError(
            f"tasks and results must have the same length, got {len(tasks)} and {len(results)}"
        )
    for task, res in zip(tasks, results, strict=True):
        if not isinstance(task, dict) or not isinstance(res, dict):
            raise TypeError(
                "tasks and results must hold dicts (a task's parameters, a run's metrics), got "
                f"{type(task).__name__} and {type(res).__name__}"
            )
    groups: dict[str, dict[str, Any]] = {}
    for task, res in zip(tasks, results, strict=True):
        params = {k: v for k, v in task.items() if k != "seed"}
        key = repr(sorted(params.items()))
        g = groups.setdefault(key, {"params": params, "metrics": []})
        g["metrics"].append(res)
    out = []
    for g in groups.values():
        row: dict[str, Any] = dict(g["params"])
        row["runs"] = len(g["metrics"])
        keys = set.intersection(*(set(m) for m in g["metrics"]))
        for k in sorted(keys):
            vals = [m[k] for m in g["metrics"]]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                vals = [float(v) for v in vals]
                finite = all(math.isfinite(v) for v in vals)
                row[k] = {
                    "mean": statistics.fmean(vals),
                    "std": statistics.stdev(vals) if len(vals) > 1 and finite else 0.0,
                    "min": min(vals),
                    "max": max(vals),
                }
        out.append(row)
    return out
