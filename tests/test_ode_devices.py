"""Chapter 2 code follows the input's device and dtype (CPU here; CUDA where available)."""

import math

import torch

from spdl_ref.ode import (
    GradientField,
    HamiltonianField,
    ODENet,
    ShearNet,
    discrete_gradient_step,
    hat,
    lie_euler,
    rk_step,
    spd_distance,
    standard_map,
    stormer_verlet,
)


def test_networks_follow_device_and_dtype(device, dtype):
    for field, method in (
        (GradientField(2, 3, device=device, dtype=dtype), "rk4"),
        (HamiltonianField(2, 3, device=device, dtype=dtype), "stormer_verlet"),
    ):
        out = ODENet(field, method)(torch.randn(5, 2, device=device, dtype=dtype))
        assert out.device.type == device.type and out.dtype == dtype
    u = torch.randn(3, 4, device=device, dtype=dtype)
    out = ShearNet(4, 2, device=device, dtype=dtype)(u)
    assert out.device.type == device.type and out.dtype == dtype


def test_integrators_follow_device_and_dtype(device, dtype):
    z = torch.randn(4, 2, device=device, dtype=dtype)
    zs, ps = stormer_verlet(lambda t, p: p, lambda t, q: torch.sin(q), z, z, 0.1, 3)
    assert zs.device.type == device.type and ps.dtype == dtype
    u = discrete_gradient_step(
        lambda w: 0.5 * (w**2).sum(-1), torch.randn(3, 4, device=device, dtype=dtype), 0.1
    )
    assert u.device.type == device.type and u.dtype == dtype
    R0 = torch.eye(3, device=device, dtype=dtype)
    R = lie_euler(lambda r: hat(r[..., :, 0]), R0, 0.1, 3, manifold="SO3")
    assert R.device.type == device.type and R.dtype == dtype
    m = standard_map(torch.rand(5, 2, device=device, dtype=dtype) * 2 * math.pi, 0.5)
    assert m.device.type == device.type and m.dtype == dtype
    A = torch.eye(3, device=device, dtype=dtype) * 2
    assert spd_distance(A, A * 2).device.type == device.type


def test_symplectic_test_curves_and_histories_follow_device_and_dtype(device, dtype):
    from spdl_ref.ode import (
        extended_phase_space_run,
        separable_step_map,
        so3_curve,
        step_jacobian,
        symplecticity_defect,
    )

    step = separable_step_map("stormer_verlet", lambda t, p: p, lambda t, q: torch.sin(q), 0.1)
    M = step_jacobian(step, torch.randn(4, device=device, dtype=dtype))
    d = symplecticity_defect(M)
    assert M.device.type == d.device.type == device.type and d.dtype == dtype
    z = torch.randn(3, 2, device=device, dtype=dtype)
    run = extended_phase_space_run(
        lambda t, p: 0.5 * (p**2).sum(-1), lambda t, q: (t * q**2).sum(-1), z, z, 0.1, 2
    )
    assert (
        run.t.device.type == run.K.device.type == device.type
        and run.H.dtype == run.t.dtype == dtype
    )
    c = so3_curve(torch.randn(4, 3, device=device, dtype=dtype))
    assert c.device.type == device.type and c.dtype == dtype


def test_damped_newton_converges_where_plain_newton_cycles():
    # implicit Euler for z' = -a tanh(a z) with h a^2 = 40: undamped Newton on the stage equation
    # K = -a tanh(a (z + h K)) from K = f(z) cycles; the damped iteration converges.
    a, h = 2.0, 10.0
    f = lambda t, z: -a * torch.tanh(a * z)  # noqa: E731
    z = torch.tensor([[1.5], [-0.7], [3.0]], dtype=torch.float64)
    z1 = rk_step(f, 0.0, z, h, "implicit_euler")
    assert torch.allclose(z1, z + h * f(0.0, z1), atol=1e-12)
    assert (z1.abs() <= z.abs()).all()  # contraction towards the fixed point 0


def test_section_3_algorithms_follow_device_and_dtype(device, dtype):
    """The adjoints and training steps of Section 3 on every kind of layered network."""
    from spdl_ref import control
    from spdl_ref.ode import PlainField, ResNet, VariableStepResNet

    x = torch.randn(4, 2, device=device, dtype=dtype)
    fit = control.squared_fit(torch.zeros(4, device=device, dtype=dtype))
    nets = [
        ResNet(2, 3, device=device, dtype=dtype),
        VariableStepResNet(2, 3, device=device, dtype=dtype),
        ODENet(PlainField(2, 3, device=device, dtype=dtype), "heun"),
        ODENet(HamiltonianField(2, 3, device=device, dtype=dtype), "stormer_verlet"),
    ]
    for net in nets:
        g = control.discrete_adjoint(net, x, control.terminal_costate(net, x, fit))
        c = control.continuous_adjoint(net, x, fit, method="rk4")
        for name, p in net.named_parameters():
            for grad in (g[name], c[name]):
                assert (
                    grad.device.type == device.type
                    and grad.dtype == dtype
                    and grad.shape == p.shape
                )
        z, p, _ = control.costates(net, x, fit)
        assert control.hamiltonian(net, z, p).device.type == device.type
        control.sgd(net, x, fit, iterations=1)
        control.msa(net, x, fit, iterations=1, inner_steps=1)
        assert all(p.device.type == device.type for p in net.parameters())
