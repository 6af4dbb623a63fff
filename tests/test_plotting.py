import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from spdl_ref import plotting


def test_feature_evolution_2d_and_3d():
    plotting.use_style()
    y = torch.tensor([0, 1, 0, 1])
    axes = plotting.feature_evolution(
        torch.randn(4, 4, 2), y, [0, 3], W=torch.tensor([[1.0, 0.5]]), mu=torch.tensor([0.1])
    )
    assert len(axes) == 2 and len(axes[-1].lines) == 1  # the decision boundary
    fig = plt.figure()
    axes3 = [fig.add_subplot(1, 2, i + 1, projection="3d") for i in range(2)]
    plotting.feature_evolution(
        torch.randn(3, 4, 3),
        y,
        [0, 2],
        W=torch.tensor([[0.2, 1.0, 0.3]]),
        mu=torch.tensor([0.0]),
        axes=axes3,
    )
    with pytest.raises(ValueError, match="states must have shape"):
        plotting.feature_evolution(torch.randn(3, 4, 5), y, [0])
    plt.close("all")


def test_loss_curves():
    ax = plotting.loss_curves({"a": [1.0, 0.5, 0.1], "b": [2.0, 1.0]})
    assert len(ax.lines) == 2
    plt.close("all")


def _labels(ticks):
    return [t.get_text() for t in ticks]


def test_plain_log_ticks_at_the_plotted_values():
    depths = [2, 4, 8, 16, 32]
    fig, ax = plt.subplots()
    ax.loglog(depths, [0.6, 1.0, 1.8, 3.2, 6.0], "o-")
    fig.canvas.draw()
    assert any(_labels(ax.get_xticklabels(minor=True)))  # matplotlib's "3×10⁰", "6×10⁰", ...
    plotting.plain_log_ticks(ax, "x", depths)
    fig.canvas.draw()
    assert _labels(ax.get_xticklabels()) == ["2", "4", "8", "16", "32"]
    assert not any(_labels(ax.get_xticklabels(minor=True)))
    plt.close(fig)


def test_plain_log_ticks_without_values_label_1_2_5():
    fig, ax = plt.subplots()
    ax.semilogy([0, 1, 2], [0.7, 0.1, 0.03])
    plotting.plain_log_ticks(ax, "y")
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    shown = [t.get_text() for t in ax.get_yticklabels() if lo <= t.get_position()[1] <= hi]
    assert shown == ["0.05", "0.1", "0.2", "0.5"]
    assert not any(_labels(ax.get_yticklabels(minor=True)))
    plt.close(fig)


def test_plain_log_ticks_bad_input():
    fig, ax = plt.subplots()
    ax.plot([1, 2], [1, 2])
    with pytest.raises(ValueError, match="x axis must be on a log scale"):
        plotting.plain_log_ticks(ax, "x", [1, 2])
    ax.set_xscale("log")
    with pytest.raises(ValueError, match="axis must be 'x' or 'y'"):
        plotting.plain_log_ticks(ax, "z")
    with pytest.raises(ValueError, match="values must be finite positive"):
        plotting.plain_log_ticks(ax, "x", [0, 2])
    plt.close(fig)
