"""Bad inputs to every public name of spdl_ref.control (Section 3): a table of clear errors.

See tests/bad_input_harness.py for what each case must satisfy. The training drivers (msa, sgd,
proximal_gradient, minimise) also get a finite loss whose gradient is not finite
(:math:`|z|^{1/2}` at 0): they must stop with :class:`spdl_ref.loop.NonFiniteError` before any
parameter changes.
"""

import pytest
import torch
from bad_input_harness import Case, check_coverage, ids, run_case, track
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref import control as ctl
from spdl_ref.loop import NonFiniteError
from spdl_ref.ode import ResNet

D = torch.float64
NAN, INF = float("nan"), float("inf")
X = torch.randn(5, 2, dtype=D, generator=torch.Generator().manual_seed(0))


def net(depth=3, **kw):
    kw.setdefault("generator", torch.Generator().manual_seed(1))
    return track(ResNet(2, depth, dtype=D, **kw))


def flat():
    """A ResNet with zero weights: every state is 0 where |z|^(1/2) has an infinite slope."""
    return track(ResNet(2, 3, init_std=0, dtype=D))


def mean_fit(z):
    return 0.5 * z.pow(2).sum(-1).mean()


def fit_idx(z, idx):
    return 0.5 * z.pow(2).sum(-1).mean()


def sqrt_fit(z, idx=None):
    """Finite at z = 0 with an infinite derivative there."""
    return z.abs().sqrt().sum()


def nonfinite(x, value=NAN):
    x = x.clone()
    x.view(-1)[0] = value
    return x


def lam(depth=3):
    """Stacked states or costates, shape (K + 1, N, M)."""
    return torch.zeros(depth + 1, 5, 2, dtype=D)


def _nonfinite_minimise():
    model = flat()
    return ctl.minimise(model, lambda: sqrt_fit(model(torch.zeros(5, 2, dtype=D))), max_iter=3)


def _nan_minimise():
    model = net()
    return ctl.minimise(model, lambda: model(X).sum() * NAN, max_iter=3)


def _prox_gradient(**kw):
    model = kw.pop("model", None) or net()
    args = dict(x=X, loss=mean_fit, prox={"A": ctl.l1_prox(0.1)}, iterations=1)
    args.update(kw)
    return ctl.proximal_gradient(model, **args)


C = Case

