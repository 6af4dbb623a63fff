r"""Figure 1 of the review: ResNets (6) trained on two planar data sets and one in space (§1.2).

Each task trains one ResNet :math:`\Psi` (eq. (6), :math:`\sigma = \tanh`) with an affine output
layer :math:`\eta(z) = Wz + \mu` on one two-class set, minimising (4) with
:math:`L_n(z) = \tfrac12\|\eta(z) - y_n\|^2` (targets :math:`y_n = \pm 1`) and
:math:`R(\theta) = \tfrac\lambda2\|\theta\|^2` by Adam on the whole training set, and measures
the accuracy on a fresh test set. Its metrics include the trained parameters, so that
:func:`figure` can redraw the features layer by layer from a result alone (the review's
Figure 1), and the smallest Jacobian determinant of the layers :math:`z \mapsto z + hf(z,
\theta^k)` at the training points: a negative value means that a layer folds the plane.

Chapter 1 runs these tasks through :func:`~spdl_ref.experiments.run_tasks`; so does
``python -m spdl_ref.reproduce fig1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import torch

from .. import _validate, data
from ..ode import ClassifierHead, ResNet
from ..train import History, accuracy, fit, l2_regulariser
from ._registry import Experiment, register, save_figure, task_sizes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DATASETS",
    "SETTINGS",
    "SIZES",
    "Fig1Run",
    "figure",
    "model_from_result",
    "plot",
    "run",
    "smoke",
    "tasks",
    "train",
    "training_data",
]

#: The three data sets of Figure 1: name -> (generator in :mod:`spdl_ref.data`, dimension, label).
DATASETS: dict[str, tuple[Callable[..., tuple[torch.Tensor, torch.Tensor]], int, str]] = {
    "rings": (data.rings, 2, "rings (2-D)"),
    "spirals": (data.spirals, 2, "spirals (2-D)"),
    "helices": (data.helices, 3, "helices (3-D)"),
}


class _Settings(TypedDict):
    K: int
    T: float
    lam: float
    lr: float


#: Settings shared by both budgets: depth K, final time T, regularisation λ, Adam step.
SETTINGS: _Settings = {"K": 20, "T": 5.0, "lam": 1e-4, "lr": 0.02}
#: Sizes by budget (a task may override them, as :func:`smoke` does).
SIZES = {
    "ci": {"n_train": 500, "n_test": 2000, "iterations": 1500},
    "paper": {"n_train": 2000, "n_test": 10000, "iterations": 6000},
}


@dataclass
class Fig1Run:
    """One trained model of Figure 1 with its data (what :func:`train` returns)."""

    model: torch.nn.Sequential
    history: History
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def tasks(budget: str, runs: int, seed: int) -> list[dict]:
    """One task per data set and seed: ``{"seed": s, "dataset": name}`` (Figure 1 in Section 1)."""
    return [{"seed": seed + r, "dataset": name} for name in DATASETS for r in range(runs)]


def _sizes(task: dict, budget: str) -> dict:
    return task_sizes(task, budget, SIZES, "dataset", DATASETS)


def train(
    task: dict,
    *,
    budget: str,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> Fig1Run:
    """Train the model of one task (Figure 1, Section 1.2) on ``device``.

    Training data come from seed ``2 s + 1`` and test data from seed ``2 s + 2`` for the task's
    seed ``s``; the ResNet's initial parameters from a generator seeded with ``s``, the output
    layer's from the global generator seeded with ``s``. Returns a :class:`Fig1Run`.
    """
    from ..config import device as default_device
    from ..config import seed_everything

    sizes = _sizes(task, budget)
    device = default_device() if device is None else torch.device(device)
    make, M, label = DATASETS[task["dataset"]]
    s = task["seed"]
    x, y = make(sizes["n_train"], seed=2 * s + 1, device=device)
    x_test, y_test = make(sizes["n_test"], seed=2 * s + 2, device=device)
    seed_everything(s)
    # the ResNet draws from a CPU generator (the same parameters on every device)
    net = ResNet(
        M, SETTINGS["K"], T=SETTINGS["T"], device=device, generator=torch.Generator().manual_seed(s)
    )
    model = torch.nn.Sequential(net, ClassifierHead(M, 1, device=device))
    history = fit(
        model,
        x,
        data.labels_to_signs(y),
        regulariser=l2_regulariser(SETTINGS["lam"]),
        iterations=sizes["iterations"],
        lr=SETTINGS["lr"],
        progress=progress,
        description=label,
    )
    return Fig1Run(model, history, x, y, x_test, y_test)


def _parts(model: torch.nn.Sequential) -> tuple[ResNet, ClassifierHead]:
    """The ``ResNet`` and ``ClassifierHead`` of a model of :func:`train`."""
    net, head = model
    assert isinstance(net, ResNet) and isinstance(head, ClassifierHead)
    return net, head


def _smallest_layer_determinant(net: ResNet, x: torch.Tensor) -> list[float]:
    with torch.no_grad():
        states = net.trajectory(x)
    return [
        float(torch.linalg.det(net.layer_jacobian(k, states[k])).min().detach())
        for k in range(net.depth)
    ]


def run(task: dict, *, budget: str, device: torch.device | str | None = None) -> dict:
    """Train one task and return its metrics (JSON-serialisable).
    See Figure 1 in Section 1 of the review.

    ``dataset``, ``n_train``, ``final_objective``, ``train_accuracy``, ``test_accuracy``,
    ``min_layer_det`` (per layer, the smallest :math:`\\det(I + h\\,\\partial_z f)` over the
    training points), ``seconds`` (training time) and ``parameters`` (the trained
    ``state_dict`` as nested lists, for :func:`model_from_result`).
    """
    result = train(task, budget=budget, device=device)
    net, head = _parts(result.model)
    with torch.no_grad():
        train_acc = accuracy(head(net(result.x)), result.y)
        test_acc = accuracy(head(net(result.x_test)), result.y_test)
    return {
        "dataset": task["dataset"],
        "n_train": int(result.x.shape[0]),
        "final_objective": float(result.history.loss[-1]),
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "min_layer_det": _smallest_layer_determinant(net, result.x),
        "seconds": float(result.history.seconds[-1]),
        "parameters": {k: v.detach().cpu().tolist() for k, v in result.model.state_dict().items()},
    }


def training_data(
    task: dict,
    result: dict,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``: the training set of one task of :func:`run`, regenerated (Figure 1).

    The same points the model was trained on: the task's data set, ``result["n_train"]``
    points, seed ``2 s + 1`` for the task's seed ``s`` (as :func:`train` draws them).
    """
    if not isinstance(result, dict) or result.get("dataset") not in DATASETS:
        raise ValueError("result must be a dict returned by spdl_ref.experiments.fig1.run")
    _validate.nonnegative_int(task.get("seed") if isinstance(task, dict) else None, "task")
    make = DATASETS[result["dataset"]][0]
    return make(result["n_train"], seed=2 * task["seed"] + 1, device=device, dtype=dtype)


