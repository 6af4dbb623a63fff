"""ODE flows as invertible maps (Section 4.2.3, ref. [24]; the ResNet remark of Section 4.1.2).

* the continuous normalising flow: its log-determinant by the instantaneous change of variables
  converges to the log-determinant of the discrete flow map (autograd Jacobian) with the order of
  the Runge-Kutta method, and its inverse by backward integration reconstructs the input with at
  least that order (exactly for a symmetric method);
* a ResNet step, or a residual layer (44), is inverted by one implicit Euler step of the backward
  ODE, and the fixed-point solver of that step is the iteration (46).
"""

import itertools
import math

import pytest
import torch

from spdl_ref import data
from spdl_ref import invertible as inv
from spdl_ref.ode import HamiltonianField, ODENet, PlainField, ReLUField, ResNet

D = torch.float64


def _cnf(method="rk4", layers=3, seed=0, **kw):
    torch.manual_seed(seed)
    field = ReLUField(2, layers, width=8, activation="tanh", init_std=1.5, dtype=D)
    return inv.ContinuousFlow(field, method, **kw)


def _orders(errors):
    return [math.log2(a / b) for a, b in itertools.pairwise(errors)]


@pytest.mark.parametrize(("method", "p"), [("heun", 2), ("kutta3", 3), ("rk4", 4)])
def test_trace_integral_and_backward_integration_converge_with_the_method_order(method, p):
    """The trace integral tends to the exact log-det of the discrete map (autograd Jacobian)
    with order p; the inverse by backward integration with order p, or p + 1 for even p (the
    method and its adjoint share the leading error term)."""
    flow = _cnf(method)
    x = torch.randn(6, 2, dtype=D, generator=torch.Generator().manual_seed(1))
    err = inv.discretisation_errors(flow, x, substeps=[4, 8, 16])
    assert err["h"] == pytest.approx([flow.h / 4, flow.h / 8, flow.h / 16])
    assert all(abs(o - p) < 0.35 for o in _orders(err["log_det"])), err
    assert all(o > p - 0.35 for o in _orders(err["inverse"])), err
    assert err["inverse"][-1] < 1e-4
    assert torch.equal(flow.log_abs_det_jacobian(x), flow.forward_and_log_det(x)[1])


def test_a_wrong_sign_of_the_trace_is_caught():
    """The check can fail: integrating -tr(df/dz) misses the exact log-det by O(1)."""
    flow = _cnf("rk4")
    x = torch.randn(6, 2, dtype=D, generator=torch.Generator().manual_seed(1))
    f = flow.with_substeps(8)
    _, trace_integral = f.forward_and_log_det(x)
    exact = inv.autograd_log_abs_det(f, x).detach()
    assert float((trace_integral - exact).detach().abs().max()) < 1e-5
    assert float((-trace_integral - exact).detach().abs().max()) > 0.1


def test_a_symmetric_method_inverts_its_own_steps():
    flow = _cnf("implicit_midpoint", tol=1e-13)
    x = torch.randn(5, 2, dtype=D, generator=torch.Generator().manual_seed(3))
    assert float((flow.inverse(flow(x)) - x).detach().abs().max()) < 1e-11


def test_substeps_share_the_field_and_refine_the_step():
    flow = _cnf("rk4", layers=2, T=2.0)
    fine = flow.with_substeps(3)
    assert fine.vector_field is flow.vector_field and fine.h == pytest.approx(flow.h / 3)
    assert flow.network().depth == 2 and fine.network().depth == 6
    assert flow.order == 4


class _Both(torch.nn.Module):
    def __init__(self, flow):
        super().__init__()
        self.flow = flow

    def forward(self, x):
        z, logdet = self.flow.forward_and_log_det(x)
        return z.sum(1) + logdet


def test_cnf_gradients_are_those_of_the_discrete_steps():
    """gradcheck of (z(T), trace integral) in x and in every parameter: the trace is
    differentiated through (second derivatives of the field)."""
    both = _Both(_cnf("heun", layers=2))
    names = [n for n, _ in both.named_parameters()]
    x = torch.randn(3, 2, dtype=D, requires_grad=True)
    params = [p.detach().clone().requires_grad_(True) for p in both.parameters()]

    def f(xx, *ps):
        return torch.func.functional_call(both, dict(zip(names, ps, strict=True)), (xx,))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_a_cnf_trains_on_two_moons():
    torch.manual_seed(0)
    x, _ = data.two_moons(64, noise=0.05, seed=0)
    field = ReLUField(2, 1, width=8, activation="tanh")
    flow = inv.NormalisingFlow(inv.ContinuousFlow(field, "explicit_euler"), 2)
    history = inv.fit_flow(flow, x, iterations=15, batch_size=64, lr=3e-2)
    assert history.loss[-1] < history.loss[0] - 0.2


def test_trace_augmented_field_is_a_layered_field():
    torch.manual_seed(0)
    base = ReLUField(2, 2, width=4, activation="tanh", dtype=D)
    aug = inv.TraceAugmentedField(base)
    u = aug.lift(torch.randn(3, 2, dtype=D))
    assert aug.state_dim == 3 and torch.equal(u[:, 2], torch.zeros(3, dtype=D))
    out = aug.field(1, u)
    jac = torch.func.vmap(torch.func.jacrev(lambda z: base.field(1, z)))(u[:, :2])
    assert torch.allclose(out[:, :2], base.field(1, u[:, :2]))
    assert torch.allclose(out[:, 2], jac.diagonal(dim1=1, dim2=2).sum(1), atol=1e-14)
    assert torch.equal(aug.project(u), u[:, :2])
    with pytest.raises(ValueError, match="u"):
        aug.field(0, torch.randn(3, 2, dtype=D))


