"""Where the tasks of ``python -m spdl_ref.reproduce`` run: this machine or a Dask cluster.

The tasks of an experiment are independent (see :mod:`spdl_ref.experiments`), so a sweep of
seeds x models x sizes spreads over workers without any scheduler of ours:

* ``local`` -- this machine. With one worker the tasks run in this process, one after the
  other; with ``W > 1`` workers, in ``W`` processes of a
  :class:`concurrent.futures.ProcessPoolExecutor` (started by a fork server, or with
  ``spawn``, so that CUDA works in them), each with ``cpu_count // W`` torch threads.
* ``dask`` -- a Dask distributed cluster (the ``cluster`` extra): a
  :class:`distributed.LocalCluster` of ``W`` single-threaded worker processes started on the
  fly, or an existing cluster at ``address`` (``tcp://host:port``, or the path of a scheduler
  file), e.g. one whose workers are Slurm jobs (``book/using.md``, section Reproduce).

Every backend runs a task through the same function
(the one :func:`spdl_ref.experiments.run_task` uses: budget and device set, global generators
seeded with the task's seed), so a task gives the same numbers wherever it lands, and every
backend returns the results in task order.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import uuid
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any

import torch

from .. import _validate
from .._optional import optional_dependency
from ..experiments._registry import execute

if TYPE_CHECKING:  # the ``cluster`` extra; imported where a Dask backend starts
    import distributed

__all__ = ["BACKENDS", "TAKES_ADDRESS", "DaskBackend", "LocalBackend", "open_backend"]

#: The backend names ``--backend`` takes.
BACKENDS = ("local", "dask")
#: The backends that connect to an existing cluster at ``--address``.
TAKES_ADDRESS = ("dask",)

#: ``on_done(index, outcome)``: called as each task finishes, in the order they finish.
OnDone = Callable[[int, tuple], None]


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _context():
    # forkserver: one server imports torch once and forks the workers from it (about twice as
    # fast to start as spawn); neither inherits a CUDA context. spawn where there is none.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "spdl_ref.experiments"])
        return ctx
    return multiprocessing.get_context("spawn")


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


class LocalBackend:
    """Run tasks on this machine: in this process (one worker) or in worker processes.

    Section: reproduction of the review's Figures 1-4 and sweeps (``book/using.md``).
    """

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = _validate.positive_int(workers, "workers")
        self.versions: dict[str, str | None] = {}

    def start(self) -> None:
        """Nothing to start: the pool is made per call of :meth:`map`."""

    def check_device(self, device: torch.device) -> None:
        """Refuse a device this machine does not have (see :func:`check_device`)."""
        from . import check_device

        check_device(device)

    def map(
        self,
        run: Callable[..., dict],
        tasks: Sequence[dict],
        *,
        name: str,
        budget: str,
        device: str,
        on_done: OnDone | None = None,
    ) -> list[tuple]:
        """``execute(run, task, budget, device)`` for each task; outcomes in task order."""
        if self.workers == 1 or len(tasks) == 1:
            out = []
            for i, task in enumerate(tasks):
                out.append(execute(run, task, budget, device, name=name))
                if on_done:
                    on_done(i, out[-1])
            return out
        try:
            pickle.dumps(run)
        except Exception as err:
            raise ValueError(
                f"experiment {name!r}: its run function cannot be sent to worker processes "
                f"({err}); define it at module level, or use --workers 1"
            ) from err
        workers = min(self.workers, len(tasks))
        ctx = _context()
        with futures.ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(_threads(workers),)
        ) as pool:
            submitted = [
                pool.submit(execute, run, task, budget, device, name=name) for task in tasks
            ]
            index = {f: i for i, f in enumerate(submitted)}
            try:
                for f in futures.as_completed(submitted):
                    outcome = f.result()
                    if on_done:
                        on_done(index[f], outcome)
            except BaseException:
                for f in submitted:
                    f.cancel()
                raise
            return [f.result() for f in submitted]

    def close(self) -> None:
        """Nothing to close."""


class DaskBackend:
    """Run tasks on a Dask distributed cluster: a local one started here, or one at ``address``.

    Section: reproduction of the review's Figures 1-4 and sweeps (``book/using.md``).
    """

    name = "dask"

    def __init__(self, workers: int = 1, address: str | None = None):
        self.workers = _validate.positive_int(workers, "workers")
        if address is not None:
            _validate.instance(address, str, "address")
        self.address = address
        self.client: distributed.Client | None = None
        self.cluster: distributed.LocalCluster | None = None
        self.versions: dict[str, str | None] = {}

    def _started(self) -> distributed.Client:
        """The client of :meth:`start`."""
        if self.client is None:
            raise RuntimeError("the Dask backend is not started: call start() first")
        return self.client

    def start(self) -> None:
        """Start the local cluster, or connect to the one at ``address``."""
        with optional_dependency("cluster", "--backend dask"):
            import distributed
        self.versions = {"dask": _version("dask"), "distributed": distributed.__version__}
        if self.address is None:
            self.cluster = distributed.LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = client = distributed.Client(self.cluster)
            client.run(_init_worker, _threads(self.workers))
            return
        # how long to try: Dask's own setting (distributed.comm.timeouts.connect, 30 s)
        kwargs: dict[str, Any] = {}
        if os.path.isfile(self.address):
            kwargs["scheduler_file"] = self.address
        else:
            kwargs["address"] = self.address
        try:
            self.client = client = distributed.Client(**kwargs)
        except (OSError, TimeoutError) as err:
            raise ValueError(f"cannot connect to --address {self.address!r}: {err}") from err
        try:  # workers of a batch job may still be starting
            client.wait_for_workers(1, timeout=_connect_timeout())
        except TimeoutError:
            self.close()
            raise ValueError(f"the cluster at --address {self.address!r} has no workers") from None

    def check_device(self, device: torch.device) -> None:
        """Refuse a device that any worker does not have (checked on every worker)."""
        from . import check_device

        try:
            self._started().run(check_device, str(device))
        except ValueError as err:
            raise ValueError(f"on a worker of the cluster: {err}") from err

    def map(
        self,
        run: Callable[..., dict],
        tasks: Sequence[dict],
        *,
        name: str,
        budget: str,
        device: str,
        on_done: OnDone | None = None,
    ) -> list[tuple]:
        """Submit ``execute(run, task, budget, device)`` per task; outcomes in task order."""
        import distributed

        client = self._started()
        tag = uuid.uuid4().hex[:8]
        submitted = [
            client.submit(
                execute, run, task, budget, device, name=name, key=f"{name}-{i}-{tag}", pure=False
            )
            for i, task in enumerate(tasks)
        ]
        index = {f.key: i for i, f in enumerate(submitted)}
        try:
            for f in distributed.as_completed(submitted):
                outcome = f.result()
                if on_done:
                    on_done(index[f.key], outcome)
        except BaseException:
            client.cancel(submitted)
            raise
        return client.gather(submitted)

    def close(self) -> None:
        """Disconnect, and stop the cluster if this backend started it."""
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def _connect_timeout() -> float:
    import dask
    from dask.utils import parse_timedelta

    return parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def open_backend(
    name: str, *, workers: int = 1, address: str | None = None
) -> LocalBackend | DaskBackend:
    """The backend called ``name`` (one of :data:`BACKENDS`), not yet started.

    It runs the tasks of the experiments of Sections 1-6 of the review.

    ``workers`` >= 1; ``address`` only for the backends in :data:`TAKES_ADDRESS`, and then the
    cluster decides the number of workers. Section: reproduction (``book/using.md``).
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if address is not None:
        if name not in TAKES_ADDRESS:
            raise ValueError(
                f"--address needs a backend that connects to a cluster ({', '.join(TAKES_ADDRESS)}"
                f"), not {name!r}"
            )
        if workers != 1:
            raise ValueError("--workers does not apply to a cluster at --address: it has its own")
    if name == "local":
        return LocalBackend(workers)
    return DaskBackend(workers, address)
