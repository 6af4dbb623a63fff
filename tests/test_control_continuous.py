"""The continuous problem (41), L2 distances of controls, the TV regulariser and prox (§3.3-3.4)."""

import math

import pytest
import torch
from control_helpers import one_thread  # noqa: F401 (a fixture)
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref import control
from spdl_ref.control import PiecewiseLinearControl, continuous_objective, l2_distance
from spdl_ref.ode import ODENet, PlainField, ResNet, example_control, fitted_order

D = torch.float64

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(N=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, 2, generator=g, dtype=D)
    return x, control.squared_fit(torch.sign(x[:, 0] * x[:, 1]))


def _net(K, T=2.0, seed=0):
    return ResNet(2, K, T=T, dtype=D, generator=torch.Generator().manual_seed(seed))


def test_interpolant_carries_the_discrete_h1_norm_of_40():
    for net in (_net(5), ODENet(PlainField(2, 3, dtype=D), "heun", T=1.5)):
        c = PiecewiseLinearControl.from_network(net)
        assert c.intervals == net.depth and abs(c.T - net.h * net.depth) < 1e-14
        assert torch.allclose(c.h1_norm_squared(), control.h1_discrete(net), rtol=1e-14)
        # theta(t^k) = theta^k, theta(T) = theta^(K-1), linear in between
        names = list(net.layer_parameters(0))
        k = 1
        at = c.at(k * net.h)
        assert all(torch.equal(at[n], net.layer_parameters(k)[n].detach()) for n in names)
        mid = c.at((k + 0.25) * net.h)
        for n in names:
            a, b = net.layer_parameters(k)[n], net.layer_parameters(k + 1)[n]
            assert torch.allclose(mid[n], (0.75 * a + 0.25 * b).detach(), atol=1e-15)
        end = c.at(c.T)
        assert all(
            torch.equal(end[n], net.layer_parameters(net.depth - 1)[n].detach()) for n in names
        )


def test_flow_of_a_constant_control_is_the_rk_network():
    """A constant control: the flow is K steps of the same RK method, to round-off."""
    net = _net(1, T=1.0)
    x, _ = _data()
    values = {n: v.detach().expand(4, *v.shape[1:]).clone() for n, v in net.named_parameters()}
    c = PiecewiseLinearControl(net, values, 1.0)
    for method in ("explicit_euler", "heun", "rk4"):
        flow = c.flow(x, steps_per_interval=2, method=method)
        assert torch.allclose(flow, control.ode_flow(net, x, method, 6), atol=1e-14)


def test_flow_keeps_the_order_of_rk4_with_a_time_dependent_control():
    net = _net(6, T=2.0, seed=3)
    c = PiecewiseLinearControl.from_network(net)
    x, _ = _data()
    with torch.no_grad():
        exact = c.flow(x, steps_per_interval=512)
        steps = [4, 8, 16, 32]
        errors = [float((c.flow(x, steps_per_interval=n) - exact).norm()) for n in steps]
    assert abs(fitted_order(steps, errors) - 4) < 0.25, errors
    # Euler with its own order
    with torch.no_grad():
        errors = [float((c.flow(x, n, "explicit_euler") - exact).norm()) for n in [8, 16, 32, 64]]
    assert abs(fitted_order([8, 16, 32, 64], errors) - 1) < 0.1, errors


def test_41_and_40_agree_in_the_limit_of_a_smooth_control():
    """For a smooth control sampled on K layers, E^(K) (40) and E^inf (41) of its interpolant
    differ only by the discretisation, which falls like 1/K (forward Euler's order)."""
    A, b = example_control()
    x, fit = _data(seed=2)
    depths = [8, 16, 32, 64]
    gaps = []
    for K in depths:
        net = ResNet.from_control(A, b, K, T=1.0, dtype=D)
        E_K = control.deep_limit_objective(net, x, fit, 0.1)
        E_inf = continuous_objective(PiecewiseLinearControl.from_network(net), x, fit, 0.1)
        gaps.append(abs(float((E_inf - E_K).detach())))
    assert abs(fitted_order(depths, gaps) - 1) < 0.15, gaps