def test_continuous_flow_rejects_bad_input():
    field = ReLUField(2, 2, width=4, activation="tanh", dtype=D)
    with pytest.raises(ValueError, match="method"):
        inv.ContinuousFlow(field, "symplectic_euler")
    with pytest.raises(ValueError, match="field"):
        inv.ContinuousFlow(HamiltonianField(2, 2, dtype=D), "rk4")
    with pytest.raises(TypeError, match="field"):
        inv.ContinuousFlow(torch.nn.Linear(2, 2), "rk4")
    with pytest.raises(ValueError, match="substeps"):
        inv.ContinuousFlow(field, "rk4", substeps=0)
    with pytest.raises(ValueError, match="T"):
        inv.ContinuousFlow(field, "rk4", T=-1.0)
    flow = inv.ContinuousFlow(field, "rk4")
    with pytest.raises(ValueError, match="x"):
        flow(torch.randn(3, 3, dtype=D))
    with pytest.raises(ValueError, match="y"):
        flow.inverse(torch.randn(3, dtype=D))


# --- the ResNet remark: inverting a forward Euler step is implicit Euler backwards --------------


@pytest.mark.parametrize("solver", ["newton", "fixed_point"])
def test_a_resnet_layer_is_inverted_by_implicit_euler_on_the_backward_ode(solver):
    torch.manual_seed(0)
    net = ResNet(3, depth=4, T=1.0, dtype=D)  # h = 1/4, Lip(f) <= ||A||: h Lip(f) < 1 here
    assert net.h * float(torch.linalg.matrix_norm(net.A.detach(), 2).max()) < 1
    z = torch.randn(5, 3, dtype=D)
    states = net.states(z)
    for k in range(net.depth):
        back = inv.euler_step_inverse(net, states[k + 1], k=k, solver=solver)
        assert float((back - states[k]).detach().abs().max()) < 1e-11


def test_an_odenet_with_explicit_euler_is_accepted_and_other_methods_are_not():
    torch.manual_seed(0)
    field = PlainField(2, 3, dtype=D)
    z = torch.randn(4, 2, dtype=D)
    net = ODENet(field, "explicit_euler", T=1.0)
    back = inv.euler_step_inverse(net, net.states(z)[1], k=0)
    assert float((back - z).abs().max()) < 1e-12
    with pytest.raises(ValueError, match="explicit Euler"):
        inv.euler_step_inverse(ODENet(field, "rk4", T=1.0), z, k=0)
    with pytest.raises(ValueError, match="k"):
        inv.euler_step_inverse(net, z, k=3)
    with pytest.raises(TypeError, match="model"):
        inv.euler_step_inverse(torch.nn.Linear(2, 2), z)


@pytest.mark.parametrize("solver", ["newton", "fixed_point"])
def test_a_residual_layer_is_inverted_by_implicit_euler_with_h_one(solver):
    layer = inv.contractive_residual(0.9, dtype=D)
    x = torch.randn(6, 8, dtype=D, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = layer(x)
    back = inv.euler_step_inverse(layer, y, solver=solver)
    assert float((back - x).abs().max()) < 1e-11
    assert float((back - layer.inverse(y)).detach().abs().max()) < 1e-11
    image = inv.InvertibleResidual((2, 4, 4), c=0.8, hidden=4, dtype=D).eval()
    xi = torch.randn(2, 2, 4, 4, dtype=D)
    assert float((inv.euler_step_inverse(image, image(xi), solver=solver) - xi).abs().max()) < 1e-11
    with pytest.raises(ValueError, match="k"):
        inv.euler_step_inverse(layer, y, k=1)


def test_fixed_point_solver_is_iteration_46():
    """The stage solver's fixed-point iterations are the iterates x^i of (46): it stops at the
    first m with max|x^(m+1) - x^m| <= tol (1 + max|y|), and Newton needs a handful."""
    layer = inv.contractive_residual(0.9, symmetric_linear=True, dtype=D)
    x = torch.randn(4, 8, dtype=D, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = layer(x)
    tol = 1e-10
    xs = layer.fixed_point_iterates(y, 400)
    change = (xs[1:] - xs[:-1]).flatten(1).abs().amax(1)
    first = int((change[1:] <= tol * (1 + float(y.abs().max()))).nonzero()[0]) + 1
    assert inv.inverse_iterations(layer, y, "fixed_point", tol=tol) == first > 100
    assert inv.inverse_iterations(layer, y, "newton", tol=tol) <= 3


def test_a_step_with_h_lip_above_one_is_not_injective():
    """z + h tanh(a z) with h a = -3 (h Lip(f) = 3): three preimages of 0."""
    net = ResNet(1, depth=1, T=1.0, dtype=D, init_std=0.0)
    with torch.no_grad():
        net.A.fill_(-3.0)
    zs = [inv.euler_step_inverse(net, torch.zeros(1, 1, dtype=D), solver="newton")]
    # Newton from another start: solve z = tanh(3 z) near z = 1 with the field itself
    z = torch.ones(1, 1, dtype=D)
    for _ in range(50):
        g = z - torch.tanh(3 * z)
        z = z - g / (1 - 3 * (1 - torch.tanh(3 * z) ** 2))
    zs.append(z)
    outputs = [net.states(v)[1] for v in (zs[0], zs[1], -zs[1])]
    assert all(float(o.detach().abs().max()) < 1e-12 for o in outputs)
    assert float(zs[1]) > 0.9 and float(zs[0].abs()) < 1e-12
