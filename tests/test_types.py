"""mypy over spdl_ref is part of the test command, so CI fails on a type error.

The level lives in pyproject.toml ([tool.mypy]). mypy runs from the repository root with its
cache in .mypy_cache, so a second run checks only what changed. mypy checks a call only against
the annotations of what is called (an unannotated parameter is Any), so every public signature
is fully annotated, and a test keeps it so.
"""

import importlib
import importlib.metadata
import inspect
import pathlib
import pkgutil
import subprocess
import sys

import pytest
import tomllib

import spdl_ref

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MYPY = PYPROJECT["tool"]["mypy"]

pytestmark = pytest.mark.slow


def _mypy(*args):
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_mypy_is_the_pinned_version():
    (pin,) = [r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if "mypy" in r]
    assert importlib.metadata.version("mypy") == pin.split("==")[1], "run ./dev setup"


def test_mypy_finds_no_errors():
    out = _mypy()
    assert out.returncode == 0, f"mypy found type errors:\n{out.stdout}{out.stderr}"


def test_no_module_has_its_errors_silenced():
    # The temporary list of modules whose errors were not reported is gone (every module of
    # spdl_ref is clean); an override may only say how to import an unannotated dependency.
    for override in MYPY["overrides"]:
        silenced = {k for k in override if k in ("ignore_errors", "disable_error_code")}
        assert not silenced, f"an override silences errors in {override['module']}: {silenced}"
        assert all(not m.startswith("spdl_ref") for m in override["module"]), override["module"]


def _public_callables():
    """(path, function, is_method) for every public function and every public method (and
    ``__init__``) of every public class of spdl_ref: the names in its modules' ``__all__``."""
    names = ["spdl_ref"] + [m.name for m in pkgutil.walk_packages(spdl_ref.__path__, "spdl_ref.")]
    seen = set()
    for module in map(importlib.import_module, names):
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isfunction(obj):
                yield f"{obj.__module__}.{obj.__qualname__}", obj, False
            elif inspect.isclass(obj) and obj.__module__.startswith("spdl_ref."):
                for key, member in vars(obj).items():
                    if key.startswith("_") and key != "__init__":
                        continue
                    path = f"{obj.__module__}.{obj.__qualname__}.{key}"
                    if isinstance(member, staticmethod):
                        yield path, member.__func__, False
                    elif isinstance(member, classmethod):
                        yield path, member.__func__, True
                    elif isinstance(member, property) and member.fget is not None:
                        yield path, member.fget, True
                    elif inspect.isfunction(member):
                        yield path, member, True


def _missing_annotations(path, function, is_method):
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if is_method:
        params = params[1:]  # self or cls
    missing = [
        p.name
        for p in params
        if p.annotation is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if signature.return_annotation is inspect.Signature.empty and not path.endswith(".__init__"):
        missing.append("return")
    return missing


def test_public_signatures_are_annotated():
    # mypy checks a call only against an annotated signature (an unannotated parameter is Any),
    # so every public signature is fully annotated: each parameter but self/cls/*args/**kwargs,
    # and the return of everything but __init__.
    offenders = []
    for path, function, is_method in _public_callables():
        missing = _missing_annotations(path, function, is_method)
        if missing:
            offenders.append(f"{path}: {', '.join(missing)}")
    assert not offenders, "public signatures without annotations:\n" + "\n".join(offenders)
