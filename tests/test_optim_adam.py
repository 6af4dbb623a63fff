"""Adam, eq. (53): spdl_ref.optim.Adam in the published and the printed form."""

import copy

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref.optim import Adam, ConformalHamiltonian, NonFiniteGradientError, camelback


def _run(make, n, dtype=torch.float64, device="cpu"):
    xy = torch.tensor([-0.5, 0.8], dtype=dtype, device=device, requires_grad=True)
    opt = make([xy])
    out = []
    for _ in range(n):
        opt.zero_grad()
        camelback(xy).backward()
        opt.step()
        out.append(xy.detach().clone())
    return torch.stack(out)


@given(lr=st.floats(1e-3, 0.2), b1=st.floats(0.0, 0.99), b2=st.floats(0.5, 0.9999))
def test_kingma_ba_form_equals_torch_adam(lr, b1, b2):
    ours = _run(lambda p: Adam(p, lr=lr, betas=(b1, b2)), 50)
    ref = _run(lambda p: torch.optim.Adam(p, lr=lr, betas=(b1, b2)), 50)
    assert (ours - ref).abs().max().item() < 1e-12


def test_printed_form_agrees_at_step_one_and_differs_after():
    ours = _run(lambda p: Adam(p, lr=0.1), 5)
    printed = _run(lambda p: Adam(p, lr=0.1, form="review"), 5)
    assert (ours[0] - printed[0]).abs().max().item() < 1e-15
    assert (ours[1] - printed[1]).abs().max().item() > 1e-3


def test_printed_form_constant_gradient_moments():
    """For a constant gradient g, (53) gives m^2 = g / (1 - beta_1^2), not g."""
    th = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = Adam([th], lr=1e-3, betas=(0.9, 0.999), form="review")
    for _ in range(2):
        opt.zero_grad()
        th.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
    assert opt.state[th]["exp_avg"].item() == pytest.approx(1 / (1 - 0.81))


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr=-1e-3), ValueError, "lr"),
        (dict(betas=(1.0, 0.9)), ValueError, "betas"),
        (dict(betas=(0.9, -0.1)), ValueError, "betas"),
        (dict(betas=0.9), TypeError, "betas"),
        (dict(eps=0.0), ValueError, "eps"),
        (dict(form="amsgrad"), ValueError, "form"),
    ],
)
def test_bad_hyper_parameters(kwargs, err, match):
    with pytest.raises(err, match=match):
        Adam([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("form", ["kingma_ba", "review"])
def test_non_finite_gradient_leaves_state_unchanged(form):
    th = torch.ones(3, requires_grad=True)
    opt = Adam([th], lr=0.1, form=form)
    th.grad = torch.ones(3)
    opt.step()
    before = (th.detach().clone(), opt.state_dict())
    th.grad = torch.tensor([1.0, float("nan"), 0.0])
    with pytest.raises(NonFiniteGradientError, match="unchanged"):
        opt.step()
    assert torch.equal(th, before[0])
    assert opt.state[th]["step"] == 1


@pytest.mark.parametrize("form", ["kingma_ba", "review"])
def test_state_dict_round_trip(form, dtype, device):
    xy = torch.tensor([-0.5, 0.8], dtype=dtype, device=device, requires_grad=True)
    opt = Adam([xy], lr=0.05, form=form)

    def run(o, p, n):
        for _ in range(n):
            o.zero_grad()
            camelback(p).backward()
            o.step()

    run(opt, xy, 6)
    saved, xy_saved = copy.deepcopy(opt.state_dict()), xy.detach().clone()
    run(opt, xy, 4)
    xy2 = xy_saved.clone().requires_grad_(True)
    opt2 = Adam([xy2], lr=1.0)
    opt2.load_state_dict(saved)
    run(opt2, xy2, 4)
    assert torch.equal(xy, xy2) and xy2.dtype == dtype


def test_huge_finite_gradients_are_not_mistaken_for_inf():
    th = torch.zeros(4, requires_grad=True)
    opt = ConformalHamiltonian([th], lr=0.1, gamma=1.0)
    th.grad = torch.full((4,), 3e38)  # the 2-norm overflows in float32, the entries are finite
    opt.step()
    assert torch.isfinite(th).all() and (th < 0).all()
