"""Riemannian optimisation on SO(n), Stiefel and the sphere (Section 6.2.1):
spdl_ref.optim.riemannian."""

import copy

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
