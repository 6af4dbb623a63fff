"""Bad inputs to spdl_ref.loop, spdl_ref.train, spdl_ref.experiments, spdl_ref.reproduce and the
names spdl_ref exports itself: a table of clear errors.

See tests/bad_input_harness.py for what each case must satisfy. The one training loop and
``fit`` also get a finite loss whose gradient is not finite (:math:`|z|^{1/2}` at 0) and a NaN
loss: both stop with :class:`spdl_ref.loop.NonFiniteError` before the optimiser steps.
``python -m spdl_ref.reproduce`` is tested through its ``main(argv)``: bad input is exit status
2 and one line on stderr that names the flag.
"""

import re
import subprocess
import sys

import pytest
import torch
from bad_input_harness import Case, check_coverage, ids, run_case, track
from hypothesis import given
from hypothesis import strategies as st

import spdl_ref
from spdl_ref import experiments as ex
from spdl_ref import loop, train
from spdl_ref import reproduce as rp
from spdl_ref.experiments import results
from spdl_ref.loop import NonFiniteError
from spdl_ref.reproduce import backends
from spdl_ref.reproduce._cli import main

D = torch.float64
NAN, INF = float("nan"), float("inf")
X = torch.randn(6, 2, dtype=D, generator=torch.Generator().manual_seed(0))
Y = torch.randn(6, 1, dtype=D, generator=torch.Generator().manual_seed(1))


def linear(zero=False):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1, dtype=D)
    if zero:
        with torch.no_grad():
            model.weight.zero_()
            model.bias.zero_()
    return track(model)


def sqrt_loss(prediction, target):
    """Finite where prediction = target, with an infinite derivative there."""
    return (prediction - target).abs().sqrt().mean()


def loop_call(**kw):
    model = kw.pop("model", None) or linear()
    args = dict(
        parameters=model,
        objective=lambda _: train.squared_loss(model(X), Y),
        iterations=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
    )
    args.update(kw)
    return loop.train_loop(**args)


def loop_nonfinite_gradient():
    model = linear(zero=True)
    return loop.train_loop(
        model,
        lambda _: sqrt_loss(model(X), torch.zeros(6, 1, dtype=D)),
        iterations=1,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
    )


def fit_call(**kw):
    model = kw.pop("model", None) or linear()
    args = dict(x=X, y=Y, iterations=1, progress=False)
    args.update(kw)
    return train.fit(model, **args)


def fit_nonfinite_gradient(optimizer):
    model = linear(zero=True)
    opt = torch.optim.Adam(model.parameters(), lr=0.1) if optimizer == "adam-object" else optimizer
    return train.fit(
        model, X, torch.zeros(6, 1, dtype=D), loss=sqrt_loss, optimizer=opt, progress=False
    )


def toy_tasks(budget, runs, seed):
    return [{"size": 4, "seed": seed + r} for r in range(runs)]


def toy_run(task, *, budget, device):
    return {"mean": float(torch.randn(task["size"]).mean())}


TOY = ex.Experiment(
    name="bad_input_toy", description="toy", chapter="tests", tasks=toy_tasks, run=toy_run
)
REGISTERED = ex.register(
    ex.Experiment(
        name="bad_input_registered",
        description="toy",
        chapter="tests",
        tasks=toy_tasks,
        run=toy_run,
    )
)


