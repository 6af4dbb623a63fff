"""The Binder environment and the pip install name the same packages."""

import pathlib
import re

import tomllib
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# conda-forge names that differ from the PyPI ones
CONDA_TO_PYPI = {"pytorch": "torch", "dask-core": "dask"}
# conda-only tooling with no counterpart in pyproject.toml
CONDA_ONLY = {"python", "pip", "gfortran"}
EXTRAS_IN_BINDER = ("book", "test", "equivariant", "riemannian", "cluster")


def _name(requirement: str) -> str:
    name = re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def _pyproject_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in EXTRAS_IN_BINDER:
        reqs += project["optional-dependencies"][extra]
    return {_name(r) for r in reqs}


def _environment_names():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(r) for r in dep.get("pip", [])}
        else:
            names.add(CONDA_TO_PYPI.get(_name(dep), _name(dep)))
    return names - CONDA_ONLY


def test_environment_and_pyproject_name_the_same_packages():
    assert _environment_names() == _pyproject_names()


def test_binder_uses_a_cpu_torch_and_installs_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    torch_spec = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("pytorch")]
    assert torch_spec and "cpu" in torch_spec[0]
    assert "conda-forge" in env["channels"]
    assert "pip install --no-deps -e ." in (ROOT / "postBuild").read_text()
