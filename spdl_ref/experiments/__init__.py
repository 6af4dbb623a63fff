"""Experiments of the book: what each chapter and ``python -m spdl_ref.reproduce`` run.

Each experiment takes a budget (``"ci"`` or ``"paper"``, :func:`spdl_ref.config.budget`) and a
device, builds its models and data there, and returns plain results (dicts of numbers). It is
split into independent tasks so that a sweep can run locally or on a cluster; see
:class:`Experiment`. The experiments sit apart from the layers and algorithms they use.
"""

from ._registry import Experiment, aggregate, get, names, register, run_task, run_tasks

__all__ = ["Experiment", "aggregate", "get", "names", "register", "run_task", "run_tasks"]
