"""Bad inputs to every public name of spdl_ref.optim (Section 6): a table of clear errors.

See tests/bad_input_harness.py for what each case must satisfy. The optimisers get bad
hyperparameters both in the constructor and through ``add_param_group``; the training loops
(train_mean_field, optimise_path) get a finite loss whose gradient is not finite and must stop
with :class:`spdl_ref.loop.NonFiniteError`, nothing changed.
"""

import pytest
import torch
from bad_input_harness import Case, check_coverage, ids, run_case, track
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref import optim
from spdl_ref.loop import NonFiniteError

D = torch.float64
NAN, INF = float("nan"), float("inf")
GEN = torch.Generator


def t64(*shape, seed=0):
    return torch.randn(*shape, dtype=D, generator=GEN().manual_seed(seed))


def nonfinite(x, value=NAN):
    x = x.clone()
    x.view(-1)[0] = value
    return x


def linear(n_in=2, n_out=1):
    torch.manual_seed(0)
    return track(torch.nn.Linear(n_in, n_out, dtype=D))


def param(*shape):
    return torch.nn.Parameter(t64(*shape))


def stiefel(n=4, p=2):
    return torch.nn.Parameter(optim.random_stiefel(n, p, generator=GEN().manual_seed(0), dtype=D))


def add_group(opt_cls, key, value, **kw):
    """Build ``opt_cls`` on one parameter, then add a second group with ``key=value``."""
    first, second = kw.pop("first", param(3)), kw.pop("second", param(3))
    opt = opt_cls([first], **kw)
    return opt.add_param_group({"params": [second], key: value})


def mean_field(M=2, J=4):
    return track(optim.MeanFieldReLU(M, J, generator=GEN().manual_seed(0), dtype=D))


def overflowing_mean_field():
    """float32, one neuron: Phi = 1e19 (loss 5e37, finite), dE/dc = Phi * relu = 1e39 = inf."""
    model = optim.MeanFieldReLU(1, 1, dtype=torch.float32)
    with torch.no_grad():
        model.a.fill_(1.0)
        model.b.zero_()
        model.c.fill_(0.1)
    track(model)
    x = torch.full((1, 1), 1e20)
    return optim.train_mean_field(model, x, torch.zeros(1), lr=0.1, steps=1)


def kinetic(fn, **kw):
    args = dict(p=t64(3), mass=1.0, kinetic="quadratic", eps=1.0)
    args.update(kw)
    return fn(**args)


def conformal(**kw):
    args = dict(theta=t64(3), p=t64(3, seed=1), grad_E=lambda t: t, h=0.1, gamma=1.0)
    args.update(kw)
    return optim.conformal_step(**args)


def natural(**kw):
    args = dict(model=linear(), x=t64(5, 2), y=t64(5, 1), lr=0.1, damping=1e-3)
    args.update(kw)
    return optim.natural_gradient_step(**args)


def gauss_newton(**kw):
    args = dict(model=linear(), x=t64(5, 2), y=t64(5, 1), damping=1e-3)
    args.update(kw)
    return optim.gauss_newton_step(**args)


def path(**kw):
    args = dict(
        loss_fn=optim.camelback,
        make_optimizer=lambda p: torch.optim.SGD(p, lr=0.01),
        steps=2,
    )
    args.update(kw)
    return optim.optimise_path(**args)


def train_mf(**kw):
    args = dict(model=mean_field(), x=t64(6, 2), y=t64(6), lr=0.1, steps=1)
    args.update(kw)
    return optim.train_mean_field(**args)


def student(**kw):
    args = dict(kind="cayley", steps=1, n=4, p=2, samples=8)
    args.update(kw)
    return optim.stiefel_student(**args)


C = Case

