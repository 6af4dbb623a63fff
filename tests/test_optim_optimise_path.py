"""The optimiser-path loop of Figure 4 (Section 6.1): spdl_ref.optim.optimise_path."""

import math

import pytest
import torch

from spdl_ref.optim import Adam, camelback, optimise_path


def test_matches_a_hand_written_loop(dtype, device):
    def make(p):
        return torch.optim.SGD(p, lr=0.01, momentum=0.9)

    path, losses, opt = optimise_path(camelback, make, 30, dtype=dtype, device=device)
    xy = torch.tensor((-0.5, 0.8), dtype=dtype, device=device, requires_grad=True)
    ref = torch.optim.SGD([xy], lr=0.01, momentum=0.9)
    expected = [xy.detach().clone()]
    for _ in range(30):
        ref.zero_grad()
        camelback(xy).backward()
        ref.step()
        expected.append(xy.detach().clone())
    assert torch.equal(path, torch.stack(expected))
    assert path.shape == (31, 2) and path.dtype == dtype and path.device.type == device.type
    assert losses.shape == (31,) and losses.dtype == dtype
    torch.testing.assert_close(losses, camelback(path).cpu())
    assert isinstance(opt, torch.optim.SGD) and "momentum_buffer" in next(iter(opt.state.values()))


def test_gradient_descent_on_a_quadratic_contracts_geometrically(dtype):
    # V = |theta|^2: theta_k = (1 - 2h)^k theta_0, V_k = (1 - 2h)^(2k) V_0.
    start = torch.tensor([1.0, -2.0, 0.5], dtype=dtype)
    path, losses, _ = optimise_path(
        lambda t: t.pow(2).sum(), lambda p: torch.optim.SGD(p, lr=0.1), 12, start=start
    )
    k = torch.arange(13, dtype=dtype)
    torch.testing.assert_close(path, 0.8 ** k[:, None] * start)
    torch.testing.assert_close(losses, 0.8 ** (2 * k) * 5.25)
    assert torch.equal(start, torch.tensor([1.0, -2.0, 0.5], dtype=dtype))  # start not modified


def test_tensor_start_sets_dtype_and_zero_steps_returns_the_start():
    start = torch.tensor([0.3, -0.1], dtype=torch.float64)
    path, losses, _ = optimise_path(camelback, lambda p: Adam(p, lr=0.1), 0, start=start)
    assert path.dtype == torch.float64 and torch.equal(path, start[None])
    assert losses.tolist() == [camelback(start).item()]
    path32, _, _ = optimise_path(
        camelback, lambda p: Adam(p, lr=0.1), 2, start=start, dtype=torch.float32
    )
    assert path32.dtype == torch.float32


def test_default_start_is_that_of_figure_4():
    path, _, _ = optimise_path(
        camelback, lambda p: torch.optim.SGD(p, lr=0.01), 1, dtype=torch.float64
    )
    assert path[0].tolist() == [-0.5, 0.8]


def sgd(p):
    return torch.optim.SGD(p, lr=0.01)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(loss_fn=1.0), TypeError, "loss_fn must be callable"),
        (dict(make_optimizer="sgd"), TypeError, "make_optimizer must be callable"),
        (dict(make_optimizer=lambda p: p), TypeError, "must return a torch.optim.Optimizer"),
        (dict(steps=-1), ValueError, "steps must be >= 0"),
        (dict(steps=2.0), TypeError, "steps must be an integer"),
        (dict(start=(0.0, math.nan)), ValueError, "start must contain only finite"),
        (dict(start=torch.tensor([0.0, math.inf])), ValueError, "start must contain only finite"),
        (dict(start=("a", 1)), TypeError, "start must be a sequence of real numbers"),
        (dict(loss_fn=lambda t: t * 2), ValueError, "loss_fn must return a scalar"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = dict(loss_fn=camelback, make_optimizer=sgd, steps=3)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        optimise_path(**args)
