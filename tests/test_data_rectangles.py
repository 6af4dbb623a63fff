import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spdl_ref import data


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), size=st.integers(8, 40), seed=st.integers(0, 2**31))
def test_shape_range_determinism(n, size, seed):
    x = data.random_rectangles(n, size=size, seed=seed)
    assert x.shape == (n, 1, size, size) and x.dtype == torch.get_default_dtype()
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # every image holds at least one rectangle of intensity >= 0.2
    assert bool((x.flatten(1).max(dim=1).values >= 0.2).all())
    assert torch.equal(x, data.random_rectangles(n, size=size, seed=seed))


def test_rectangles_are_axis_aligned_and_piecewise_constant():
    x = data.random_rectangles(20, size=30, seed=3, max_rectangles=1, dtype=torch.float64)
    for img in x[:, 0]:
        rows = torch.nonzero(img.abs().sum(1)).flatten()
        cols = torch.nonzero(img.abs().sum(0)).flatten()
        block = img[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        # one rectangle: its bounding box is filled with a single value, nothing outside
        assert torch.all(block == block[0, 0])
        assert float(img.abs().sum()) == pytest.approx(float(block.abs().sum()))
        assert 30 // 8 <= block.shape[0] <= 15 and 30 // 8 <= block.shape[1] <= 15


def test_dtype_device_seed(dtype, device):
    a = data.random_rectangles(3, size=16, seed=0, dtype=dtype, device=device)
    b = data.random_rectangles(3, size=16, seed=1, dtype=dtype, device=device)
    assert a.dtype == dtype and a.device.type == device.type and not torch.equal(a, b)


def test_default_size_is_60():
    assert data.random_rectangles(2).shape == (2, 1, 60, 60)


def test_bad_input():
    with pytest.raises(ValueError, match="n must be >= 1"):
        data.random_rectangles(0)
    with pytest.raises(TypeError, match="size must be an integer"):
        data.random_rectangles(2, size=10.5)
    with pytest.raises(ValueError, match="size must be >= 8"):
        data.random_rectangles(2, size=4)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        data.random_rectangles(2, seed=-1)
    with pytest.raises(ValueError, match="max_rectangles must be >= 1"):
        data.random_rectangles(2, max_rectangles=0)
    with pytest.raises(TypeError, match="dtype"):
        data.random_rectangles(2, dtype=torch.int32)
