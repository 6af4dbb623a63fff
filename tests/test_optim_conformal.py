"""Conformal Hamiltonian optimisers (Section 6.1, eqs. (54)-(57)): spdl_ref.optim.conformal."""

import copy
import itertools
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref.ode import step_jacobian, symplecticity_defect
from spdl_ref.optim import (
    ConformalHamiltonian,
    NonFiniteGradientError,
    camelback,
    camelback_gradient,
    conformal_step,
    conformal_step_map,
    conformal_symplecticity_defect,
    heavy_ball_parameters,
    kinetic_energy,
    kinetic_gradient,
    relativistic_parameters,
)


def _quadratic_problem(dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(5, 5, generator=g, dtype=torch.float64)
    A = (A @ A.T + torch.eye(5, dtype=torch.float64)).to(dtype=dtype, device=device)
    b = torch.randn(5, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    return lambda th: 0.5 * th @ A @ th - b @ th


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=0.0, gamma=1.0), "lr"),
        (dict(lr=-1.0, gamma=1.0), "lr"),
        (dict(lr=0.1, gamma=-0.5), "gamma"),
        (dict(lr=0.1, gamma=1.0, mass=0.0), "mass"),
        (dict(lr=0.1, gamma=1.0, mass=-2.0), "mass"),
        (dict(lr=0.1, gamma=1.0, kinetic="cubic"), "kinetic"),
        (dict(lr=0.1, gamma=1.0, kinetic="relativistic", eps=0.0), "eps"),
        (dict(lr=float("nan"), gamma=1.0), "lr"),
    ],
)
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConformalHamiltonian([torch.zeros(2, requires_grad=True)], **kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="lr"):
        ConformalHamiltonian([torch.zeros(2, requires_grad=True)], lr="0.1", gamma=1.0)
    with pytest.raises(TypeError, match="nesterov"):
        ConformalHamiltonian([torch.zeros(2, requires_grad=True)], lr=0.1, gamma=1.0, nesterov=1)


@pytest.mark.parametrize("kinetic", ["quadratic", "relativistic"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_gradient_leaves_parameters_unchanged(kinetic, bad):
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0], requires_grad=True)
    opt = ConformalHamiltonian([a, b], lr=0.1, gamma=1.0, kinetic=kinetic)
    (a.sum() + b.sum()).backward()
    opt.step()
    before = [a.detach().clone(), b.detach().clone(), opt.state[a]["momentum"].clone()]
    a.grad = torch.ones(2)
    b.grad = torch.tensor([bad])
    with pytest.raises(NonFiniteGradientError, match="NaN or inf"):
        opt.step()
    with pytest.raises(ValueError):  # also a ValueError
        opt.step()
    assert torch.equal(a, before[0]) and torch.equal(b, before[1])
    assert torch.equal(opt.state[a]["momentum"], before[2])


def test_state_dict_round_trip(dtype, device):
    E = _quadratic_problem(dtype, device)

    def run(opt, th, n):
        for _ in range(n):
            opt.zero_grad()
            E(th).backward()
            opt.step()

    th = torch.zeros(5, dtype=dtype, device=device, requires_grad=True)
    opt = ConformalHamiltonian([th], lr=0.05, gamma=2.0, kinetic="relativistic", eps=0.5)
    run(opt, th, 7)
    saved, th_saved = copy.deepcopy(opt.state_dict()), th.detach().clone()
    run(opt, th, 5)
    th2 = th_saved.clone().requires_grad_(True)
    opt2 = ConformalHamiltonian([th2], lr=1.0, gamma=0.0)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["kinetic"] == "relativistic"
    run(opt2, th2, 5)
    assert torch.equal(th, th2)


@pytest.mark.parametrize("nesterov", [False, True])
@given(h=st.floats(0.01, 0.3), gamma=st.floats(0.0, 5.0), mass=st.floats(0.2, 5.0))
def test_equals_torch_sgd_momentum(nesterov, h, gamma, mass):
    """(55) with b = -p/h is SGD with momentum exp(-gamma h) and lr h^2/mu (and Nesterov)."""
    E = _quadratic_problem(torch.float64, "cpu", seed=1)
    ours = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    ref = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = ConformalHamiltonian([ours], lr=h, gamma=gamma, mass=mass, nesterov=nesterov)
    sgd = torch.optim.SGD([ref], lr=h * h / mass, momentum=math.exp(-gamma * h), nesterov=nesterov)
    for _ in range(40):
        for o, th in ((opt, ours), (sgd, ref)):
            o.zero_grad()
            E(th).backward()
            o.step()
    scale = 1 + ref.detach().abs().max().item()
    assert (ours - ref).abs().max().item() <= 1e-12 * scale


