"""The examples in the docstrings of spdl_ref.control and of the networks it works on run."""

import doctest
import importlib

import pytest

MODULES = [
    "spdl_ref.ode.layered",
    "spdl_ref.ode.resnet",
    "spdl_ref.ode.network",
    "spdl_ref.ode.runge_kutta",
    "spdl_ref.ode.fields",
    "spdl_ref.control.adjoint",
    "spdl_ref.control.gradients",
    "spdl_ref.control.problems",
    "spdl_ref.control.regularisers",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": importlib.import_module("torch")})
    assert result.attempted > 0 and result.failed == 0, result
