"""Full-scale numbers in the book: the "ci vs paper" table of a chapter cell.

``python -m spdl_ref.reproduce NAME --budget paper`` writes ``results/paper/NAME/result.json``
(see :mod:`spdl_ref.reproduce`); committed, such artifacts are the book's source for the
review's own settings. A chapter runs its experiment at the ``ci`` budget, shows that figure,
and puts the numbers of both budgets side by side with :func:`ci_vs_paper`:

>>> from spdl_ref.experiments.results import ci_vs_paper
>>> ci = [{"model": "ordinary", "runs": 2, "loss": {"mean": 0.5, "std": 0.01}}]
>>> table = ci_vs_paper("nothing_yet", ["loss"], ci=ci, root="/nonexistent")
>>> for line in str(table).splitlines()[:3]:
...     print(line)
nothing_yet: ci vs paper (mean ± std over n runs)
metric  ci                paper
loss    0.5 ± 0.01 (n=2)  pending
>>> print(table.pending)  # doctest: +NORMALIZE_WHITESPACE
pending: no paper-budget artifact yet
(run `python -m spdl_ref.reproduce nothing_yet --budget paper`)

Where no paper artifact exists the table says so, with the command that makes one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

__all__ = ["RESULTS", "Comparison", "artifact_path", "ci_vs_paper", "load", "pending_message"]

#: The artifact folder of the source checkout (``results/`` beside ``spdl_ref``).
RESULTS = Path(__file__).resolve().parents[2] / "results"

_STATS = ("mean", "std")


def artifact_path(name: str, budget: str, root: Path | str | None = None) -> Path:
    """``root/<budget>/<name>/result.json`` (``root`` defaults to :data:`RESULTS`).

    The layout :func:`spdl_ref.reproduce.reproduce` writes; Section: reproduction of the
    review's Figures 1-4.
    """
    for value, what in ((name, "name"), (budget, "budget")):
        if not isinstance(value, str) or not value or "/" in value or value.startswith("."):
            raise ValueError(f"{what} must be a plain folder name, got {value!r}")
    return Path(RESULTS if root is None else root) / budget / name / "result.json"


def load(name: str, budget: str, root: Path | str | None = None) -> dict[str, Any] | None:
    """The record of ``artifact_path(name, budget, root)``, or ``None`` where there is none.

    A file that is not such a record (not JSON, another experiment or budget, no metrics) is a
    ``ValueError`` naming the file. Section: reproduction (Figures 1-4 at full scale).
    """
    path = artifact_path(name, budget, root)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable JSON artifact: {err}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(record).__name__}")
    for key, want in (("experiment", name), ("budget", budget)):
        if record.get(key) != want:
            raise ValueError(f"{path} has {key} {record.get(key)!r}, expected {want!r}")
    aggregated = record.get("metrics", {}).get("aggregated") if isinstance(record, dict) else None
    if not isinstance(aggregated, list):
        raise ValueError(f"{path} has no metrics.aggregated list")
    return record


def pending_message(name: str) -> str:
    """The line a table shows where ``name`` has no paper-budget artifact yet.

    The tables compare the book's runs with the review's numbers (Sections 1-6)."""
    artifact_path(name, "paper")  # name must be a plain folder name, as in the command
    return (
        "pending: no paper-budget artifact yet "
        f"(run `python -m spdl_ref.reproduce {name} --budget paper`)"
    )


def _is_stat(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, Mapping) and all(k in value for k in _STATS)


def _params(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "runs" and not _is_stat(v)}


def _label_value(row: Mapping[str, Any], key: str) -> Any:
    """A row's value of ``key`` for its label: a task parameter, or a metric's mean (a setting
    such as a regularisation weight that the run reports rather than takes as a task key)."""
    value = row.get(key)
    return value["mean"] if _is_stat(value) else value


def _provenance(record: Mapping[str, Any], path: Path, root: Path | str | None) -> str:
    shown = Path("results") / path.relative_to(Path(RESULTS)) if root is None else path
    commit = record.get("git_commit")
    commit = (
        f"commit {commit[:7]}{'+dirty' if record.get('git_dirty') else ''}"
        if commit
        else ("no commit")
    )
    runs = f"{record.get('runs', '?')} run(s)"
    if record.get("stopped_by_time_limit"):
        runs += f" of {record.get('runs_requested', '?')} (time limit)"
    device = record.get("device", "?")
    if record.get("device_name") and record.get("device_name") != device:
        device += f" ({record['device_name']})"
    seconds = record.get("seconds")
    took = f", {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
    return f"{shown}: {runs} on {device}, {commit}{took}"


@dataclass(frozen=True)
class Comparison:
    """The "ci vs paper" table of one experiment (made by :func:`ci_vs_paper`).

    ``rows`` holds one dict per (row label, metric): ``label`` (the task parameters that tell
    the rows apart), ``metric``, and ``ci``/``paper``: ``{"mean", "std", "runs"}`` or ``None``.
    ``pending`` is :func:`pending_message` where there is no paper artifact, else ``None``.
    Printing it gives the table as plain text. Section: reproduction (Figures 1-4).
    """

    name: str
    by: tuple[str, ...]
    rows: list[dict[str, Any]]
    pending: str | None
    sources: dict[str, str] = field(default_factory=dict)
    digits: int = 3

    def _cell(self, stat: Mapping[str, Any] | None, budget: str) -> str:
        if stat is None:
            return "pending" if budget == "paper" and self.pending else "-"
        mean, std, n = stat["mean"], stat["std"], stat["runs"]
        text = f"{mean:.{self.digits}g}"
        if n > 1:
            text += f" ± {std:.2g}"
        return f"{text} (n={n})"

    def __str__(self) -> str:
        header = [*self.by, "metric", "ci", "paper"]
        body = [
            [
                *(str(r["label"].get(k, "-")) for k in self.by),
                r["metric"],
                self._cell(r["ci"], "ci"),
                self._cell(r["paper"], "paper"),
            ]
            for r in self.rows
        ]
        widths = [max(len(line[j]) for line in [header, *body]) for j in range(len(header))]
        lines = [f"{self.name}: ci vs paper (mean ± std over n runs)"]
        for line in [header, *body]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        lines.append(f"ci: {self.sources.get('ci', 'no ci artifact')}")
        lines.append(f"paper: {self.pending or self.sources.get('paper', '')}")
        return "\n".join(lines)

    __repr__ = __str__


def _aggregated(source: Any, what: str) -> list[Mapping[str, Any]]:
    if isinstance(source, Mapping):
        source = source.get("metrics", {}).get("aggregated")
    if not isinstance(source, Sequence) or isinstance(source, str):
        raise TypeError(
            f"{what} must be the rows of spdl_ref.experiments.aggregate() or a result record, "
            f"got {type(source).__name__}"
        )
    for row in source:
        if not isinstance(row, Mapping) or not isinstance(row.get("runs"), int):
            raise TypeError(f"{what} must hold aggregated rows (dicts with 'runs'), got {row!r}")
    return list(source)


def ci_vs_paper(
    name: str,
    metrics: Sequence[str],
    *,
    ci: Any = None,
    paper: Any = None,
    by: Sequence[str] | None = None,
    root: Path | str | None = None,
    digits: int = 3,
) -> Comparison:
    """The chosen ``metrics`` of experiment ``name`` at both budgets, mean ± std over runs.

    ``ci`` is the chapter's own run (the rows of :func:`spdl_ref.experiments.aggregate`, or a
    result record); ``None`` reads ``root/ci/name/result.json``. The paper numbers come from
    ``paper`` in the same way (a chapter run at ``SPDL_BUDGET=paper`` passes its rows there:
    ``ci_vs_paper(name, metrics, **{budget: rows})``), else from
    ``root/paper/name/result.json`` (``root``: :data:`RESULTS`); where that is missing the
    table says ``pending`` with the command that makes it. Rows are told apart by the task
    parameters ``by`` (default: those whose value differs between the rows of one budget; a
    metric named in ``by`` labels a row by its mean); rows of the two budgets with the same
    label share a line. Section: reproduction of the
    review's Figures 1-4 (a chapter shows its ci figure and these numbers beside it).
    """
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
        raise TypeError(f"metrics must be a non-empty list of metric names, got {metrics!r}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be an integer >= 1, got {digits!r}")
    sources: dict[str, str] = {}
    if ci is None:
        record = load(name, "ci", root)
        ci_rows = [] if record is None else _aggregated(record, "the ci artifact")
        if record is not None:
            sources["ci"] = _provenance(record, artifact_path(name, "ci", root), root)
    else:
        ci_rows = _aggregated(ci, "ci")
        sources["ci"] = "this run"
    if paper is None:
        paper_record = load(name, "paper", root)
        paper_rows = [] if paper_record is None else _aggregated(paper_record, "the paper artifact")
        if paper_record is not None:
            sources["paper"] = _provenance(paper_record, artifact_path(name, "paper", root), root)
    else:
        paper_record = paper
        paper_rows = _aggregated(paper, "paper")
        sources["paper"] = "this run"
    available = {k for row in ci_rows + paper_rows for k, v in row.items() if _is_stat(v)}
    unknown = [m for m in metrics if m not in available]
    if unknown and (ci_rows or paper_rows):
        raise ValueError(
            f"unknown metric(s) {unknown} for {name!r}; available: {sorted(available) or 'none'}"
        )
    if by is None:
        keys: list[str] = []
        for rows in (ci_rows, paper_rows):
            for row in rows:
                for k in _params(row):
                    if k not in keys and len({json.dumps(_params(r).get(k)) for r in rows}) > 1:
                        keys.append(k)
        by = keys
    by = tuple(by)
    labels: list[str] = []
    table: dict[str, dict[str, Any]] = {}
    for budget, rows in (("ci", ci_rows), ("paper", paper_rows)):
        for row in rows:
            label = {k: _label_value(row, k) for k in by}
            key = json.dumps(label, sort_keys=True)
            if key not in table:
                labels.append(key)
                table[key] = {"label": label}
            if budget in table[key]:
                raise ValueError(f"two {budget} rows of {name!r} share the label {label}; pass by=")
            table[key][budget] = row
    out = []
    for key in labels:
        entry = table[key]
        for metric in metrics:
            cells: dict[str, dict[str, Any] | None] = {}
            for budget in ("ci", "paper"):
                found: Mapping[str, Any] | None = entry.get(budget)
                stat = found.get(metric) if found is not None else None
                cells[budget] = (
                    {"mean": stat["mean"], "std": stat["std"], "runs": found["runs"]}
                    if found is not None and _is_stat(stat)
                    else None
                )
            out.append({"label": entry["label"], "metric": metric, **cells})
    pending = pending_message(name) if paper_record is None else None
    return Comparison(name, by, out, pending, sources, digits)
