"""Riemannian optimisation on SO(n), Stiefel and the sphere (Section 6.2.1):
spdl_ref.optim.riemannian."""

import copy
import itertools
import math

import mpmath
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref.optim import (
    NonFiniteGradientError,
    StiefelSGD,
    cayley,
    project_stiefel,
    random_stiefel,
    stiefel_error,
)
from spdl_ref.optim import expm as optim_expm


@pytest.fixture(autouse=True)
def one_thread():
    """Small matrices: one thread (two oversubscribe a shared 2-core machine badly)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _procrustes(n, p, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.nn.Parameter(random_stiefel(n, p, generator=g, dtype=dtype, device=device))
    T = random_stiefel(n, p, generator=g, dtype=dtype, device=device)
    return X, (lambda: (X - T).pow(2).sum())


@pytest.mark.parametrize("retraction", ["exp", "cayley"])
@pytest.mark.parametrize("shape", [(6, 6), (8, 3), (5, 1)], ids=["SO(n)", "Stiefel", "sphere"])
def test_constraint_stays_at_round_off(retraction, shape, dtype, device):
    X, loss = _procrustes(*shape, dtype, device)
    opt = StiefelSGD([X], lr=0.05, momentum=0.5, retraction=retraction)
    first = loss().item()
    for _ in range(300):
        opt.zero_grad()
        loss().backward()
        opt.step()
    tol = 2e-5 if dtype == torch.float32 else 1e-12
    assert stiefel_error(X.detach()).item() < tol
    assert loss().item() < first and X.dtype == dtype and X.device.type == torch.device(device).type


def test_euclidean_steps_drift():
    X, loss = _procrustes(8, 3, torch.float64, "cpu")
    opt = torch.optim.SGD([X], lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert stiefel_error(X.detach()).item() > 1e-2


@given(n=st.integers(2, 7), seed=st.integers(0, 1000))
def test_cayley_maps_skew_to_rotation(n, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    Q = cayley(A - A.T)
    assert stiefel_error(Q).item() < 1e-12
    assert torch.linalg.det(Q).item() == pytest.approx(1.0, abs=1e-10)


def test_step_is_descent_direction_of_riemannian_gradient():
    """For small h, E decreases by h <grad E, M theta> with M = G theta^T - theta G^T."""
    X, loss = _procrustes(6, 2, torch.float64, "cpu", seed=4)
    L0 = loss()
    (G,) = torch.autograd.grad(L0, X)
    M = G @ X.detach().T
    M = M - M.T
    predicted = -(G * (M @ X.detach())).sum().item()
    for retraction in ("exp", "cayley"):
        Y = torch.nn.Parameter(X.detach().clone())
        Y.grad = G.clone()
        StiefelSGD([Y], lr=1e-6, retraction=retraction).step()
        with torch.no_grad():
            X0 = X.detach().clone()
            X.copy_(Y)
            L1 = loss().item()
            X.copy_(X0)
        assert (L1 - L0.item()) / 1e-6 == pytest.approx(predicted, rel=1e-4)


def test_project_and_random():
    Y = torch.randn(7, 3, dtype=torch.float64)
    assert stiefel_error(project_stiefel(Y)).item() < 1e-12
    assert random_stiefel(7, 3, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match="p must be <= n"):
        random_stiefel(2, 3)
    with pytest.raises(ValueError, match="at least 2"):
        stiefel_error(torch.ones(3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lr=0.0), "lr"),
        (dict(lr=0.1, momentum=1.0), "momentum"),
        (dict(lr=0.1, momentum=-0.1), "momentum"),
        (dict(lr=0.1, retraction="qr"), "retraction"),
    ],
)
def test_bad_hyper_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StiefelSGD([torch.nn.Parameter(torch.eye(3))], **kwargs)


def test_bad_parameters():
    with pytest.raises(ValueError, match="orthonormal"):
        StiefelSGD([torch.nn.Parameter(2 * torch.eye(3))], lr=0.1)
    with pytest.raises(ValueError, match="p <= n"):
        StiefelSGD([torch.nn.Parameter(torch.ones(2, 3))], lr=0.1)


def test_non_finite_gradient_and_state_dict_round_trip():
    X, loss = _procrustes(5, 2, torch.float64, "cpu")
    opt = StiefelSGD([X], lr=0.1, momentum=0.9, retraction="cayley")
    for _ in range(3):
        opt.zero_grad()
        loss().backward()
        opt.step()
    saved, X_saved = copy.deepcopy(opt.state_dict()), X.detach().clone()
    X.grad = torch.full_like(X, float("inf"))
    with pytest.raises(NonFiniteGradientError):
        opt.step()
    assert torch.equal(X.detach(), X_saved)
    for _ in range(3):
        opt.zero_grad()
        loss().backward()
        opt.step()
    X2 = torch.nn.Parameter(X_saved.clone())
    opt2 = StiefelSGD([X2], lr=1.0)
    opt2.load_state_dict(saved)
    with torch.no_grad():
        X_end = X.detach().clone()
        X.copy_(X_saved)
    for _ in range(3):
        opt2.zero_grad()
        X.grad = None
        l2 = loss()
        (G,) = torch.autograd.grad(l2, X)
        X2.grad = G
        opt2.step()
        with torch.no_grad():
            X.copy_(X2)
    assert torch.equal(X2.detach(), X_end)


@given(n=st.integers(1, 12), scale=st.floats(1e-3, 20.0), seed=st.integers(0, 1000))
def test_expm_matches_torch(n, scale, seed):
    g = torch.Generator().manual_seed(seed)
    A = scale * torch.randn(n, n, generator=g, dtype=torch.float64) / n
    # Reference: the exponential in 40-digit arithmetic (mpmath, which torch depends on through
    # sympy). Neither torch.linalg.matrix_exp nor scipy.linalg.expm is accurate enough for this
    # check in float64: torch is off by 6e-12 for (n, scale, seed) = (2, 0.0625, 1), where ours
    # is off by 2e-18, and SciPy by 3e-9 for (2, 8.0, 67), where ours is off by 8e-12.
    with mpmath.workdps(40):
        ref = torch.tensor(mpmath.expm(mpmath.matrix(A.tolist())).tolist(), dtype=torch.float64)
    assert (optim_expm(A) - ref).abs().max().item() <= 1e-12 * (1 + ref.abs().max().item())
    S = A - A.T
    assert stiefel_error(optim_expm(S)).item() < 1e-12


def test_expm_batched_float32():
    A = torch.randn(3, 5, 5)
    assert torch.allclose(optim_expm(A), torch.linalg.matrix_exp(A), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("scale", [1e-3, 0.3, 3.0, 40.0])
def test_stiefel_step_equals_map_times_theta(scale):
    """One step is exactly phi(-h M) theta, whichever way the product is evaluated."""
    from spdl_ref.optim.riemannian import expm

    g = torch.Generator().manual_seed(5)
    theta0 = random_stiefel(9, 2, generator=g, dtype=torch.float64)
    G = torch.randn(9, 2, generator=g, dtype=torch.float64)
    M = G @ theta0.T - theta0 @ G.T
    for retraction, phi in (("exp", expm), ("cayley", cayley)):
        th = torch.nn.Parameter(theta0.clone())
        th.grad = G.clone()
        StiefelSGD([th], lr=scale, retraction=retraction).step()
        assert (th.detach() - phi(-scale * M) @ theta0).abs().max().item() < 1e-12


def test_gradcheck_maps():
    g = torch.Generator().manual_seed(2)
    A = torch.randn(4, 4, generator=g, dtype=torch.float64)
    S = (0.3 * (A - A.T)).requires_grad_(True)
    assert torch.autograd.gradcheck(cayley, (S,))
    assert torch.autograd.gradcheck(optim_expm, (S,))


def _nxn_momentum_reference(theta0, grads, h, beta, retraction):
    """The Stiefel step with the momentum accumulated in so(n) as an n x n matrix:
    B <- beta B + (G theta^T - theta G^T), theta <- phi(-h B) theta (the dense recursion)."""
    phi = optim_expm if retraction == "exp" else cayley
    theta, B = theta0.clone(), None
    for k in range(len(grads)):
        G = grads[k](theta)
        M = G @ theta.mT - theta @ G.mT
        B = M if B is None else beta * B + M
        theta = phi(-h * B) @ theta
    return theta


def _run_stiefel(theta0, grads, h, beta, retraction, low_rank):
    theta = torch.nn.Parameter(theta0.clone())
    opt = StiefelSGD([theta], lr=h, momentum=beta, retraction=retraction, low_rank=low_rank)
    for k in range(len(grads)):
        theta.grad = grads[k](theta.detach())
        opt.step()
    return theta.detach(), opt.state[theta]


@pytest.mark.parametrize("retraction", ["exp", "cayley"])
@pytest.mark.parametrize("beta", [0.0, 0.7])
@pytest.mark.parametrize("shape", [(12, 3), (20, 1), (16, 7), (9, 4), (6, 6), (2, 5, 2)])
def test_low_rank_step_equals_dense_step(shape, beta, retraction):
    """The 2p x 2p form, the n x n form and the n x n momentum recursion give the same iterates
    to round-off over 150 steps (float64); the momentum is stored as an n x p factor."""
    *batch, n, p = shape
    g = torch.Generator().manual_seed(n * p)
    theta0 = torch.stack(
        [
            random_stiefel(n, p, generator=g, dtype=torch.float64)
            for _ in range(max(batch, default=1))
        ]
    ).reshape(shape)
    target = torch.randn(shape, generator=g, dtype=torch.float64)
    noise = torch.randn(150, *shape, generator=g, dtype=torch.float64)
    grads = [lambda th, k=k: (th - target) + 0.3 * noise[k] for k in range(150)]
    low, state = _run_stiefel(theta0, grads, 0.05, beta, retraction, True)
    dense, _ = _run_stiefel(theta0, grads, 0.05, beta, retraction, False)
    ref = _nxn_momentum_reference(theta0, grads, 0.05, beta, retraction)
    assert (low - dense).abs().max().item() < 1e-13
    assert (low - ref).abs().max().item() < 1e-13
    assert stiefel_error(low).max().item() < 1e-13
    if beta > 0:
        assert state["momentum_factor"].shape == theta0.shape
    assert state["step"] == 150 and state["reorthonormalisations"] <= 150


def test_low_rank_is_chosen_by_shape(monkeypatch):
    import spdl_ref.optim.riemannian as riemannian

    calls = []
    for name in ("_low_rank_step", "_dense_step"):
        original = getattr(riemannian, name)
        monkeypatch.setattr(
            riemannian,
            name,
            lambda *a, _n=name, _f=original: calls.append(_n) or _f(*a),
        )
    for shape in [(9, 4), (8, 4), (5, 5)]:
        theta = torch.nn.Parameter(random_stiefel(*shape, dtype=torch.float64))
        theta.grad = torch.ones_like(theta)
        StiefelSGD([theta], lr=0.1).step()
    assert calls == ["_low_rank_step", "_dense_step", "_dense_step"]


@pytest.mark.parametrize("retraction", ["exp", "cayley"])
def test_float32_constraint_over_10000_steps(retraction, monkeypatch):
    """V(256, 32), momentum 0.5, random gradients: ||theta^T theta - I|| <= 2e-6 after 10,000
    float32 steps with the re-orthonormalisation; without it the error passes 2e-6 in 2,500."""
    import spdl_ref.optim.riemannian as riemannian

    def run(steps):
        g = torch.Generator().manual_seed(0)
        theta = torch.nn.Parameter(random_stiefel(256, 32, generator=g, dtype=torch.float32))
        opt = StiefelSGD([theta], lr=0.05, momentum=0.5, retraction=retraction)
        for _ in range(steps):
            theta.grad = torch.randn(256, 32, generator=g) / 16
            opt.step()
        return stiefel_error(theta.detach()).item(), opt.state[theta]

    err, state = run(10_000)
    assert err <= 2e-6
    assert 0 < state["reorthonormalisations"] < 0.1 * state["step"]
    monkeypatch.setattr(riemannian, "REORTHONORMALISE_AT", float("inf"))
    err_off, state_off = run(2_500)
    assert err_off > 2e-6 and state_off["reorthonormalisations"] == 0


def test_reorthonormalisation_repairs_a_drifted_point():
    """A point 1e-7 off the manifold (float64) is pulled back to round-off in one step."""
    g = torch.Generator().manual_seed(3)
    theta0 = random_stiefel(40, 5, generator=g, dtype=torch.float64)
    for low_rank in (True, False):
        theta = torch.nn.Parameter(theta0 * (1 + 1e-7))
        opt = StiefelSGD([theta], lr=1e-3, low_rank=low_rank)
        theta.grad = torch.randn(40, 5, generator=g, dtype=torch.float64)
        opt.step()
        assert stiefel_error(theta.detach()).item() < 1e-13
        assert opt.state[theta]["reorthonormalisations"] == 1


def test_expm1_is_accurate_for_small_and_large_matrices():
    from spdl_ref.optim.riemannian import _expm1

    for seed, scale in itertools.product(range(5), (1e-6, 1e-2, 0.4, 3.0, 25.0)):
        g = torch.Generator().manual_seed(seed)
        A = scale * torch.randn(6, 6, generator=g, dtype=torch.float64) / 6
        with mpmath.workdps(40):
            E = mpmath.expm(mpmath.matrix(A.tolist())) - mpmath.eye(6)
            ref = torch.tensor(E.tolist(), dtype=torch.float64)
        # relative to exp(A) - I itself, which a subtraction from exp(A) would lose for small A
        assert (_expm1(A) - ref).abs().max().item() <= 1e-13 * ref.abs().max().item()


def test_bad_low_rank_argument():
    with pytest.raises(TypeError, match="low_rank"):
        StiefelSGD([torch.nn.Parameter(torch.eye(3))], lr=0.1, low_rank=1)


@pytest.mark.parametrize("low_rank", [True, False])
def test_reorthonormalise_at_switches_the_correction(low_rank):
    """The threshold option: inf never corrects, 0 corrects in every step, None is the default."""
    g = torch.Generator().manual_seed(4)
    theta0 = random_stiefel(24, 4, generator=g, dtype=torch.float32)
    grads = [torch.randn(24, 4, generator=g) / 5 for _ in range(60)]
    counts, errors = {}, {}
    for at in (None, math.inf, 0.0):
        theta = torch.nn.Parameter(theta0.clone())
        opt = StiefelSGD([theta], lr=0.1, momentum=0.5, low_rank=low_rank, reorthonormalise_at=at)
        for G in grads:
            theta.grad = G.clone()
            opt.step()
        counts[at], errors[at] = opt.state[theta]["reorthonormalisations"], stiefel_error(theta)
    assert counts[math.inf] == 0 and counts[0.0] == 60 and 0 <= counts[None] <= 60
    assert errors[0.0] < 2e-6 and errors[None] < 2e-6


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "often", True])
def test_bad_reorthonormalise_at(bad):
    with pytest.raises((TypeError, ValueError), match="reorthonormalise_at"):
        StiefelSGD([torch.nn.Parameter(torch.eye(3))], lr=0.1, reorthonormalise_at=bad)