@pytest.mark.parametrize("kinetic", ["quadratic", "relativistic"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_optimizer_matches_pure_step(kinetic, nesterov, dtype):
    xy = torch.tensor([-0.5, 0.8], dtype=dtype, requires_grad=True)
    opt = ConformalHamiltonian(
        [xy], lr=0.05, gamma=1.5, mass=0.7, kinetic=kinetic, eps=0.3, nesterov=nesterov
    )

    def grad(th):
        return torch.autograd.grad(camelback(th), th)[0]

    th, p = xy.detach().clone(), torch.zeros(2, dtype=dtype)
    for _ in range(10):
        opt.zero_grad()
        camelback(xy).backward()
        opt.step()
        th, p = conformal_step(
            th.requires_grad_(True), p, grad, 0.05, 1.5, 0.7, kinetic, 0.3, nesterov
        )
        th = th.detach()
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(xy.detach(), th, atol=tol, rtol=0)
    assert torch.allclose(opt.state[xy]["momentum"], p, atol=tol, rtol=0)


def _step_jacobian(kinetic, nesterov, h, gamma):
    z0 = torch.randn(4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    step = conformal_step_map(camelback_gradient, h, gamma, 0.8, kinetic, 0.5, nesterov)
    return step_jacobian(step, z0)


def test_step_map_is_conformal_step_on_the_stacked_state():
    z = torch.tensor([0.3, -0.2, 0.5, 0.1], dtype=torch.float64)
    th, p = conformal_step(z[:2], z[2:], camelback_gradient, 0.1, 2.0, 0.7, "relativistic", 0.4)
    step = conformal_step_map(camelback_gradient, 0.1, 2.0, 0.7, "relativistic", 0.4)
    assert torch.equal(step(z), torch.cat([th, p]))
    with pytest.raises(ValueError, match="u must be"):
        step(z[:3])
    with pytest.raises(TypeError, match="grad_E"):
        conformal_step_map(3, 0.1, 1.0)


def test_defect_is_the_conformal_form_with_the_darboux_matrix():
    """conformal_symplecticity_defect against J written out by hand (positions first)."""
    M = torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    J = torch.zeros(4, 4, dtype=torch.float64)
    J[:2, 2:] = torch.eye(2)
    J[2:, :2] = -torch.eye(2)
    expected = (M.T @ J @ M - math.exp(-0.6) * J).abs().max()
    assert conformal_symplecticity_defect(M, 2.0, 0.3).item() == pytest.approx(expected.item())
    # gamma = 0 is Chapter 2's symplecticity defect
    assert torch.equal(conformal_symplecticity_defect(M, 0.0, 0.3), symplecticity_defect(M))
    for bad, match in [(torch.zeros(3, 3), "M must"), (torch.zeros(4, 2), "M must")]:
        with pytest.raises(ValueError, match=match):
            conformal_symplecticity_defect(bad, 1.0, 0.1)
    with pytest.raises(ValueError, match="h"):
        conformal_symplecticity_defect(M, 1.0, 0.0)
    with pytest.raises(ValueError, match="gamma"):
        conformal_symplecticity_defect(M, -1.0, 0.1)


@pytest.mark.parametrize("kinetic", ["quadratic", "relativistic"])
@given(h=st.floats(0.01, 0.5), gamma=st.floats(0.0, 4.0))
def test_conformal_symplecticity(kinetic, h, gamma):
    """M^T J M = exp(-gamma h) J for one step's Jacobian M, in float64 (Section 6.1)."""
    M = _step_jacobian(kinetic, False, h, gamma)
    assert conformal_symplecticity_defect(M, gamma, h).item() < 1e-13


def test_nesterov_is_not_conformal_symplectic():
    M = _step_jacobian("quadratic", True, 0.3, 1.0)
    assert conformal_symplecticity_defect(M, 1.0, 0.3).item() > 1e-3


@pytest.mark.parametrize("kinetic", ["quadratic", "relativistic"])
def test_dissipation_rate_matches_energy_decay(kinetic):
    """dH/dt = -gamma p^T grad T(p) along (56) (= -gamma/mu p^T p for (55), not half of it)."""
    E = _quadratic_problem(torch.float64, "cpu", seed=2)
    errors = []
    for h in (1e-3, 5e-4):
        th = torch.full((5,), 2.0, dtype=torch.float64, requires_grad=True)
        opt = ConformalHamiltonian([th], lr=h, gamma=1.3, mass=0.6, kinetic=kinetic, eps=0.4)
        Hs, rates = [], []
        for _ in range(int(0.5 / h)):
            opt.zero_grad()
            loss = E(th)
            loss.backward()
            Hs.append(opt.energy(loss).item())
            rates.append(opt.dissipation_rate().item())
            opt.step()
        fd = [(b - a) / h for a, b in itertools.pairwise(Hs)]
        k = len(fd) // 2
        errors.append(abs(fd[k] - rates[k + 1]) / abs(rates[k + 1]))
        assert abs(fd[k] - rates[k + 1] / 2) / abs(rates[k + 1]) > 0.4  # the printed rate is off
    assert errors[0] < 0.02 and errors[1] < errors[0] * 0.7  # first-order agreement


def test_kinetic_energy_and_gradient(dtype):
    p = torch.tensor([3.0, 4.0], dtype=dtype)
    assert kinetic_energy(p, 2.0).item() == pytest.approx(25 / 4)
    assert kinetic_energy(p, 1.0, "relativistic", 11.0).item() == pytest.approx(6.0)
    q = p.clone().requires_grad_(True)
    for kin in ("quadratic", "relativistic"):
        (g,) = torch.autograd.grad(kinetic_energy(q, 1.5, kin, 0.5), q)
        assert torch.allclose(g, kinetic_gradient(p, 1.5, kin, 0.5))
    with pytest.raises(ValueError, match="kinetic"):
        kinetic_energy(p, 1.0, "newtonian")


def test_equilibria_are_stationary_points(dtype):
    """(0, theta*) is a fixed point of the step exactly when grad E(theta*) = 0 (Section 6.1)."""
    th = torch.zeros(2, dtype=dtype, requires_grad=True)
    opt = ConformalHamiltonian([th], lr=0.1, gamma=1.0)
    for _ in range(3):
        opt.zero_grad()
        camelback(th).backward()
        opt.step()
    assert torch.equal(th.detach(), torch.zeros(2, dtype=dtype))
    assert torch.equal(opt.state[th]["momentum"], torch.zeros(2, dtype=dtype))
    th2 = torch.tensor([0.5, 0.0], dtype=dtype, requires_grad=True)
    opt2 = ConformalHamiltonian([th2], lr=0.1, gamma=1.0)
    camelback(th2).backward()
    opt2.step()
    assert not torch.equal(th2.detach(), torch.tensor([0.5, 0.0], dtype=dtype))


@pytest.mark.parametrize("kinetic", ["quadratic", "relativistic"])
def test_converges_on_camelback_any_dtype_device(kinetic, dtype, device):
    xy = torch.tensor([-0.5, 0.8], dtype=dtype, device=device, requires_grad=True)
    opt = ConformalHamiltonian([xy], lr=0.1, gamma=3.0, kinetic=kinetic, eps=1.0)
    for _ in range(600):
        opt.zero_grad()
        camelback(xy).backward()
        opt.step()
    assert xy.dtype == dtype and opt.state[xy]["momentum"].device == xy.device
    assert xy.detach().norm().item() < 1e-3
    assert opt.energy(camelback(xy)).dtype == dtype


def test_energy_accepts_float_and_rejects_bad_loss():
    xy = torch.tensor([1.0, 1.0], requires_grad=True)
    opt = ConformalHamiltonian([xy], lr=0.1, gamma=1.0)
    assert opt.energy(2.5).item() == 2.5
    with pytest.raises(ValueError, match="loss"):
        opt.energy(float("nan"))


@pytest.mark.parametrize("nesterov", [False, True])
def test_heavy_ball_parameters_reproduce_sgd(nesterov):
    a = torch.tensor([-0.5, 0.8], dtype=torch.float64, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    opt = ConformalHamiltonian([a], **heavy_ball_parameters(0.01, 0.9, h=0.3), nesterov=nesterov)
    sgd = torch.optim.SGD([b], lr=0.01, momentum=0.9, nesterov=nesterov)
    for _ in range(100):
        for o, th in ((opt, a), (sgd, b)):
            o.zero_grad()
            camelback(th).backward()
            o.step()
    assert (a - b).abs().max().item() < 1e-13


def test_relativistic_parameters_reproduce_scaled_rgd():
    """The scaled RGD recursion of França et al.: v <- mu v - h g, x <- x + v / sqrt(1 + delta
    |v|^2)."""
    h, mu, delta = 0.05, 0.8, 3.0
    a = torch.tensor([-0.5, 0.8], dtype=torch.float64, requires_grad=True)
    opt = ConformalHamiltonian([a], **relativistic_parameters(h, mu, delta))
    x, v = a.detach().clone(), torch.zeros(2, dtype=torch.float64)
    for _ in range(50):
        opt.zero_grad()
        camelback(a).backward()
        opt.step()
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(camelback(xg), xg)
        v = mu * v - h * g
        x = x + v / torch.sqrt(1 + delta * v @ v)
    assert (a.detach() - x).abs().max().item() < 1e-13
    with pytest.raises(ValueError, match="momentum"):
        relativistic_parameters(0.1, 1.5, 1.0)


def test_check_finite_switch():
    a = torch.ones(2, requires_grad=True)
    opt = ConformalHamiltonian([a], lr=0.1, gamma=1.0, check_finite=False)
    a.grad = torch.tensor([float("nan"), 1.0])
    opt.step()  # no check: the NaN goes through, as documented
    assert torch.isnan(a).any()
    with pytest.raises(TypeError, match="check_finite"):
        ConformalHamiltonian([a], lr=0.1, gamma=1.0, check_finite=1)


@pytest.mark.parametrize("kinetic", ["quadratic", "relativistic"])
def test_gradcheck_conformal_step(kinetic):
    def grad_V(th):
        return torch.stack([4 * th[0] - 4.2 * th[0] ** 3 + th[0] ** 5 + th[1], th[0] + 2 * th[1]])

    th = torch.tensor([-0.5, 0.8], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([0.3, -0.1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: conformal_step(a, b, grad_V, 0.1, 1.0, 0.7, kinetic, 0.5), (th, p)
    )


def _grad_V(th):
    return 2 * th


_P = torch.tensor([0.3, -0.1], dtype=torch.float64)
_TH = torch.tensor([-0.5, 0.8], dtype=torch.float64)
_NAN = torch.tensor([float("nan"), 0.0], dtype=torch.float64)


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: kinetic_energy(_P, mass=0.0), ValueError, "mass"),
        (lambda: kinetic_energy(_P, mass=-1.0), ValueError, "mass"),
        (lambda: kinetic_energy(_P, mass=float("nan")), ValueError, "mass"),
        (lambda: kinetic_energy(_NAN), ValueError, "p must contain only finite"),
        (lambda: kinetic_energy([0.3, 0.1]), TypeError, "p must be a torch.Tensor"),
        (lambda: kinetic_energy(torch.tensor([1, 2])), TypeError, "p must have a floating"),
        (lambda: kinetic_energy(_P, kinetic="relativistic", eps=0.0), ValueError, "eps"),
        (lambda: kinetic_gradient(_P, mass=0.0), ValueError, "mass"),
        (lambda: kinetic_gradient(_NAN, kinetic="relativistic"), ValueError, "finite"),
        (lambda: kinetic_gradient(_P, kinetic="newtonian"), ValueError, "kinetic"),
        (lambda: conformal_step(_TH, _P, _grad_V, h=-0.1, gamma=1.0), ValueError, "h must be > 0"),
        (lambda: conformal_step(_TH, _P, _grad_V, h=0.0, gamma=1.0), ValueError, "h must be > 0"),
        (lambda: conformal_step(_TH, _P, _grad_V, 0.1, gamma=-1.0), ValueError, "gamma"),
        (lambda: conformal_step(_TH, _P, _grad_V, 0.1, 1.0, mass=0.0), ValueError, "mass"),
        (lambda: conformal_step(_NAN, _P, _grad_V, 0.1, 1.0), ValueError, "theta must contain"),
        (lambda: conformal_step(_TH, _NAN, _grad_V, 0.1, 1.0), ValueError, "p must contain"),
        (lambda: conformal_step(_TH, _P[:1], _grad_V, 0.1, 1.0), ValueError, "shape of theta"),
        (lambda: conformal_step(_TH, _P, 2.0, 0.1, 1.0), TypeError, "grad_E must be callable"),
        (
            lambda: conformal_step(_TH, _P, lambda t: t[:1], 0.1, 1.0),
            ValueError,
            r"grad_E\(theta\) must return a tensor of the shape",
        ),
        (
            lambda: conformal_step(_TH, _P, lambda t: t / 0.0, 0.1, 1.0),
            ValueError,
            r"grad_E\(theta\) must be finite",
        ),
        (lambda: conformal_step(_TH, _P, _grad_V, 0.1, 1.0, nesterov=1), TypeError, "nesterov"),
        (lambda: heavy_ball_parameters(lr=-0.1, momentum=0.9), ValueError, "lr"),
        (lambda: heavy_ball_parameters(lr=0.1, momentum=float("nan")), ValueError, "momentum"),
        (lambda: heavy_ball_parameters(lr=0.1, momentum=0.0), ValueError, "momentum"),
        (lambda: heavy_ball_parameters(lr=0.1, momentum=1.2), ValueError, "momentum"),
        (lambda: heavy_ball_parameters(lr=0.1, momentum=0.9, h=0.0), ValueError, "h"),
        (lambda: relativistic_parameters(lr=0.0, momentum=0.9, delta=1.0), ValueError, "lr"),
        (lambda: relativistic_parameters(0.1, momentum=-0.5, delta=1.0), ValueError, "momentum"),
        (lambda: relativistic_parameters(0.1, 0.9, delta=float("inf")), ValueError, "delta"),
        (lambda: relativistic_parameters(0.1, 0.9, delta=0.0), ValueError, "delta"),
    ],
)
def test_low_level_helpers_refuse_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
