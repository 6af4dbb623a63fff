"""What every optimiser of spdl_ref.optim promises (Section 6): a state_dict round trip continues
bit-identically, add_param_group checks a group like the constructor, a non-finite gradient in any
group changes nothing (the docstring examples run with the doctests of spdl_ref)."""

import copy

import pytest
import torch

from spdl_ref.optim import (
    Adam,
    ConformalHamiltonian,
    NonFiniteGradientError,
    StiefelSGD,
    random_stiefel,
)
from spdl_ref.optim._checks import check_finite

EUCLIDEAN = {
    "heavy ball": lambda ps, **kw: ConformalHamiltonian(ps, lr=0.1, gamma=1.0, **kw),
    "Nesterov": lambda ps, **kw: ConformalHamiltonian(ps, lr=0.1, gamma=1.0, nesterov=True, **kw),
    "relativistic": lambda ps, **kw: ConformalHamiltonian(
        ps, lr=0.1, gamma=1.0, kinetic="relativistic", eps=0.3, **kw
    ),
    "relativistic Nesterov": lambda ps, **kw: ConformalHamiltonian(
        ps, lr=0.1, gamma=1.0, kinetic="relativistic", nesterov=True, **kw
    ),
    "Adam": lambda ps, **kw: Adam(ps, lr=0.05, **kw),
    "Adam (review)": lambda ps, **kw: Adam(ps, lr=0.05, form="review", **kw),
}
STIEFEL = {
    f"StiefelSGD({r}, momentum {m}, low_rank {lr})": (
        lambda ps, r=r, m=m, lr=lr, **kw: StiefelSGD(
            ps, lr=0.05, momentum=m, retraction=r, low_rank=lr, **kw
        )
    )
    for r in ("exp", "cayley")
    for m in (0.0, 0.6)
    for lr in (None, False)
}
OPTIMISERS = {**EUCLIDEAN, **STIEFEL}


def _params(name, dtype=torch.float64):
    """Two parameter groups' worth of tensors and a loss of them."""
    g = torch.Generator().manual_seed(0)
    if name in STIEFEL:
        shapes = [(7, 2), (6, 6)]
        ps = [random_stiefel(*s, generator=g, dtype=dtype) for s in shapes]
    else:
        ps = [torch.randn(4, 3, generator=g, dtype=dtype), torch.randn(5, generator=g, dtype=dtype)]
    targets = [torch.randn(p.shape, generator=g, dtype=dtype) for p in ps]
    ps = [torch.nn.Parameter(p) for p in ps]

    def loss(params):
        return sum(
            ((p - t) ** 2).sum() + (p**4).sum() / 10 for p, t in zip(params, targets, strict=True)
        )

    return ps, loss


def _make(name, ps):
    """The optimiser with the two tensors in two groups (the second with its own lr)."""
    return OPTIMISERS[name]([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.03}])


def _run(opt, ps, loss, n):
    for _ in range(n):
        opt.zero_grad()
        loss(ps).backward()
        opt.step()


def _state_tensors(opt):
    return [
        v.clone() if isinstance(v, torch.Tensor) else v
        for s in opt.state.values()
        for _, v in sorted(s.items())
    ]


def _same(a, b):
    return all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("name", list(OPTIMISERS))
def test_state_dict_round_trip_continues_bit_identically(name):
    ps, loss = _params(name)
    opt = _make(name, ps)
    _run(opt, ps, loss, 4)
    saved = copy.deepcopy(opt.state_dict())
    start = [p.detach().clone() for p in ps]
    _run(opt, ps, loss, 5)
    ps2 = [torch.nn.Parameter(p.clone()) for p in start]
    # a fresh optimiser with other hyperparameters: load_state_dict must restore them all
    fresh = OPTIMISERS[name]
    opt2 = fresh([{"params": [ps2[0]], "lr": 0.5}, {"params": [ps2[1]], "lr": 0.5}])
    opt2.load_state_dict(saved)
    _run(opt2, ps2, loss, 5)
    assert all(torch.equal(a, b) for a, b in zip(ps, ps2, strict=True))
    assert _same(_state_tensors(opt), _state_tensors(opt2))
    if "momentum 0.6" in name:  # the Stiefel momentum is an n x p factor, not n x n
        assert all(
            s["momentum_factor"].shape == p.shape
            for p, s in zip(ps, opt.state.values(), strict=True)
        )


