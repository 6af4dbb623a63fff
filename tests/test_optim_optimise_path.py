"""The optimiser-path loop of Figure 4 (Section 6.1): spdl_ref.optim.optimise_path."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from spdl_ref.optim import (
    Adam,
    ConformalHamiltonian,
    camelback,
    camelback_gradient,
    optimise_path,
)
from spdl_ref.train import NonFiniteError


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


@pytest.mark.parametrize(
    "make",
    [lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), lambda p: Adam(p, lr=0.1)],
)
def test_a_nan_objective_stops_with_the_start_untouched(make):
    """Issue 15: optimise_path with a NaN objective used to write NaN into the iterate."""
    created = []

    def tracked(p):
        created.append(make(p))
        return created[-1]

    with pytest.raises(NonFiniteError, match="the loss is nan in iteration 0") as info:
        optimise_path(lambda t: camelback(t) * math.nan, tracked, 5, dtype=torch.float64)
    assert info.value.kind == "loss"
    (theta,) = created[0].param_groups[0]["params"]
    assert theta.tolist() == [-0.5, 0.8] and created[0].state_dict()["state"] == {}


def test_nan_after_some_steps_keeps_the_last_finite_iterate_and_momentum():
    # V = |theta|^2 where theta_0 >= 0.5 and NaN below: heavy ball walks into the NaN region.
    def V(t):
        return t.pow(2).sum() + torch.sqrt(t[0] - 0.5)

    created = []

    def make(p):
        created.append(ConformalHamiltonian(p, lr=0.02, gamma=1.0))
        return created[-1]

    with pytest.raises(NonFiniteError) as info:
        optimise_path(V, make, 100, start=(1.0, 1.0), dtype=torch.float64)
    k = info.value.iteration
    assert k > 3 and info.value.kind in ("loss", "gradient")
    (theta,) = created[0].param_groups[0]["params"]
    assert bool(torch.isfinite(theta).all())  # the last step may land where V is NaN
    state = next(iter(created[0].state.values()))
    assert all(bool(torch.isfinite(v).all()) for v in state.values() if torch.is_tensor(v))
    # theta is the iterate after the k finite steps: take them by hand
    ref = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = ConformalHamiltonian([ref], lr=0.02, gamma=1.0)
    for _ in range(k):
        opt.zero_grad()
        V(ref).backward()
        opt.step()
    assert torch.equal(theta.detach(), ref.detach())
    assert torch.equal(state["momentum"], next(iter(opt.state.values()))["momentum"])


def test_a_non_finite_gradient_at_a_finite_value_is_refused():
    # |theta|^(1/2) at theta = 0: V is 0, its gradient NaN
    with pytest.raises(NonFiniteError, match=r"gradient of 'theta' \(NaN\)") as info:
        optimise_path(
            lambda t: t.abs().sqrt().sum(), lambda p: torch.optim.SGD(p, lr=0.1), 3, start=(0.0,)
        )
    assert info.value.kind == "gradient" and info.value.iteration == 0


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


@given(
    xy=arrays(np.float64, st.tuples(st.integers(1, 4), st.just(2)), elements=st.floats(-3.0, 3.0))
)
def test_camelback_gradient_equals_autograd(xy):
    """The closed-form gradient of Figure 4's function against autograd, for drawn points."""
    xy = torch.from_numpy(xy)
    auto = torch.func.vmap(torch.func.grad(camelback))(xy)
    torch.testing.assert_close(camelback_gradient(xy), auto, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="xy"):
        camelback_gradient(torch.zeros(3))
    with pytest.raises(TypeError, match="xy"):
        camelback_gradient(torch.zeros(2, dtype=torch.long))


def test_callbacks_see_the_optimiser_after_every_step():
    seen = []

    def make(p):
        return ConformalHamiltonian(p, lr=0.1, gamma=1.0)

    def record(i, opt):
        (state,) = opt.state.values()
        seen.append((i, state["momentum"].clone()))

    path, _, _ = optimise_path(camelback, make, 4, dtype=torch.float64, callbacks=[record])
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    # the momentum of step i moved theta from path[i] to path[i + 1]: theta' = theta + h p / mu
    for i, p in seen:
        torch.testing.assert_close(path[i + 1] - path[i], 0.1 * p)
    with pytest.raises(TypeError, match="callbacks"):
        optimise_path(camelback, make, 1, callbacks=[3])
