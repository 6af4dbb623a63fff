"""Helpers shared by the tests of spdl_ref.ode and spdl_ref.control.

* :func:`tensors` -- a hypothesis strategy for float64 tensors whose entries are drawn;
* :func:`one_thread` -- a fixture that runs a test on one CPU thread (the tensors of these tests
  are tiny, and one thread avoids contention on shared CPUs). Use it with
  ``pytestmark = pytest.mark.usefixtures("one_thread")`` after importing it.
"""

import math

import pytest
import torch
from hypothesis import strategies as st


def tensors(shape, low=-2.0, high=2.0, dtype=torch.float64):
    """A strategy for tensors of ``shape`` with finite entries drawn from ``[low, high]``."""
    size = math.prod(shape)
    values = st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)
    return st.lists(values, min_size=size, max_size=size).map(
        lambda v: torch.tensor(v, dtype=dtype).reshape(shape)
    )


@pytest.fixture
def one_thread():
    """Run the test with one torch thread, restoring the previous number afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
