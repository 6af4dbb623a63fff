"""Ruff's lint and format checks are part of the test command, so CI fails on a finding.

The rules and the temporary per-file exceptions live in pyproject.toml ([tool.ruff]). Ruff runs
over the whole repository: the package, tests, benchmarks, tools, the chapter notebooks (ruff
reads their code cells) and the Python code blocks of Markdown files; it skips what .gitignore
names (the virtual environment, builds).
"""

import importlib.metadata
import json
import pathlib
import re
import subprocess
import sys

import tomllib
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _ruff(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def _pinned_ruff():
    (pin,) = [r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if "ruff" in r]
    name, version = pin.split("==")
    assert name.strip() == "ruff", pin
    return version.strip()


def test_ruff_is_the_pinned_version():
    # Another ruff release brings other rules and another formatting: pin it, and use the pin.
    assert importlib.metadata.version("ruff") == _pinned_ruff(), "run ./dev setup"


def test_ruff_lint_has_no_findings():
    out = _ruff("check", ".")
    assert out.returncode == 0, f"ruff check found problems:\n{out.stdout}{out.stderr}"


def test_ruff_format_changes_nothing():
    out = _ruff("format", "--check", "--diff", ".")
    assert out.returncode == 0, (
        f"ruff format would change these files (run `ruff format .`):\n{out.stdout}{out.stderr}"
    )


def _findings_without_per_file_ignores():
    out = _ruff(
        "check", ".", "--exit-zero", "--output-format", "json",
        "--config", "lint.per-file-ignores = {}",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    found = {}
    for item in json.loads(out.stdout):
        path = pathlib.Path(item["filename"]).resolve().relative_to(ROOT).as_posix()
        found.setdefault(path, set()).add(item["code"])
    return found


def test_per_file_ignores_are_still_needed():
    # The per-file exceptions are temporary: each listed code must still occur in its file, so
    # that an entry goes in the same commit that cleans the file, and the list only shrinks.
    ignores = PYPROJECT["tool"]["ruff"]["lint"].get("per-file-ignores", {})
    found = _findings_without_per_file_ignores()
    stale = []
    for pattern, codes in ignores.items():
        if re.search(r"[*?\[]", pattern):
            continue  # a glob; only exact paths are temporary exceptions
        if not (ROOT / pattern).is_file():
            stale.append(f"{pattern}: no such file")
            continue
        unused = [c for c in codes if not any(f.startswith(c) for f in found.get(pattern, ()))]
        if unused:
            stale.append(f"{pattern}: {unused} no longer occur")
    assert not stale, "remove from [tool.ruff.lint.per-file-ignores]:\n" + "\n".join(stale)


def test_pre_commit_runs_the_same_ruff():
    # .pre-commit-config.yaml (optional for contributors) installs the pinned ruff and runs the
    # same two commands as the tests above.
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    for hook_id, command in (("ruff-check", "ruff check"), ("ruff-format", "ruff format")):
        hook = hooks[hook_id]
        assert hook["entry"].startswith(command), hook
        assert hook["additional_dependencies"] == [f"ruff=={_pinned_ruff()}"], hook
    assert "jupyter" in hooks["ruff-check"]["types_or"]
    assert {"jupyter", "markdown"} <= set(hooks["ruff-format"]["types_or"])
