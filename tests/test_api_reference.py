"""book/api.md documents every public name exactly once, under the path people import.

The public names are those in the ``__all__`` of the public modules. book/api.md is written by
``python tools/api_reference.py``: a name added to or removed from an ``__all__`` fails these
tests until the reference is regenerated, which is the point (it cannot drift from the code).
"""

import importlib
import importlib.util
import inspect
import pathlib
import pkgutil
import re

import spdl_ref

ROOT = pathlib.Path(__file__).resolve().parent.parent
API = ROOT / "book" / "api.md"


def _tool():
    spec = importlib.util.spec_from_file_location("api_reference", ROOT / "tools/api_reference.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _public_modules():
    # Independently of the tool: every module without a private component, but the package's
    # own namespace (its __all__ only repeats conveniences documented in spdl_ref.config).
    for info in pkgutil.walk_packages(spdl_ref.__path__, "spdl_ref."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def _public_objects():
    """id -> (object, every public path that exports it)."""
    found = {}
    for module in _public_modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not inspect.ismodule(obj):
                found.setdefault(id(obj), (obj, []))[1].append(f"{module.__name__}.{name}")
    return found


def _documented_paths(text):
    paths = re.findall(r"^\.\. auto(?:class|function):: (\S+)$", text, re.M)
    for name, module in re.findall(r"^\.\. py:data:: (\S+)\n   :module: (\S+)$", text, re.M):
        paths.append(f"{module}.{name}")
    return paths


def _resolve(path):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def test_api_md_is_what_the_tool_writes():
    assert API.read_text() == _tool().render(), "run: python tools/api_reference.py"


def test_every_public_name_is_documented_once_at_its_import_path():
    paths = _documented_paths(API.read_text())
    public = _public_objects()
    documented = {}
    for path in paths:
        obj = _resolve(path)
        assert id(obj) not in documented, f"{path} and {documented.get(id(obj))}: the same object"
        documented[id(obj)] = path
    missing = sorted(min(p) for key, (_, p) in public.items() if key not in documented)
    assert not missing, f"public names missing from book/api.md: {missing}"
    extra = sorted(path for key, path in documented.items() if key not in public)
    assert not extra, f"book/api.md documents names that no __all__ lists: {extra}"
    for key, path in documented.items():
        exporters = public[key][1]
        assert path in exporters, path
        # the path people import: no shallower public module exports the same object
        shallowest = min(p.count(".") for p in exporters)
        assert path.count(".") == shallowest, f"{path}: documented deeper than {exporters}"


def test_the_reference_counts_what_it_should():
    # The protocol, the gradients helpers, the training loop, the experiments and the
    # invertible protocol's base class are among the documented paths.
    paths = set(_documented_paths(API.read_text()))
    for path in [
        "spdl_ref.ode.LayeredNetwork",
        "spdl_ref.ode.ResNet",
        "spdl_ref.control.autograd_gradient",
        "spdl_ref.control.gradients.RESULT_KEYS",
        "spdl_ref.loop.train_loop",
        "spdl_ref.experiments.Experiment",
        "spdl_ref.invertible.InvertibleModule",
    ]:
        assert path in paths, path
    assert "spdl_ref.ode.resnet.ResNet" not in paths
