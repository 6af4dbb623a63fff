"""Shared test configuration: float64 helpers, hypothesis profiles, one build of the book."""

import os

import pytest
import torch
from _book import build_book
from hypothesis import settings

# CI explores a fixed set of examples (reproducible runs); "thorough" searches at random.
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The book built once per session (warnings as errors): (HTML folder, finished process)."""
    out = tmp_path_factory.mktemp("book")
    return out / "_build" / "html", build_book(out)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` where torch sees no CUDA device, saying why."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="needs a CUDA device, and torch sees none here (./dev gpu-check runs these on a GPU)"
    )
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)
