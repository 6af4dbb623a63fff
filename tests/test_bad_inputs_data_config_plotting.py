"""Bad inputs to every public name of spdl_ref.data, spdl_ref.config and spdl_ref.plotting.

See tests/bad_input_harness.py for what each case must satisfy.
"""

import pytest
import torch
from bad_input_harness import Case, check_coverage, ids, run_case
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref import config, data

plotting = pytest.importorskip("spdl_ref.plotting")

NAN = float("nan")
STATES = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(0))
LABELS = torch.tensor([0, 1, 0, 1, 1])


def feature_evolution(**kw):
    args = dict(states=STATES, labels=LABELS, layers=[0, 2])
    args.update(kw)
    return plotting.feature_evolution(**args)


def _log_axes(ax="new", axis="x", scale="log", values=(2, 4, 8)):
    import matplotlib.pyplot as plt

    fig, new = plt.subplots()
    try:
        new.set_xscale(scale)
        new.set_yscale(scale)
        return plotting.plain_log_ticks(new if ax == "new" else ax, axis, values)
    finally:
        plt.close(fig)


C = Case

CASES = [
    # --- data ---
    C("data.two_moons", lambda: data.two_moons(0), "n"),
    C("data.two_moons", lambda: data.two_moons(1.5), "n", note="float"),
    C("data.two_moons", lambda: data.two_moons(10, noise=NAN), "noise"),
    C("data.two_moons", lambda: data.two_moons(10, noise=-1), "noise", note="negative"),
    C("data.two_moons", lambda: data.two_moons(10, seed=-1), "seed"),
    C("data.two_moons", lambda: data.two_moons(10, dtype=torch.int64), "dtype"),
    C("data.rings", lambda: data.rings(10, radii=(1.0, 0.5)), "radii"),
    C("data.rings", lambda: data.rings(10, radii=1.0), "radii", note="scalar"),
    C("data.rings", lambda: data.rings(10, radii=(0.0, 1.0)), "radii", note="zero"),
    C("data.rings", lambda: data.rings(10, dtype="float64"), "dtype"),
    C("data.spirals", lambda: data.spirals(10, turns=-1), "turns"),
    C("data.spirals", lambda: data.spirals(10, device="nonsense"), "device"),
    C("data.spirals", lambda: data.spirals(10, seed=1.5), "seed"),
    C("data.checkerboard", lambda: data.checkerboard(10, squares=1), "squares"),
    C("data.checkerboard", lambda: data.checkerboard(10, margin=0.5), "margin"),
    C("data.checkerboard", lambda: data.checkerboard(10, margin=-0.1), "margin", note="negative"),
    C("data.checkerboard", lambda: data.checkerboard(-3), "n"),
    C("data.helices", lambda: data.helices(10, turns=0), "turns"),
    C("data.helices", lambda: data.helices(10, radius=0), "radius"),
    C("data.helices", lambda: data.helices(10, noise="0.1"), "noise"),
    C("data.labels_to_signs", lambda: data.labels_to_signs([0, 1]), "y"),
    C(
        "data.labels_to_signs",
        lambda: data.labels_to_signs(torch.zeros(2, 2, dtype=torch.long)),
        "y",
        note="2-D",
    ),
    C(
        "data.labels_to_signs",
        lambda: data.labels_to_signs(torch.tensor([0, 2])),
        "y",
        note="labels",
    ),
    C(
        "data.labels_to_signs",
        lambda: data.labels_to_signs(torch.tensor([0.0, NAN])),
        "y",
        note="nan",
    ),
    C(
        "data.labels_to_signs",
        lambda: data.labels_to_signs(torch.tensor([0, 1]), dtype=torch.int64),
        "dtype",
    ),
    C("data.random_rectangles", lambda: data.random_rectangles(2, size=4), "size"),
    C(
        "data.random_rectangles",
        lambda: data.random_rectangles(2, max_rectangles=0),
        "max_rectangles",
    ),
    C("data.random_rectangles", lambda: data.random_rectangles(2, dtype=torch.int32), "dtype"),
    C("data.random_rectangles", lambda: data.random_rectangles(0), "n"),
    # --- config ---
    C("config.budget", config.budget, "SPDL_BUDGET", env={"SPDL_BUDGET": "fast"}),
    C("config.device", config.device, "SPDL_DEVICE", env={"SPDL_DEVICE": "bogus"}),
    C("config.by_budget", lambda: config.by_budget(ci=1, paper="2"), "ci"),
    C(
        "config.by_budget",
        lambda: config.by_budget(ci=dict(n=1), paper=dict(m=2)),
        "ci",
        note="keys",
    ),
    C(
        "config.by_budget",
        lambda: config.by_budget(ci=[1], paper=(1, 2)),
        "ci",
        note="list vs tuple",
    ),
    C("config.seed_everything", lambda: config.seed_everything(-1), "seed"),
    C("config.seed_everything", lambda: config.seed_everything(1.5), "seed", note="float"),
    C("config.seed_everything", lambda: config.seed_everything(True), "seed", note="bool"),
    # --- plotting ---
    C("plotting.plain_log_ticks", lambda: _log_axes(ax=None), "ax"),
    C("plotting.plain_log_ticks", lambda: _log_axes(axis="z"), "axis"),
    C("plotting.plain_log_ticks", lambda: _log_axes(scale="linear"), "ax", note="linear"),
    C("plotting.plain_log_ticks", lambda: _log_axes(values=[2, 0, 8]), "values", note="zero"),
    C("plotting.plain_log_ticks", lambda: _log_axes(values=[2, NAN]), "values", note="nan"),
    C("plotting.plain_log_ticks", lambda: _log_axes(values=[]), "values", note="empty"),
    C("plotting.plain_log_ticks", lambda: _log_axes(values=["a"]), "values", note="text"),
    C("plotting.feature_evolution", lambda: feature_evolution(states=STATES[0]), "states"),
    C(
        "plotting.feature_evolution",
        lambda: feature_evolution(states=torch.randn(3, 5, 4)),
        "states",
        note="dim 4",
    ),
    C(
        "plotting.feature_evolution",
        lambda: feature_evolution(states=STATES.clone().fill_(NAN)),
        "states",
        note="nan",
    ),
    C("plotting.feature_evolution", lambda: feature_evolution(labels=LABELS[:3]), "labels"),
    C(
        "plotting.feature_evolution",
        lambda: feature_evolution(labels=LABELS + 1),
        "labels",
        note="classes",
    ),
    C("plotting.feature_evolution", lambda: feature_evolution(layers=[0, 3]), "layers"),
    C("plotting.feature_evolution", lambda: feature_evolution(layers=[]), "layers", note="empty"),
    C(
        "plotting.feature_evolution",
        lambda: feature_evolution(layers=[0.5]),
        "layers",
        note="float",
    ),
    C("plotting.feature_evolution", lambda: feature_evolution(W=torch.ones(2)), "W"),
    C(
        "plotting.feature_evolution",
        lambda: feature_evolution(W=torch.ones(3), mu=torch.zeros(1)),
        "W",
        note="size",
    ),
    C(
        "plotting.feature_evolution",
        lambda: feature_evolution(W=torch.zeros(2), mu=torch.zeros(1)),
        "W",
        note="zero",
    ),
    C(
        "plotting.feature_evolution",
        lambda: feature_evolution(W=torch.ones(2), mu=torch.zeros(2)),
        "mu",
    ),
    C("plotting.feature_evolution", lambda: feature_evolution(point_size=0), "point_size"),
    C("plotting.feature_evolution", lambda: feature_evolution(axes=[None]), "axes"),
    C("plotting.feature_evolution", lambda: feature_evolution(title=3), "title"),
    C("plotting.loss_curves", lambda: plotting.loss_curves([1.0, 0.5]), "histories"),
    C("plotting.loss_curves", lambda: plotting.loss_curves({}), "histories", note="empty"),
    C(
        "plotting.loss_curves",
        lambda: plotting.loss_curves({"a": [1.0, 0.0]}),
        "histories",
        note="zero",
    ),
    C(
        "plotting.loss_curves",
        lambda: plotting.loss_curves({"a": [1.0, NAN]}),
        "histories",
        note="nan",
    ),
    C("plotting.loss_curves", lambda: plotting.loss_curves({"a": ["x"]}), "histories", note="text"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, monkeypatch):
    run_case(case, monkeypatch)


EXEMPT = {"plotting.use_style": "takes no arguments"}


def test_every_public_name_has_a_case():
    check_coverage(
        CASES,
        [
            ("data", "spdl_ref.data"),
            ("config", "spdl_ref.config"),
            ("plotting", "spdl_ref.plotting"),
        ],
        EXEMPT,
    )


class _NoEnv:
    def setenv(self, *args):  # pragma: no cover - hypothesis cases set no environment
        raise AssertionError("no environment in hypothesis cases")


GENERATORS = ["two_moons", "rings", "spirals", "checkerboard", "helices"]


@pytest.mark.parametrize("name", GENERATORS)
@given(
    arg=st.sampled_from(["n", "noise", "seed"]),
    value=st.one_of(
        st.integers(-5, 0), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=2)
    ),
)
def test_data_sets_refuse_bad_sizes_noise_and_seeds(name, arg, value):
    kw = {"n": 4, arg: value}
    if arg == "noise" and isinstance(value, (int, float)) and 0 <= value < float("inf"):
        kw["noise"] = -1.0 - value  # a finite non-negative noise is legal: make it negative
    if arg == "seed" and isinstance(value, int) and value == 0:
        kw["seed"] = -1
    run_case(Case(name, lambda: getattr(data, name)(**kw), arg), _NoEnv())
