"""Every layered network x every Section 3 algorithm: right answers, or a TypeError that says why.

Models: the ResNet (6), the ResNet with learnt steps (38) (random, non-uniform steps), and
ODENet with every field of spdl_ref.ode.fields and explicit Euler, Heun and RK4, Hamiltonian
fields with symplectic Euler and Stormer-Verlet, and one implicit method. Each algorithm is
compared with autograd or with an independent reference; networks outside the protocol are
refused with a TypeError naming the missing piece.
"""

import pytest
import torch
from control_helpers import one_thread  # noqa: F401 (a fixture)

from spdl_ref import control
from spdl_ref.ode import (
    ClassifierHead,
    DissipativeField,
    GradientField,
    HamiltonianField,
    ODENet,
    PlainField,
    ReLUField,
    ResNet,
    VariableStepResNet,
)

D = torch.float64
K, N, M = 3, 5, 2

FIELDS = {
    "plain": lambda: PlainField(M, K, dtype=D),
    "dissipative": lambda: DissipativeField(M, K, gamma=0.2, dtype=D),
    "relu15": lambda: ReLUField(M, K, width=3, activation="tanh", dtype=D),
    "gradient16": lambda: GradientField(M, K, width=3, dtype=D),
    "hamiltonian2": lambda: HamiltonianField(M, K, dtype=D),
    "hamiltonian_two_layer": lambda: HamiltonianField(M, K, variant="two_layer", dtype=D),
}


def _variable_steps():
    net = VariableStepResNet(M, K, T=2.0, dtype=D)
    with torch.no_grad():
        net.steps.copy_(torch.tensor([0.9, 0.15, 0.55], dtype=D))
    return net


MODELS = {"resnet": lambda: ResNet(M, K, T=1.5, dtype=D), "resnet38": _variable_steps}
for _field, _make in FIELDS.items():
    for _method in ("explicit_euler", "heun", "rk4"):
        MODELS[f"{_field}-{_method}"] = lambda m=_make, meth=_method: ODENet(m(), meth, T=1.5)
for _field in ("hamiltonian2", "hamiltonian_two_layer"):
    for _method in ("symplectic_euler", "stormer_verlet"):
        MODELS[f"{_field}-{_method}"] = lambda m=FIELDS[_field], meth=_method: ODENet(m(), meth)
MODELS["gradient16-implicit_midpoint"] = lambda: ODENet(FIELDS["gradient16"](), "implicit_midpoint")


pytestmark = pytest.mark.usefixtures("one_thread")


def _problem(name):
    torch.manual_seed(sorted(MODELS).index(name))
    net = MODELS[name]()
    x = torch.randn(N, M, dtype=D)
    loss = control.squared_fit(torch.randn(N, M, dtype=D), coordinate=None)
    return net, x, loss


def _close(a, b, rtol=1e-10):
    a, b = a.detach(), b.detach()
    return float((a - b).norm()) <= rtol * float(b.norm()) + 1e-14


def _layer_names(net):
    return [n for n, _ in net.named_parameters() if n != net.step_parameter]


def check_discrete_adjoint(net, x, loss):
    zK = net(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(zK), zK)
    d = control.discrete_adjoint(net, x, g)
    ref = control.autograd_gradient(net, loss(net(x)))
    assert set(d) == set(ref)
    assert all(_close(d[n], ref[n]) for n in ref), control.relative_error(d, ref)


def check_costates(net, x, loss):
    x = x.clone().requires_grad_(True)
    states = net.states(x)
    p_autograd = torch.autograd.grad(loss(net.project(states[-1])), states)
    z, p, _ = control.costates(net, x.detach(), loss)
    assert torch.allclose(z, torch.stack(states).detach(), atol=1e-14)
    for k in range(K + 1):
        assert _close(p[k], -N * p_autograd[k])
    zK = net(x).detach().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(zK), zK)
    for a, b in zip(net.costates(x.detach(), g), p_autograd, strict=True):
        assert _close(a, b)