CASES = [
    # --- adjoint (28), Theorem 3.2 ---
    C("control.adjoint_step", lambda: ctl.adjoint_step(net(), 5, X, X), "k"),
    C("control.adjoint_step", lambda: ctl.adjoint_step(net(), -1, X, X), "k", note="negative"),
    C("control.adjoint_step", lambda: ctl.adjoint_step(net(), 0, X[:, :1], X), "u"),
    C("control.adjoint_step", lambda: ctl.adjoint_step(net(), 0, X, X[:3]), "lam"),
    C(
        "control.adjoint_step",
        lambda: ctl.adjoint_step(net(), 0, X, X.int()),
        "lam",
        note="int",
    ),
    C("control.adjoint_step", lambda: ctl.adjoint_step(torch.nn.Linear(2, 2), 0, X, X), "model"),
    C(
        "control.adjoint_step",
        lambda: ctl.adjoint_step(net(), 0, X, X, printed_sign=1),
        "printed_sign",
    ),
    C("control.costates", lambda: ctl.costates(net(), nonfinite(X), mean_fit), "x"),
    C("control.costates", lambda: ctl.costates(net(), X, 3), "loss"),
    C("control.costates", lambda: ctl.costates(net(), X.float(), mean_fit), "x", note="float32"),
    C("control.costates", lambda: ctl.costates("resnet", X, mean_fit), "model"),
    C("control.terminal_costate", lambda: ctl.terminal_costate(net(), X[:, :1], mean_fit), "x"),
    C("control.terminal_costate", lambda: ctl.terminal_costate(net(), X, None), "loss"),
    C(
        "control.terminal_costate",
        lambda: ctl.terminal_costate(net(), X, lambda z: z.sum(-1)),
        "loss",
        note="not scalar",
    ),
    C("control.discrete_adjoint", lambda: ctl.discrete_adjoint(net(), X, X[:3]), "grad_zK"),
    C(
        "control.discrete_adjoint",
        lambda: ctl.discrete_adjoint(net(), X, nonfinite(X, INF)),
        "grad_zK",
        note="inf",
    ),
    C("control.discrete_adjoint", lambda: ctl.discrete_adjoint(net(), [1.0], X), "x"),
    C(
        "control.discrete_adjoint",
        lambda: ctl.discrete_adjoint(net(), X, X, return_costates="yes"),
        "return_costates",
    ),
    C("control.discrete_costates", lambda: ctl.discrete_costates(net(), X, X.int()), "grad_zK"),
    C(
        "control.discrete_costates",
        lambda: ctl.discrete_costates(net(), X, X[:, :1], name="g"),
        "g",
        note="name",
    ),
    # --- continuous adjoint (26)-(27), Theorem 3.1 ---
    C("control.ode_flow", lambda: ctl.ode_flow(net(), X, method="nonsense"), "method"),
    C("control.ode_flow", lambda: ctl.ode_flow(net(), X, steps_per_layer=0), "steps_per_layer"),
    C("control.ode_flow", lambda: ctl.ode_flow(net(), nonfinite(X)), "x"),
    C("control.ode_flow", lambda: ctl.ode_flow(torch.nn.Linear(2, 2), X), "model"),
    C(
        "control.continuous_adjoint",
        lambda: ctl.continuous_adjoint(net(), X, mean_fit, adjoint="magic"),
        "adjoint",
    ),
    C(
        "control.continuous_adjoint",
        lambda: ctl.continuous_adjoint(net(), X, mean_fit, steps_per_layer=1.5),
        "steps_per_layer",
    ),
    C("control.continuous_adjoint", lambda: ctl.continuous_adjoint(net(), X, "mse"), "loss"),
    C(
        "control.continuous_adjoint",
        lambda: ctl.continuous_adjoint(net(), X[:, :1], mean_fit),
        "x",
    ),
    C(
        "control.continuous_adjoint",
        lambda: ctl.continuous_adjoint(net(), X, mean_fit, return_costates=None),
        "return_costates",
    ),
    # --- gradients as dicts ---
    C("control.autograd_gradient", lambda: ctl.autograd_gradient(net(), X), "value"),
    C("control.autograd_gradient", lambda: ctl.autograd_gradient(lambda: 0, X.sum()), "model"),
    C("control.gradient_norm", lambda: ctl.gradient_norm({}), "g"),
    C("control.gradient_norm", lambda: ctl.gradient_norm([X]), "g", note="list"),
    C("control.gradient_norm", lambda: ctl.gradient_norm({"A": [1.0]}), "g", note="entry"),
    C("control.relative_error", lambda: ctl.relative_error({"A": X}, {"A": X[:3]}), "g"),
    C("control.relative_error", lambda: ctl.relative_error({"A": X}, {"B": X}), "g", note="key"),
    C("control.relative_error", lambda: ctl.relative_error({"A": X}, {}), "reference"),
    C(
        "control.relative_error",
        lambda: ctl.relative_error({"A": X}, {"A": torch.zeros_like(X)}),
        "reference",
        note="zero",
    ),
    # --- MSA (31)-(33) ---
    C("control.hamiltonian", lambda: ctl.hamiltonian(net(), lam(), lam(2)), "p"),
    C("control.hamiltonian", lambda: ctl.hamiltonian(net(), X, lam()), "z"),
    C("control.hamiltonian", lambda: ctl.hamiltonian(net(), lam(), lam(), theta={"C": X}), "theta"),
    C(
        "control.extended_hamiltonian",
        lambda: ctl.extended_hamiltonian(net(), lam(), lam(), rho=-1),
        "rho",
    ),
    C(
        "control.extended_hamiltonian",
        lambda: ctl.extended_hamiltonian(net(), lam(), lam(), rho=NAN),
        "rho",
        note="nan",
    ),
    C(
        "control.hamiltonian_stationarity",
        lambda: ctl.hamiltonian_stationarity(net(), X, 1.0),
        "loss",
    ),
    C(
        "control.hamiltonian_stationarity",
        lambda: ctl.hamiltonian_stationarity(net(), nonfinite(X), mean_fit),
        "x",
    ),
    C(
        "control.maximise_hamiltonian",
        lambda: ctl.maximise_hamiltonian(net(), lam(), lam(), inner_steps=0),
        "inner_steps",
    ),
    C(
        "control.maximise_hamiltonian",
        lambda: ctl.maximise_hamiltonian(net(), lam(), lam(), inner_lr=-0.1),
        "inner_lr",
    ),
    C(
        "control.maximise_hamiltonian",
        lambda: ctl.maximise_hamiltonian(net(), lam(), lam(), candidates={"A": X, "b": X}),
        "candidates",
    ),
    C("control.msa", lambda: ctl.msa(net(), X, fit_idx, iterations=0), "iterations"),
    C("control.msa", lambda: ctl.msa(net(), X, fit_idx, rho=-1.0), "rho"),
    C("control.msa", lambda: ctl.msa(net(), X, fit_idx, batch_size=6), "batch_size"),
    C("control.msa", lambda: ctl.msa(net(), X, fit_idx, inner_lr=INF), "inner_lr"),
    C("control.msa", lambda: ctl.msa(net(), X, "fit"), "loss"),
    C("control.msa", lambda: ctl.msa(net(), nonfinite(X), fit_idx), "x"),
    C(
        "control.msa",
        lambda: ctl.msa(net(), X, fit_idx, iterations=1, generator=0, batch_size=2),
        "generator",
    ),
    C("control.msa", lambda: ctl.msa(net(), X, fit_idx, full_loss="no"), "full_loss"),
    C(
        "control.msa",
        lambda: ctl.msa(flat(), torch.zeros(5, 2, dtype=D), sqrt_fit, iterations=1),
        "gradient",
        error=NonFiniteError,
        note="finite loss, infinite gradient",
    ),
    # --- problems (23)-(25) ---
    C("control.SquaredFit", lambda: ctl.SquaredFit(X, 0)(X[:, :1]), "z"),
    C("control.squared_fit", lambda: ctl.squared_fit(X, coordinate=0), "target"),
    C("control.squared_fit", lambda: ctl.squared_fit(X[:, 0], coordinate=-1), "coordinate"),
    C("control.squared_fit", lambda: ctl.squared_fit(nonfinite(X)[:, 0]), "target", note="nan"),
    C(
        "control.squared_fit",
        lambda: ctl.squared_fit(X[:, 0], coordinate=None),
        "target",
        note="1-D",
    ),
    C(
        "control.reduced_objective",
        lambda: ctl.reduced_objective(net(), X, mean_fit, 3),
        "regulariser",
    ),
    C("control.reduced_objective", lambda: ctl.reduced_objective(net(), X, 3), "loss"),
    C("control.reduced_objective", lambda: ctl.reduced_objective(net(), X[None], mean_fit), "x"),
    C(
        "control.full_space_objective",
        lambda: ctl.full_space_objective(net(), lam(2), X, mean_fit),
        "z",
    ),
    C(
        "control.full_space_objective",
        lambda: ctl.full_space_objective(net(), lam(), nonfinite(X), mean_fit),
        "x",
    ),
    C("control.sgd", lambda: ctl.sgd(net(), X, fit_idx, tau=0), "tau"),
    C("control.sgd", lambda: ctl.sgd(net(), X, fit_idx, iterations=-1), "iterations"),
    C("control.sgd", lambda: ctl.sgd(net(), X, fit_idx, batch_size=0), "batch_size"),
    C("control.sgd", lambda: ctl.sgd(net(), X, None), "loss"),
    C("control.sgd", lambda: ctl.sgd(net(), X, fit_idx, batch_size=2, generator="0"), "generator"),
    C(
        "control.sgd",
        lambda: ctl.sgd(flat(), torch.zeros(5, 2, dtype=D), sqrt_fit, iterations=1),
        "gradient",
        error=NonFiniteError,
        note="finite loss, infinite gradient",
    ),
    # --- regularisers and proximal maps (Section 3.2) ---
    C("control.l1_norm", lambda: ctl.l1_norm(torch.nn.Linear(2, 2)), "model"),
    C("control.squared_l2_norm", lambda: ctl.squared_l2_norm(X), "model"),
    C("control.h1_discrete", lambda: ctl.h1_discrete(None), "model"),
    C("control.soft_threshold", lambda: ctl.soft_threshold(X, -1), "tau"),
    C("control.soft_threshold", lambda: ctl.soft_threshold(nonfinite(X), 1), "theta"),
    C("control.l1_prox", lambda: ctl.l1_prox(-1), "lam"),
    C("control.l1_prox", lambda: ctl.l1_prox(0.1)(X, -1), "tau", note="tau"),
    C("control.squared_l2_prox", lambda: ctl.squared_l2_prox(NAN), "lam"),
    C("control.squared_l2_prox", lambda: ctl.squared_l2_prox(0.1)(X.int(), 1), "theta"),
    C("control.simplex_prox", lambda: ctl.simplex_prox(0), "T"),
    C("control.simplex_prox", lambda: ctl.simplex_prox(1.0)(X, 0.1), "h", note="2-D"),
    C("control.project_simplex", lambda: ctl.project_simplex(X[:, 0], -1), "T"),
    C("control.project_simplex", lambda: ctl.project_simplex(X, 1), "h", note="2-D"),
    C(
        "control.project_simplex",
        lambda: ctl.project_simplex(nonfinite(X[:, 0]), 1),
        "h",
        note="nan",
    ),
    C("control.time_step_indicator", lambda: ctl.time_step_indicator(X[:, 0], INF), "T"),
    C("control.time_step_indicator", lambda: ctl.time_step_indicator(X[:, 0], 1, tol=-1), "tol"),
    C("control.time_step_indicator", lambda: ctl.time_step_indicator([0.5, 0.5], 1), "h"),
    # --- proximal-gradient training of time steps (38)-(39) ---
    C("control.proximal_gradient", lambda: _prox_gradient(tau=-1), "tau"),
    C("control.proximal_gradient", lambda: _prox_gradient(iterations=0), "iterations"),
    C("control.proximal_gradient", lambda: _prox_gradient(prox={"C": ctl.l1_prox(1)}), "prox"),
    C("control.proximal_gradient", lambda: _prox_gradient(prox={"A": 1.0}), "prox", note="value"),
    C("control.proximal_gradient", lambda: _prox_gradient(loss="mse"), "loss"),
    C("control.proximal_gradient", lambda: _prox_gradient(x=nonfinite(X)), "x"),
    C("control.proximal_gradient", lambda: _prox_gradient(model="net"), "model"),
    C(
        "control.proximal_gradient",
        lambda: _prox_gradient(model=flat(), x=torch.zeros(5, 2, dtype=D), loss=sqrt_fit),
        "gradient",
        error=NonFiniteError,
        note="finite loss, infinite gradient",
    ),
    # --- deep limits (40), Theorem 3.3 ---
    C(
        "control.deep_limit_objective",
        lambda: ctl.deep_limit_objective(net(), X, mean_fit, lam=0),
        "lam",
    ),
    C(
        "control.deep_limit_objective",
        lambda: ctl.deep_limit_objective(torch.nn.Linear(2, 2), X, mean_fit, lam=1),
        "model",
    ),
    C(
        "control.deep_limit_sequence",
        lambda: ctl.deep_limit_sequence(net(), X, mean_fit, 1.0, depths=[2, 0]),
        "depths",
    ),
    C(
        "control.deep_limit_sequence",
        lambda: ctl.deep_limit_sequence(net(), X, mean_fit, 1.0, depths=[]),
        "depths",
        note="empty",
    ),
    C(
        "control.deep_limit_sequence",
        lambda: ctl.deep_limit_sequence(net(), X, mean_fit, 1.0, depths=[3], max_iter=0),
        "max_iter",
    ),
    C("control.prolong", lambda: ctl.prolong(net(), factor=0), "factor"),
    C("control.prolong", lambda: ctl.prolong(net(), factor=2.0), "factor", note="float"),
    C("control.prolong", lambda: ctl.prolong(torch.nn.Linear(2, 2)), "model"),
    C("control.l2_distance", lambda: ctl.l2_distance(net(), net(T=2.0)), "T"),
    C("control.minimise", lambda: ctl.minimise(net(), lambda: X.sum(), max_iter=0), "max_iter"),
    C("control.minimise", lambda: ctl.minimise(net(), lambda: X.sum(), tol=0), "tol"),
    C("control.minimise", lambda: ctl.minimise(net(), 1.0), "objective"),
    C(
        "control.minimise",
        _nonfinite_minimise,
        "gradient",
        error=NonFiniteError,
        note="finite loss, infinite gradient",
    ),
    C("control.minimise", _nan_minimise, "loss", error=NonFiniteError, note="nan loss"),
    # --- continuous problem (41), backward sweep, minibatches, total variation ---
    C(
        "control.PiecewiseLinearControl",
        lambda: ctl.PiecewiseLinearControl(net(), [1], 1.0),
        "values",
    ),
    C("control.PiecewiseLinearControl", lambda: ctl.PiecewiseLinearControl(net(), {}, -1.0), "T"),
    C("control.PiecewiseLinearControl", lambda: ctl.PiecewiseLinearControl("m", {}, 1.0), "model"),
    C("control.backward_sweep", lambda: ctl.backward_sweep("m", [X], X), "model"),
    C("control.backward_sweep", lambda: ctl.backward_sweep(net(), [X], X), "states"),
    C(
        "control.continuous_objective",
        lambda: ctl.continuous_objective("c", X, lambda z: z.sum(), 0.1),
        "control",
    ),
    C("control.minibatches", lambda: ctl.minibatches(X, 0), "batch_size"),
    C("control.minibatches", lambda: ctl.minibatches("x", 2), "x"),
    C("control.tv_denoise", lambda: ctl.tv_denoise(X[:, 0], -1.0), "lam"),
    C("control.tv_denoise", lambda: ctl.tv_denoise("y", 1.0), "y"),
    C("control.tv_norm", lambda: ctl.tv_norm("m"), "model"),
    C("control.tv_prox", lambda: ctl.tv_prox(-1.0), "lam"),
]


