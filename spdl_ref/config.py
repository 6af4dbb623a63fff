"""Run-time configuration: the device, the experiment budget and seeding (all Sections).

Every experiment in the book reads its sizes from :func:`budget`, so the same notebook runs in
minutes on a laptop CPU (``"ci"``) and at the review's own settings on a GPU (``"paper"``).
"""

from __future__ import annotations

import numbers
import os
import random
from typing import Any

import numpy as np
import torch

from . import _validate

__all__ = ["BUDGETS", "budget", "by_budget", "device", "seed_everything"]

#: The budget names that :func:`budget` may return.
BUDGETS = ("ci", "paper")


def device() -> torch.device:
    """The device experiments run on (those of Sections 1-6 of the review).

    ``cuda`` when a CUDA device is available, else ``cpu``. The environment variable
    ``SPDL_DEVICE`` (any string :class:`torch.device` accepts, e.g. ``cpu`` or ``cuda:1``)
    overrides the choice.
    """
    override = os.environ.get("SPDL_DEVICE", "").strip()
    if override:
        try:
            return torch.device(override)
        except RuntimeError as err:
            raise ValueError(f"SPDL_DEVICE={override!r} is not a valid torch device") from err
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def budget() -> str:
    """The experiment budget: ``"ci"`` on a CPU, ``"paper"`` where CUDA is available.

    It sizes every experiment of the book, those of Sections 1-6 of the review.

    ``SPDL_BUDGET=ci`` or ``SPDL_BUDGET=paper`` overrides the choice; any other value raises a
    :class:`ValueError` that lists the allowed names. ``"paper"`` runs the review's own settings
    (iterations, batch sizes, number of runs); ``"ci"`` shrinks them so the whole book executes
    on a 2-core CPU in minutes.
    """
    override = os.environ.get("SPDL_BUDGET")
    if override is not None and override.strip():
        name = override.strip()
        if name not in BUDGETS:
            raise ValueError(
                f"SPDL_BUDGET must be one of {', '.join(repr(b) for b in BUDGETS)}; got {name!r}"
            )
        return name
    return "paper" if torch.cuda.is_available() else "ci"


def by_budget(*, ci: Any, paper: Any) -> Any:
    """Return ``ci`` or ``paper`` according to :func:`budget` (experiments of Sections 1-6).

    Experiments state both sizes side by side, e.g.
    ``iterations = by_budget(ci=300, paper=1500)``. The two must be settings of the same kind:
    both numbers, or values of the same type (dicts with the same keys), so that a typo in one
    of them fails at both budgets rather than only on the machine that reads it.
    """
    both_numbers = all(
        isinstance(v, numbers.Number) and not isinstance(v, bool) for v in (ci, paper)
    )
    if not both_numbers and type(ci) is not type(paper):
        raise TypeError(
            f"ci and paper must be settings of the same type, got {type(ci).__name__} and "
            f"{type(paper).__name__}"
        )
    if isinstance(ci, dict) and set(ci) != set(paper):
        raise ValueError(
            f"ci and paper must have the same keys, got {sorted(map(str, set(ci) ^ set(paper)))} "
            "in only one of them"
        )
    return paper if budget() == "paper" else ci


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's random number generators (Sections 1-6 experiments).

    Returns a :class:`torch.Generator` seeded with ``seed`` for code that prefers an explicit
    generator. ``seed`` must be a non-negative integer.
    """
    seed = _validate.nonnegative_int(seed, "seed")
    random.seed(seed)
    # the legacy global generator on purpose: user code calling np.random.* is seeded too
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
