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
