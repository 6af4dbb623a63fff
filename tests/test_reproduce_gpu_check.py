"""./dev gpu-check (tools/gpu_check.py): the dry path on a CPU, sizing, missing experiments."""

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spdl_ref.experiments import Experiment, names, register

ROOT = Path(__file__).resolve().parent.parent
NAME = "toy_gpu_check"


def _load_tool():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_check = _load_tool()


def toy_run(task, *, budget, device):
    if task.get("fail"):
        raise RuntimeError("this run fails")
    g = torch.Generator(device=device).manual_seed(task["seed"])
    return {"loss": float(torch.rand((), generator=g, device=device))}


register(
    Experiment(
        name=NAME,
        description="toy for the GPU check",
        chapter="tests",
        tasks=lambda budget, runs, seed: [{"seed": seed + r} for r in range(runs)],
        run=toy_run,
        smoke=lambda seed: {"seed": seed},
        estimate=lambda task, *, budget, device: 10.0,
    )
)
BROKEN = "toy_gpu_check_broken"
register(
    Experiment(
        name=BROKEN,
        description="a toy whose run fails",
        chapter="tests",
        tasks=lambda budget, runs, seed: [{"seed": seed, "fail": True}],
        run=toy_run,
    )
)


def test_the_dry_path_on_a_cpu(tmp_path):
    # what ./dev gpu-check --budget ci --device cpu --smoke does, in a fresh process
    out = subprocess.run(
        [sys.executable, "tools/gpu_check.py", "--budget", "ci", "--device", "cpu", "--smoke",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    summary = out.stdout[out.stdout.index("gpu-check summary") :]
    expected = "passed" if torch.cuda.is_available() else "skipped"
    assert re.search(rf"cuda tests\s+{expected}: ", summary), summary
    registered = names()
    for name in ("fig3", "fig2"):
        if name in registered:  # its smoke task ran through the whole pipeline
            assert re.search(rf"{name}\s+ok: 1 of 1 run", summary), summary
            assert (tmp_path / "smoke" / name / "result.json").is_file()
        else:
            assert re.search(rf"{name}\s+missing: not registered \(known: ", summary), summary


def test_runs_are_sized_to_the_time_left(tmp_path, monkeypatch, capsys):
    # 10 s per run by the estimate, half of (78 - 15) s for the toy: 3 of its 5 runs
    monkeypatch.setattr(
        gpu_check,
        "STEPS",
        [gpu_check.Step(NAME, "toy", runs=5, share=0.5), gpu_check.Step("absent", "x", 1, 1.0)],
    )
    status = gpu_check.main(
        ["--budget", "ci", "--device", "cpu", "--out", str(tmp_path), "--limit", "78", "--tests"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    record = json.loads((tmp_path / "ci" / NAME / "result.json").read_text())
    assert record["runs"] == 3 and record["runs_requested"] == 5
    assert record["estimated_seconds_per_run"] == 10.0 and record["stopped_by_time_limit"]
    assert re.search(rf"{NAME}\s+ok: 3 of 5 run\(s\) in \d+ s \(time limit\)", out), out
    assert re.search(r"loss [\d.]+ ± [\d.]+", out)
    assert re.search(r"absent\s+missing: not registered", out)
    assert re.search(r"cuda tests\s+skipped: no test files given", out)


def test_a_failing_experiment_fails_the_check(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "STEPS", [gpu_check.Step(BROKEN, "broken", 1, 1.0)])
    status = gpu_check.main(
        ["--budget", "ci", "--device", "cpu", "--out", str(tmp_path), "--tests"]
    )
    out = capsys.readouterr().out
    assert status == 1
    assert re.search(rf"{BROKEN}\s+failed: RuntimeError: this run fails", out), out
    assert not (tmp_path / "ci" / BROKEN).exists()


def test_a_missing_device_is_refused(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main(["--tests"]) == 2
    err = capsys.readouterr().err
    assert "device 'cuda' is not available" in err and "--budget ci --device cpu --smoke" in err
