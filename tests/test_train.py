"""The training loop of the package (spdl_ref.loop / spdl_ref.train) and its driver for (4)."""

import copy

import pytest
import torch

import spdl_ref.loop
import spdl_ref.train
from spdl_ref import data
from spdl_ref.ode import ClassifierHead, ResNet
from spdl_ref.train import (
    History,
    NonFiniteError,
    accuracy,
    fit,
    l2_regulariser,
    squared_loss,
    train_loop,
)


def _problem():
    torch.manual_seed(0)
    x, y = data.checkerboard(200, seed=3)
    model = torch.nn.Sequential(ResNet(2, 10, T=5.0), ClassifierHead(2, 1))
    return model, x, y, data.labels_to_signs(y)


def _state(module_or_tensors):
    items = (
        module_or_tensors.state_dict().values()
        if isinstance(module_or_tensors, torch.nn.Module)
        else module_or_tensors
    )
    return [t.detach().clone() for t in items]


def _same(a, b):
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


def _same_optimizer_state(a, b):
    """Bit-for-bit equality of two optimiser state dicts (tensors compared with torch.equal)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_optimizer_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(
            _same_optimizer_state(u, v) for u, v in zip(a, b, strict=True)
        )
    return a == b


def test_fit_decreases_objective_and_records_history():
    model, x, y, t = _problem()
    hist = fit(
        model, x, t, regulariser=l2_regulariser(1e-4), iterations=300, lr=0.02, progress=False
    )
    assert isinstance(hist, History) and spdl_ref.train.History is spdl_ref.loop.History
    assert len(hist.loss) == len(hist.data_fit) == len(hist.seconds) == 300
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert all(e >= d for e, d in zip(hist.loss, hist.data_fit, strict=True))  # R >= 0
    assert hist.loss[0] > hist.data_fit[0]  # R > 0 at a random initialisation
    assert all(b > a for a, b in zip(hist.seconds[:-1], hist.seconds[1:], strict=True))
    assert accuracy(model(x), y) > 0.9


def test_fit_minibatch_sgd_and_optimizer_instance():
    model, x, _, t = _problem()
    gen = torch.Generator().manual_seed(0)
    hist = fit(
        model,
        x,
        t,
        iterations=20,
        lr=0.05,
        optimizer="sgd",
        batch_size=32,
        generator=gen,
        progress=False,
    )
    assert len(hist.loss) == 20
    # Minibatches: the recorded loss is that of 32 random samples, not of all 200.
    first = _problem()[0]
    with torch.no_grad():
        full = squared_loss(first(x), t).item()
    assert hist.loss[0] != full
    # A given optimiser is the one that steps: its state counts the 5 steps.
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    hist = fit(model, x, t, iterations=5, optimizer=opt, progress=False)
    assert len(hist.loss) == 5  # the given optimiser took every step, and only those
    assert all(int(opt.state[p]["step"]) == 5 for p in model.parameters())
    # Adam's first steps move every entry by about lr (the sign of its gradient)
    moved = max(
        float((p.detach() - q).abs().max()) for p, q in zip(model.parameters(), before, strict=True)
    )
    assert 1e-3 < moved < 5 * 1e-3 * 1.01


def test_fit_bad_arguments():
    model, x, _, t = _problem()
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        fit(model, x, t, iterations=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        fit(model, x, t, lr=0.0)
    with pytest.raises(ValueError, match="optimizer must be"):
        fit(model, x, t, optimizer="lbfgs")
    with pytest.raises(ValueError, match="same number of samples"):
        fit(model, x, t[:10])
    with pytest.raises(ValueError, match="batch_size must be <="):
        fit(model, x, t, batch_size=10_000)
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        fit(lambda v: v, x, t)
    with pytest.raises(ValueError, match="x must contain only finite values"):
        fit(model, torch.full_like(x, float("nan")), t)
    with pytest.raises(ValueError, match="y must contain only finite values"):
        fit(model, x, torch.where(t > 0, t, float("nan")))
    with pytest.raises(ValueError, match="x must hold at least one sample"):
        fit(model, x[:0], t[:0])


def test_divergence_stops_with_the_last_finite_parameters():
    model, x, _, t = _problem()
    kept = []
    with pytest.raises(NonFiniteError, match="overflowed") as info:
        train_loop(
            model,
            lambda b: squared_loss(model(x * 1e30), t),
            iterations=50,
            optimizer=torch.optim.SGD(model.parameters(), lr=1e6),
            callbacks=[lambda i, h: kept.append(_state(model))],
        )
    err = info.value
    assert isinstance(err, FloatingPointError) and err.kind in ("loss", "gradient")
    assert "lower lr" not in str(err)
    assert err.iteration == len(kept) and _same(_state(model), kept[-1] if kept else _state(model))
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    # fit reports the same way
    model, x, _, t = _problem()
    with pytest.raises(NonFiniteError, match="in iteration"):
        fit(model, x * 1e30, t, iterations=50, lr=1e6, optimizer="sgd", progress=False)


@pytest.mark.parametrize("make", [torch.optim.SGD, torch.optim.Adam])
def test_fit_stops_on_a_non_finite_gradient_at_a_finite_loss(make):
    """|z|^(1/2) at 0: a finite loss, a NaN gradient (issue 15: fit with torch optimisers)."""
    model, x, _, t = _problem()
    opt = make(model.parameters(), lr=1e-3)
    fit(model, x, t, iterations=3, optimizer=opt, progress=False)  # finite steps: state exists
    params, state = _state(model), copy.deepcopy(opt.state_dict())
    with torch.no_grad():
        target = t.clone()
        target[7] = model(x[7:8])[0]  # the residual of sample 7 is exactly 0

    def root_loss(prediction, y):
        return (prediction - y).abs().sqrt().mean()

    with pytest.raises(NonFiniteError, match="gradient") as info:
        fit(model, x, target, loss=root_loss, iterations=5, optimizer=opt, progress=False)
    err = info.value
    assert err.kind == "gradient" and err.iteration == 0
    assert "1.linear.bias" in err.names and "0.A" in err.names  # the head's and the ResNet's
    assert "'1.linear.bias' (NaN)" in str(err) and "lower lr" not in str(err)
    assert _same(_state(model), params)
    assert _same_optimizer_state(opt.state_dict(), state)


def test_guard_keeps_parameters_and_adam_state_of_the_last_finite_step():
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1)
    snapshots = []

    def objective(i):
        if i < 4:
            return (w - 1).pow(2).sum()
        return (w - w.detach()).abs().sqrt().sum()  # finite value, NaN gradient

    with pytest.raises(NonFiniteError) as info:
        train_loop(
            {"w": w},
            objective,
            iterations=10,
            optimizer=opt,
            batches=lambda i: i,
            callbacks=[
                lambda i, h: snapshots.append((_state([w]), copy.deepcopy(opt.state_dict())))
            ],
        )
    assert info.value.kind == "gradient" and info.value.iteration == 4
    assert info.value.names == ("w",) and "'w' (NaN)" in str(info.value)
    params, state = snapshots[-1]
    assert len(snapshots) == 4 and _same([w.detach()], params)
    assert _same_optimizer_state(opt.state_dict(), state) and int(state["state"][0]["step"]) == 4


def test_loss_error_names_what_carried_the_non_finite_value():
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    batch = {"x": torch.ones(3, 2), "y": torch.tensor([1.0, float("nan"), 0.0])}

    def objective(b):
        return ((b["x"] @ w - b["y"]) ** 2).mean()

    with pytest.raises(NonFiniteError, match=r"minibatch's 'y' \(NaN\).*not the step size") as e:
        train_loop({"w": w}, objective, iterations=3, optimizer=opt, batches=lambda i: batch)
    assert e.value.kind == "loss" and e.value.names == ("y",) and torch.equal(w, torch.zeros(2))
    with torch.no_grad():
        w[1] = float("inf")
    with pytest.raises(NonFiniteError, match=r"parameter\(s\) 'w' \(inf\) already hold") as e:
        train_loop(
            {"w": w},
            objective,
            iterations=3,
            optimizer=opt,
            batches=lambda i: {"x": torch.ones(3, 2), "y": torch.zeros(3)},
        )
    assert e.value.names == ("w",)


def test_history_series_and_callbacks():
    w = torch.ones(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.25)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    seen = []

    def callback(i, h):
        seen.append((i, len(h.loss)))
        sched.step()
        h.record(lr=opt.param_groups[0]["lr"], w0=w[0].item())

    h = train_loop(
        [w],
        lambda b: (w.pow(2).sum(), w[0] ** 2),
        iterations=4,
        optimizer=opt,
        callbacks=[callback],
    )
    assert seen == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert h.series["lr"] == [0.25, 0.125, 0.125, 0.0625]
    # w <- (1 - 2 lr) w with the step size in force at each step
    assert h.series["w0"] == pytest.approx([0.5, 0.25, 0.1875, 0.140625])
    assert h.loss == pytest.approx([2.0, 0.5, 0.125, 2 * 0.1875**2])
    assert h.data_fit == pytest.approx([1.0, 0.25, 0.0625, 0.1875**2])
    with pytest.raises(ValueError, match=r"taken by History\.loss"):
        h.record(loss=1.0)
    assert train_loop([w], lambda b: w.sum(), iterations=0, optimizer=opt).loss == []


def test_train_loop_bad_arguments():
    w = torch.ones(2, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)

    def obj(b):
        return w.sum()

    with pytest.raises(ValueError, match="needs an optimizer or a custom step"):
        train_loop([w], obj, iterations=1)
    with pytest.raises(TypeError, match=r"optimizer must be a torch\.optim\.Optimizer"):
        train_loop([w], obj, iterations=1, optimizer="adam")
    other = torch.ones(1, requires_grad=True)
    with pytest.raises(ValueError, match="every parameter of the optimizer"):
        train_loop([w], obj, iterations=1, optimizer=torch.optim.SGD([w, other], lr=0.1))
    with pytest.raises(ValueError, match="objective must return a scalar"):
        train_loop([w], lambda b: w * 2, iterations=1, optimizer=opt)
    with pytest.raises(ValueError, match="leaf tensor with requires_grad"):
        train_loop([w * 2], obj, iterations=1, optimizer=opt)
    with pytest.raises(ValueError, match="parameters is empty"):
        train_loop([], obj, iterations=1, optimizer=opt)
    with pytest.raises(TypeError, match="parameters must be"):
        train_loop(w, obj, iterations=1, optimizer=opt)
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        train_loop([w], obj, iterations=-1, optimizer=opt)
    with pytest.raises(TypeError, match="objective must be callable"):
        train_loop([w], 1.0, iterations=1, optimizer=opt)
    with pytest.raises(TypeError, match="callbacks must be callables"):
        train_loop([w], obj, iterations=1, optimizer=opt, callbacks=[1])
    with pytest.raises(RuntimeError, match="must call evaluate"):
        train_loop([w], obj, iterations=1, step=lambda evaluate: None)


# Toy drivers of the kinds in spdl_ref.control (Section 3), to show that they fit the loop:
# a manual gradient from a discrete adjoint, a proximal map after the step, an L-BFGS closure.


def _toy_net(K=3, M=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = (0.5 * torch.randn(K, M, M, generator=g, dtype=torch.float64)).requires_grad_(True)
    b = (0.5 * torch.randn(K, M, generator=g, dtype=torch.float64)).requires_grad_(True)
    return A, b


def _toy_states(A, b, x, h=0.5):
    z = [x]
    for k in range(A.shape[0]):  # z^(k+1) = z^k + h tanh(A^k z^k + b^k), eq. (5)
        z.append(z[-1] + h * torch.tanh(z[-1] @ A[k].T + b[k]))
    return z


def _toy_adjoint(A, b, z, p, h=0.5):
    """Backward recursion of the costates (28) for the toy ResNet; returns (dA, db)."""
    dA, db = torch.zeros_like(A), torch.zeros_like(b)
    for k in reversed(range(A.shape[0])):
        d = h * p * (1 - torch.tanh(z[k] @ A[k].T + b[k]) ** 2)
        dA[k], db[k] = d.T @ z[k], d.sum(0)
        p = p + d @ A[k]
    return dA, db


def test_toy_sgd_with_a_discrete_adjoint_gradient():
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tanh(2 * x).flip(1)

    def adjoint_objective(A, b):
        def objective(_):
            with torch.no_grad():
                z = _toy_states(A, b, x)
                A.grad, b.grad = _toy_adjoint(A, b, z, (z[-1] - y) / x.shape[0])
                return 0.5 * (z[-1] - y).pow(2).sum(1).mean()

        return objective

    A, b = _toy_net()
    A2, b2 = _toy_net()
    h = train_loop(
        {"A": A, "b": b},
        adjoint_objective(A, b),
        iterations=40,
        optimizer=torch.optim.SGD([A, b], lr=0.5),
        backward=False,
    )
    ref = train_loop(
        {"A": A2, "b": b2},
        lambda _: 0.5 * (_toy_states(A2, b2, x)[-1] - y).pow(2).sum(1).mean(),
        iterations=40,
        optimizer=torch.optim.SGD([A2, b2], lr=0.5),
    )
    assert h.loss[-1] < 0.5 * h.loss[0]
    torch.testing.assert_close(A, A2, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(torch.tensor(h.loss), torch.tensor(ref.loss), rtol=1e-12, atol=0)
    # The adjoint of |z|^(1/2) at 0 is not finite: the guard catches it before the update.
    A3, b3 = _toy_net()
    before = _state([A3, b3])

    def root_objective(_):
        with torch.no_grad():
            z = _toy_states(A3, b3, x)
            r = z[-1] - z[-1][:1]  # the residual of sample 0 is exactly 0
            p = 0.5 * r.sign() / r.abs().sqrt() / x.shape[0]
            A3.grad, b3.grad = _toy_adjoint(A3, b3, z, p)
            return r.abs().sqrt().sum(1).mean()

    with pytest.raises(NonFiniteError, match="gradient") as info:
        train_loop(
            {"A": A3, "b": b3},
            root_objective,
            iterations=2,
            optimizer=torch.optim.SGD([A3, b3], lr=0.5),
            backward=False,
        )
    assert set(info.value.names) == {"A", "b"} and _same(_state([A3, b3]), before)


def test_toy_proximal_gradient_step():
    A, b = _toy_net(K=4)
    x = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = x.flip(1)
    tau, lam = 0.2, 0.05

    def objective(_):
        return 0.5 * (_toy_states(A, b, x)[-1] - y).pow(2).sum(1).mean()

    def prox_step(prox):
        def step(evaluate):
            evaluate()
            with torch.no_grad():
                A.sub_(tau * A.grad)
                b.sub_(tau * b.grad)
                A.copy_(prox(A))

        return step

    def soft(a):  # prox of tau * lam * |A|_1
        return a.sign() * (a.abs() - tau * lam).clamp(min=0)

    h = train_loop({"A": A, "b": b}, objective, iterations=200, step=prox_step(soft))
    assert h.loss[-1] < h.loss[0]
    assert 0.2 < (A == 0).double().mean().item() < 1  # the 1-norm prox makes A sparse
    # A proximal map that returns NaN is refused, and the parameters are put back.
    before = _state([A, b])
    with pytest.raises(NonFiniteError, match=r"wrote non-finite values into 'A'") as info:
        train_loop(
            {"A": A, "b": b}, objective, iterations=3, step=prox_step(lambda a: a / 0.0 * 0.0)
        )
    assert info.value.kind == "parameter" and _same(_state([A, b]), before)


def test_toy_lbfgs_closure_and_restore_after_a_failed_line_search():
    c = torch.tensor([0.3, -0.2], dtype=torch.float64)
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)

    def make():
        return torch.optim.LBFGS(
            [w],
            lr=1.0,
            max_iter=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-14,
            tolerance_change=1e-30,
        )

    opt = make()
    h = train_loop(
        {"w": w},
        lambda _: (w - c).pow(2).sum() + (w - c).pow(4).sum(),
        iterations=2,
        optimizer=opt,
        step=lambda evaluate: opt.step(evaluate),
    )
    assert h.loss[0] == pytest.approx(c.pow(2).sum() + c.pow(4).sum())
    torch.testing.assert_close(w.detach(), c, rtol=0, atol=1e-8)
    # Undefined beyond |w_0| = 1 (sqrt of a negative number): the line search from w = 0 towards
    # 5 steps past it, the trial point is NaN, the loop puts w and the optimiser state back.
    with torch.no_grad():
        w.zero_()
    opt = make()
    trials = []

    def objective(_):
        trials.append(w.detach().clone())
        return (w - 5).pow(2).sum() + torch.sqrt(1 - w[0])

    with pytest.raises(NonFiniteError, match="the loss is nan in iteration 0") as info:
        train_loop({"w": w}, objective, iterations=3, optimizer=opt, step=lambda ev: opt.step(ev))
    assert info.value.kind == "loss" and len(trials) > 1 and trials[-1][0] > 1
    assert (
        torch.equal(w.detach(), torch.zeros(2, dtype=torch.float64))
        and opt.state_dict()["state"] == {}
    )


def test_losses_and_accuracy():
    p = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    q = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert squared_loss(p, q).item() == pytest.approx(0.5 * (5 + 1) / 2)
    with pytest.raises(ValueError, match="same shape"):
        squared_loss(p, q[:1])
    lin = torch.nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.fill_(2.0)
    assert l2_regulariser(0.5)(lin).item() == pytest.approx(0.25 * 6)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        l2_regulariser(-1.0)
    assert accuracy(torch.tensor([[0.5], [-1.0]]), torch.tensor([1, 0])) == 1.0
    assert accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])) == 0.5
    with pytest.raises(ValueError, match="labels must have shape"):
        accuracy(torch.zeros(3, 1), torch.zeros(2, dtype=torch.long))
