"""Shared machinery of the bad-input tables (tests/test_bad_inputs_*.py).

A case is one call with one bad argument. It passes when

* the call raises the expected error (a ``ValueError``/``TypeError`` unless the case names one of
  the library's own errors),
* the innermost frame of the traceback lies in ``spdl_ref`` (our check fired, not torch, escnn or
  NumPy deep inside),
* the message names the argument (the word ``arg`` occurs in it), and
* no module built for the case changed: every module passed through :func:`track` has the same
  ``state_dict`` after the failed call as when it was built.

The table of each subpackage is a list of :class:`Case`; :func:`check_coverage` fails when a
public name of the subpackage (its ``__all__``) has no case and no stated exemption.
"""

from __future__ import annotations

import copy
import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch

import spdl_ref

_PACKAGE_DIR = os.path.dirname(os.path.abspath(spdl_ref.__file__))
_TRACKED: list = []


def track(module: torch.nn.Module) -> torch.nn.Module:
    """Record ``module``'s state now; :func:`run_case` checks it is unchanged after the call."""
    _TRACKED.append((module, copy.deepcopy(module.state_dict())))
    return module


@dataclass
class Case:
    """One bad call: ``call()`` must raise ``error`` naming ``arg``."""

    name: str  #: the public name exercised, as "subpackage.Name"
    call: Callable[[], object]
    arg: str  #: the argument the message must name
    error: type | tuple = (ValueError, TypeError)
    env: dict = field(default_factory=dict)  #: environment variables set for the call
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}:{self.arg}{'-' + self.note if self.note else ''}"


def run_case(case: Case, monkeypatch) -> None:
    _TRACKED.clear()
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(case.error) as info:
        case.call()
    tb = info.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = os.path.abspath(tb.tb_frame.f_code.co_filename)
    assert where.startswith(_PACKAGE_DIR), (
        f"{case.id}: {info.typename} raised in {where}:{tb.tb_lineno}, not by spdl_ref: "
        f"{info.value}"
    )
    assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(case.arg)}(?![A-Za-z0-9_])", str(info.value)), (
        f"{case.id}: the message does not name {case.arg!r}: {info.value}"
    )
    for module, before in _TRACKED:
        after = module.state_dict()
        assert before.keys() == after.keys(), f"{case.id}: state_dict keys changed"
        for k, v in before.items():
            assert torch.equal(v, after[k]), f"{case.id}: {type(module).__name__}.{k} changed"
    _TRACKED.clear()


def ids(cases) -> list:
    """Unique pytest ids for a table."""
    seen: dict = {}
    out = []
    for c in cases:
        i = c.id
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}-{seen[i]}")
    return out


def public_names(modules) -> dict:
    """``"short.Name" -> object`` for each callable in the ``__all__`` of each ``(short, path)``."""
    names = {}
    for short, path in modules:
        mod = importlib.import_module(path)
        for n in mod.__all__:
            if callable(getattr(mod, n)):
                names[f"{short}.{n}"] = getattr(mod, n)
    return names


def check_coverage(cases, modules, exempt: dict) -> None:
    """Fail when a public callable of ``modules`` has neither a case nor an exemption.

    A name re-exported by several modules (``spdl_ref.invertible.CayleyOrthogonal`` and
    ``spdl_ref.invertible.orthogonal.CayleyOrthogonal``) is covered by a case under either name.
    """
    names = public_names(modules)
    covered = {c.name for c in cases} | set(exempt)
    stale = sorted(covered - set(names))
    assert not stale, f"cases or exemptions for names that are not public: {stale}"
    covered_objects = {id(names[n]) for n in covered}
    missing = sorted(n for n, obj in names.items() if id(obj) not in covered_objects)
    assert not missing, f"public names without a bad-input case: {missing}"