def check_hamiltonian(net, x, loss):
    """(34): the gradient of the layer Hamiltonians at theta is minus the loss gradient."""
    z, p, _ = control.costates(net, x, loss)
    theta = {
        n: dict(net.named_parameters())[n].detach().clone().requires_grad_(True)
        for n in _layer_names(net)
    }
    H = control.hamiltonian(net, z, p, theta)
    grads = torch.autograd.grad(H.sum(), list(theta.values()))
    ref = control.autograd_gradient(net, loss(net(x)))
    for name, g in zip(theta, grads, strict=True):
        assert _close(g, -ref[name]), name


def check_msa(net, x, loss):
    """One MSA iteration, one Adam step of size lr: each entry moves by lr against the gradient."""
    ref = control.autograd_gradient(net, loss(net(x)))
    before = {n: v.detach().clone() for n, v in net.named_parameters()}
    lr = 1e-4
    start = loss(net(x)).item()
    hist = control.msa(
        net, x, lambda z, idx: loss(z, idx), iterations=1, inner_steps=1, inner_lr=lr
    )
    assert len(hist.loss) == 1 and hist.loss[0] == pytest.approx(start)  # before the update
    assert hist.series["full_loss"] == [pytest.approx(loss(net(x)).item())]  # after it
    for name, value in net.named_parameters():
        step = value.detach() - before[name]
        if name == net.step_parameter:
            assert torch.equal(step, torch.zeros_like(step))  # learnt steps are held fixed
            continue
        big = ref[name].abs() > 1e-6
        assert torch.allclose(step[big], -lr * torch.sign(ref[name][big]), rtol=1e-3, atol=0)


def check_sgd(net, x, loss):
    ref = control.autograd_gradient(net, loss(net(x)))
    before = {n: v.detach().clone() for n, v in net.named_parameters()}
    control.sgd(net, x, loss, tau=0.05, iterations=1)
    for name, value in net.named_parameters():
        assert _close(value.detach(), before[name] - 0.05 * ref[name], rtol=1e-12), name


def check_objectives(net, x, loss):
    reg = control.squared_l2_norm
    E = control.reduced_objective(net, x, loss, reg)
    params = dict(net.named_parameters())
    expect = loss(net(x)) + sum(params[n].pow(2).sum() for n in _layer_names(net))
    assert torch.allclose(E, expect, atol=1e-14)
    z = net.trajectory(x).detach()
    E_full, residual = control.full_space_objective(net, z, x, loss, reg)
    assert torch.allclose(E_full, E, atol=1e-13) and float(residual.detach().abs().max()) < 1e-13
    _, off = control.full_space_objective(net, z + 0.01, x, loss)
    assert (
        float(off[1:].detach().abs().max()) > 1e-4
    )  # the constraint sees states that are not a trajectory


def check_ode_flow(net, x, loss):
    """The flow of (24b) with the network's control: two RK methods agree as the steps shrink."""
    a = control.ode_flow(net, x, "rk4", 32)
    b = control.ode_flow(net, x, "kutta3", 64)
    assert _close(a, b, rtol=1e-6) and a.shape == x.shape
    if net.integrator.name in ("explicit_euler", "heun", "rk4"):
        assert torch.allclose(control.ode_flow(net, x, net.integrator, 1), net(x), atol=1e-14)


def check_continuous_adjoint(net, x, loss):
    """(29)-(30) with Euler equals autograd through Euler; the RK4 adjoint converges to it."""
    rect = control.continuous_adjoint(net, x, loss, method="explicit_euler", adjoint="rectangle")
    ref = control.autograd_gradient(net, loss(control.ode_flow(net, x, "explicit_euler", 1)))
    assert control.relative_error(rect, ref) < 1e-10
    fine = control.autograd_gradient(net, loss(control.ode_flow(net, x, "rk4", 16)))
    c = control.continuous_adjoint(net, x, loss, method="rk4", steps_per_layer=16)
    assert control.relative_error(c, fine) < 1e-6


