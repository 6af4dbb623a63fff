"""Write the book's API reference, ``book/api.md``, from the ``__all__`` of each public module.

Usage: ``python tools/api_reference.py [--check]``. Run it after adding, removing or renaming a
public name (a name in some ``__all__``); ``--check`` changes nothing and exits with status 1 if
``book/api.md`` differs from what it would write (tests/test_api_reference.py runs the same
comparison, so the reference cannot drift from the code).

Which names, and under which path:

* the namespaces are the modules ``spdl_ref.<name>`` (packages and plain modules) and those
  submodules of a package whose public names the package does not re-export (e.g.
  ``spdl_ref.equivariant.escnn_bridge``, which imports escnn and so stays out of
  ``spdl_ref.equivariant``); ``spdl_ref`` itself only re-exports conveniences;
* every name in the ``__all__`` of a namespace is documented exactly once, under the path people
  import (``spdl_ref.ode.ResNet``, not ``spdl_ref.ode.resnet.ResNet``): the shallowest namespace
  that exports it; a name that two namespaces of one depth export (``VariableStepResNet`` in
  ``spdl_ref.ode`` and ``spdl_ref.control``) goes under the one its defining module belongs to;
* a public module that is not a namespace (``spdl_ref.ode.resnet``) has no section of its own:
  its package's docstring summarises it, and book/_ext/api_links.py links ``:mod:`` references to
  it to the package's section.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pathlib
import pkgutil
import sys
from types import ModuleType

ROOT = pathlib.Path(__file__).resolve().parent.parent
API = ROOT / "book" / "api.md"
PACKAGE = "spdl_ref"
# The order of the sections: the book's (foundations, then Sections 1-6); a namespace not listed
# here follows them in alphabetical order.
ORDER = ["config", "data", "loop", "train", "ode", "control", "invertible", "equivariant", "optim"]

HEADER = """\
# API reference

Generated from the docstrings of `spdl_ref` by `python tools/api_reference.py` (do not edit by
hand: rerun it after adding, removing or renaming a public name). Each public name appears once,
under the path it is imported from; each entry names the equation or section of the review that
it implements.
"""


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def public_modules() -> list[str]:
    """Every public module of the package (no component starts with ``_``), sorted."""
    pkg = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(pkg.__path__, PACKAGE + "."):
        if _public(info.name):
            names.append(info.name)
    return sorted(names)


def _exports(module: ModuleType) -> list[str]:
    return list(getattr(module, "__all__", []))


def namespaces() -> list[str]:
    """The modules whose ``__all__`` defines the public names, in the order of the reference."""
    found = []
    for name in public_modules():
        depth = name.count(".")
        if depth == 1:
            found.append(name)
        elif depth == 2:
            parent = importlib.import_module(name.rsplit(".", 1)[0])
            if not hasattr(parent, "__path__"):
                continue
            module = importlib.import_module(name)
            exported = set(_exports(parent))
            if _exports(module) and not set(_exports(module)) <= exported:
                found.append(name)
    return sorted(found, key=_rank)


def _rank(name: str) -> tuple[int, str]:
    top = name.split(".")[1]
    return (ORDER.index(top) if top in ORDER else len(ORDER), name)


def _owner(obj: object, candidates: list[str]) -> str:
    """Of the namespaces that export ``obj``, where it is documented: the shallowest; among
    those, the one its defining module belongs to; else the first in order."""
    depth = min(c.count(".") for c in candidates)
    shallow = [c for c in candidates if c.count(".") == depth]
    module = getattr(obj, "__module__", None) or ""
    inside = [c for c in shallow if module == c or module.startswith(c + ".")]
    return inside[0] if inside else shallow[0]


def documented_names() -> dict[str, list[str]]:
    """Namespace -> its names documented there (each public object exactly once)."""
    spaces = namespaces()
    exporters: dict[int, list[str]] = {}
    objects: dict[int, object] = {}
    order: list[tuple[str, str, int]] = []
    for space in spaces:
        module = importlib.import_module(space)
        for attr in _exports(module):
            obj = getattr(module, attr)
            key = id(obj)
            if inspect.ismodule(obj):
                continue
            objects[key] = obj
            exporters.setdefault(key, []).append(space)
            order.append((space, attr, key))
    result: dict[str, list[str]] = {space: [] for space in spaces}
    seen: set[int] = set()
    for space, attr, key in order:
        if key in seen or _owner(objects[key], exporters[key]) != space:
            continue
        seen.add(key)
        result[space].append(attr)
    return result


def _attribute_comment(space: str, attr: str, obj: object) -> str:
    """The ``#:`` comment above a module-level constant, from the module that defines it."""
    from sphinx.pycode import ModuleAnalyzer

    for name in [space, *public_modules(), *_private_modules(space)]:
        if name != space and not name.startswith(space + "."):
            continue
        module = importlib.import_module(name)
        for candidate, value in vars(module).items():
            if value is not obj:
                continue
            docs = ModuleAnalyzer.for_module(name).find_attr_docs()
            lines = docs.get(("", candidate))
            if lines:
                return "\n".join(line for line in lines).strip()
    raise ValueError(f"{space}.{attr}: a public constant needs a '#:' comment where it is defined")


def _private_modules(space: str) -> list[str]:
    module = importlib.import_module(space)
    if not hasattr(module, "__path__"):
        return []
    return [info.name for info in pkgutil.walk_packages(module.__path__, space + ".")]


def _entry(space: str, attr: str) -> str:
    obj = getattr(importlib.import_module(space), attr)
    path = f"{space}.{attr}"
    if inspect.isclass(obj):
        return f".. autoclass:: {path}\n   :members:\n"
    if inspect.isfunction(obj) or callable(obj):
        return f".. autofunction:: {path}\n"
    comment = _attribute_comment(space, attr, obj)
    body = "\n".join(f"   {line}" if line else "" for line in comment.splitlines())
    return f".. py:data:: {attr}\n   :module: {space}\n\n{body}\n"


def render() -> str:
    """The text of ``book/api.md``."""
    names = documented_names()
    spaces = list(names)
    parts = [HEADER, f"\n```{{eval-rst}}\n.. automodule:: {PACKAGE}\n   :no-members:\n```\n"]
    for space in spaces:
        parts.append(f"\n## {space}\n\n```{{eval-rst}}\n.. automodule:: {space}\n   :no-members:\n")
        for attr in names[space]:
            parts.append("\n" + _entry(space, attr))
        parts.append("```\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not API.is_file() or API.read_text() != text:
            print(f"{API.relative_to(ROOT)} is out of date: run python tools/api_reference.py")
            return 1
        return 0
    API.write_text(text)
    print(f"wrote {API.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
