"""The long-run constraint error of Riemannian SGD on V(n, p) (Section 6.2.1)."""

import math

import pytest
import torch

from spdl_ref.optim import stiefel_drift


def test_drift_with_and_without_the_reorthonormalisation():
    """float32, V(64, 8), 600 steps: the correction keeps the error near its threshold
    2 eps sqrt(p) = 6.7e-7 and acts on a few steps; without it the error grows past that."""
    on = stiefel_drift("cayley", 600, n=64, p=8, record_every=100)
    off = stiefel_drift("cayley", 600, n=64, p=8, record_every=100, reorthonormalise_at=math.inf)
    assert on.series["step"] == [100, 200, 300, 400, 500, 600]
    threshold = 2 * torch.finfo(torch.float32).eps * math.sqrt(8)
    assert max(on.series["constraint_error"]) < 2 * threshold
    assert 0 < on.series["reorthonormalisations"][0] < 0.2 * 600
    assert off.series["reorthonormalisations"] == [0]
    drift = off.series["constraint_error"]
    assert drift[-1] > 1.5 * threshold and drift[-1] > 1.5 * drift[0]


def test_same_gradients_for_every_kind_and_float64():
    a = stiefel_drift("exp", 5, n=10, p=2, record_every=1, dtype=torch.float64)
    b = stiefel_drift("cayley", 5, n=10, p=2, record_every=1, dtype=torch.float64)
    # the same start and gradients: the two maps agree to third order in the step
    assert a.loss[0] == b.loss[0] and abs(a.loss[-1] - b.loss[-1]) < 1e-3
    assert max(a.series["constraint_error"]) < 1e-14


def test_geoopt_kind():
    pytest.importorskip("geoopt")
    run = stiefel_drift("geoopt", 20, n=16, p=4, record_every=10)
    assert run.series["reorthonormalisations"] == [None] and len(run.series["step"]) == 2
    with pytest.raises(ValueError, match="reorthonormalise_at"):
        stiefel_drift("geoopt", 2, n=16, p=4, reorthonormalise_at=math.inf)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="qr"), "kind"),
        (dict(steps=0), "steps"),
        (dict(n=4, p=5), "p must"),
        (dict(lr=0.0), "lr"),
        (dict(momentum=-0.1), "momentum"),
        (dict(record_every=0), "record_every"),
        (dict(dtype=torch.int32), "dtype"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(kind="exp", steps=2, n=8, p=2) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        stiefel_drift(**args)
