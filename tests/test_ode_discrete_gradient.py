import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref.ode import avf_gradient, canonical_J, discrete_gradient_step, gonzalez_gradient

D = torch.float64


def H(u):
    z, p = u[..., :2], u[..., 2:]
    return 0.5 * (p**2).sum(-1) - torch.cos(z).sum(-1) + 0.1 * (z**4).sum(-1)


def H_poly(u):
    return 0.5 * (u**2).sum(-1) + 0.25 * (u[..., :2] ** 4).sum(-1)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_discrete_gradient_conditions(seed):
    g = torch.Generator().manual_seed(seed)
    u, v = torch.randn(3, 4, generator=g, dtype=D), torch.randn(3, 4, generator=g, dtype=D)
    for dg, f in ((gonzalez_gradient, H), (avf_gradient, H_poly)):
        lhs = f(v) - f(u)
        rhs = (dg(f, u, v) * (v - u)).sum(-1)
        assert torch.allclose(lhs, rhs, atol=1e-12)
        with torch.enable_grad():
            uu = u.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(f(uu).sum(), uu)
        assert torch.allclose(dg(f, u, u), grad, atol=1e-12)


@pytest.mark.parametrize("method, f, steps", [("gonzalez", H, 200), ("avf", H_poly, 100)])
def test_energy_is_preserved(method, f, steps):
    u = torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=D)
    v = u
    for _ in range(steps):
        v = discrete_gradient_step(f, v, 0.1, method=method, nodes=2)
    assert (f(v) - f(u)).abs().max() < 1e-12
    assert (v - u).abs().max() > 0.1  # it moved


def test_first_order_consistency_and_custom_J():
    u = torch.tensor([[0.3, -0.2, 0.5, 0.1]], dtype=D)
    J = canonical_J(4, dtype=D)
    errs = []
    for h in (1e-2, 5e-3):
        v = discrete_gradient_step(H, u, h, J=J)
        with torch.enable_grad():
            uu = u.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(H(uu).sum(), uu)
        errs.append((v - (u + h * g @ J.T)).norm().item())
    assert 3.5 < errs[0] / errs[1] < 4.5  # local error O(h^2) vs explicit Euler
    assert discrete_gradient_step(H, u.float(), 0.1).dtype == torch.float32


def test_bad_inputs_and_nonconvergence():
    u = torch.zeros(1, 4, dtype=D)
    with pytest.raises(ValueError, match="h"):
        discrete_gradient_step(H, u, -0.1)
    with pytest.raises(ValueError, match="method"):
        discrete_gradient_step(H, u, 0.1, method="rk4")
    with pytest.raises(ValueError, match="skew"):
        discrete_gradient_step(H, u, 0.1, J=torch.eye(4, dtype=D))
    with pytest.raises(ValueError, match="shape"):
        discrete_gradient_step(H, u, 0.1, J=canonical_J(2, dtype=D))
    with pytest.raises(ValueError, match="even"):
        canonical_J(3)
    with pytest.raises(TypeError, match="H"):
        discrete_gradient_step(3, u, 0.1)
    with pytest.raises(RuntimeError, match="converge"):
        discrete_gradient_step(
            lambda w: 5 * (w**4).sum(-1), torch.ones(1, 2, dtype=D), 5.0, max_iter=5
        )


def test_counting_function_counts_evaluations_per_step():
    from spdl_ref.ode import CountingFunction

    counted = CountingFunction(H)
    u = torch.tensor([[0.3, -0.2, 0.1, 0.4]], dtype=D)
    assert torch.equal(counted(u), H(u)) and counted.calls == 1
    counted.reset()
    assert counted.calls == 0
    v = discrete_gradient_step(counted, u, 0.1, method="gonzalez")
    n_gonzalez = counted.calls
    # predictor: one gradient; each fixed-point iteration: the gradient at the midpoint and H(v),
    # H(u)
    assert n_gonzalez >= 4 and (n_gonzalez - 1) % 3 == 0
    assert torch.equal(v, discrete_gradient_step(H, u, 0.1, method="gonzalez"))
    counted.reset()
    discrete_gradient_step(counted, u, 0.1, method="avf", nodes=2)
    assert (
        counted.calls >= 3 and (counted.calls - 1) % 2 == 0
    )  # 2 quadrature gradients per iteration
    kw = CountingFunction(lambda a, b=0: a + b)
    assert kw(1, b=2) == 3 and kw.calls == 1 and "calls=1" in repr(kw)


def test_counting_function_bad_input():
    from spdl_ref.ode import CountingFunction

    with pytest.raises(TypeError, match="fn must be callable"):
        CountingFunction(3)