def _case(p):
    return p.values[0] if hasattr(p, "values") else p


@pytest.mark.parametrize("case", CASES, ids=ids([_case(c) for c in CASES]))
def test_bad_input(case, monkeypatch):
    run_case(case, monkeypatch)


EXEMPT = {
    "control.VariableStepResNet": "spdl_ref.ode.VariableStepResNet re-exported; its cases are in "
    "tests/test_bad_inputs_ode.py's sibling table of the ode subpackage",
}


def test_every_public_name_has_a_case():
    check_coverage([_case(c) for c in CASES], [("control", "spdl_ref.control")], EXEMPT)


class _NoEnv:
    def setenv(self, *args):  # pragma: no cover - hypothesis cases set no environment
        raise AssertionError("no environment in hypothesis cases")


@given(
    tau=st.one_of(
        st.floats(max_value=0.0),
        st.sampled_from([NAN, INF, -INF]),
        st.text(max_size=2),
        st.booleans(),
    )
)
def test_step_sizes_of_every_driver_are_checked(tau):
    for name, call in (
        ("control.sgd", lambda: ctl.sgd(net(), X, fit_idx, tau=tau, iterations=1)),
        ("control.proximal_gradient", lambda: _prox_gradient(tau=tau)),
        ("control.msa", lambda: ctl.msa(net(), X, fit_idx, inner_lr=tau, iterations=1)),
    ):
        arg = "inner_lr" if name == "control.msa" else "tau"
        run_case(Case(name, call, arg), _NoEnv())


@given(
    shape=st.sampled_from([(5,), (5, 3), (5, 1), (1, 5, 2), (0, 2)]),
    bad=st.sampled_from([None, NAN, INF, -INF]),
    dtype=st.sampled_from([D, torch.float32, torch.int64]),
)
def test_inputs_of_the_adjoints_are_checked(shape, bad, dtype):
    x = torch.ones(shape, dtype=dtype)
    if bad is not None and x.numel() and x.is_floating_point():
        x.view(-1)[0] = bad
    run_case(Case("control.costates", lambda: ctl.costates(net(), x, mean_fit), "x"), _NoEnv())