CASES = [
    # --- Adam (53) ---
    C("optim.Adam", lambda: optim.Adam([param(3)], lr=-1), "lr"),
    C("optim.Adam", lambda: optim.Adam([param(3)], betas=(0.9, 1.0)), "betas"),
    C("optim.Adam", lambda: optim.Adam([param(3)], betas=0.9), "betas", note="scalar"),
    C("optim.Adam", lambda: optim.Adam([param(3)], eps=0), "eps"),
    C("optim.Adam", lambda: optim.Adam([param(3)], form="printed"), "form"),
    C("optim.Adam", lambda: optim.Adam([param(3)], check_finite=1), "check_finite"),
    C("optim.Adam", lambda: add_group(optim.Adam, "lr", -1.0), "lr", note="add_param_group"),
    C("optim.Adam", lambda: add_group(optim.Adam, "eps", NAN), "eps", note="add_param_group"),
    C(
        "optim.Adam",
        lambda: add_group(optim.Adam, "betas", (1.5, 0.9)),
        "betas",
        note="add_param_group",
    ),
    C("optim.Adam", lambda: optim.Adam([param(3)]).add_param_group([param(3)]), "param_group"),
    # --- conformal Hamiltonian optimisers (54)-(57) ---
    C("optim.ConformalHamiltonian", lambda: optim.ConformalHamiltonian([param(3)], 0, 1), "lr"),
    C(
        "optim.ConformalHamiltonian",
        lambda: optim.ConformalHamiltonian([param(3)], 0.1, -1),
        "gamma",
    ),
    C(
        "optim.ConformalHamiltonian",
        lambda: optim.ConformalHamiltonian([param(3)], 0.1, 1, mass=0),
        "mass",
    ),
    C(
        "optim.ConformalHamiltonian",
        lambda: optim.ConformalHamiltonian([param(3)], 0.1, 1, kinetic="cubic"),
        "kinetic",
    ),
    C(
        "optim.ConformalHamiltonian",
        lambda: optim.ConformalHamiltonian([param(3)], 0.1, 1, nesterov="yes"),
        "nesterov",
    ),
    C(
        "optim.ConformalHamiltonian",
        lambda: add_group(optim.ConformalHamiltonian, "mass", 0.0, lr=0.1, gamma=1.0),
        "mass",
        note="add_param_group",
    ),
    C(
        "optim.ConformalHamiltonian",
        lambda: add_group(optim.ConformalHamiltonian, "lr", -1.0, lr=0.1, gamma=1.0),
        "lr",
        note="add_param_group",
    ),
    C("optim.kinetic_energy", lambda: kinetic(optim.kinetic_energy, mass=0), "mass"),
    C("optim.kinetic_energy", lambda: kinetic(optim.kinetic_energy, mass=-1.0), "mass", note="<0"),
    C("optim.kinetic_energy", lambda: kinetic(optim.kinetic_energy, p=nonfinite(t64(3))), "p"),
    C("optim.kinetic_energy", lambda: kinetic(optim.kinetic_energy, kinetic="quartic"), "kinetic"),
    C(
        "optim.kinetic_energy",
        lambda: kinetic(optim.kinetic_energy, kinetic="relativistic", eps=0),
        "eps",
    ),
    C("optim.kinetic_gradient", lambda: kinetic(optim.kinetic_gradient, mass=0), "mass"),
    C(
        "optim.kinetic_gradient",
        lambda: kinetic(optim.kinetic_gradient, mass=NAN),
        "mass",
        note="nan",
    ),
    C("optim.kinetic_gradient", lambda: kinetic(optim.kinetic_gradient, p=[1.0, 2.0]), "p"),
    C(
        "optim.kinetic_gradient",
        lambda: kinetic(optim.kinetic_gradient, p=nonfinite(t64(3), INF)),
        "p",
        note="inf",
    ),
    C("optim.conformal_step", lambda: conformal(h=-0.1), "h"),
    C("optim.conformal_step", lambda: conformal(h=0), "h", note="zero"),
    C("optim.conformal_step", lambda: conformal(mass=0), "mass"),
    C("optim.conformal_step", lambda: conformal(gamma=NAN), "gamma"),
    C("optim.conformal_step", lambda: conformal(theta=nonfinite(t64(3))), "theta"),
    C("optim.conformal_step", lambda: conformal(p=t64(4)), "p", note="shape"),
    C("optim.conformal_step", lambda: conformal(grad_E=3), "grad_E"),
    C("optim.conformal_step", lambda: conformal(grad_E=lambda t: t * NAN), "grad_E", note="nan"),
    C("optim.conformal_step", lambda: conformal(grad_E=lambda t: t[:2]), "grad_E", note="shape"),
    C("optim.conformal_step", lambda: conformal(nesterov=1), "nesterov"),
    C("optim.heavy_ball_parameters", lambda: optim.heavy_ball_parameters(0, 0.9), "lr"),
    C("optim.heavy_ball_parameters", lambda: optim.heavy_ball_parameters(0.1, -0.9), "momentum"),
    C("optim.heavy_ball_parameters", lambda: optim.heavy_ball_parameters(0.1, 0.9, h=INF), "h"),
    C(
        "optim.relativistic_parameters",
        lambda: optim.relativistic_parameters(0.1, 0.9, 0),
        "delta",
    ),
    C(
        "optim.relativistic_parameters",
        lambda: optim.relativistic_parameters("0.1", 0.9, 1),
        "lr",
    ),
    # --- camelback and optimise_path (Figure 4) ---
    C("optim.camelback", lambda: optim.camelback([0.0, 0.0]), "xy"),
    C("optim.camelback", lambda: optim.camelback(t64(3)), "xy", note="last dim"),
    C(
        "optim.camelback",
        lambda: optim.camelback(torch.zeros(2, dtype=torch.long)),
        "xy",
        note="int",
    ),
    C(
        "optim.camelback_stationary_points",
        lambda: optim.camelback_stationary_points(dtype=torch.int32),
        "dtype",
    ),
    C(
        "optim.camelback_stationary_points",
        lambda: optim.camelback_stationary_points(device="nowhere"),
        "device",
    ),
    C("optim.nearest_stationary_point", lambda: optim.nearest_stationary_point(t64(3)), "xy"),
    C(
        "optim.nearest_stationary_point",
        lambda: optim.nearest_stationary_point(nonfinite(t64(2))),
        "xy",
        note="nan",
    ),
    C("optim.optimise_path", lambda: path(loss_fn="camelback"), "loss_fn"),
    C(
        "optim.optimise_path",
        lambda: path(make_optimizer=torch.optim.SGD([param(1)], lr=1)),
        "make_optimizer",
    ),
    C("optim.optimise_path", lambda: path(steps=-1), "steps"),
    C("optim.optimise_path", lambda: path(start=(NAN, 0.0)), "start"),
    C("optim.optimise_path", lambda: path(start="origin"), "start", note="text"),
    C(
        "optim.optimise_path",
        lambda: path(start=torch.zeros(2, dtype=torch.long)),
        "start",
        note="int",
    ),
    C(
        "optim.optimise_path",
        lambda: path(make_optimizer=lambda p: None),
        "make_optimizer",
        note="returns None",
    ),
    C(
        "optim.optimise_path",
        lambda: path(loss_fn=lambda t: t.abs().sqrt().sum(), start=(0.0, 0.0)),
        "gradient",
        error=NonFiniteError,
        note="finite loss, infinite gradient",
    ),
    C(
        "optim.optimise_path",
        lambda: path(loss_fn=lambda t: t.sum() * NAN),
        "loss",
        error=NonFiniteError,
        note="nan objective",
    ),
    # --- Riemannian SGD on the Stiefel manifold (Section 6.2.1) ---
    C("optim.StiefelSGD", lambda: optim.StiefelSGD([stiefel()], lr=0), "lr"),
    C("optim.StiefelSGD", lambda: optim.StiefelSGD([stiefel()], lr=0.1, momentum=1.0), "momentum"),
    C(
        "optim.StiefelSGD",
        lambda: optim.StiefelSGD([stiefel()], lr=0.1, retraction="qr"),
        "retraction",
    ),
    C("optim.StiefelSGD", lambda: optim.StiefelSGD([stiefel()], lr=0.1, low_rank=1), "low_rank"),
    C(
        "optim.StiefelSGD",
        lambda: optim.StiefelSGD([param(4, 2)], lr=0.1),
        "params",
        note="off manifold",
    ),
    C("optim.StiefelSGD", lambda: optim.StiefelSGD([param(4)], lr=0.1), "params", note="vector"),
    C(
        "optim.StiefelSGD",
        lambda: add_group(optim.StiefelSGD, "lr", -1.0, lr=0.1, first=stiefel(), second=stiefel()),
        "lr",
        note="add_param_group",
    ),
    C(
        "optim.StiefelSGD",
        lambda: add_group(optim.StiefelSGD, "lr", 0.1, lr=0.1, first=stiefel(), second=param(4, 2)),
        "params",
        note="add_param_group off manifold",
    ),
    C("optim.cayley", lambda: optim.cayley(t64(3, 2)), "A"),
    C("optim.cayley", lambda: optim.cayley(nonfinite(t64(3, 3))), "A", note="nan"),
    C("optim.expm", lambda: optim.expm(t64(3)), "A"),
    C("optim.expm", lambda: optim.expm(nonfinite(t64(3, 3), INF)), "A", note="inf"),
    C("optim.stiefel_error", lambda: optim.stiefel_error(t64(3)), "theta"),
    C("optim.project_stiefel", lambda: optim.project_stiefel(nonfinite(t64(4, 2))), "theta"),
    C("optim.project_stiefel", lambda: optim.project_stiefel(t64(2, 4)), "theta", note="wide"),
    C("optim.random_stiefel", lambda: optim.random_stiefel(2, 3), "p"),
    C("optim.random_stiefel", lambda: optim.random_stiefel(0, 0), "n"),
    C("optim.random_stiefel", lambda: optim.random_stiefel(4, 2, generator=0), "generator"),
    C("optim.random_stiefel", lambda: optim.random_stiefel(4, 2, dtype=torch.int64), "dtype"),
    C("optim.stiefel_student", lambda: student(kind="sgd"), "kind"),
    C("optim.stiefel_student", lambda: student(steps=0), "steps"),
    C("optim.stiefel_student", lambda: student(p=5), "p"),
    C("optim.stiefel_student", lambda: student(lr=INF), "lr"),
    C("optim.stiefel_student", lambda: student(seed=-1), "seed"),
    C("optim.stiefel_student", lambda: student(dtype=torch.int64), "dtype"),
    # --- natural gradient and Gauss-Newton (60) ---
    C("optim.natural_gradient_step", lambda: natural(y=t64(5, 3)), "y", note="(5, 3) vs (5, 1)"),
    C("optim.natural_gradient_step", lambda: natural(y=t64(5)), "y", note="(5,) vs (5, 1)"),
    C("optim.natural_gradient_step", lambda: natural(lr=0), "lr"),
    C("optim.natural_gradient_step", lambda: natural(damping=-1), "damping"),
    C("optim.natural_gradient_step", lambda: natural(damping=1e-300), "damping", note="tiny"),
    C("optim.natural_gradient_step", lambda: natural(x=nonfinite(t64(5, 2))), "x"),
    C("optim.natural_gradient_step", lambda: natural(y=nonfinite(t64(5, 1))), "y", note="nan"),
    C("optim.natural_gradient_step", lambda: natural(model=lambda x: x), "model"),
    C("optim.gauss_newton_step", lambda: gauss_newton(y=t64(5, 3)), "y"),
    C("optim.gauss_newton_step", lambda: gauss_newton(y=t64(4, 1)), "y", note="samples"),
    C("optim.gauss_newton_step", lambda: gauss_newton(damping=NAN), "damping"),
    C("optim.gauss_newton_step", lambda: gauss_newton(x=t64(5, 2).float()), "x", note="float32"),
    C("optim.squared_error", lambda: optim.squared_error(linear(), t64(5, 2), t64(5, 3)), "y"),
    C("optim.squared_error", lambda: optim.squared_error(linear(), t64(0, 2), t64(0, 1)), "x"),
    C("optim.jacobian", lambda: optim.jacobian(linear(), nonfinite(t64(5, 2))), "x"),
    C("optim.jacobian", lambda: optim.jacobian("linear", t64(5, 2)), "model"),
    C(
        "optim.fisher_squared_loss",
        lambda: optim.fisher_squared_loss(linear(), t64(5, 2).float()),
        "x",
    ),
    C(
        "optim.fisher_squared_loss",
        lambda: optim.fisher_squared_loss(linear(), t64(5, 2).int()),
        "x",
        note="int",
    ),
    # --- mean-field two-layer networks (61)-(62) ---
    C("optim.MeanFieldReLU", lambda: optim.MeanFieldReLU(0, 4), "M"),
    C("optim.MeanFieldReLU", lambda: optim.MeanFieldReLU(2, 2.5), "J"),
    C("optim.MeanFieldReLU", lambda: optim.MeanFieldReLU(2, 4, scale=0), "scale"),
    C("optim.MeanFieldReLU", lambda: optim.MeanFieldReLU(2, 4, generator=1), "generator"),
    C("optim.MeanFieldReLU", lambda: optim.MeanFieldReLU(2, 4, dtype=torch.int64), "dtype"),
    C("optim.MeanFieldReLU", lambda: mean_field()(t64(6, 3)), "x", note="forward"),
    C("optim.train_mean_field", lambda: train_mf(model=linear()), "model"),
    C("optim.train_mean_field", lambda: train_mf(y=t64(6, 1)), "y"),
    C("optim.train_mean_field", lambda: train_mf(x=t64(6, 3)), "x"),
    C("optim.train_mean_field", lambda: train_mf(x=t64(6, 2).float()), "x", note="float32"),
    C("optim.train_mean_field", lambda: train_mf(lr=-0.1), "lr"),
    C("optim.train_mean_field", lambda: train_mf(steps=0), "steps"),
    C("optim.train_mean_field", lambda: train_mf(lam=-1), "lam"),
    C("optim.train_mean_field", lambda: train_mf(snapshots=-1), "snapshots"),
    C("optim.train_mean_field", lambda: train_mf(y=nonfinite(t64(6))), "y", note="nan"),
    C(
        "optim.train_mean_field",
        overflowing_mean_field,
        "gradient",
        error=NonFiniteError,
        note="finite loss, infinite gradient",
    ),
    C("optim.particle_distance", lambda: optim.particle_distance(t64(3, 4).int(), t64(4, 4)), "P"),
    C("optim.particle_distance", lambda: optim.particle_distance(t64(3, 4), t64(3, 5)), "Q"),
    C("optim.particle_distance", lambda: optim.particle_distance(t64(3), t64(3)), "P", note="1-D"),
    C(
        "optim.particle_distance",
        lambda: optim.particle_distance(t64(3, 4), nonfinite(t64(3, 4))),
        "Q",
        note="nan",
    ),
    # --- Chapter 6 additions: (58)-(59) on SO(n), camelback gradient, conformal maps, drift ---
    C("optim.LieGroupResNet", lambda: optim.LieGroupResNet(0, 3), "dim"),
    C("optim.LieGroupResNet", lambda: optim.LieGroupResNet(2, 0), "depth"),
    C("optim.LieGroupResNet", lambda: optim.LieGroupResNet(2, 3, retraction="x"), "retraction"),
    C("optim.LieGroupResNet", lambda: optim.LieGroupResNet(2, 3, T=-1.0), "T"),
    C("optim.camelback_gradient", lambda: optim.camelback_gradient(t64(3)), "xy"),
    C("optim.camelback_gradient", lambda: optim.camelback_gradient(torch.ones(2, dtype=int)), "xy"),
    C("optim.conformal_step_map", lambda: optim.conformal_step_map(1.0, 0.1, 1.0), "grad_E"),
    C(
        "optim.conformal_step_map",
        lambda: optim.conformal_step_map(lambda q: q, -0.1, 1.0)(t64(2)),
        "h",
        note="checked at the call",
    ),
    C(
        "optim.conformal_symplecticity_defect",
        lambda: optim.conformal_symplecticity_defect(t64(3, 3), 1.0, 0.1),
        "M",
    ),
    C(
        "optim.conformal_symplecticity_defect",
        lambda: optim.conformal_symplecticity_defect(t64(2, 2), -1.0, 0.1),
        "gamma",
    ),
    C(
        "optim.fit_orthogonal_resnet",
        lambda: optim.fit_orthogonal_resnet("x", t64(10, 3), torch.zeros(10, dtype=torch.long)),
        "kind",
    ),
    C(
        "optim.fit_orthogonal_resnet",
        lambda: optim.fit_orthogonal_resnet(
            "free", t64(10, 3), torch.zeros(10, dtype=torch.long), steps=0
        ),
        "steps",
    ),
    C("optim.nested_deviation", lambda: optim.nested_deviation(t64(3, 4), t64(2, 4)), "Q"),
    C("optim.nested_deviation", lambda: optim.nested_deviation(t64(3, 4), "q"), "Q"),
    C("optim.stiefel_drift", lambda: optim.stiefel_drift("x", 10), "kind"),
    C("optim.stiefel_drift", lambda: optim.stiefel_drift("exp", 0), "steps"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input(case, monkeypatch):
    run_case(case, monkeypatch)


EXEMPT = {
    "optim.NonFiniteGradientError": "an exception class, raised by the library, not called by "
    "users",
}


def test_every_public_name_has_a_case():
    check_coverage(CASES, [("optim", "spdl_ref.optim")], EXEMPT)


class _NoEnv:
    def setenv(self, *args):  # pragma: no cover - hypothesis cases set no environment
        raise AssertionError("no environment in hypothesis cases")


BAD_REALS = st.one_of(
    st.sampled_from([NAN, INF, -INF, 0.0, -1.0]), st.floats(max_value=0.0), st.text(max_size=1)
)


@given(
    optimiser=st.sampled_from(["Adam", "ConformalHamiltonian", "StiefelSGD"]),
    key=st.sampled_from(["lr", "mass", "eps"]),
    value=BAD_REALS,
)
def test_every_optimiser_group_is_checked_like_the_constructor(optimiser, key, value):
    """A bad value of a positive hyperparameter is refused by the constructor and by
    add_param_group alike."""
    cls = getattr(optim, optimiser)
    keys = {"Adam": ("lr", "eps"), "ConformalHamiltonian": ("lr", "mass", "eps")}.get(
        optimiser, ("lr",)
    )
    if key not in keys:
        return
    base = {"lr": 0.1} | ({"gamma": 1.0} if optimiser == "ConformalHamiltonian" else {})
    make = stiefel if optimiser == "StiefelSGD" else lambda: param(4, 2)
    run_case(Case(optimiser, lambda: cls([make()], **(base | {key: value})), key), _NoEnv())
    opt = cls([make()], **base)
    run_case(
        Case(optimiser, lambda: opt.add_param_group({"params": [make()], key: value}), key),
        _NoEnv(),
    )
    assert len(opt.param_groups) == 1


@given(
    fn=st.sampled_from(["kinetic_energy", "kinetic_gradient"]),
    kind=st.sampled_from(["quadratic", "relativistic"]),
    mass=BAD_REALS,
)
def test_kinetic_energy_refuses_every_bad_mass(fn, kind, mass):
    call = lambda: getattr(optim, fn)(t64(3), mass=mass, kinetic=kind)  # noqa: E731
    run_case(Case(fn, call, "mass"), _NoEnv())


@given(
    n_out=st.integers(1, 3),
    y_shape=st.sampled_from([(5, 1), (5, 2), (5, 3), (5,), (1, 1), (5, 1, 1)]),
    step=st.sampled_from(["natural_gradient_step", "gauss_newton_step", "squared_error"]),
)
def test_targets_must_have_the_output_shape(n_out, y_shape, step):
    """No broadcasting of targets against outputs in any Section 6.2.2 function."""
    if y_shape == (5, n_out):
        return
    model, y = linear(2, n_out), t64(*y_shape)
    args = {"natural_gradient_step": (0.1,)}.get(step, ())
    call = lambda: getattr(optim, step)(model, t64(5, 2), y, *args)  # noqa: E731
    run_case(Case(step, call, "y"), _NoEnv())


def test_a_mean_field_step_that_blows_up_keeps_the_last_finite_parameters():
    """At a huge step the flow (62) overflows after a few steps: train_mean_field stops with
    NonFiniteError and the particles are exactly those after the last finite step."""
    x, y = t64(6, 2) * 10, t64(6, seed=1) * 10
    model = mean_field()
    with pytest.raises(NonFiniteError) as err:
        optim.train_mean_field(model, x, y, lr=1e6, steps=200)
    k = err.value.iteration
    assert k >= 1, "the first step must be finite for this check to mean something"
    rerun = mean_field()
    optim.train_mean_field(rerun, x, y, lr=1e6, steps=k)
    assert torch.equal(model.particles(), rerun.particles())
    assert bool(torch.isfinite(model.particles()).all())
