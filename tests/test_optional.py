"""A missing optional dependency is an ImportError that names the extra to install.

Each test hides the package (``sys.modules[name] = None`` makes ``import name`` fail) and forgets
the module of spdl_ref that imports it, so that the import runs again.
"""

import importlib
import re
import sys

import pytest

from spdl_ref._optional import EXTRAS, optional_dependency


def _hide(monkeypatch, package, *reimported):
    monkeypatch.setitem(sys.modules, package, None)
    for name in reimported:
        monkeypatch.delitem(sys.modules, name, raising=False)


def _says_install(extra):
    return re.escape(f'pip install "spdl-ref[{extra}]"')


def test_plotting_without_matplotlib(monkeypatch):
    _hide(monkeypatch, "matplotlib", "spdl_ref.plotting")
    with pytest.raises(ImportError, match=r"spdl_ref\.plotting needs matplotlib.*") as err:
        importlib.import_module("spdl_ref.plotting")
    assert re.search(_says_install("book"), str(err.value))


def test_equivariant_denoiser_without_escnn(monkeypatch):
    from spdl_ref.equivariant import make_denoiser

    _hide(monkeypatch, "escnn", "spdl_ref.equivariant.equivariant_denoiser")
    with pytest.raises(ImportError, match=_says_install("equivariant")):
        make_denoiser("equivariant", width=8, depth=1)
    make_denoiser("ordinary", width=8, depth=1)  # needs no escnn


def test_escnn_bridge_without_escnn(monkeypatch):
    _hide(monkeypatch, "escnn", "spdl_ref.equivariant.escnn_bridge")
    with pytest.raises(
        ImportError, match=r"escnn_bridge needs escnn.*" + _says_install("equivariant")
    ):
        importlib.import_module("spdl_ref.equivariant.escnn_bridge")


def test_geoopt_comparison_without_geoopt(monkeypatch):
    from spdl_ref.optim import stiefel_student

    _hide(monkeypatch, "geoopt")
    with pytest.raises(ImportError, match=_says_install("riemannian")):
        stiefel_student("geoopt", 2, n=6, p=2, samples=8)


def test_the_extras_exist_in_pyproject():
    import tomllib
    from _book import ROOT

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for package, extra in EXTRAS.items():
        assert any(r.startswith(package) for r in extras[extra]), (package, extra)


def test_optional_dependency_passes_other_errors_and_checks_the_extra():
    with pytest.raises(ZeroDivisionError), optional_dependency("book", "x"):
        1 / 0  # noqa: B018
    with pytest.raises(ValueError, match="extra must be one of"), optional_dependency("plots", "x"):
        pass