ALGORITHMS = {
    "discrete_adjoint": check_discrete_adjoint,
    "costates": check_costates,
    "hamiltonian": check_hamiltonian,
    "msa": check_msa,
    "sgd": check_sgd,
    "objectives": check_objectives,
    "ode_flow": check_ode_flow,
    "continuous_adjoint": check_continuous_adjoint,
}


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_with_every_algorithm(model, algorithm):
    ALGORITHMS[algorithm](*_problem(model))


class _SharedShift(ResNet):
    """A ResNet with a parameter no layer owns: its gradient cannot be computed layer by layer."""

    def __init__(self):
        super().__init__(M, K, dtype=D)
        self.shift = torch.nn.Parameter(torch.zeros(M, dtype=D))


def _calls(net, x, loss):
    z = torch.zeros(K + 1, N, M, dtype=D)
    return {
        "discrete_adjoint": lambda: control.discrete_adjoint(net, x, x),
        "costates": lambda: control.costates(net, x, loss),
        "hamiltonian": lambda: control.hamiltonian(net, z, z),
        "msa": lambda: control.msa(net, x, lambda v, i: loss(v, i), iterations=1),
        "sgd": lambda: control.sgd(net, x, lambda v, i: loss(v, i), iterations=1),
        "reduced_objective": lambda: control.reduced_objective(net, x, loss),
        "full_space_objective": lambda: control.full_space_objective(net, z, x, loss),
        "ode_flow": lambda: control.ode_flow(net, x),
        "continuous_adjoint": lambda: control.continuous_adjoint(net, x, loss),
        "l1_norm": lambda: control.l1_norm(net),
        "h1_discrete": lambda: control.h1_discrete(net),
    }


REFUSED = {
    "linear": (lambda: torch.nn.Linear(M, M, dtype=D), r"no 'depth', 'dim', 'integrator'"),
    "resnet_and_head": (
        lambda: torch.nn.Sequential(ResNet(M, K, dtype=D), ClassifierHead(M, M, dtype=D)),
        r"Sequential\) does not satisfy the layered-network protocol",
    ),
    "function": (lambda: lambda v: v, "must be a torch.nn.Module"),
}


@pytest.mark.parametrize("algorithm", sorted(_calls(None, None, None)))
@pytest.mark.parametrize("model", sorted(REFUSED))
def test_networks_outside_the_protocol_are_refused(model, algorithm):
    make, message = REFUSED[model]
    x = torch.zeros(N, M, dtype=D)
    loss = control.squared_fit(torch.zeros(N, M, dtype=D), coordinate=None)
    with pytest.raises(TypeError, match=message):
        _calls(make(), x, loss)[algorithm]()


@pytest.mark.parametrize(
    "algorithm", ["discrete_adjoint", "sgd", "continuous_adjoint", "msa", "l1_norm", "h1_discrete"]
)
def test_a_parameter_no_layer_owns_is_refused(algorithm):
    x = torch.zeros(N, M, dtype=D)
    loss = control.squared_fit(torch.zeros(N, M, dtype=D), coordinate=None)
    with pytest.raises(TypeError, match=r"\['shift'\] do not"):
        _calls(_SharedShift(), x, loss)[algorithm]()


def test_learnt_steps_are_refused_where_the_grid_must_be_fixed():
    net = _variable_steps()
    x = torch.zeros(N, M, dtype=D)
    with pytest.raises(TypeError, match="h1_discrete needs fixed step sizes"):
        control.h1_discrete(net)
    with pytest.raises(TypeError, match="ResNet with fixed steps"):
        control.deep_limit_sequence(net, x, control.squared_fit(x, None), 0.1, [K, 2 * K])
