"""python -m spdl_ref.reproduce: names, artifacts, budget/device semantics, bad input."""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch

from spdl_ref import config
from spdl_ref.experiments import Experiment, aggregate, get, names, register, run_task
from spdl_ref.reproduce import git_commit, reproduce
from spdl_ref.reproduce._cli import main

NAME = "toy_reproduce"


def toy_tasks(budget, runs, seed):
    size = 8 if budget == "ci" else 32
    return [{"model": m, "size": size, "seed": seed + r} for m in ("a", "b") for r in range(runs)]


def toy_run(task, *, budget, device):
    if task["seed"] == 99:
        raise RuntimeError("seed 99 always fails")
    g = torch.Generator(device=device).manual_seed(task["seed"])
    x = torch.randn(task["size"], generator=g, device=device)
    shift = 1.0 if task["model"] == "b" else 0.0
    return {
        "mean": float(x.mean()) + shift,
        "draw": float(torch.rand((), device=device)),  # the global generator: seeded per task
        "budget_seen": config.budget(),
        "device_seen": str(config.device()),
    }


def toy_plot(tasks, results, out_dir):
    import matplotlib.pyplot as plt

    (out_dir / "partial.png").write_bytes(b"")
    if any(t["seed"] == 98 for t in tasks):
        raise RuntimeError("the plot of seed 98 fails")

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([r["mean"] for r in results], "o")
    path = out_dir / "toy.png"
    fig.savefig(path)
    plt.close(fig)
    (out_dir / "partial.png").unlink()
    return [path]


TOY = register(
    Experiment(
        name=NAME,
        description="mean of a few normal draws (a toy for the tests)",
        chapter="tests",
        tasks=toy_tasks,
        run=toy_run,
        plot=toy_plot,
        peers=("tqdm", "no-such-distribution"),
        smoke=lambda seed: {"model": "a", "size": 2, "seed": seed},
    )
)


def _cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_list_prints_one_experiment_per_line_name_first(capsys):
    status, out, _ = _cli(capsys, "--list")
    assert status == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == names()
    line = next(line for line in lines if line.startswith(NAME + " "))
    assert "mean of a few normal draws" in line and line.endswith("[tests]")


def test_run_writes_the_artifact(capsys, tmp_path, monkeypatch):
    # the environment says paper: the flag wins, and the tasks see the flag's budget
    monkeypatch.setenv("SPDL_BUDGET", "paper")
    status, out, err = _cli(
        capsys, NAME, "--budget", "ci", "--device", "cpu", "--runs", 2, "--seed", 3,
        "--out", tmp_path,
    )  # fmt: skip
    assert status == 0, err
    folder = tmp_path / "ci" / NAME
    assert f"wrote {folder / 'result.json'}" in out
    # one line per finished run on stderr (the progress bar is off on a non-terminal)
    assert len(re.findall(r"run \d/4 \(model=[ab] size=8 seed=[34]\): [\d.]+ s", err)) == 4
    record = json.loads((folder / "result.json").read_text())
    assert record["experiment"] == NAME and record["budget"] == "ci" and record["device"] == "cpu"
    assert re.fullmatch(r"[0-9a-f]{40}", record["git_commit"])
    assert isinstance(record["git_dirty"], bool)
    v = record["versions"]
    assert {"python", "torch", "spdl_ref"} <= v.keys() and v["torch"] == torch.__version__
    assert v["tqdm"] and v["no-such-distribution"] is None
    assert record["seconds"] > 0 and record["runs"] == 2 and record["seed"] == 3
    tasks = toy_tasks("ci", 2, 3)
    runs = record["metrics"]["runs"]
    assert [r["task"] for r in runs] == tasks  # task order
    for r in runs:
        assert r["metrics"] == run_task(TOY, r["task"], budget="ci", device="cpu")
        assert r["metrics"]["budget_seen"] == "ci" and r["metrics"]["device_seen"] == "cpu"
    assert record["metrics"]["aggregated"] == aggregate(tasks, [r["metrics"] for r in runs])
    assert record["figures"] == ["toy.png"] and (folder / "toy.png").stat().st_size > 0
    assert os.environ["SPDL_BUDGET"] == "paper"  # restored after the run


