import random

import numpy as np
import pytest
import torch

from spdl_ref import config


def test_budget_defaults_to_ci_on_cpu(monkeypatch):
    monkeypatch.delenv("SPDL_BUDGET", raising=False)
    expected = "paper" if torch.cuda.is_available() else "ci"
    assert config.budget() == expected


@pytest.mark.parametrize("name", ["ci", "paper", " paper "])
def test_budget_override(monkeypatch, name):
    monkeypatch.setenv("SPDL_BUDGET", name)
    assert config.budget() == name.strip()


def test_unknown_budget_lists_allowed(monkeypatch):
    monkeypatch.setenv("SPDL_BUDGET", "huge")
    with pytest.raises(ValueError, match=r"SPDL_BUDGET.*'ci', 'paper'.*'huge'"):
        config.budget()


def test_by_budget(monkeypatch):
    monkeypatch.setenv("SPDL_BUDGET", "ci")
    assert config.by_budget(ci=1, paper=2) == 1
    monkeypatch.setenv("SPDL_BUDGET", "paper")
    assert config.by_budget(ci=1, paper=2) == 2


def test_device_default_and_override(monkeypatch):
    monkeypatch.delenv("SPDL_DEVICE", raising=False)
    assert config.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("SPDL_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    monkeypatch.setenv("SPDL_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="SPDL_DEVICE"):
        config.device()


def test_seed_everything_reproduces_all_generators():
    config.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002 (the global generator is what is seeded)
    gen = config.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(3))  # noqa: NPY002 (the global generator is what is seeded)
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert torch.equal(
        torch.rand(2, generator=gen), torch.rand(2, generator=torch.Generator().manual_seed(123))
    )


@pytest.mark.parametrize("seed, exc", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_seed_rejects_bad_values(seed, exc):
    with pytest.raises(exc, match="seed"):
        config.seed_everything(seed)
