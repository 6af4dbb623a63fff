"""Package-level promises: light imports, documented public API."""

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys

import pytest


def _public_module_names():
    """spdl_ref and every module of it without a private component (escnn's included)."""
    import spdl_ref

    names = ["spdl_ref"]
    for info in pkgutil.walk_packages(spdl_ref.__path__, "spdl_ref."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


PUBLIC_MODULES = _public_module_names()


def test_import_is_light():
    code = (
        "import sys, spdl_ref; heavy = [m for m in ('matplotlib', 'escnn', 'jupyter_client', "
        "'IPython', 'geoopt') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SECTIONS = ("control", "data", "equivariant", "experiments", "invertible", "loop", "ode", "optim")


def test_sections_load_lazily():
    # import spdl_ref.config (and import spdl_ref) import no section; an attribute access does.
    code = (
        "import sys, spdl_ref.config, spdl_ref\n"
        f"sections = {SECTIONS!r}\n"
        "before = [s for s in sections if 'spdl_ref.' + s in sys.modules]\n"
        "net = spdl_ref.ode.ResNet\n"
        "after = [s for s in sections if 'spdl_ref.' + s in sys.modules]\n"
        "print(before, after, spdl_ref.__version__ != '', 'ode' in dir(spdl_ref))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "['ode']", "True", "True"], out.stdout
    with pytest.raises(AttributeError, match="no attribute 'odes'"):
        importlib.import_module("spdl_ref").odes  # noqa: B018


def _public_objects():
    for name in PUBLIC_MODULES:
        mod = importlib.import_module(name)
        for attr in getattr(mod, "__all__", []):
            obj = getattr(mod, attr)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{name}.{attr}", obj


# The review numbers its equations (1)-(63); a little headroom for a slip of the count.
MAX_EQUATION = 70
# "(N)" alone: not a call f(1), a superscript z^{(1)}, a subscript or a tuple "(N, 1)".
_EQUATION = re.compile(r"(?<![\w{^_(\[,])\((\d{1,3})\)(?![\w(])")
_PLACE = re.compile(
    r"\b(Sections?|Theorems?|Examples?|Figures?|Definition|Lemma|Proposition)\s+\d+(\.\d+)*|§\s*\d+"
)


def cites_the_review(doc: str) -> bool:
    """Does ``doc`` name an equation (N) of the review, a section, theorem, example or figure?"""
    if _PLACE.search(doc):
        return True
    return any(1 <= int(n) <= MAX_EQUATION for n in _EQUATION.findall(doc))


def test_cites_the_review_rejects_what_is_not_a_citation():
    assert cites_the_review("The field (8) of a ResNet.")
    assert cites_the_review("Adam, eqs. (53)-(54).")
    assert cites_the_review("See Section 4.1.2 and Theorem 3.1.")
    assert cites_the_review("As in §5.2.")
    for doc in [
        "A tensor of shape (N, 1).",
        "Returns f(1) and g(2).",
        "The states z^{(1)} and z_(2).",
        "Tuples (1,) are flat.",
        "Seventy-one is out of range (71), so is (0).",
        "A helper.",
    ]:
        assert not cites_the_review(doc), doc


@pytest.mark.parametrize(
    "qualname, obj", list(_public_objects()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_objects_are_documented_with_their_source(qualname, obj):
    # The object's own docstring (not its module's, not an inherited one) names what it
    # implements: an equation, section, theorem, example or figure of the review.
    doc = inspect.cleandoc(obj.__doc__ or "")
    assert len(doc) > 40, f"{qualname} needs a docstring"
    assert cites_the_review(doc), f"{qualname}: its docstring cites no equation or section"


def _public_classes():
    for qualname, obj in _public_objects():
        if inspect.isclass(obj):
            yield qualname, obj


@pytest.mark.parametrize(
    "qualname, cls", list(_public_classes()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_forward_and_inverse_have_docstrings_of_their_own(qualname, cls):
    # The book hides inherited docstrings (autodoc_inherit_docstrings = False), so an
    # undocumented forward would show nothing; nn.Module's text says nothing about the layer.
    for klass in cls.__mro__:
        if not klass.__module__.startswith("spdl_ref"):
            continue
        for method in ("forward", "inverse", "log_abs_det_jacobian", "forward_and_log_det"):
            f = klass.__dict__.get(method)
            if f is not None:
                assert f.__doc__, f"{klass.__module__}.{klass.__qualname__}.{method}: no docstring"