def test_minimising_41_beats_every_interpolant_on_a_coarser_grid():
    """min over piecewise-linear controls on J intervals <= E^inf of any interpolant with K | J."""
    x, fit = _data(8, seed=5)
    lam = 0.05
    ref = PiecewiseLinearControl.from_network(_net(4, seed=1))
    value = control.minimise(
        ref.parameters(),
        lambda: continuous_objective(ref, x, fit, lam, steps_per_interval=1),
        max_iter=200,
    )
    grads = torch.autograd.grad(
        continuous_objective(ref, x, fit, lam, steps_per_interval=1), list(ref.values.values())
    )
    assert math.sqrt(sum(float(g.pow(2).sum()) for g in grads)) < 1e-5
    for K in (1, 2, 4):
        net = _net(K, seed=K)
        control.minimise(net, lambda net=net: control.deep_limit_objective(net, x, fit, lam))
        interpolant = PiecewiseLinearControl.from_network(net)
        with torch.no_grad():
            E_inf = float(continuous_objective(interpolant, x, fit, lam, steps_per_interval=4 // K))
        assert value <= E_inf + 1e-10


def test_l2_distance_is_exact():
    """Against a fine midpoint rule: networks of any depths, networks and controls."""
    a, b = _net(2, T=1.0, seed=0), _net(3, T=1.0, seed=1)
    c = PiecewiseLinearControl.from_network(_net(5, T=1.0, seed=2))
    t = (torch.arange(6000, dtype=D) + 0.5) / 6000

    def values(obj):
        if isinstance(obj, PiecewiseLinearControl):  # linear interpolation, written out
            J = obj.intervals
            j = (t * J).floor().long().clamp(max=J - 1)
            w = (t * J - j)[:, None]
            nodes = torch.cat([v.detach().reshape(J + 1, -1) for v in obj.values.values()], 1)
            return nodes[j] + w * (nodes[j + 1] - nodes[j])
        k = (t * obj.depth).floor().long()
        return torch.cat([obj.A[k].reshape(len(t), -1), obj.b[k]], 1).detach()

    for p, q, tol in ((a, b, 1e-3), (a, c, 1e-6), (c, c, 0.0)):
        brute = float((values(p) - values(q)).pow(2).sum(1).mean().sqrt())
        assert l2_distance(p, q) == pytest.approx(brute, rel=tol, abs=1e-12)
    # a ResNet and an ODENet of the field (8) with the same theta are at distance 0
    field = PlainField(2, 2, dtype=D)
    with torch.no_grad():
        field.A.copy_(a.A)
        field.b.copy_(a.b)
    assert l2_distance(a, ODENet(field, "rk4", T=1.0)) == 0.0
    with pytest.raises(ValueError, match="same final time T"):
        l2_distance(a, _net(2, T=2.0))
    with pytest.raises(ValueError, match="same shapes"):
        l2_distance(a, ResNet(3, 2, T=1.0, dtype=D))
    with pytest.raises(TypeError, match="fixed steps"):
        l2_distance(a, control.VariableStepResNet(2, 2, dtype=D))


def test_piecewise_linear_control_bad_inputs():
    net = _net(2)
    good = {"A": torch.zeros(3, 2, 2, dtype=D), "b": torch.zeros(3, 2, dtype=D)}
    with pytest.raises(TypeError, match="values must be a dict"):
        PiecewiseLinearControl(net, [good["A"]], 2.0)
    with pytest.raises(ValueError, match="values must hold the layer parameters"):
        PiecewiseLinearControl(net, {"A": good["A"]}, 2.0)
    with pytest.raises(ValueError, match=r"values\['b'\] must have shape"):
        PiecewiseLinearControl(net, {"A": good["A"], "b": torch.zeros(3, 3, dtype=D)}, 2.0)
    with pytest.raises(ValueError, match="same number of nodes"):
        PiecewiseLinearControl(net, {"A": good["A"], "b": torch.zeros(4, 2, dtype=D)}, 2.0)
    with pytest.raises(ValueError, match="T must be > 0"):
        PiecewiseLinearControl(net, good, 0.0)
    with pytest.raises(ValueError, match="finite"):
        PiecewiseLinearControl(net, {**good, "b": torch.full((3, 2), math.nan, dtype=D)}, 2.0)
    c = PiecewiseLinearControl(net, good, 2.0)
    with pytest.raises(ValueError, match=r"t must lie in \[0, T\]"):
        c.at(2.5)
    with pytest.raises(ValueError, match="explicit"):
        c.flow(torch.zeros(3, 2, dtype=D), method="implicit_midpoint")
    with pytest.raises(ValueError, match="steps_per_interval must be >= 1"):
        c.flow(torch.zeros(3, 2, dtype=D), steps_per_interval=0)
    with pytest.raises(
        TypeError, match=r"control must be a spdl_ref\.control\.PiecewiseLinearControl"
    ):
        continuous_objective(
            net, torch.zeros(3, 2, dtype=D), control.squared_fit(torch.zeros(3)), 1.0
        )
    with pytest.raises(ValueError, match="lam must be > 0"):
        continuous_objective(
            c, torch.zeros(3, 2, dtype=D), control.squared_fit(torch.zeros(3)), 0.0
        )
    with pytest.raises(TypeError, match="fixed steps"):
        PiecewiseLinearControl.from_network(control.VariableStepResNet(2, 2, dtype=D))


def _tv_optimal(y, x, lam, tol=1e-9):
    """The optimality conditions of min 1/2 |x - y|^2 + lam sum |x_{k+1} - x_k| along axis 0.

    y - x = D^T u with |u_k| <= lam and u_k = lam sign(x_{k+1} - x_k) where x jumps, where
    u_k = -sum_{i <= k} (y - x)_i; and the residuals sum to zero.
    """
    r = (y - x).reshape(y.shape[0], -1)
    flat = x.reshape(y.shape[0], -1)
    dx = flat[1:] - flat[:-1]
    u = -torch.cumsum(r, 0)
    if not bool((u[-1].abs() <= tol).all()):
        return False
    u = u[:-1]
    inside = bool((u.abs() <= lam + tol).all())
    jumps = dx.abs() > tol
    signs = torch.where(jumps, (u - lam * torch.sign(dx)).abs() <= tol, torch.ones_like(jumps))
    return inside and bool(signs.all())


@given(
    st.integers(1, 12),
    st.integers(1, 3),
    st.floats(0.0, 3.0),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_tv_denoise_is_the_prox_of_the_total_variation(K, columns, lam, seed, rounded):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(K, columns, dtype=D, generator=g) * 2
    if rounded:  # ties and flat pieces
        y = y.round()
    x = control.tv_denoise(y, lam)
    assert x.shape == y.shape and _tv_optimal(y, x, lam)
    # a perturbed output violates the conditions (the check can fail)
    if K > 1 and lam > 0.01:
        assert not _tv_optimal(y, x + 0.01 * torch.arange(K, dtype=D)[:, None], lam)


def test_tv_norm_prox_and_bad_inputs():
    net = ResNet(1, 3, init_std=0.0, dtype=D)
    with torch.no_grad():
        net.A[:, 0, 0] = torch.tensor([0.0, 2.0, 1.0], dtype=D)
        net.b[:, 0] = torch.tensor([1.0, 1.0, -1.0], dtype=D)
    assert float(control.tv_norm(net).detach()) == pytest.approx(2 + 1 + 0 + 2)
    prox = control.tv_prox(0.5)
    y = torch.tensor([[0.0], [0.0], [1.0], [1.0]], dtype=D)
    assert torch.allclose(prox(y, 2.0), control.tv_denoise(y, 1.0))
    assert torch.equal(control.tv_denoise(y, 0.0), y)
    # a large weight flattens everything to the mean
    assert torch.allclose(control.tv_denoise(y, 10.0), torch.full_like(y, 0.5))
    with pytest.raises(ValueError, match="lam must be >= 0"):
        control.tv_denoise(y, -1.0)
    with pytest.raises(ValueError, match="y must contain only finite values"):
        control.tv_denoise(torch.tensor([math.nan], dtype=D), 1.0)
    with pytest.raises(ValueError, match="first axis"):
        control.tv_denoise(torch.zeros(0, dtype=D), 1.0)
    with pytest.raises(ValueError, match="tau must be >= 0"):
        prox(y, -1.0)
    with pytest.raises(TypeError, match="model"):
        control.tv_norm(torch.nn.Linear(2, 2))
