"""Package-level promises: light imports, documented public API."""

import importlib
import inspect
import re
import subprocess
import sys

import pytest

PUBLIC_MODULES = [
    "spdl_ref",
    "spdl_ref.config",
    "spdl_ref.data",
    "spdl_ref.ode",
    "spdl_ref.train",
    "spdl_ref.ode.fields",
    "spdl_ref.ode.network",
    "spdl_ref.ode.stability",
    "spdl_ref.ode.symplectic",
    "spdl_ref.ode.discrete_gradient",
    "spdl_ref.ode.splitting",
    "spdl_ref.ode.lie_group",
    "spdl_ref.ode.manifolds",
    "spdl_ref.plotting",
    "spdl_ref.control",
    "spdl_ref.invertible",
    "spdl_ref.optim",
    "spdl_ref.equivariant",
    "spdl_ref.equivariant.escnn_bridge",
    "spdl_ref.equivariant.equivariant_denoiser",
]


def test_import_is_light():
    code = (
        "import sys, spdl_ref; heavy = [m for m in ('matplotlib', 'escnn', 'jupyter_client', "
        "'IPython', 'geoopt') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _public_objects():
    for name in PUBLIC_MODULES:
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", []):
            obj = getattr(mod, attr)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{name}.{attr}", obj


@pytest.mark.parametrize(
    "qualname, obj", list(_public_objects()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_objects_are_documented_with_their_source(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    assert len(doc) > 40, f"{qualname} needs a docstring"
    # Each public function or class names what it implements: an equation, section, figure or
    # theorem of the review, or (for helpers) the module docstring does.
    module_doc = inspect.getdoc(importlib.import_module(obj.__module__)) or ""
    pattern = r"(eq\.|eqs\.|\(\d+\)|Section|§|Figure|Theorem|Example)"
    assert re.search(pattern, doc) or re.search(pattern, module_doc), qualname
