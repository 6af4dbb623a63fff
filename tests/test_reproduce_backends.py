"""Sweeps on other processes: the local process pool and a two-worker Dask cluster give the
numbers of one process, in task order (python -m spdl_ref.reproduce --backend ...)."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from spdl_ref import config
from spdl_ref.experiments import Experiment, register
from spdl_ref.reproduce._cli import main

NAME = "toy_backends"
ROOT = Path(__file__).resolve().parent.parent


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
    out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
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
    # a scheduler and a worker of 4 threads in this process: quick to start, reached over TCP
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=4, processes=False, protocol="tcp://",
        dashboard_address=None, silence_logs=40,
    ) as cluster:  # fmt: skip
        assert cluster.scheduler_address.startswith("tcp://")
        address = cluster.scheduler_address
        remote = _record(capsys, tmp_path, "--backend", "dask", "--address", address)
        assert _numbers(remote) == _numbers(serial)
        scheduler_file = tmp_path / "scheduler.json"  # what `dask scheduler` writes on Slurm
        scheduler_file.write_text(json.dumps({"address": address}))
        remote = _record(capsys, tmp_path, "--backend", "dask", "--address", str(scheduler_file))
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


def test_the_slurm_launcher_writes_a_gpu_job_per_worker(capsys):
    pytest.importorskip("dask_jobqueue", reason="the cluster extra is not installed")
    spec = importlib.util.spec_from_file_location("dask_slurm", ROOT / "tools" / "dask_slurm.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = ["--dry-run", "--partition", "gpu", "--gpus", "1", "--cpus", "6", "--prologue", "true"]
    assert tool.main(argv) == 0
    script = capsys.readouterr().out
    for line in ("#SBATCH -p gpu", "#SBATCH --gres=gpu:1", "#SBATCH --cpus-per-task=6", "true"):
        assert line in script.splitlines(), script
    worker = next(line for line in script.splitlines() if "dask_worker" in line)
    assert worker.startswith(sys.executable) and "--nthreads 1 " in worker
    assert tool.main(["--dry-run", "--jobs", "0"]) == 2