def test_defaults_come_from_the_configuration(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SPDL_BUDGET", "paper")
    monkeypatch.setenv("SPDL_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    status, _, err = _cli(capsys, NAME, "--quiet")
    assert status == 0, err
    record = json.loads((tmp_path / "results" / "paper" / NAME / "result.json").read_text())
    assert record["budget"] == "paper" and record["runs"] == 1
    assert {r["task"]["size"] for r in record["metrics"]["runs"]} == {32}
    assert {r["metrics"]["budget_seen"] for r in record["metrics"]["runs"]} == {"paper"}


def test_global_generators_are_seeded_per_task(tmp_path):
    torch.manual_seed(1234)
    first = reproduce(TOY, budget="ci", device="cpu", runs=2, out=tmp_path, progress=False)
    torch.rand(100)  # move the global generator on: the tasks must not see it
    second = reproduce(TOY, budget="ci", device="cpu", runs=2, out=tmp_path, progress=False)
    draws = [[r["metrics"]["draw"] for r in rec["metrics"]["runs"]] for rec in (first, second)]
    assert draws[0] == draws[1]
    assert len(set(draws[0])) == 2  # seeds 0 and 1 differ; models a and b share a seed


def test_one_task_at_a_time_per_process():
    # two threads of one process (as in a Dask worker with two threads): neither task may see
    # the other's budget or draws from the global generator it seeded
    def run(task, *, budget, device):
        seen = config.budget()
        time.sleep(0.2)
        return {"seen": [seen, config.budget()], "draw": float(torch.rand(()))}

    exp = Experiment(name="toy_threads", description="", chapter="", tasks=toy_tasks, run=run)
    jobs = [({"seed": 0}, "ci"), ({"seed": 1}, "paper")]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda j: run_task(exp, j[0], budget=j[1], device="cpu"), jobs))
    alone = [run_task(exp, task, budget=budget, device="cpu") for task, budget in jobs]
    assert got == alone and [g["seen"] for g in got] == [["ci", "ci"], ["paper", "paper"]]


def test_a_failed_run_keeps_the_previous_artifact(tmp_path):
    reproduce(TOY, budget="ci", device="cpu", out=tmp_path, progress=False)
    path = tmp_path / "ci" / NAME / "result.json"
    before = path.read_text()
    with pytest.raises(RuntimeError, match="seed 99 always fails"):
        reproduce(TOY, budget="ci", device="cpu", seed=99, out=tmp_path, progress=False)
    assert path.read_text() == before
    with pytest.raises(RuntimeError, match="the plot of seed 98 fails"):  # after the runs
        reproduce(TOY, budget="ci", device="cpu", seed=98, out=tmp_path, progress=False)
    assert path.read_text() == before and not (path.parent / "partial.png").exists()
    assert sorted(p.name for p in (tmp_path / "ci").iterdir()) == [NAME]  # no partial folder


def test_smoke_and_only(tmp_path):
    record = reproduce(TOY, smoke=True, runs=2, device="cpu", out=tmp_path, progress=False)
    assert record["smoke"] and record["budget"] == "ci"
    assert [r["task"] for r in record["metrics"]["runs"]] == [
        {"model": "a", "size": 2, "seed": s} for s in (0, 1)
    ]
    assert (tmp_path / "smoke" / NAME / "result.json").is_file()
    record = reproduce(
        TOY, budget="ci", device="cpu", runs=2, only={"model": "b"}, out=tmp_path, progress=False
    )
    assert [r["task"]["model"] for r in record["metrics"]["runs"]] == ["b", "b"]
    assert record["only"] == {"model": "b"}


def _timed(estimate):
    return Experiment(
        name="toy_timed",
        description="toy",
        chapter="tests",
        tasks=toy_tasks,
        run=toy_run,
        estimate=estimate,
    )


def test_time_limit_sizes_the_runs_from_the_estimate(tmp_path):
    # two tasks per run, 10 s each by the estimate: one run fits in 25 s, two do not
    record = reproduce(
        _timed(lambda task, *, budget, device: 10.0),
        budget="ci", device="cpu", runs=3, time_limit=25, out=tmp_path, progress=False,
    )  # fmt: skip
    assert record["runs"] == 1 and record["runs_requested"] == 3
    assert record["stopped_by_time_limit"] and record["estimated_seconds_per_run"] == 20.0
    assert len(record["metrics"]["runs"]) == 2
    # a generous limit runs them all; without an estimate the first run is timed
    for estimate in (lambda task, *, budget, device: 1e-3, None):
        record = reproduce(
            _timed(estimate),
            budget="ci", device="cpu", runs=3, time_limit=600, out=tmp_path, progress=False,
        )  # fmt: skip
        assert record["runs"] == 3 and not record["stopped_by_time_limit"]
        assert [r["task"] for r in record["metrics"]["runs"]] == toy_tasks("ci", 3, 0)
    # without an estimate, the first run is timed: a limit it overran starts no second one
    record = reproduce(
        _timed(None), budget="ci", device="cpu", runs=3, time_limit=1e-6, out=tmp_path,
        progress=False,
    )  # fmt: skip
    assert record["runs"] == 1 and record["stopped_by_time_limit"]