def load_broken():
    """load() of a result.json that is not JSON: the message names the file."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "ci" / "toy" / "result.json"
        path.parent.mkdir(parents=True)
        path.write_text("{not json")
        return results.load("toy", "ci", root=root)


def experiment(**kw):
    args = dict(name="toy", description="toy", chapter="tests", tasks=toy_tasks, run=toy_run)
    args.update(kw)
    return ex.Experiment(**args)


def reproduce_call(name=TOY, **kw):
    args = dict(budget="ci", device="cpu", out="/nonexistent-bad-input-out", progress=False)
    args.update(kw)
    return rp.reproduce(name, **args)


C = Case

CASES = [
    # --- spdl_ref.loop: the one training loop and its guard ---
    C("loop.train_loop", lambda: loop_call(parameters=X), "parameters"),
    C("loop.train_loop", lambda: loop_call(parameters=[]), "parameters", note="empty"),
    C(
        "loop.train_loop",
        lambda: loop_call(parameters=[X.clone()]),
        "parameters",
        note="no grad",
    ),
    C("loop.train_loop", lambda: loop_call(objective="loss"), "objective"),
    C("loop.train_loop", lambda: loop_call(iterations=-1), "iterations"),
    C("loop.train_loop", lambda: loop_call(iterations=1.0), "iterations", note="float"),
    C("loop.train_loop", lambda: loop_call(optimizer=None), "optimizer"),
    C("loop.train_loop", lambda: loop_call(optimizer=[0.1]), "optimizer", note="not optimizer"),
    C(
        "loop.train_loop",
        lambda: loop_call(optimizer=torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)),
        "optimizer",
        note="foreign parameters",
    ),
    C("loop.train_loop", lambda: loop_call(step=3), "step"),
    C("loop.train_loop", lambda: loop_call(batches=[X]), "batches"),
    C("loop.train_loop", lambda: loop_call(backward=1), "backward"),
    C("loop.train_loop", lambda: loop_call(callbacks=[None]), "callbacks"),
    C(
        "loop.train_loop",
        lambda: loop_call(objective=lambda _: X.sum(0)),
        "objective",
        note="not scalar",
    ),
    C(
        "loop.train_loop",
        loop_nonfinite_gradient,
        "gradient",
        error=NonFiniteError,
        note="finite loss, infinite gradient",
    ),
    C(
        "loop.train_loop",
        lambda: loop_call(objective=lambda _: X.sum() * NAN),
        "loss",
        error=NonFiniteError,
        note="nan loss",
    ),
    C(
        "loop.train_loop",
        lambda: loop_call(batches=lambda i: {"x": X * INF}, objective=lambda b: b["x"].sum()),
        "minibatch",
        error=NonFiniteError,
        note="non-finite data",
    ),
    C("loop.History", lambda: loop.History().record(loss=1.0), "loss"),
    C("loop.History", lambda: loop.History().record(seconds=1.0), "seconds", note="seconds"),
    # --- spdl_ref.train ---
    C("train.squared_loss", lambda: train.squared_loss(X, Y), "prediction"),
    C("train.squared_loss", lambda: train.squared_loss([1.0], Y), "prediction", note="list"),
    C("train.squared_loss", lambda: train.squared_loss(Y, Y.tolist()), "target", note="list"),
    C("train.l2_regulariser", lambda: train.l2_regulariser(-1.0), "lam"),
    C("train.l2_regulariser", lambda: train.l2_regulariser(NAN), "lam", note="nan"),
    C("train.l2_regulariser", lambda: train.l2_regulariser(0.1)(X), "model", note="call"),
    C(
        "train.accuracy",
        lambda: train.accuracy(X[None], torch.zeros(6, dtype=torch.long)),
        "scores",
    ),
    C("train.accuracy", lambda: train.accuracy(X, torch.zeros(5, dtype=torch.long)), "labels"),
    C("train.accuracy", lambda: train.accuracy(X, torch.zeros(6)), "labels", note="float"),
    C("train.accuracy", lambda: train.accuracy([0.1], torch.zeros(1)), "scores", note="list"),
    C(
        "train.accuracy",
        lambda: train.accuracy(X[:, 0] * NAN, torch.zeros(6, dtype=torch.long)),
        "scores",
        note="nan",
    ),
    C("train.fit", lambda: fit_call(model="linear"), "model"),
    C("train.fit", lambda: fit_call(x=X * NAN), "x"),
    C("train.fit", lambda: fit_call(y=Y[:5]), "y"),
    C("train.fit", lambda: fit_call(y=Y * INF), "y", note="inf"),
    C("train.fit", lambda: fit_call(iterations=0), "iterations"),
    C("train.fit", lambda: fit_call(lr=-1.0), "lr"),
    C("train.fit", lambda: fit_call(optimizer="lbfgs"), "optimizer"),
    C("train.fit", lambda: fit_call(batch_size=7), "batch_size"),
    C("train.fit", lambda: fit_call(loss="mse"), "loss"),
    C("train.fit", lambda: fit_call(regulariser=0.1), "regulariser"),
    C("train.fit", lambda: fit_call(batch_size=2, generator=1), "generator"),
    C("train.fit", lambda: fit_call(x=X.float()), "x", note="float32"),
    C(
        "train.fit",
        lambda: fit_nonfinite_gradient("sgd"),
        "gradient",
        error=NonFiniteError,
        note="sgd, finite loss, infinite gradient",
    ),
    C(
        "train.fit",
        lambda: fit_nonfinite_gradient("adam-object"),
        "gradient",
        error=NonFiniteError,
        note="torch Adam, finite loss, infinite gradient",
    ),
    # --- spdl_ref.experiments ---
    C("experiments.Experiment", lambda: experiment(name="Bad Name"), "name"),
    C("experiments.Experiment", lambda: experiment(tasks=3), "tasks"),
    C("experiments.Experiment", lambda: experiment(run=None), "run"),
    C("experiments.Experiment", lambda: experiment(plot="png"), "plot"),
    C("experiments.Experiment", lambda: experiment().make_tasks("huge"), "budget", note="tasks"),
    C("experiments.Experiment", lambda: experiment().make_tasks("ci", runs=0), "runs"),
    C("experiments.register", lambda: ex.register("toy"), "experiment"),
    C(
        "experiments.register",
        lambda: ex.register(experiment(name="bad_input_registered")),
        "bad_input_registered",
    ),
    C("experiments.get", lambda: ex.get(3), "name"),
    C("experiments.get", lambda: ex.get("no_such_experiment"), "no_such_experiment"),
    C(
        "experiments.run_task",
        lambda: ex.run_task(TOY, {"size": 2}, budget="ci", device="cpu"),
        "seed",
    ),
    C(
        "experiments.run_task",
        lambda: ex.run_task(TOY, {"seed": 0}, budget="huge", device="cpu"),
        "budget",
    ),
    C(
        "experiments.run_task",
        lambda: ex.run_task(TOY, {"seed": 0, "size": 2}, budget="ci", device="banana"),
        "device",
    ),
    C(
        "experiments.run_task",
        lambda: ex.run_task(3.0, {"seed": 0}, budget="ci", device="cpu"),
        "experiment",
    ),
    C(
        "experiments.run_tasks",
        lambda: ex.run_tasks(TOY, budget="ci", device="cpu", runs=0),
        "runs",
    ),
    C(
        "experiments.run_tasks",
        lambda: ex.run_tasks(TOY, budget="ci", device="cpu", seed=-1),
        "seed",
    ),
    C("experiments.run_tasks", lambda: ex.run_tasks(TOY, budget="x", device="cpu"), "budget"),
    C("experiments.run_tasks", lambda: ex.run_tasks(TOY, budget="ci", device="banana"), "device"),
    C("experiments.aggregate", lambda: ex.aggregate([{"seed": 0}], []), "tasks"),
    C("experiments.aggregate", lambda: ex.aggregate([{"seed": 0}], [3.0]), "results"),
    C("results.artifact_path", lambda: results.artifact_path("../x", "ci"), "name"),
    C("results.artifact_path", lambda: results.artifact_path("x", ""), "budget"),
    C("results.artifact_path", lambda: results.artifact_path(3, "ci"), "name", note="int"),
    C("results.load", lambda: results.load("x", "ci/../paper"), "budget"),
    C("results.load", load_broken, "result.json", note="not JSON"),
    C("results.pending_message", lambda: results.pending_message(None), "name"),
    C("results.ci_vs_paper", lambda: results.ci_vs_paper("x", "mean", ci=[]), "metrics"),
    C("results.ci_vs_paper", lambda: results.ci_vs_paper("x", ["m"], ci=[], digits=0), "digits"),
    C("results.ci_vs_paper", lambda: results.ci_vs_paper("x", ["m"], ci=[3]), "ci", note="rows"),
    C("results.ci_vs_paper", lambda: results.ci_vs_paper("x", ["m"], ci="rows"), "ci"),
    C("results.ci_vs_paper", lambda: results.ci_vs_paper("x", ["m"], paper="rows"), "paper"),
    # --- spdl_ref.reproduce.backends ---
    C("backends.open_backend", lambda: backends.open_backend("ray"), "backend"),
    C("backends.open_backend", lambda: backends.open_backend("local", workers=0), "workers"),
    C(
        "backends.open_backend",
        lambda: backends.open_backend("local", address="tcp://127.0.0.1:1"),
        "address",
    ),
    C("backends.LocalBackend", lambda: backends.LocalBackend(workers=0), "workers"),
    C("backends.LocalBackend", lambda: backends.LocalBackend(workers=2.0), "workers", note="float"),
    C("backends.DaskBackend", lambda: backends.DaskBackend(workers=-1), "workers"),
    C("backends.DaskBackend", lambda: backends.DaskBackend(address=8786), "address"),
    # --- spdl_ref.reproduce, the function form of the command ---
    C("reproduce.check_device", lambda: rp.check_device("banana"), "device"),
    C("reproduce.check_device", lambda: rp.check_device("meta"), "meta", note="meta"),
    C("reproduce.check_device", lambda: rp.check_device(None), "device", note="None"),
    C("reproduce.check_device", lambda: rp.check_device(1.5), "device", note="float"),
    C("reproduce.git_commit", lambda: rp.git_commit(3), "root"),
    C("reproduce.versions", lambda: rp.versions("tqdm"), "peers"),
    C("reproduce.versions", lambda: rp.versions([3]), "peers", note="not str"),
    C("reproduce.reproduce", lambda: reproduce_call(name=3), "name"),
    C("reproduce.reproduce", lambda: reproduce_call(name="no_such"), "no_such"),
    C("reproduce.reproduce", lambda: reproduce_call(runs=0), "runs"),
    C("reproduce.reproduce", lambda: reproduce_call(seed=-2), "seed"),
    C("reproduce.reproduce", lambda: reproduce_call(budget="huge"), "budget"),
    C("reproduce.reproduce", lambda: reproduce_call(device="banana"), "device"),
    C("reproduce.reproduce", lambda: reproduce_call(backend="ray"), "backend"),
    C("reproduce.reproduce", lambda: reproduce_call(workers=0), "workers"),
    C("reproduce.reproduce", lambda: reproduce_call(time_limit=-1), "time_limit"),
    C("reproduce.reproduce", lambda: reproduce_call(only={"size": 5}), "size"),
    C("reproduce.reproduce", lambda: reproduce_call(smoke=True), "smoke"),
    # --- the names spdl_ref exports itself (spdl_ref.config's, at the top level) ---
    C("spdl_ref.budget", spdl_ref.budget, "SPDL_BUDGET", env={"SPDL_BUDGET": "huge"}),
    C("spdl_ref.device", spdl_ref.device, "SPDL_DEVICE", env={"SPDL_DEVICE": "banana"}),
    C("spdl_ref.by_budget", lambda: spdl_ref.by_budget(ci=1.0, paper="1"), "ci"),
    C("spdl_ref.seed_everything", lambda: spdl_ref.seed_everything(-1), "seed"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, monkeypatch):
    run_case(case, monkeypatch)


EXEMPT = {
    "loop.NonFiniteError": "an exception class, raised by the guard, not called by users",
    "train.NonFiniteError": "re-export of spdl_ref.loop.NonFiniteError",
    "experiments.names": "takes no arguments",
    "results.Comparison": "a record that ci_vs_paper builds from checked rows; its cases are "
    "those of results.ci_vs_paper",
}


def test_every_public_name_has_a_case():
    check_coverage(
        CASES,
        [
            ("loop", "spdl_ref.loop"),
            ("train", "spdl_ref.train"),
            ("experiments", "spdl_ref.experiments"),
            ("reproduce", "spdl_ref.reproduce"),
            ("results", "spdl_ref.experiments.results"),
            ("backends", "spdl_ref.reproduce.backends"),
            ("spdl_ref", "spdl_ref"),
        ],
        EXEMPT,
    )


# --- python -m spdl_ref.reproduce: exit status 2, one line naming the flag -------------------

CLI = [
    (["no_such_experiment"], "experiment"),
    ([], "experiment"),
    (["bad_input_registered", "--runs", "0"], "--runs"),
    (["bad_input_registered", "--runs", "two"], "--runs"),
    (["bad_input_registered", "--seed", "-1"], "--seed"),
    (["bad_input_registered", "--budget", "huge"], "--budget"),
    (["bad_input_registered", "--device", "banana"], "--device"),
    (["bad_input_registered", "--device", "meta"], "--device"),
    (["bad_input_registered", "--backend", "ray"], "--backend"),
    (["bad_input_registered", "--workers", "0"], "--workers"),
    (["bad_input_registered", "--workers", "1.5"], "--workers"),
    (["bad_input_registered", "--address", "tcp://127.0.0.1:1"], "--address"),
    (["bad_input_registered", "--time-limit", "0"], "--time-limit"),
    (["bad_input_registered", "--time-limit", "nan"], "--time-limit"),
    (["bad_input_registered", "--only", "size"], "--only"),
    (["bad_input_registered", "--only", "size=5"], "--only"),
    (["bad_input_registered", "--smoke"], "--smoke"),
    (["bad_input_registered", "--frobnicate"], "--frobnicate"),
]


@pytest.mark.parametrize(("argv", "flag"), CLI, ids=[" ".join(a[1:]) or "none" for a, _ in CLI])
def test_the_command_refuses_bad_flags_with_status_2(capsys, tmp_path, argv, flag):
    status = main([*argv, "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert status == 2, (status, err)
    assert err.startswith("reproduce: error: ") and err.count("\n") == 1, err
    assert flag in err, f"the message does not name {flag}: {err}"
    assert out == "" and not (tmp_path / "out").exists()


def test_the_module_refuses_a_bad_flag_with_status_2(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "spdl_ref.reproduce", "x", "--runs", "0", "--out", tmp_path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and re.search(r"--runs|NAME|unknown", out.stderr)


class _NoEnv:
    def setenv(self, *args):  # pragma: no cover - hypothesis cases set no environment
        raise AssertionError("no environment in hypothesis cases")


@given(
    arg=st.sampled_from(["iterations", "lr", "batch_size"]),
    value=st.one_of(
        st.integers(-3, 0),
        st.sampled_from([NAN, INF, -INF, 1.5, "1", None, True]),
        st.floats(max_value=0.0),
    ),
)
def test_fit_refuses_bad_sizes_and_steps(arg, value):
    if value is None and arg == "batch_size":
        return  # None is batch_size's default: every sample
    if arg == "lr" and isinstance(value, float) and 0 < value < INF:
        value = -value  # a finite positive step is legal: make it negative
    run_case(Case("train.fit", lambda: fit_call(**{arg: value}), arg), _NoEnv())


@given(
    value=st.sampled_from([NAN, INF, -INF]),
    where=st.sampled_from(["x", "y"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_fit_refuses_non_finite_data(value, where, dtype):
    x, y = X.to(dtype).clone(), Y.to(dtype).clone()
    (x if where == "x" else y)[2, 0] = value
    model = track(torch.nn.Linear(2, 1, dtype=dtype))
    run_case(Case("train.fit", lambda: fit_call(model=model, x=x, y=y), where), _NoEnv())


def test_the_tables_hold_the_rows_that_book_using_md_counts():
    """book/using.md: eight tables, more than 900 rows (pytest.param rows included)."""
    import importlib
    import pathlib

    tables = sorted(pathlib.Path(__file__).parent.glob("test_bad_inputs_*.py"))
    assert len(tables) == 8, [t.name for t in tables]
    rows = sum(len(importlib.import_module(t.stem).CASES) for t in tables)
    assert rows > 900, rows
