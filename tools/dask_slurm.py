"""A Dask cluster whose workers are Slurm jobs, for ``python -m spdl_ref.reproduce``.

Run it on a login node (it holds the Dask scheduler), then point the reproduction at its
scheduler file::

    python tools/dask_slurm.py --jobs 4 --partition gpu --gpus 1 --scheduler-file cluster.json &
    python -m spdl_ref.reproduce sample_complexity --budget paper --device cuda --runs 5 \\
        --backend dask --address cluster.json

Each Slurm job is one Dask worker that runs one task at a time (one Dask thread) on its own
GPU, with ``--cpus`` cores for torch. The workers start the Python that runs this script (after
``--prologue``, by default the activation of its virtual environment), so the cluster's nodes
must see the same checkout and environment. ``--dry-run`` prints the job script and exits.
Stop with Ctrl-C: the jobs are cancelled. Needs the ``cluster`` extra (dask-jobqueue).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=1, help="Slurm jobs, one worker each (default 1)")
    p.add_argument("--partition", help="the Slurm partition (queue)")
    p.add_argument("--account", help="the Slurm account to charge")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per job (default 1; 0: none)")
    p.add_argument("--cpus", type=int, default=8, help="CPU cores per job (default 8)")
    p.add_argument("--memory", default="32GB", help="memory per job (default 32GB)")
    p.add_argument("--walltime", default="02:00:00", help="per job (default 02:00:00)")
    p.add_argument("--interface", help="the scheduler's network interface, e.g. ib0")
    p.add_argument("--prologue", help="a shell line the job runs before the worker")
    p.add_argument("--scheduler-file", default="cluster.json", help="where to write the address")
    p.add_argument("--dry-run", action="store_true", help="print the job script and exit")
    return p


def make_cluster(args):
    """The ``dask_jobqueue.SLURMCluster`` that ``args`` describe (no job submitted yet)."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as err:
        raise SystemExit(
            f"dask_slurm needs dask-jobqueue ({err}): pip install 'spdl-ref[cluster]'"
        ) from None
    prologue = [args.prologue] if args.prologue else []
    if not prologue and sys.prefix != sys.base_prefix:  # the virtual environment running this
        prologue = [f"source {Path(sys.prefix) / 'bin' / 'activate'}"]
    directives = [f"--gres=gpu:{args.gpus}"] if args.gpus else []
    scheduler = {"dashboard_address": None}
    if args.interface:
        scheduler["interface"] = args.interface
    return SLURMCluster(
        cores=1,  # Dask threads per worker: one task at a time on the job's GPU
        processes=1,
        job_cpu=args.cpus,
        memory=args.memory,
        walltime=args.walltime,
        queue=args.partition,
        account=args.account,
        job_extra_directives=directives,
        job_script_prologue=prologue,
        scheduler_options=scheduler,
        python=sys.executable,
    )


def main(argv: list[str] | None = None) -> int:
    """Start the cluster (or print its job script); wait until interrupted."""
    args = _parser().parse_args(argv)
    if args.jobs < 1 or args.gpus < 0 or args.cpus < 1:
        print("dask_slurm: error: --jobs and --cpus must be >= 1, --gpus >= 0", file=sys.stderr)
        return 2
    cluster = make_cluster(args)
    try:
        if args.dry_run:
            print(cluster.job_script())
            return 0
        Path(args.scheduler_file).write_text(json.dumps({"address": cluster.scheduler_address}))
        cluster.scale(jobs=args.jobs)
        print(f"scheduler {cluster.scheduler_address}, written to {args.scheduler_file}; "
              f"{args.jobs} job(s) submitted. Ctrl-C stops the cluster.", flush=True)  # fmt: skip
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.close()


if __name__ == "__main__":
    raise SystemExit(main())
