"""The GPU check: one prepared run for one CUDA device, under 8 minutes (``./dev gpu-check``).

1. the CUDA tests (``pytest -m cuda`` on ``tests/test_cuda*.py``, where they live), in a
   subprocess without the project's nbval options, so a bare Python with torch and pytest will do;
2. Figure 3 at the paper budget (experiment ``fig3``): up to the review's 5 runs per denoiser,
   as many as fit in its share of the time. The experiment's ``estimate`` (timing a step or two)
   sizes them before they start; without one, each further run starts only if it fits;
3. Figure 2's residual flow at full size (experiment ``fig2``; its tasks whose ``"flow"`` is
   ``"residual"`` when its tasks say which flow they train, else all of them), one run.

Artifacts go to ``OUT/<budget>/<name>/`` as ``python -m spdl_ref.reproduce`` writes them
(``OUT/smoke/<name>/`` with ``--smoke``). A summary closes the output. An experiment that is
not registered is reported and skipped; the exit status is 1 if the tests or an experiment
failed, 2 for bad input, else 0. On a CPU, ``--budget ci --device cpu --smoke`` walks the same
path in seconds (what the tests run)::

    ./dev gpu-check                                   # a CUDA machine
    python tools/gpu_check.py --budget ci --device cpu --smoke
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout, installed or not
    sys.path.insert(0, str(ROOT))

#: Seconds kept back at the end for writing artifacts and the summary.
MARGIN = 15.0


@dataclass
class Step:
    """One experiment of the check: its name, runs wanted, share of the time left, filter."""

    name: str
    title: str
    runs: int
    share: float
    only: dict = field(default_factory=dict)


STEPS = [
    Step("fig3", "Figure 3: ordinary vs equivariant denoiser", runs=5, share=0.65),
    Step("fig2", "Figure 2: the residual flow at full size", runs=1, share=1.0,
         only={"flow": "residual"}),
]  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget", choices=("ci", "paper"), default="paper")
    p.add_argument("--device", default="cuda")
    p.add_argument("--smoke", action="store_true", help="each experiment's smoke task instead")
    p.add_argument("--out", default=str(ROOT / "results"), help="artifact folder")
    p.add_argument("--limit", type=float, default=450.0, help="seconds for the whole check")
    p.add_argument(
        "--experiments", nargs="*", help="run these experiments instead of fig3 and fig2"
    )
    p.add_argument(
        "--tests",
        nargs="*",
        help="test files for pytest -m cuda (default tests/test_cuda*.py); none: skip them",
    )
    return p


def run_cuda_tests(files: list[str], timeout: float) -> tuple[str, str]:
    """``pytest -m cuda`` on ``files``: ``(status, detail)``, status passed, failed or skipped."""
    if not files:
        return "skipped", "no test files given"
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-rs", "-p", "no:cacheprovider"]
    cmd += ["-o", "addopts=", *files]
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "failed", f"timed out after {timeout:.0f} s"
    text = (out.stdout + out.stderr).strip()
    print(text[-4000:], flush=True)
    last = text.splitlines()[-1].strip("= ") if text else ""
    if out.returncode not in (0, 5):  # 5: no test selected
        return "failed", last
    return ("passed" if " passed" in f" {last}" else "skipped"), last


def _summary_of(record: dict, width: int = 6) -> list[str]:
    lines = []
    for row in record["metrics"]["aggregated"]:
        params = " ".join(
            f"{k}={v}" for k, v in row.items() if k != "runs" and not isinstance(v, dict)
        )
        stats = [
            f"{k} {v['mean']:.4g} ± {v['std']:.2g}"
            for k, v in row.items()
            if isinstance(v, dict) and "mean" in v
        ]
        lines.append(f"{params or 'all'} (n={row['runs']}): " + "; ".join(stats[:width]))
    return lines


def run_step(step: Step, args, seconds: float) -> tuple[str, list[str]]:
    """Run one experiment within ``seconds``: ``(status, summary lines)``."""
    from spdl_ref.experiments import get, names
    from spdl_ref.reproduce import reproduce

    known = names()
    if step.name not in known:
        return "missing", [f"not registered (known: {', '.join(known) or 'none'}); skipped"]
    exp = get(step.name)
    if args.smoke and exp.smoke is None:
        return "missing", ["has no smoke task; skipped"]
    try:
        only = None
        if step.only and not args.smoke:  # the filter applies where the tasks name its keys
            tasks = exp.make_tasks(args.budget, 1, 0)
            if all(k in t for t in tasks for k in step.only):
                only = step.only
        record = reproduce(
            exp,
            budget=args.budget,
            device=args.device,
            runs=1 if args.smoke else step.runs,  # a smoke check runs each smoke task once
            out=args.out,
            time_limit=max(seconds, 1.0),
            smoke=args.smoke,
            only=only,
        )
    except Exception:
        traceback.print_exc()
        return "failed", [traceback.format_exc().strip().splitlines()[-1]]
    folder = Path(args.out) / ("smoke" if args.smoke else args.budget) / step.name
    head = (
        f"{record['runs']} of {record['runs_requested']} run(s) in {record['seconds']:.0f} s"
        + (" (time limit)" if record.get("stopped_by_time_limit") else "")
        + f" -> {folder / 'result.json'}"
    )
    return "ok", [head, *_summary_of(record)]


def main(argv: list[str] | None = None) -> int:
    """Run the check; return the exit status (see the module text)."""
    args = _parser().parse_args(argv)
    start = time.perf_counter()
    import torch

    from spdl_ref.reproduce import check_device

    try:
        device = check_device(args.device)
    except ValueError as err:
        print(
            f"gpu-check: error: {err} (on a CPU: --budget ci --device cpu --smoke)", file=sys.stderr
        )
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"gpu-check: {name}, budget {args.budget}{' (smoke)' if args.smoke else ''}, "
          f"limit {args.limit:.0f} s", flush=True)  # fmt: skip
    files = args.tests
    if files is None:
        files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_cuda*.py"))
    report: list[tuple[str, str, list[str]]] = []
    t0 = time.perf_counter()
    status, detail = run_cuda_tests(files, timeout=max(30.0, 0.3 * args.limit))
    report.append(("cuda tests", status, [f"{detail} ({time.perf_counter() - t0:.0f} s)"]))
    steps = STEPS
    if args.experiments is not None:
        steps = [Step(n, n, runs=1, share=1.0 / (len(args.experiments) - i))
                 for i, n in enumerate(args.experiments)]  # fmt: skip
    for step in steps:
        left = args.limit - MARGIN - (time.perf_counter() - start)
        print(f"\n== {step.title} ({step.name}): {left * step.share:.0f} s of {left:.0f} s left",
              flush=True)  # fmt: skip
        status, lines = run_step(step, args, left * step.share)
        report.append((step.name, status, lines))
    total = time.perf_counter() - start
    print(f"\ngpu-check summary: {name}, budget {args.budget}, {total:.0f} s of {args.limit:.0f} s")
    for what, status, lines in report:
        print(f"  {what:<12} {status}: {lines[0] if lines else ''}")
        for line in lines[1:]:
            print(f"  {'':<12}   {line}")
    failed = any(status == "failed" for _, status, _ in report)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
