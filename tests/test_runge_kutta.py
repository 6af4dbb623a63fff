import copy
import itertools
import math
import pickle

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref.ode import (
    TABLEAUX,
    ButcherTableau,
    ODENet,
    PlainField,
    as_tableau,
    butcher_tableau,
    is_algebraically_stable,
    odeint,
    rk_step,
)
from spdl_ref.ode.runge_kutta import is_explicit

EXPLICIT = {"explicit_euler", "heun", "kutta3", "rk4"}

ROT = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)


def _oscillator(t, z):
    return z @ ROT.T


def _exact(T, z0):
    c, s = math.cos(T), math.sin(T)
    return z0 @ torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(TABLEAUX))
def test_tableaux_are_consistent(name):
    A, b, c = butcher_tableau(name)
    assert A.dtype == b.dtype == c.dtype == torch.float64
    assert torch.allclose(b.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(A.sum(1), c)  # row-sum condition


@pytest.mark.parametrize("name, order", sorted(TABLEAUX.items()))
def test_measured_order_matches_classical_order(name, order):
    z0 = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    errs = [
        (odeint(_oscillator, z0, 0.0, 2.0, n, name)[-1] - _exact(2.0, z0)).norm().item()
        for n in (20, 40, 80)
    ]
    rates = [math.log2(e0 / e1) for e0, e1 in itertools.pairwise(errs)]
    assert all(abs(r - order) < 0.15 for r in rates), rates


def test_algebraic_stability_of_known_methods():
    stable = {"implicit_euler", "implicit_midpoint", "gauss4", "radau_iia3", "lobatto_iiic2"}
    for name in TABLEAUX:
        A, b, _ = butcher_tableau(name)
        assert is_algebraically_stable(A, b) == (name in stable), name
        assert is_explicit(A) == (name in EXPLICIT) == butcher_tableau(name).explicit
    # negative weight: not algebraically stable
    assert not is_algebraically_stable(torch.tensor([[0.5]]), torch.tensor([-1.0]))


@pytest.mark.parametrize("solver", ["newton", "fixed_point"])
@given(h=st.floats(0.01, 0.3))
def test_implicit_stage_equations_are_solved(solver, h):
    field = lambda t, z: -(z**3) + math.sin(t) * z  # noqa: E731
    z = torch.tensor([[0.3, -1.2], [2.0, 0.1]], dtype=torch.float64)
    A, b, c = butcher_tableau("gauss4")
    z1 = rk_step(field, 0.2, z, h, "gauss4", solver=solver, tol=1e-14)
    # Recover the stages from the defining equations and check them
    K = torch.stack([field(0.2 + float(c[i]) * h, z) for i in range(2)])
    for _ in range(200):
        Z = z + h * torch.einsum("ij,j...->i...", A, K)
        K = torch.stack([field(0.2 + float(c[i]) * h, Z[i]) for i in range(2)])
    assert torch.allclose(z1, z + h * (b[0] * K[0] + b[1] * K[1]), atol=1e-12)


def test_implicit_midpoint_preserves_quadratic_invariant():
    z = torch.tensor([0.6, 0.8], dtype=torch.float64)
    for _ in range(200):
        z = rk_step(_oscillator, 0.0, z, 0.3, "implicit_midpoint")
    assert abs(z.norm().item() - 1.0) < 1e-12


def test_dtype_and_device_follow_the_state(dtype, device):
    z = torch.ones(3, 2, dtype=dtype, device=device)
    field = lambda t, v: -v  # noqa: E731
    for name in ("rk4", "radau_iia3"):
        out = rk_step(field, 0.0, z, 0.1, name)
        assert out.dtype == dtype and out.device.type == device.type


def test_non_convergence_raises():
    stiff = lambda t, z: -1e6 * z**3  # noqa: E731
    with pytest.raises(RuntimeError, match="did not converge"):
        rk_step(
            stiff,
            0.0,
            torch.tensor([5.0], dtype=torch.float64),
            1.0,
            "implicit_euler",
            solver="fixed_point",
            max_iter=5,
        )


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown method 'rk5'; known: .*gauss4"):
        butcher_tableau("rk5")
    with pytest.raises(TypeError, match="name must be a string"):
        butcher_tableau(4)
    z = torch.zeros(2)
    with pytest.raises(ValueError, match="h must be > 0"):
        rk_step(_oscillator, 0.0, z, 0.0)
    with pytest.raises(ValueError, match="solver must be"):
        rk_step(_oscillator, 0.0, z, 0.1, "gauss4", solver="bisection")
    with pytest.raises(ValueError, match="A must be a square matrix"):
        is_algebraically_stable(torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="b must have shape"):
        is_algebraically_stable(torch.zeros(2, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="T must be greater than t0"):
        odeint(_oscillator, z, 1.0, 1.0, 3)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        odeint(_oscillator, z, 0.0, 1.0, 0)


def test_named_tableaux_carry_their_order_and_survive_copies():
    for name, order in TABLEAUX.items():
        tab = butcher_tableau(name)
        assert isinstance(tab, ButcherTableau) and tab.name == name and tab.order == order
        assert tab.stages == tab.A.shape[0] and tab.b is tab[1] and as_tableau(tab) is tab
        for other in (copy.deepcopy(tab), pickle.loads(pickle.dumps(tab))):
            assert other.name == name and other.explicit == tab.explicit
            assert all(torch.equal(u, v) for u, v in zip(other, tab, strict=True))
    net = copy.deepcopy(ODENet(PlainField(2, 2), "heun"))
    assert net.integrator.name == "heun" and net(torch.zeros(1, 2)).shape == (1, 2)


def test_explicit_step_is_the_tableau_formula():
    """Heun and Kutta-3 written out by hand agree with the tableau step (as the review's (6))."""
    f = lambda t, v: torch.sin(v) + t  # noqa: E731
    z, h, t = torch.tensor([0.3, -1.0], dtype=torch.float64), 0.2, 0.4
    k1 = f(t, z)
    heun = z + h / 2 * (k1 + f(t + h, z + h * k1))
    k2 = f(t + h / 2, z + h / 2 * k1)
    k3 = f(t + h, z - h * k1 + 2 * h * k2)
    kutta = z + h / 6 * (k1 + 4 * k2 + k3)
    assert torch.allclose(rk_step(f, t, z, h, "heun"), heun, rtol=0, atol=1e-15)
    assert torch.allclose(rk_step(f, t, z, h, "kutta3"), kutta, rtol=0, atol=1e-15)


MALFORMED = [
    (3, TypeError, "method must be a method name .* got int"),
    ((torch.eye(2), torch.ones(2) / 2), TypeError, "method must be .* tuple of length 2"),
    (
        (torch.zeros(1, 1), torch.tensor([0.5, 0.5]), torch.zeros(2)),
        ValueError,
        r"method: b must have shape \(1,\) to match A of 1 stages",
    ),
    (
        (torch.zeros(2, 3), torch.ones(2) / 2, torch.zeros(2)),
        ValueError,
        r"method: A must be a non-empty square matrix",
    ),
    (
        (torch.zeros(2, 2), torch.ones(2) / 2, torch.zeros(3)),
        ValueError,
        r"method: c must have shape \(2,\)",
    ),
    (
        (torch.tensor([[float("nan")]]), torch.ones(1), torch.zeros(1)),
        ValueError,
        "method: A must contain only finite values",
    ),
    (
        (torch.zeros(1, 1), torch.tensor([float("inf")]), torch.zeros(1)),
        ValueError,
        "method: b must contain only finite values",
    ),
    (
        (torch.zeros(1, 1), torch.tensor([0.5]), torch.zeros(1)),
        ValueError,
        "method: the weights b must sum to 1",
    ),
    (
        (torch.zeros(1, 1, dtype=torch.complex64), torch.ones(1), torch.zeros(1)),
        TypeError,
        "method: A must be a real tensor",
    ),
    (("a", "b", "c"), TypeError, "method: A must be a tensor of real numbers"),
]


@pytest.mark.parametrize("method, error, message", MALFORMED)
def test_malformed_tableaux_are_refused_naming_the_argument(method, error, message):
    with pytest.raises(error, match=message):
        rk_step(_oscillator, 0.0, torch.zeros(2, dtype=torch.float64), 0.1, method)
    with pytest.raises(error, match=message):
        ODENet(PlainField(2, 2), method)
    with pytest.raises(error, match=message):
        odeint(_oscillator, torch.zeros(2, dtype=torch.float64), 0.0, 1.0, 2, method)


def test_a_tableau_given_by_its_entries_is_the_named_method():
    heun = butcher_tableau("heun")
    entries = ([[0.0, 0.0], [1.0, 0.0]], [0.5, 0.5], [0.0, 1.0])  # nested lists are accepted
    z = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    assert torch.equal(
        rk_step(_oscillator, 0.0, z, 0.1, entries), rk_step(_oscillator, 0.0, z, 0.1, heun)
    )
    assert as_tableau(entries).name is None and as_tableau(entries).explicit


def test_solver_options_are_checked():
    z = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(TypeError, match="unknown keyword arguments of odeint"):
        odeint(_oscillator, z, 0.0, 1.0, 2, "rk4", tolerance=1e-3)
    with pytest.raises(TypeError, match="unknown keyword arguments of ODENet"):
        ODENet(PlainField(2, 2), "gauss4", tolerance=1e-3)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        ODENet(PlainField(2, 2), "gauss4", max_iter=0)
