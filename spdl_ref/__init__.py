"""spdl_ref: reference code for the review *Structure preserving deep learning*.

Celledoni, Ehrhardt, Etmann, McLachlan, Owren, Schönlieb and Sherry (2021). One subpackage per
section of the review:

* :mod:`spdl_ref.config` -- device, experiment budget, seeding;
* :mod:`spdl_ref.data` -- synthetic data sets made on the fly;
* :mod:`spdl_ref.ode` -- ResNets as ODE discretisations and their integrators (Sections 1-2);
* :mod:`spdl_ref.control` -- deep learning as optimal control: adjoints, MSA, regularisers (Section
  3);
* :mod:`spdl_ref.invertible` -- invertible layers, memory-efficient backpropagation, normalising
  flows (Section 4);
* :mod:`spdl_ref.equivariant` -- group actions, equivariant kernels and denoisers (Section 5; escnn
  is imported only by the modules that build escnn layers);
* :mod:`spdl_ref.optim` -- structure-exploiting optimisers (Section 6);
* :mod:`spdl_ref.train` -- a small training loop for the empirical risk (4);
* :mod:`spdl_ref.plotting` -- the book's figure style (imports matplotlib, so not imported here).

``import spdl_ref`` imports neither matplotlib, jupyter nor escnn, and no section: each
subpackage is imported on first use (``spdl_ref.ode`` works as an attribute, PEP 562), so that
``import spdl_ref.config`` stays light.
"""

import importlib
from typing import Any

from . import config
from .config import budget, by_budget, device, seed_everything

#: The sections and modules that ``spdl_ref.<name>`` imports on first use.
_LAZY = (
    "control",
    "data",
    "equivariant",
    "experiments",
    "invertible",
    "loop",
    "ode",
    "optim",
    "plotting",
    "train",
)


def __getattr__(name: str) -> Any:
    """Import the section ``spdl_ref.<name>`` on first use (PEP 562)."""
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _version() -> str:
    """The version, single-sourced from ``[project] version`` in pyproject.toml.

    An installed package (wheel or editable) reads it from its metadata; a source checkout
    imported without installation reads pyproject.toml beside the package.
    """
    from importlib import metadata

    try:
        return metadata.version("spdl-ref")
    except metadata.PackageNotFoundError:
        pass
    import pathlib
    import re

    pyproject = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        # The first version key of the [project] table (tomllib is Python >= 3.11 only).
        table = re.search(r"^\[project\]$(.*?)(?=^\[|\Z)", pyproject.read_text(), re.M | re.S)
        found = table and re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.M)
        if found:
            return found.group(1)
    return "0+unknown"


__version__ = _version()

__all__ = [
    "budget",
    "by_budget",
    "config",
    "control",
    "data",
    "device",
    "equivariant",
    "invertible",
    "ode",
    "optim",
    "seed_everything",
    "train",
]
