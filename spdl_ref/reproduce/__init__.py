"""``python -m spdl_ref.reproduce``: run an experiment of the book and keep its artifact.

The review's Figures 1-4 and the book's sweeps are registered experiments
(:mod:`spdl_ref.experiments`). This command runs one of them at a budget (``ci``: minutes on a
CPU; ``paper``: the review's own settings) on a device, with a progress bar that advances per
run, and writes ``OUT/<budget>/NAME/result.json`` with the PNG figures beside it::

    python -m spdl_ref.reproduce --list
    python -m spdl_ref.reproduce fig3 --budget paper --device cuda --runs 5
    python -m spdl_ref.reproduce sample_complexity --runs 4 --backend dask --workers 2

``result.json`` holds ``experiment``, ``budget``, ``device`` (and ``device_name``),
``git_commit`` (``null`` outside a git checkout) and ``git_dirty``, ``versions`` (Python,
torch, numpy, spdl_ref, the experiment's peers and the backend's engine), ``seconds``, and
``metrics``: ``runs`` (per task: the task, its metrics, its seconds and host) and
``aggregated`` (mean and spread over seeds, :func:`spdl_ref.experiments.aggregate`).

Bad input (an unknown name, a device this machine lacks, ``--runs`` < 1, an ``--out`` that
cannot be written, an unknown backend, ``--address`` with a backend that takes none) is exit
status 2 with one line on stderr. The same run is the function :func:`reproduce`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .. import _validate, config
from ..experiments import Experiment, aggregate, get
from ..experiments._registry import _environment
from ..experiments.results import artifact_path
from .backends import BACKENDS, TAKES_ADDRESS, open_backend

__all__ = ["BACKENDS", "TAKES_ADDRESS", "check_device", "git_commit", "reproduce", "versions"]

#: The folder, under ``--out``, of ``--smoke`` runs (kept apart from the budgets' artifacts).
SMOKE = "smoke"
_MISSING = object()


def check_device(device: torch.device | str) -> torch.device:
    """``device`` as a :class:`torch.device` if this machine has it, else a ``ValueError``.

    Where the experiments of Sections 1-6 of the review run.

    ``cuda`` and ``cuda:i`` need a CUDA device (and ``i`` below their count), ``mps`` Apple's
    GPU; ``meta`` is refused (it holds no numbers); any other type must take an allocation.
    Section: reproduction (every experiment builds its models and data on this device).

    >>> check_device("cpu")
    device(type='cpu')
    """
    d = _validate.device(device)
    if d is None:
        raise TypeError("device must be a torch.device or a string, got None")
    if d.type == "cpu":
        return d
    if d.type == "meta":
        raise ValueError("device 'meta' holds no numbers: an experiment needs a real device")
    if d.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ValueError(
                f"device {str(device)!r} is not available: no CUDA device here (torch "
                f"{torch.__version__}, {build})"
            )
        count = torch.cuda.device_count()
        if d.index is not None and d.index >= count:
            raise ValueError(
                f"device {str(device)!r} is not available: this machine has {count} CUDA "
                f"device(s), cuda:0 to cuda:{count - 1}"
            )
        return d
    if d.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {str(device)!r} is not available: no MPS (Apple) GPU here")
        return d
    try:
        torch.empty(1, device=d)
    except Exception as err:
        raise ValueError(f"device {str(device)!r} is not available here: {err}") from None
    return d


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        try:  # Linux names the processor model here; platform.processor() often does not
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("model name"):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or device.type


def versions(peers: Sequence[str] = ()) -> dict[str, str | None]:
    """Python, torch, numpy and spdl_ref versions, and those of the distributions ``peers``.

    Recorded with each result of the experiments of Sections 1-6.

    A peer that is not installed is ``None``. What ``result.json`` records (Section:
    reproduction).
    """
    from importlib import metadata

    import numpy

    from .. import __version__

    if isinstance(peers, str) or not all(isinstance(p, str) for p in peers):
        raise TypeError(f"peers must be a sequence of distribution names (str), got {peers!r}")
    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "spdl_ref": __version__,
    }
    if torch.version.cuda:
        out["cuda"] = torch.version.cuda
    for peer in peers:
        try:
            out[peer] = metadata.version(peer)
        except metadata.PackageNotFoundError:
            out[peer] = None
    return out


def _repository() -> Path:
    return Path(__file__).resolve().parents[2]


def git_commit(root: Path | str | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout ``root`` (default: the one holding spdl_ref).

    Recorded with each result of the experiments of Sections 1-6.

    ``(None, None)`` where ``root`` is not the top of a git work tree (an installed package)
    or git is missing. ``dirty`` says whether tracked files outside ``results/`` differ from
    the commit. Section: reproduction (what ``result.json`` records).
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path, a string or None, got {type(root).__name__}")
    root = Path(root) if root is not None else _repository()

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return None, None
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results")
    return commit, (None if status is None else bool(status))


@dataclass
class _Plan:
    experiment: Experiment
    budget: str
    device: torch.device
    runs: int
    seed: int
    tasks: list[dict]
    target: Path
    backend: Any
    smoke: bool = False
    time_limit: float | None = None
    progress: bool = True
    only: dict[str, Any] | None = None


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write to --out: {err}") from None


def prepare(
    name: str | Experiment,
    *,
    budget: str | None = None,
    device: torch.device | str | None = None,
    runs: int = 1,
    seed: int = 0,
    out: Path | str = "results",
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    time_limit: float | None = None,
    smoke: bool = False,
    progress: bool = True,
    only: Mapping[str, Any] | None = None,
) -> _Plan:
    """Check every argument of :func:`reproduce` and make the task list; run nothing.

    Raises ``ValueError``/``TypeError`` (bad input) or ``ImportError`` (a missing extra).
    """
    exp = name if isinstance(name, Experiment) else get(name)
    budget = config.budget() if budget is None else budget
    if budget not in config.BUDGETS:
        raise ValueError(f"budget must be one of {', '.join(config.BUDGETS)}, got {budget!r}")
    device = check_device(config.device() if device is None else device)
    runs = _validate.positive_int(runs, "runs")
    seed = _validate.nonnegative_int(seed, "seed")
    if time_limit is not None:
        time_limit = _validate.positive_real(time_limit, "time_limit")
    be = open_backend(backend, workers=workers, address=address)
    if smoke:
        if exp.smoke is None:
            raise ValueError(f"experiment {exp.name!r} has no smoke task")
        budget = "ci"
        tasks = [exp.smoke(seed + r) for r in range(runs)]
        for t in tasks:
            if not isinstance(t, dict) or "seed" not in t:
                raise TypeError(f"experiment {exp.name!r}: smoke must return a dict with a 'seed'")
    else:
        tasks = exp.make_tasks(budget, runs, seed)
        if only:
            if not isinstance(only, Mapping):
                raise TypeError(f"only must be a dict of task parameters, got {only!r}")
            kept = [t for t in tasks if all(t.get(k, _MISSING) == v for k, v in only.items())]
            if not kept:
                keys = sorted({k for t in tasks for k in t} - {"seed"})
                raise ValueError(
                    f"only selects nothing: no task of {exp.name!r} has {_label(dict(only))}; "
                    f"its task parameters: {', '.join(keys) or 'only seed'}"
                )
            tasks = kept
    target = artifact_path(exp.name, SMOKE if smoke else budget, out).parent
    _writable(target.parent)
    return _Plan(
        exp,
        budget,
        device,
        runs,
        seed,
        tasks,
        target,
        be,
        smoke,
        time_limit,
        progress,
        dict(only) if only and not smoke else None,
    )


def _rounds(tasks: Sequence[dict]) -> list[list[int]]:
    """Task indices grouped by seed, in order of first appearance: one round = one run."""
    order: dict[Any, list[int]] = {}
    for i, t in enumerate(tasks):
        order.setdefault(json.dumps(t["seed"]), []).append(i)
    return list(order.values())


def _label(task: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in task.items())


def execute_plan(plan: _Plan) -> dict[str, Any]:
    """Run a prepared plan on its (started) backend and write its artifact; return the record."""
    from tqdm.auto import tqdm

    exp, tasks = plan.experiment, plan.tasks
    device = str(plan.device)
    # Under a time limit the seeds run one round at a time; else every task goes at once.
    rounds = _rounds(tasks) if plan.time_limit is not None else [list(range(len(tasks)))]
    bar = tqdm(
        total=len(tasks),
        desc=f"{exp.name} [{plan.budget}, {device}]",
        unit="run",
        file=sys.stderr,
        # no bar where stderr is not a terminal (a log): the line per finished run stays
        disable=None if plan.progress else True,
    )

    def on_done(i: int, outcome: tuple) -> None:
        bar.set_postfix_str(_label(tasks[i]), refresh=False)
        bar.update(1)
        if plan.progress:
            bar.write(
                f"  run {i + 1}/{len(tasks)} ({_label(tasks[i])}): {outcome[1]:.1f} s",
                file=sys.stderr,
            )

    estimate = None
    if plan.time_limit is not None and exp.estimate is not None:
        with _environment(SPDL_BUDGET=plan.budget, SPDL_DEVICE=device):
            estimate = float(
                sum(
                    exp.estimate(dict(tasks[i]), budget=plan.budget, device=plan.device)
                    for i in rounds[0]
                )
            )
    start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    done: dict[int, tuple] = {}
    stopped = False
    # The estimate sizes the runs before they start; the slowest run so far stops them early.
    planned = len(rounds)
    if estimate and plan.time_limit is not None:  # an estimate is made only under a limit
        planned = max(1, min(planned, int(plan.time_limit // estimate)))
    slowest = 0.0
    for r, members in enumerate(rounds):
        elapsed = time.perf_counter() - start
        late = plan.time_limit is not None and elapsed + slowest > plan.time_limit
        if r > 0 and (r >= planned or late):
            stopped = True
            break
        round_start = time.perf_counter()
        outcomes = plan.backend.map(
            exp.run,
            [tasks[i] for i in members],
            name=exp.name,
            budget=plan.budget,
            device=device,
            on_done=lambda j, o, members=members: on_done(members[j], o),
        )
        done.update(zip(members, outcomes, strict=True))
        slowest = max(slowest, time.perf_counter() - round_start)
    bar.close()
    seconds = time.perf_counter() - start
    kept = sorted(done)
    ran_tasks = [tasks[i] for i in kept]
    results = [done[i][0] for i in kept]
    record: dict[str, Any] = {
        "experiment": exp.name,
        "description": exp.description,
        "chapter": exp.chapter,
        "budget": plan.budget,
        "smoke": plan.smoke,
        "device": device,
        "device_name": _device_name(plan.device),
        "backend": plan.backend.name,
        "workers": plan.backend.workers,
        "runs": len({json.dumps(t["seed"]) for t in ran_tasks}),
        "runs_requested": len(_rounds(tasks)),
        "seed": plan.seed,
        "only": plan.only,
        "started": started,
        "seconds": seconds,
    }
    if plan.time_limit is not None:
        record["time_limit"] = plan.time_limit
        record["estimated_seconds_per_run"] = estimate
        record["stopped_by_time_limit"] = stopped
    commit, dirty = git_commit()
    record["git_commit"], record["git_dirty"] = commit, dirty
    record["versions"] = {**versions(exp.peers), **plan.backend.versions}
    record["metrics"] = {
        "runs": [
            {"task": tasks[i], "metrics": done[i][0], "seconds": done[i][1], "host": done[i][2]}
            for i in kept
        ],
        "aggregated": aggregate(ran_tasks, results),
    }
    _write(plan, record, ran_tasks, results)
    return record


def _write(plan: _Plan, record: dict, tasks: list[dict], results: list[dict]) -> None:
    """Write the artifact into a fresh folder, then put it in place of the old one."""
    target = plan.target
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        figures: list[str] = []
        if plan.experiment.plot is not None:
            # No backend is forced here: matplotlib picks a non-interactive one where there is no
            # display, and setting MPLBACKEND in os.environ would leak into every process started
            # after this call (a test run's notebook kernels lost their inline figures to it).
            # Figures are drawn on the host from plain numbers: any tensor a plot makes is a
            # CPU tensor, whatever the default device of the caller.
            with torch.device("cpu"):
                paths = plan.experiment.plot(tasks, results, stage) or []
            for p in paths:
                p = Path(p).resolve()
                if p.parent != stage.resolve() or not p.is_file():
                    raise ValueError(
                        f"experiment {plan.experiment.name!r}: plot must write its figures into "
                        f"the folder it is given, got {p}"
                    )
                figures.append(p.name)
        record["figures"] = sorted(figures)
        text = json.dumps(record, indent=1, allow_nan=True)
        (stage / "result.json").write_text(text + "\n", encoding="utf-8")
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
        stage.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def reproduce(
    name: str | Experiment,
    *,
    budget: str | None = None,
    device: torch.device | str | None = None,
    runs: int = 1,
    seed: int = 0,
    out: Path | str = "results",
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    time_limit: float | None = None,
    smoke: bool = False,
    progress: bool = True,
    only: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run experiment ``name`` and write ``out/<budget>/name/result.json`` and its figures.

    ``name`` is a registered name (:func:`spdl_ref.experiments.names`) or an
    :class:`~spdl_ref.experiments.Experiment`.

    What ``python -m spdl_ref.reproduce`` does (see the module text). ``budget`` and
    ``device`` default to :func:`spdl_ref.config.budget` and :func:`spdl_ref.config.device`;
    ``runs`` seeds count from ``seed``. ``backend`` is ``"local"`` or ``"dask"``
    (:mod:`spdl_ref.reproduce.backends`). ``time_limit`` (seconds) runs the seeds one round
    at a time and starts no round that would end past it (at least one runs; an experiment's
    ``estimate`` sizes the first). ``smoke`` runs the experiment's smoke task instead, at
    ``ci``, into ``out/smoke/name``. ``only`` keeps the tasks whose parameters have the given
    values (e.g. ``{"model": "equivariant"}``). Returns the record written to
    ``result.json``. Section: reproduction of the review's Figures 1-4.
    """
    plan = prepare(
        name,
        budget=budget,
        device=device,
        runs=runs,
        seed=seed,
        out=out,
        backend=backend,
        workers=workers,
        address=address,
        time_limit=time_limit,
        smoke=smoke,
        progress=progress,
        only=only,
    )
    plan.backend.start()
    try:
        plan.backend.check_device(plan.device)
        return execute_plan(plan)
    finally:
        plan.backend.close()
