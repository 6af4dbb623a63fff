import pytest
import torch

from spdl_ref import data
from spdl_ref.equivariant import make_denoiser, sample_complexity, train_denoiser


@pytest.fixture(scope="module")
def images():
    return (
        data.random_rectangles(8, size=12, seed=1),
        data.random_rectangles(2, size=12, seed=2),
        data.random_rectangles(3, size=12, seed=3),
    )


def test_rows_cover_kinds_sizes_and_runs(images):
    rows = sample_complexity(
        *images, [2, 4], kinds=["ordinary"], width=4, depth=1, iterations=3, batch_size=2, runs=2
    )
    assert [(r["kind"], r["n"], r["run"]) for r in rows] == [
        ("ordinary", 2, 0),
        ("ordinary", 2, 1),
        ("ordinary", 4, 0),
        ("ordinary", 4, 1),
    ]
    for r in rows:
        assert r["test_objective"] > 0
        assert all(torch.isfinite(torch.tensor(r[k])) for k in ("test_psnr", "rotated_psnr"))
    # same seed, same data, same size: the runs differ, a repeat reproduces
    again = sample_complexity(
        *images, [2], kinds=["ordinary"], width=4, depth=1, iterations=3, batch_size=2, runs=1
    )
    assert again[0] == rows[0]
    assert rows[0]["test_objective"] != rows[1]["test_objective"]


def test_equivariant_kind_and_float64(images):
    imgs = [u.double() for u in images]
    rows = sample_complexity(
        *imgs, [8], kinds=["equivariant"], width=8, depth=1, iterations=2, batch_size=4, angle=90.0
    )
    assert len(rows) == 1 and rows[0]["kind"] == "equivariant"


def test_fixed_noise_option(images):
    clean, val, _ = images
    torch.manual_seed(0)
    m = make_denoiser("ordinary", width=4, depth=1)
    h = train_denoiser(m, clean[:2], val, noise=0.1, iterations=5, batch_size=2, fresh_noise=False)
    assert len(h.loss) == 5
    with pytest.raises(TypeError, match="fresh_noise"):
        train_denoiser(m, clean[:2], val, noise=0.1, iterations=1, batch_size=2, fresh_noise=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_train=[1]), "n_train"),
        (dict(n_train=[9]), "n_train"),
        (dict(n_train=[]), "n_train"),
        (dict(n_train=4), "n_train"),
        (dict(n_train=[2], kinds=["cnn"]), "kinds"),
        (dict(n_train=[2], kinds="ordinary"), "kinds"),
        (dict(n_train=[2], runs=0), "runs"),
    ],
)
def test_bad_arguments(images, kwargs, match):
    kwargs = {"batch_size": 2, "iterations": 1, "width": 4, "depth": 1, **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        sample_complexity(*images, **kwargs)


def test_bad_images(images):
    clean, val, test = images
    with pytest.raises(ValueError, match="clean_test"):
        sample_complexity(clean, val, test[0], [2], batch_size=2)
    with pytest.raises(ValueError, match="clean"):
        sample_complexity(clean.expand(-1, 2, -1, -1), val, test, [2], batch_size=2)
