"""The core pieces on CUDA give the CPU's numbers (marked ``cuda``: skipped without a GPU).

Each test builds its module twice, on the CPU and on CUDA (with ``device=``), loads the CPU
module's parameters and buffers into the CUDA one, runs the same input through both and
compares (float64 where the module allows it). TF32 is switched off, so float32 convolutions
on the GPU round like the CPU's. ``./dev gpu-check`` runs these first (``pytest -m cuda``).
"""

import functools

import pytest
import torch

from spdl_ref.control import discrete_adjoint
from spdl_ref.invertible import AffineCoupling, InvertibleResidual
from spdl_ref.ode import GradientField, ODENet, ResNet
from spdl_ref.optim import ConformalHamiltonian

pytestmark = pytest.mark.cuda

D = torch.float64
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _twin(build, device):
    """``build(device=...)`` on the CPU and on ``device``, with the CPU one's state."""
    here, there = build(device=None), build(device=device)
    there.load_state_dict(here.state_dict())
    return here, there


def _on(device, *tensors):
    return [t.to(device) for t in tensors]


def _assert_close(cuda_value, cpu_value, device, rtol=1e-10, atol=1e-12):
    assert cuda_value.device.type == device.type, f"{cuda_value.device} is not {device}"
    torch.testing.assert_close(cuda_value.cpu(), cpu_value, rtol=rtol, atol=atol)


def check_layered_network(device):
    """Forward pass and discrete adjoint (28) of a ResNet (6) and an RK4 ODENet on ``device``."""
    g = torch.Generator().manual_seed(0)
    x, grad = torch.randn(16, 3, generator=g, dtype=D), torch.randn(16, 3, generator=g, dtype=D)
    for build in (
        lambda device: ResNet(3, depth=6, T=2.0, dtype=D, device=device),
        lambda device: ODENet(GradientField(3, 4, dtype=D, device=device), "rk4", T=1.0),
    ):
        net, there = _twin(build, device)
        xd, gd = _on(device, x, grad)
        _assert_close(there(xd), net(x), device)
        want = discrete_adjoint(net, x, grad, return_costates=True)
        got = discrete_adjoint(there, xd, gd, return_costates=True)
        assert got.keys() == want.keys()
        for name in want:
            _assert_close(got[name], want[name], device)


def check_invertible_layers(device):
    """Section 4: coupling (41) and invertible residual (45) layers, inverse and log-det."""
    torch.manual_seed(2)
    x = torch.randn(8, 4, dtype=D)
    for build in (
        lambda device: AffineCoupling(4, hidden=16, zero_init=False, dtype=D, device=device),
        lambda device: InvertibleResidual(
            4, c=0.7, hidden=16, tol=1e-13, max_iter=500, dtype=D, device=device
        ),
    ):
        layer, there = (m.eval() for m in _twin(build, device))
        (xd,) = _on(device, x)
        y, yd = layer(x), there(xd)
        _assert_close(yd, y, device)
        _assert_close(there.log_abs_det_jacobian(xd), layer.log_abs_det_jacobian(x), device)
        back = there.inverse(yd)
        _assert_close(back, x, device, rtol=1e-9, atol=1e-10)


def check_optimiser_steps(device):
    """Section 6.1: five conformal Hamiltonian steps (55)/(57) on the Rosenbrock function."""
    start = torch.tensor([-1.2, 1.0, 0.5], dtype=D)

    def rosenbrock(t):
        return (100 * (t[1:] - t[:-1] ** 2) ** 2 + (1 - t[:-1]) ** 2).sum()

    for kwargs in (
        dict(lr=1e-3, gamma=1.0),
        dict(lr=1e-2, gamma=0.5, kinetic="relativistic", nesterov=True),
    ):
        paths = []
        for where in (torch.device("cpu"), device):
            theta = start.clone().to(where).requires_grad_(True)
            opt = ConformalHamiltonian([theta], **kwargs)
            for _ in range(5):
                opt.zero_grad()
                rosenbrock(theta).backward()
                opt.step()
            paths.append(theta.detach())
        _assert_close(paths[1], paths[0], device)


def check_denoisers(device, kinds=("ordinary", "equivariant")):
    """Section 5.2: the two denoisers of Figure 3, forward pass in float32."""
    from spdl_ref.equivariant import make_denoiser

    torch.manual_seed(3)
    images = torch.rand(2, 1, 12, 12)
    for kind in kinds:
        net, there = (m.eval() for m in _twin(functools.partial(make_denoiser, kind, 8, 2), device))
        with torch.no_grad():
            want, got = net(images), there(images.to(device))
        _assert_close(got, want, device, rtol=1e-4, atol=1e-5)


def test_resnet_and_odenet_forward_and_discrete_adjoint_match_the_cpu():
    check_layered_network(CUDA)


def test_invertible_layers_round_trip_and_match_the_cpu():
    check_invertible_layers(CUDA)


def test_conformal_hamiltonian_steps_match_the_cpu():
    check_optimiser_steps(CUDA)


def test_ordinary_denoiser_matches_the_cpu():
    check_denoisers(CUDA, kinds=("ordinary",))


def test_equivariant_denoiser_matches_the_cpu():
    pytest.importorskip("escnn", reason="the equivariant denoiser needs escnn (equivariant extra)")
    check_denoisers(CUDA, kinds=("equivariant",))
