"""The command line of ``python -m spdl_ref.reproduce`` (see the package text)."""

from __future__ import annotations

import argparse
import json
import re
import sys

from .. import config
from ..experiments import get, names
from .backends import BACKENDS

USAGE_ERROR = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints the usage and exits; the command prints one line and exits with 2.
    def error(self, message: str):
        raise _UsageError(message)


def _parser() -> _Parser:
    p = _Parser(
        prog="python -m spdl_ref.reproduce",
        description=(
            "Run an experiment of the book and write OUT/<budget>/NAME/result.json with its "
            "figures (book/using.md, section Reproduce)."
        ),
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the experiment (see --list)")
    p.add_argument("--list", action="store_true", help="list the experiments and exit")
    p.add_argument(
        "--budget",
        choices=config.BUDGETS,
        help="ci (minutes on a CPU) or paper (the review's settings); default: "
        "spdl_ref.config.budget(), i.e. SPDL_BUDGET, else paper where CUDA is available",
    )
    p.add_argument(
        "--device",
        help="cpu, cuda, cuda:1, mps, ...; default: spdl_ref.config.device() (SPDL_DEVICE)",
    )
    p.add_argument("--runs", type=int, default=1, help="seeds per task group (default 1)")
    p.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    p.add_argument("--out", default="results", help="artifact folder (default results)")
    p.add_argument("--backend", default="local", help=f"{' or '.join(BACKENDS)} (default local)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--address", help="an existing Dask cluster: tcp://host:port or a scheduler file"
    )
    p.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="start no further run (seed) that would end past this many seconds",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="run the experiment's tiny smoke task instead (into OUT/smoke/NAME)",
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run only the tasks with this parameter value (repeatable), e.g. model=equivariant",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _list() -> int:
    known = names()
    if not known:
        print("no experiments are registered", file=sys.stderr)
        return 0
    width = max(map(len, known))
    for name in known:
        exp = get(name)
        print(f"{name:<{width}}  {exp.description}  [{exp.chapter}]")
    return 0


#: The arguments of :func:`spdl_ref.reproduce.reproduce` that a flag sets, in the order a
#: message is searched for them.
_FLAGS = ("runs", "seed", "budget", "device", "backend", "workers", "address", "time_limit")
_FLAGS += ("only", "smoke", "out")


def _naming_the_flag(message: str) -> str:
    """``message`` of a check of :func:`~spdl_ref.reproduce.reproduce`, led by the flag that set
    the argument it names (``runs must be >= 1`` -> ``--runs: runs must be >= 1``)."""
    if re.search(r"(?<![\w-])--[a-z]", message):
        return message
    for name in _FLAGS:
        if re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])", message):
            return f"--{name.replace('_', '-')}: {message}"
    return message


def _fail(message: str) -> int:
    print(f"reproduce: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run, and return the exit status (2: bad input, one line on stderr)."""
    from . import execute_plan, prepare

    try:
        args = _parser().parse_args(argv)
    except _UsageError as err:
        return _fail(str(err))
    if args.list:
        return _list()
    if args.name is None:
        return _fail("name an experiment to run (python -m spdl_ref.reproduce --list)")
    only = {}
    for item in args.only:
        key, sep, value = item.partition("=")
        if not sep or not key:
            return _fail(f"--only takes KEY=VALUE, got {item!r}")
        try:
            only[key] = json.loads(value)
        except ValueError:
            only[key] = value
    if args.backend not in BACKENDS:
        return _fail(f"--backend: unknown backend {args.backend!r}; known: {', '.join(BACKENDS)}")
    try:
        plan = prepare(
            args.name,
            budget=args.budget,
            device=args.device,
            runs=args.runs,
            seed=args.seed,
            out=args.out,
            backend=args.backend,
            workers=args.workers,
            address=args.address,
            time_limit=args.time_limit,
            smoke=args.smoke,
            progress=not args.quiet,
            only=only or None,
        )
        plan.backend.start()
    except (ValueError, TypeError, ImportError) as err:
        return _fail(_naming_the_flag(" ".join(str(err).split())))
    try:
        try:
            plan.backend.check_device(plan.device)
        except ValueError as err:
            return _fail(_naming_the_flag(" ".join(str(err).split())))
        record = execute_plan(plan)
    finally:
        plan.backend.close()
    path = plan.target / "result.json"
    print(
        f"wrote {path} ({record['runs']} run(s) of {len(record['metrics']['runs'])} task(s) in "
        f"{record['seconds']:.1f} s on {record['device']}; figures: "
        f"{', '.join(record['figures']) or 'none'})"
    )
    return 0
