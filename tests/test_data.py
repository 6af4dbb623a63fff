import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spdl_ref import data

SETS = {
    "rings": (data.rings, 2),
    "spirals": (data.spirals, 2),
    "checkerboard": (data.checkerboard, 2),
    "helices": (data.helices, 3),
    "two_moons": (data.two_moons, 2),
}


@pytest.mark.parametrize("name", SETS)
@given(n=st.integers(1, 300), seed=st.integers(0, 2**31))
def test_shapes_labels_and_determinism(name, n, seed):
    make, dim = SETS[name]
    x, y = make(n, seed=seed)
    assert x.shape == (n, dim) and y.shape == (n,)
    assert x.dtype == torch.get_default_dtype() and y.dtype == torch.long
    assert int((y == 0).sum()) == n // 2 and int((y == 1).sum()) == n - n // 2
    x2, y2 = make(n, seed=seed)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", SETS)
def test_seed_changes_data_and_dtype_device(name, dtype, device):
    make, _dim = SETS[name]
    x1, _ = make(50, seed=0, dtype=dtype, device=device)
    x2, _ = make(50, seed=1, dtype=dtype, device=device)
    assert x1.dtype == dtype and x1.device.type == device.type
    assert not torch.equal(x1, x2)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("n", [0, -3])
def test_nonpositive_size_is_rejected(name, n):
    make, _ = SETS[name]
    with pytest.raises(ValueError, match="n must be >= 1"):
        make(n)


@pytest.mark.parametrize("name", SETS)
def test_bad_types_and_noise(name):
    make, _ = SETS[name]
    with pytest.raises(TypeError, match="n must be an integer"):
        make(10.0)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make(10, noise=-0.1)
    with pytest.raises(TypeError, match="dtype"):
        make(10, dtype=torch.int64)


def test_geometry_of_noiseless_sets():
    x, y = data.rings(400, noise=0.0, radii=(0.5, 1.0))
    r = x.norm(dim=1)
    assert torch.allclose(r[y == 0], torch.tensor(0.5)) and torch.allclose(
        r[y == 1], torch.tensor(1.0)
    )
    x, y = data.checkerboard(400, squares=2, margin=0.1)
    cell = ((x + 1) / 1.0).floor().long().clamp(0, 1)
    assert torch.equal(cell.sum(1) % 2, y)
    assert (
        x.abs().max() <= 1 and (x.abs() >= 0.1 - 1e-6).all()
    )  # margin keeps points off the cell edges
    x, y = data.helices(200, noise=0.0, radius=0.8)
    assert torch.allclose(x[:, :2].norm(dim=1), torch.tensor(0.8))


def test_parameter_checks():
    with pytest.raises(ValueError, match="radii"):
        data.rings(10, radii=(1.0, 0.5))
    with pytest.raises(ValueError, match="squares"):
        data.checkerboard(10, squares=1)
    with pytest.raises(ValueError, match="margin"):
        data.checkerboard(10, margin=0.5)
    with pytest.raises(ValueError, match="turns"):
        data.spirals(10, turns=0)


def test_labels_to_signs():
    y = torch.tensor([0, 1, 1, 0])
    s = data.labels_to_signs(y, torch.float64)
    assert s.shape == (4, 1) and s.dtype == torch.float64
    assert s[:, 0].tolist() == [-1.0, 1.0, 1.0, -1.0]
    with pytest.raises(ValueError, match="labels 0 and 1"):
        data.labels_to_signs(torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="one-dimensional"):
        data.labels_to_signs(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"y must be a torch\.Tensor"):
        data.labels_to_signs([0, 1])