def model_from_result(
    result: dict, device: torch.device | str | None = None
) -> torch.nn.Sequential:
    """Rebuild the trained ``ResNet`` + ``ClassifierHead`` of one result of :func:`run`.

    See Figure 1 in Section 1 of the review."""
    if not isinstance(result, dict) or result.get("dataset") not in DATASETS:
        raise ValueError("result must be a dict returned by spdl_ref.experiments.fig1.run")
    M = DATASETS[result["dataset"]][1]
    model = torch.nn.Sequential(
        ResNet(M, SETTINGS["K"], T=SETTINGS["T"], init_std=0.0, device=device),
        ClassifierHead(M, 1, device=device),
    )
    state = {k: torch.tensor(v, device=device) for k, v in result["parameters"].items()}
    model.load_state_dict(state)
    return model


def figure(
    task_list: list[dict], results: list[dict], layers: Sequence[int] | None = None
) -> Figure:
    """The review's Figure 1 from results of :func:`run`: one row per task, features by layer.

    Each row shows the training points of its task (regenerated from the task's seed and the
    number of points the result was trained on) at the layers ``layers`` (default
    :math:`0, K/4, K/2, 3K/4, K`), coloured by class, with the zero set of the output layer in
    the last panel. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    from ..plotting import feature_evolution

    if len(task_list) != len(results) or not results:
        raise ValueError("task_list and results must be non-empty and of the same length")
    K = SETTINGS["K"]
    layers = [0, K // 4, K // 2, 3 * K // 4, K] if layers is None else list(layers)
    fig = plt.figure(figsize=(2.2 * len(layers), 2.4 * len(results)))
    for row, (task, result) in enumerate(zip(task_list, results, strict=True)):
        M, label = DATASETS[result["dataset"]][1:]
        net, head = _parts(model_from_result(result))
        x, y = training_data(task, result)
        with torch.no_grad():
            states = net.trajectory(x.to(net.A.dtype))
        kw = {"projection": "3d"} if M == 3 else {}
        axes = [
            fig.add_subplot(len(results), len(layers), row * len(layers) + i + 1, **kw)
            for i in range(len(layers))
        ]
        feature_evolution(states, y, layers, W=head.W, mu=head.mu, axes=axes, title=label)
    fig.tight_layout()
    return fig


def plot(task_list: list[dict], results: list[dict], out_dir: Path) -> list[Path]:
    """Write ``figure1.png`` (see :func:`figure`) to ``out_dir`` and return its path.

    See Figure 1 in Section 1 of the review."""

    return save_figure(figure(task_list, results), out_dir, "figure1.png", dpi=120)


def smoke(seed: int) -> dict:
    """A tiny task that runs every code path (8 points, 3 iterations, the 3-D set).

    See Figure 1 in Section 1 of the review."""
    return {"seed": seed, "dataset": "helices", "n_train": 8, "n_test": 8, "iterations": 3}


register(
    Experiment(
        name="fig1",
        description="Figure 1: ResNets (6) trained on rings, spirals and helices (Section 1.2)",
        chapter="chapters/ch1_introduction",
        tasks=tasks,
        run=run,
        plot=plot,
        smoke=smoke,
    )
)
