"""Sphinx extension: references to ``spdl_ref`` objects land on the path they are documented at.

The API reference (``book/api.md``, written by ``tools/api_reference.py``) documents each public
object once, under the path people import: ``spdl_ref.ode.ResNet``. Docstrings are written
in their own modules, though, and refer to their neighbours as those modules see them:
``:class:`ResNet``` in ``spdl_ref.ode.network`` means ``spdl_ref.ode.network.ResNet``, and a full
path may name the defining module (``spdl_ref.ode.resnet.ResNet``). Sphinx finds neither. When
the Python domain misses such a reference, this extension imports the name where the reference
was written (the class or module of the entry, then the docstring's own class and module), finds
the object's documented path with the rules of ``tools/api_reference.py`` (a method or attribute:
its class's path plus its name; one without an entry of its own links to its class), and links
there. A ``:mod:`` reference to a public module without a section links to its package's.

Nothing is ignored: a reference that still resolves to no documented object (a private name, a
typo, a name missing from every ``__all__``) stays a nitpicky warning, which fails the build.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pathlib
import re

from docutils.utils import get_source_line
from sphinx.util.nodes import make_refnode

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PACKAGE = "spdl_ref"
_CANONICAL: dict[int, str] = {}


def _canonical() -> dict[int, str]:
    """id(object) -> its documented path, for every public object of the package."""
    if not _CANONICAL:
        spec = importlib.util.spec_from_file_location(
            "_api_reference", ROOT / "tools" / "api_reference.py"
        )
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
        for space, names in tool.documented_names().items():
            module = importlib.import_module(space)
            for name in names:
                _CANONICAL[id(getattr(module, name))] = f"{space}.{name}"
    return _CANONICAL


def _has(obj, attr: str) -> bool:
    """Does ``obj`` have ``attr``, counting the instance attributes a class of ours sets
    (``self.h = ...``, a registered parameter or buffer) and dataclass fields?"""
    if hasattr(obj, attr):
        return True
    if not isinstance(obj, type):
        return False
    if attr in getattr(obj, "__dataclass_fields__", {}):
        return True
    pattern = re.compile(
        rf"self\.{re.escape(attr)}\s*[:=]|register_(?:parameter|buffer)\(\s*[\"']{re.escape(attr)}[\"']"
    )
    for klass in obj.__mro__:
        if klass.__module__.startswith(PACKAGE):
            try:
                if pattern.search(inspect.getsource(klass)):
                    return True
            except (OSError, TypeError):
                continue
    return False


def _lookup(path: str):
    """The object a dotted path names (module prefix imported, the rest by attribute); for an
    instance attribute or a field, its class. ``None`` where there is no such thing."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not _has(obj, attr):
                return None
            obj = getattr(obj, attr, obj)
        return obj
    return None


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def documented_path(path: str) -> str | None:
    """The documented path of what ``path`` names: the object's own, or its owner's plus the
    remaining attribute names (a method of a documented class)."""
    if not path.startswith(PACKAGE + ".") or any(_private(p) for p in path.split(".")):
        return None
    if _lookup(path) is None:
        return None  # no such object: a typo stays a warning
    canonical = _canonical()
    parts = path.split(".")
    for cut in range(len(parts), 1, -1):
        obj = _lookup(".".join(parts[:cut]))
        if obj is not None and id(obj) in canonical:
            return ".".join([canonical[id(obj)], *parts[cut:]])
    return None


def _module_section(app, env, node, contnode, target):
    """A public submodule without a section of its own: its nearest documented ancestor."""
    if not target.startswith(PACKAGE + ".") or any(p.startswith("_") for p in target.split(".")):
        return None
    try:
        importlib.import_module(target)
    except ImportError:
        return None
    modules = env.get_domain("py").modules
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        entry = modules.get(".".join(parts[:cut]))
        if entry is not None:
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, target
            )
    return None


def resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    module, cls = node.get("py:module"), node.get("py:class")
    if node.get("reftype") == "mod":
        return _module_section(app, env, node, contnode, target)
    candidates = [target]
    if module:
        if cls:
            candidates.append(f"{module}.{cls}.{target}")
        candidates.append(f"{module}.{target}")
    # the docstring's own place (autodoc names it in the source: "docstring of
    # spdl_ref.ode.symplectic.stormer_verlet"): its class, then its defining module
    source = get_source_line(node)[0] or ""
    found = re.search(r"docstring of ([\w.]+)", source)
    if found:
        parts = found.group(1).split(".")
        candidates += [".".join([*parts[:cut], target]) for cut in range(len(parts), 1, -1)]
    domain = env.get_domain("py")
    for candidate in candidates:
        path = documented_path(candidate)
        if path is None:
            continue
        # an attribute without an entry of its own (a dataclass field, an inherited method)
        # links to its documented class
        owner = path
        while owner.count(".") > 1 and owner not in domain.objects:
            owner = owner.rsplit(".", 1)[0]
        entry = domain.objects.get(owner)
        if entry is not None and (owner == path or entry.objtype == "class"):
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, path
            )
    return None


def setup(app):
    app.connect("missing-reference", resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
