"""What the book shows of each chapter is clean: no log noise in stored outputs, short code lines.

Stored outputs are what the reader sees. They carry no profiler, allocator or warning lines
(whatever a cell's tags: such noise is silenced where it starts, not hidden), no error output,
and progress bars only in cells tagged ``nbval-ignore-output`` (whose output legitimately varies).
Code lines have at most 100 characters, what a page shows without scrolling sideways.
"""

import re

import nbformat
import pytest
from _book import ROOT

NOTEBOOKS = sorted(
    p for p in (ROOT / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
MAX_LINE = 100

#: Noise that no stored output may contain, with what produces it.
NOISE = {
    "profiler log": re.compile(r"USDT:|STAGE:|profiler_(start|stop)|Completed Stage|libkineto"),
    "allocator or C++ log": re.compile(
        r"CPUAllocator|^\[?[WEI]\d{4} \d\d:|^\[W [\w.]+:\d+\]", re.M
    ),
    "Python warning": re.compile(r"\b\w*Warning\b:|^Warning\b|warnings\.warn\(", re.M),
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
}
#: A progress bar (tqdm): allowed only in cells whose output nbval ignores.
PROGRESS = re.compile(r"\d+(\.\d+)?\s*(it|s)/(s|it)\b|\|\s*\d+/\d+ \[\d")


def _texts(output):
    if output.output_type == "stream":
        yield output.name, output.text
    elif output.output_type == "error":
        yield "error", "\n".join([f"{output.ename}: {output.evalue}", *output.traceback])
    else:
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/"):
                yield mime, value if isinstance(value, str) else "".join(value)


def _problems(nb):
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        ignored = "nbval-ignore-output" in cell.metadata.get("tags", [])
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                out.append((i, "error output", output.ename))
            for kind, text in _texts(output):
                for name, pattern in NOISE.items():
                    found = pattern.search(text)
                    if found:
                        line = text[text.rfind("\n", 0, found.start()) + 1 :][:120]
                        out.append((i, name, line.split("\n")[0]))
                if not ignored and PROGRESS.search(text):
                    out.append((i, "progress bar in a cell whose output nbval checks", kind))
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_carry_no_noise(path):
    problems = _problems(nbformat.read(path, as_version=4))
    assert not problems, "\n".join(f"cell {i}: {what}: {line!r}" for i, what, line in problems)


#: Notebooks another branch is rewriting (issue 13 splits the work by chapter); strict, so the
#: mark fails as soon as the lines are short, and must then be removed.
LONG_LINES_PENDING = {
    "ch3_optimal_control": "Chapter 3's code lines are shortened on the Chapter 3 branch",
}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(reason=LONG_LINES_PENDING[p.stem], strict=True))
        if p.stem in LONG_LINES_PENDING
        else p
        for p in NOTEBOOKS
    ],
    ids=lambda p: p.stem,
)
def test_code_lines_fit_the_page(path):
    nb = nbformat.read(path, as_version=4)
    long = [
        (i, len(line), line)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
        if len(line) > MAX_LINE
    ]
    assert not long, "\n".join(f"cell {i}: {n} characters: {line}" for i, n, line in long)


def test_the_checks_catch_what_they_are_for():
    def cell(text, name="stderr", tags=()):
        c = nbformat.v4.new_code_cell("pass", metadata={"tags": list(tags)})
        c.outputs = [nbformat.v4.new_output("stream", name=name, text=text)]
        return c

    usdt = "USDT:2026-11-29 04:51:48 9329:9329 SyncActivityProfilerHandler.cpp:52] profiler_start\n"
    bar = "fit:  40%|████      | 600/1500 [00:04<00:06, 140.2it/s, E=1.2e-02]"
    samples = {
        "profiler log": cell(usdt, tags=["nbval-ignore-output"]),
        "allocator or C++ log": cell("[W CPUAllocator.cpp:249] Memory block was freed\n"),
        "Python warning": cell("/x/y.py:3: UserWarning: something happened\n"),
        "progress bar in a cell whose output nbval checks": cell(bar),
    }
    for what, c in samples.items():
        nb = nbformat.v4.new_notebook(cells=[c])
        assert [p[1] for p in _problems(nb)] == [what], what
    quiet = nbformat.v4.new_notebook(
        cells=[cell(bar, tags=["nbval-ignore-output"]), cell("loss 0.25 -> 0.01\n", "stdout")]
    )
    assert _problems(quiet) == []
