import pytest
import torch

from spdl_ref import data
from spdl_ref.ode import ClassifierHead, ResNet
from spdl_ref.train import History, accuracy, fit, l2_regulariser, squared_loss


def _problem():
    torch.manual_seed(0)
    x, y = data.checkerboard(200, seed=3)
    model = torch.nn.Sequential(ResNet(2, 10, T=5.0), ClassifierHead(2, 1))
    return model, x, y, data.labels_to_signs(y)


def test_fit_decreases_objective_and_records_history():
    model, x, y, t = _problem()
    hist = fit(
        model, x, t, regulariser=l2_regulariser(1e-4), iterations=300, lr=0.02, progress=False
    )
    assert isinstance(hist, History)
    assert len(hist.loss) == len(hist.data_fit) == len(hist.seconds) == 300
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert all(e >= d for e, d in zip(hist.loss, hist.data_fit, strict=True))  # R >= 0
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
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    hist = fit(model, x, t, iterations=5, optimizer=opt, progress=False)
    assert len(hist.loss) == 5  # the given optimiser took every step, and only those
    assert all(int(opt.state[p]["step"]) == 5 for p in model.parameters())
    # Adam's first steps move every entry by about lr (the sign of its gradient)
    moved = max(float((p - q).abs().max()) for p, q in zip(model.parameters(), before, strict=True))
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


def test_divergence_is_reported():
    model, x, _, t = _problem()
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(model, x * 1e30, t, iterations=50, lr=1e6, optimizer="sgd", progress=False)


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
