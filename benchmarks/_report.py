"""What every benchmark writes: a Markdown table and, next to it, a PNG plot drawn from the table.

Each benchmark ends with :func:`write`, which stores ``benchmarks/results/<name>.md`` (with a
line on the machine that made it) and draws ``benchmarks/results/<name>.png`` with the
benchmark's own ``plot(rows)``, from the rows of that table. Because the plot is drawn from the
table alone, a committed table can be drawn again without measuring again::

    python benchmarks/_report.py               # redraw every plot from its committed table
    python benchmarks/_report.py flow_peers    # one of them
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import platform
import sys

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: The benchmarks, each ``benchmarks/<name>.py`` with a table ``results/<name>.md``.
BENCHMARKS = (
    "adjoint_torchdiffeq",
    "flow_peers",
    "invertible_memory",
    "optimiser_step",
    "stiefel_geoopt",
)


def machine() -> str:
    """One line on the machine: CPU model and cores, OS, Python, torch, and the GPU if any."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    parts = [
        f"{cpu}, {os.cpu_count()} logical cores",
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}",
        f"torch {torch.__version__}",
    ]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name()}")
    return "; ".join(parts)


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in ``text``, as dicts keyed by the header cells."""
    lines = [line.strip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None or start + 1 >= len(lines) or not set(lines[start + 1]) <= set("|-: "):
        raise ValueError("no Markdown table found")

    def cells(line):
        return [c.strip() for c in line.strip("|").split("|")]

    header = cells(lines[start])
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        values = cells(line)
        if len(values) != len(header):
            raise ValueError(f"row has {len(values)} cells, header {len(header)}: {line}")
        rows.append(dict(zip(header, values, strict=True)))
    return rows


def number(cell: str) -> float:
    """A table cell as a float (``"1,315,594"``, ``"2.1e-16"``, ``"1.43"``)."""
    return float(cell.replace(",", ""))


def _module(name: str):
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the benchmarks import _report
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def draw(name: str, plot=None, out: pathlib.Path | None = None) -> pathlib.Path:
    """Draw ``results/<name>.png`` (or ``out``) from the table ``results/<name>.md``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spdl_ref.plotting import use_style

    if plot is None:
        plot = _module(name).plot
    use_style()
    fig = plot(table_rows((RESULTS / f"{name}.md").read_text()))
    out = out or RESULTS / f"{name}.png"
    # no timestamp or version in the file: the same table gives the same bytes
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out


def write(name: str, lines: list[str], plot) -> None:
    """Store the table ``lines`` (plus the machine) as ``results/<name>.md`` and draw its plot."""
    RESULTS.mkdir(exist_ok=True)
    table = RESULTS / f"{name}.md"
    table.write_text("\n".join([*lines, "", f"Machine: {machine()}."]) + "\n")
    print(f"wrote {table} and {draw(name, plot)}")


def main(argv: list[str]) -> None:
    for name in argv or BENCHMARKS:
        print(f"drew {draw(name)}")


if __name__ == "__main__":
    main(sys.argv[1:])