def test_git_commit_outside_a_checkout_is_none(tmp_path):
    assert git_commit(tmp_path) == (None, None)


def _no_cuda(*argv, id):
    reason = "this machine has CUDA"
    marks = pytest.mark.skipif(torch.cuda.is_available(), reason=reason)
    return pytest.param(*argv, marks=marks, id=id)


BAD = [
    pytest.param(["nope"], rf"unknown experiment 'nope'; known: .*{NAME}", id="unknown-name"),
    pytest.param([], "name an experiment", id="no-name"),
    _no_cuda([NAME, "--device", "cuda"], "'cuda' is not available: no CUDA device", id="cuda"),
    pytest.param(
        [NAME, "--device", "cuda:7"],
        r"'cuda:7' is not available: (no CUDA device here|this machine has \d CUDA device)",
        id="cuda:7",
    ),
    pytest.param(
        [NAME, "--device", "mps"],
        "'mps' is not available: no MPS",
        marks=pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS"),
        id="mps",
    ),
    pytest.param([NAME, "--device", "meta"], "holds no numbers", id="meta"),
    pytest.param([NAME, "--device", "banana"], "device must name a torch device", id="banana"),
    pytest.param([NAME, "--runs", "0"], "runs must be >= 1, got 0", id="runs-0"),
    pytest.param([NAME, "--runs", "x"], "argument --runs: invalid int value", id="runs-x"),
    pytest.param([NAME, "--seed", "-1"], "seed must be >= 0", id="seed"),
    pytest.param([NAME, "--budget", "huge"], "argument --budget: invalid choice", id="budget"),
    pytest.param([NAME, "--backend", "ray"], "unknown backend 'ray'; known: local, dask", id="ray"),
    pytest.param(
        [NAME, "--address", "tcp://127.0.0.1:8786"],
        "--address needs a backend that connects to a cluster",
        id="address-local",
    ),
    pytest.param([NAME, "--workers", "0"], "workers must be an integer >= 1", id="workers"),
    pytest.param([NAME, "--only", "model"], "--only takes KEY=VALUE", id="only"),
    pytest.param([NAME, "--only", "model=z"], "no task of .* has model=z", id="only-none"),
    pytest.param([NAME, "--time-limit", "-3"], "time_limit must be > 0", id="time-limit"),
    pytest.param([NAME, "--bogus"], "unrecognized arguments: --bogus", id="bogus"),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_input_is_one_line_and_status_2(capsys, tmp_path, argv, message):
    status, out, err = _cli(capsys, *argv, "--out", tmp_path / "out")
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("reproduce: error: "), err
    assert re.search(message, err), err
    assert out == "" and not (tmp_path / "out" / "ci").exists()


def test_bad_environment_and_unwritable_out(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SPDL_BUDGET", "huge")
    status, _, err = _cli(capsys, NAME, "--device", "cpu")
    assert status == 2 and "SPDL_BUDGET must be one of" in err and err.count("\n") == 1
    monkeypatch.delenv("SPDL_BUDGET")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    status, _, err = _cli(capsys, NAME, "--device", "cpu", "--out", blocker / "sub")
    assert status == 2 and err.startswith("reproduce: error: cannot write to --out")
    assert err.count("\n") == 1


def test_the_module_entry_point_exits_2_without_a_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "spdl_ref.reproduce", "no_such_experiment", "--out", tmp_path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("reproduce: error: unknown experiment 'no_such_experiment'")
    assert out.stderr.count("\n") == 1


def test_registered_metrics_must_be_json(tmp_path):
    bad = Experiment(
        name="toy_tensor_metric",
        description="toy",
        chapter="tests",
        tasks=lambda budget, runs, seed: [{"seed": seed}],
        run=lambda task, *, budget, device: {"loss": torch.ones(())},
    )
    with pytest.raises(TypeError, match="metric 'loss' must be a JSON value"):
        reproduce(bad, budget="ci", device="cpu", out=tmp_path, progress=False)
    assert get(NAME) is TOY
