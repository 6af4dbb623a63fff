"""Sweeps on other processes: the local process pool and a two-worker Dask cluster give the
numbers of one process, in task order (python -m spdl_ref.reproduce --backend ...)."""

import json
import os

import pytest
import torch

from spdl_ref import config
from spdl_ref.experiments import Experiment, register
from spdl_ref.reproduce._cli import main

NAME = "toy_backends"


def sweep_tasks(budget, runs, seed):
    sizes = (4, 16) if budget == "ci" else (64, 256)
    return [{"size": n, "seed": seed + r} for n in sizes for r in range(runs)]


def sweep_run(task, *, budget, device):
    g = torch.Generator(device=device).manual_seed(task["seed"])
    A = torch.randn(task["size"], task["size"], generator=g, device=device, dtype=torch.float64)
    return {
        "norm": float(torch.linalg.matrix_norm(A, ord=2)),
        "draw": float(torch.rand((), device=device, dtype=torch.float64)),
        "budget_seen": config.budget(),
        "device_seen": str(config.device()),
        "pid": os.getpid(),
    }


TOY = register(
    Experiment(
        name=NAME,
        description="spectral norms of random matrices (a toy sweep for the tests)",
        chapter="tests",
        tasks=sweep_tasks,
        run=sweep_run,
    )
)


def _record(capsys, tmp_path, *backend):
    out = tmp_path / "-".join(backend or ("serial",))
    argv = [NAME, "--budget", "ci", "--device", "cpu", "--runs", "3", "--out", str(out)]
    status = main([*argv, *backend])
    _, err = capsys.readouterr()
    assert status == 0, err
    return json.loads((out / "ci" / NAME / "result.json").read_text())


def _numbers(record):
    runs = [(r["task"], {k: v for k, v in r["metrics"].items() if k != "pid"}) for r in
            record["metrics"]["runs"]]  # fmt: skip
    aggregated = [{k: v for k, v in row.items() if k != "pid"} for row in
                  record["metrics"]["aggregated"]]  # fmt: skip
    return runs, aggregated


def test_process_pool_and_dask_cluster_give_the_numbers_of_one_process(capsys, tmp_path):
    pytest.importorskip("distributed", reason="the cluster extra (distributed) is not installed")
    serial = _record(capsys, tmp_path)
    pool = _record(capsys, tmp_path, "--workers", "2")
    dask = _record(capsys, tmp_path, "--backend", "dask", "--workers", "2")
    assert [r["task"] for r in serial["metrics"]["runs"]] == sweep_tasks("ci", 3, 0)
    for record in (pool, dask):
        assert _numbers(record) == _numbers(serial)
        pids = {r["metrics"]["pid"] for r in record["metrics"]["runs"]}
        assert os.getpid() not in pids and len(pids) <= 2  # in the workers, not here
        assert {r["metrics"]["budget_seen"] for r in record["metrics"]["runs"]} == {"ci"}
    assert pool["backend"] == "local" and pool["workers"] == 2
    assert dask["backend"] == "dask" and dask["versions"]["distributed"]


def test_an_existing_cluster_at_address(capsys, tmp_path):
    distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")
    import dask

    from spdl_ref.reproduce.backends import open_backend

    serial = _record(capsys, tmp_path)
    # a scheduler and a worker in this process (threads): quick to start, reached over TCP
    with distributed.LocalCluster(
        n_workers=1, processes=False, dashboard_address=None, silence_logs=40
    ) as cluster:
        address = cluster.scheduler_address
        remote = _record(capsys, tmp_path, "--backend", "dask", "--address", address)
        assert _numbers(remote) == _numbers(serial)
        if not torch.cuda.is_available():  # the workers are asked, not this process
            backend = open_backend("dask", address=address)
            backend.start()
            try:
                with pytest.raises(ValueError, match="on a worker of the cluster: device 'cuda'"):
                    backend.check_device(torch.device("cuda"))
            finally:
                backend.close()
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):  # the cluster is gone
        status = main([NAME, "--device", "cpu", "--backend", "dask", "--address", address])
    _, err = capsys.readouterr()
    assert status == 2 and err.startswith("reproduce: error: cannot connect to --address")