@pytest.mark.parametrize("name", list(OPTIMISERS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_gradient_in_any_group_changes_nothing(name, bad):
    ps, loss = _params(name)
    opt = _make(name, ps)
    _run(opt, ps, loss, 2)
    before, state = [p.detach().clone() for p in ps], _state_tensors(opt)
    opt.zero_grad()
    loss(ps).backward()
    ps[1].grad[(1,) * ps[1].dim()] = bad
    with pytest.raises(NonFiniteGradientError, match="left unchanged"):
        opt.step()
    assert all(torch.equal(p, b) for p, b in zip(ps, before, strict=True))
    assert _same(_state_tensors(opt), state)


BAD_GROUPS = {
    "ConformalHamiltonian": [
        ({"lr": -1.0}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"gamma": -0.1}, ValueError, "gamma"),
        ({"mass": 0.0}, ValueError, "mass"),
        ({"kinetic": "cubic"}, ValueError, "kinetic"),
        ({"eps": 0.0}, ValueError, "eps"),
        ({"nesterov": 1}, TypeError, "nesterov"),
    ],
    "Adam": [
        ({"lr": -1.0}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\]"),
        ({"betas": 0.9}, TypeError, "betas"),
        ({"eps": -1e-8}, ValueError, "eps"),
        ({"form": "amsgrad"}, ValueError, "form"),
    ],
    "StiefelSGD": [
        ({"lr": -1.0}, ValueError, "lr"),
        ({"momentum": 1.0}, ValueError, "momentum"),
        ({"retraction": "qr"}, ValueError, "retraction"),
        ({"low_rank": "yes"}, TypeError, "low_rank"),
        ({"params": [torch.nn.Parameter(2 * torch.eye(3))]}, ValueError, "orthonormal"),
        ({"params": [torch.nn.Parameter(torch.ones(2, 3))]}, ValueError, "p <= n"),
    ],
}
MAKERS = {"ConformalHamiltonian": "heavy ball", "Adam": "Adam"}


@pytest.mark.parametrize(
    "cls, change, err, match",
    [(cls, *case) for cls, cases in BAD_GROUPS.items() for case in cases],
)
def test_add_param_group_runs_the_constructor_checks(cls, change, err, match):
    name = MAKERS.get(cls, "StiefelSGD(exp, momentum 0.0, low_rank None)")
    ps, _ = _params(name)
    opt = OPTIMISERS[name]([ps[0]])
    new = torch.nn.Parameter(random_stiefel(5, 2, dtype=torch.float64))
    with pytest.raises(err, match=match):
        opt.add_param_group({"params": [new], **change})
    assert len(opt.param_groups) == 1  # refused: nothing added
    with pytest.raises(err, match=match):  # the constructor refuses the same group
        OPTIMISERS[name]([{"params": [new], **change}])
    opt.add_param_group({"params": [new]})  # a good group is accepted
    assert len(opt.param_groups) == 2


def test_adam_with_a_negative_lr_group_no_longer_ascends():
    """The example of issue 15: Adam accepted lr = -1 in an added group and ascended."""
    th = torch.nn.Parameter(torch.ones(2))
    opt = Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="lr must be > 0"):
        opt.add_param_group({"params": [th], "lr": -1.0})


def test_check_finite_over_devices_and_dtypes():
    grads = [torch.ones(3, dtype=torch.float32), torch.ones(2, dtype=torch.float64)]
    check_finite(grads, "x")  # mixed dtypes: one reduction each, stacked in float64
    grads[0][1] = float("nan")
    with pytest.raises(NonFiniteGradientError, match="x: a gradient holds NaN"):
        check_finite(grads, "x")
    grads = [torch.full((4,), 3e38), torch.ones(2, dtype=torch.float64)]
    check_finite(grads, "x")  # the float32 sum overflows, the entries are finite: passes
    grads[1][0] = -float("inf")
    with pytest.raises(NonFiniteGradientError):
        check_finite(grads, "x")


def test_one_host_synchronisation_per_step(monkeypatch):
    """The check of a step with several groups reduces once and converts to bool once."""
    calls = []
    real_isfinite = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: calls.append(t.shape) or real_isfinite(t))
    ps = [torch.nn.Parameter(torch.ones(3)) for _ in range(4)]
    opt = ConformalHamiltonian([{"params": ps[:2]}, {"params": ps[2:]}], lr=0.1, gamma=1.0)
    for p in ps:
        p.grad = torch.ones(3)
    opt.step()
    assert calls == [torch.Size([4])]  # one isfinite over the four stacked reductions
