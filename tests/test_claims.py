"""The index of claims (book/claims.md) covers every open problem of the review and Section 7.

The review's open-problem subsections are listed here, not read from the review: the review is not
part of the repository. A row "covers" a subsection when its first cell names it ("§6.4.1", also
inside "§2.3 / §2.4.3"); every row of that kind must name code and a check, and every dotted
``spdl_ref`` name in it must exist.
"""

from __future__ import annotations

import importlib
import pathlib
import re

import pytest

CLAIMS = pathlib.Path(__file__).resolve().parent.parent / "book" / "claims.md"

#: The subsections of Sections 2.4, 3.4, 4.3, 5.3 and 6.4 ("Open problems") of the review.
OPEN_PROBLEMS = (
    "2.4.1",  # Geometric properties of Hamiltonian models
    "2.4.2",  # Measure preserving models
    "2.4.3",  # Manifold based models
    "3.4.1",  # Algorithms with builtin errors
    "3.4.2",  # Algorithms without gradients
    "3.4.3",  # Architectures, rates and topologies for deep limits
    "4.3.1",  # Fast inverses without coupling
    "4.3.2",  # Stability guarantees
    "5.3.1",  # Sample complexity bounds
    "5.3.2",  # Approximation properties
    "5.3.3",  # Approximate equivariance
    "6.4.1",  # Port-Hamiltonian optimisation methods
    "6.4.2",  # Convergence analysis for natural gradient optimisation
    "6.4.3",  # Generalisation properties by metric gradient flows
)

#: Rows that other branches add (the owners of Chapters 2-5). When a branch with its rows is
#: merged, delete its entries here so that the check applies to them too.
PENDING: frozenset[str] = frozenset()


def table_rows(text: str) -> list[list[str]]:
    """The cells of every data row of every table in ``text`` (header and rule rows left out)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or line.startswith(("| review item", "| ---")):
            continue
        # "\|" inside a cell is a literal bar (e.g. retraction="exp" \| "cayley").
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append([cell.strip() for cell in cells])
    return rows


def rows_for(item: str, rows: list[list[str]]) -> list[list[str]]:
    """The rows whose first cell names review item ``item`` ("§6.4.1", "§7"), not a sub-item."""
    pattern = re.compile(rf"§{re.escape(item)}(?![.\d])")
    return [row for row in rows if pattern.search(row[0])]


def resolves(dotted: str) -> bool:
    """Whether ``spdl_ref.a.b.c`` names a module or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


ROWS = table_rows(CLAIMS.read_text(encoding="utf-8"))


def test_rows_are_read():
    # The parser must see the tables: a format change that hides every row would pass the rest.
    assert len(ROWS) > 50
    assert rows_for("6.4", [["§6.4.1 (open problem)", "", "", ""]]) == []
    assert rows_for("2.4.3", [["§2.3 / §2.4.3, Lie-group integrator", "", "", ""]])


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(
            item,
            marks=pytest.mark.xfail(
                item in PENDING, reason="the row comes with another chapter's branch", strict=False
            ),
        )
        for item in (*OPEN_PROBLEMS, "7")
    ],
)
def test_every_open_problem_and_section_7_has_a_row_naming_code_and_a_check(item):
    rows = rows_for(item, ROWS)
    assert rows, f"book/claims.md has no row for §{item}"
    for row in rows:
        # an unescaped "|" (e.g. in $|x|$) splits a cell, in the rendered table as here
        assert len(row) == 4, f"§{item}: the row has {len(row)} cells, not 4"
        _, says, code, check = row
        assert says and code and check, f"§{item}: a row leaves a cell empty"
        # code: a backticked name or the chapter section that runs it
        assert "`" in code or "Chapter" in code, f"§{item}: the row names no code"
        for dotted in re.findall(r"`(spdl_ref(?:\.\w+)+)", code):
            assert resolves(dotted), f"§{item}: {dotted} does not exist"


def test_resolves_rejects_names_that_do_not_exist():
    assert resolves("spdl_ref.optim.port_hamiltonian.port_hamiltonian_step")
    assert not resolves("spdl_ref.optim.port_hamiltonian.no_such_step")
    assert not resolves("spdl_ref.no_such_module")


def test_every_row_has_four_cells():
    """An unescaped "|" inside a cell (e.g. $|x|$; write \\lvert x \\rvert) splits it in the
    rendered table and shifts the code and check columns."""
    bad = [row[0] for row in ROWS if len(row) != 4]
    assert not bad, f"rows of book/claims.md with other than 4 cells: {bad}"
