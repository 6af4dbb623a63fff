"""Port-Hamiltonian descent (Section 6.4.1): the discrete power balance, convergence to (55)."""

import itertools
import math

import pytest
import torch

from spdl_ref.ode import odeint
from spdl_ref.optim import camelback
from spdl_ref.optim.port_hamiltonian import (
    descent_structure,
    port_hamiltonian_descent,
    port_hamiltonian_step,
)

F64 = torch.float64
START = torch.tensor([-0.5, 0.8], dtype=F64)


def test_structure_gives_the_right_hand_side_of_55():
    g = torch.Generator().manual_seed(0)
    gamma, mass = 0.7, 1.3
    J, R = descent_structure(3, gamma, mass, dtype=F64)
    theta, p = torch.randn(3, generator=g, dtype=F64), torch.randn(3, generator=g, dtype=F64)
    grad_E = torch.randn(3, generator=g, dtype=F64)
    grad_H = torch.cat([grad_E, p / mass])
    rhs = (J - R) @ grad_H
    assert torch.allclose(rhs[:3], p / mass, atol=1e-15)
    assert torch.allclose(rhs[3:], -grad_E - gamma * p, atol=1e-15)
    assert torch.equal(J, -J.T) and torch.equal(R, R.T) and theta.shape == (3,)


@pytest.mark.parametrize("h", [0.05, 0.5, 2.0, 5.0])
def test_energy_balance_is_exact_and_energy_falls_for_any_step(h):
    run = port_hamiltonian_descent(camelback, START, h, 1.0, 30)
    assert run.balance_defect() < 1e-14
    assert float(run.energy.diff().max()) <= 1e-15 * (1 + float(run.energy[0]))
    assert float(run.energy[-1]) < 0.5 * float(run.energy[0])


def test_balance_with_an_input_port_accounts_for_the_supplied_energy():
    g = torch.Generator().manual_seed(1)
    inputs = [torch.randn(2, generator=g, dtype=F64) for _ in range(40)]
    run = port_hamiltonian_descent(camelback, START, 0.3, 0.5, 40, inputs=inputs)
    assert run.balance_defect() < 1e-14
    assert float(run.supplied.abs().sum()) > 0.1  # the port did work
    assert int((run.energy.diff() > 0).sum()) > 0  # so the energy can rise
    # the balance sums up: H_K - H_0 = -sum dissipated + sum supplied
    total = float(run.energy[-1] - run.energy[0] + run.dissipated.sum() - run.supplied.sum())
    assert abs(total) < 1e-13


def test_the_check_fails_without_an_exact_discrete_gradient():
    # AVF with 4 Gauss nodes is exact for polynomials of degree <= 8 (the camelback function),
    # not for log cosh: then the balance misses by far more than round-off.
    def E(th):
        return torch.log(torch.cosh(3 * th)).sum() + th[0] * th[1]

    exact = port_hamiltonian_descent(E, START, 0.5, 1.0, 20)
    avf = port_hamiltonian_descent(E, START, 0.5, 1.0, 20, discrete_gradient="avf")
    poly = port_hamiltonian_descent(camelback, START, 0.5, 1.0, 20, discrete_gradient="avf")
    assert exact.balance_defect() < 1e-14 and poly.balance_defect() < 1e-14
    assert avf.balance_defect() > 1e-9


def test_scheme_converges_to_the_damped_flow_with_order_two():
    gamma, T = 1.0, 1.0

    def field(t, z):
        with torch.enable_grad():
            th = z[:2].detach().requires_grad_(True)
            (g,) = torch.autograd.grad(camelback(th), th)
        return torch.cat([z[2:], -g - gamma * z[2:]])

    z0 = torch.cat([START, torch.zeros(2, dtype=F64)])
    exact = odeint(field, z0, 0.0, T, 2000)[-1]
    errors = []
    for steps in (10, 20, 40):
        run = port_hamiltonian_descent(camelback, START, T / steps, gamma, steps)
        errors.append(float((torch.cat([run.theta[-1], run.p[-1]]) - exact).norm()))
    orders = [math.log2(a / b) for a, b in itertools.pairwise(errors)]
    assert all(abs(q - 2) < 0.15 for q in orders), orders


def test_follows_device_and_dtype(device, dtype):
    E = lambda th: (th**2).sum() + 0.1 * (th**4).sum()  # noqa: E731
    run = port_hamiltonian_descent(
        E, torch.tensor([1.0, -0.5], device=device, dtype=dtype), 0.4, 1.0, 5
    )
    assert run.theta.device.type == device.type and run.theta.dtype == dtype
    assert run.balance_defect() < (1e-5 if dtype == torch.float32 else 1e-14)


def test_bad_input_is_refused_naming_the_argument():
    H = lambda z: 0.5 * (z * z).sum()  # noqa: E731
    z = torch.ones(2, dtype=F64)
    J, R = descent_structure(1, 1.0, dtype=F64)
    with pytest.raises(ValueError, match="J must be skew-symmetric"):
        port_hamiltonian_step(H, z, 0.1, torch.eye(2, dtype=F64), R)
    with pytest.raises(ValueError, match="R must be symmetric"):
        port_hamiltonian_step(H, z, 0.1, J, torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=F64))
    with pytest.raises(ValueError, match="R must be positive semidefinite"):
        port_hamiltonian_step(H, z, 0.1, J, -torch.eye(2, dtype=F64))
    with pytest.raises(ValueError, match="B and u go together"):
        port_hamiltonian_step(H, z, 0.1, J, R, B=torch.ones(2, 1, dtype=F64))
    with pytest.raises(ValueError, match=r"u must have shape \(1,\)"):
        port_hamiltonian_step(H, z, 0.1, J, R, torch.ones(2, 1, dtype=F64), torch.ones(2))
    with pytest.raises(ValueError, match="z must be a vector"):
        port_hamiltonian_step(H, torch.ones(1, 2, dtype=F64), 0.1, J, R)
    with pytest.raises(ValueError, match="h must be > 0"):
        port_hamiltonian_step(H, z, 0.0, J, R)
    with pytest.raises(ValueError, match="H must map a state"):
        port_hamiltonian_step(lambda v: v, z, 0.1, J, R)
    with pytest.raises(ValueError, match="inputs must hold one tensor per step"):
        port_hamiltonian_descent(H, torch.ones(1, dtype=F64), 0.1, 1.0, 3, inputs=[z])
    with pytest.raises(ValueError, match="discrete_gradient"):
        port_hamiltonian_step(H, z, 0.1, J, R, discrete_gradient="midpoint")
