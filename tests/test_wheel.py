"""The package as a user gets it: built as a wheel, installed into a fresh virtual environment.

The tests run on an editable install, which would hide a module left out of the wheel, a file
the package reads from the source tree, or an import that only the development environment
satisfies. Here the wheel is built from a copy of the repository (nothing is written into the
checkout) without build isolation (no download), its contents are checked, and it is installed
into a new virtual environment that sees only the wheel's declared runtime dependencies (torch,
numpy, scipy, tqdm and what they need), reused from this environment through a .pth file rather
than installed again. There every module is imported and the README's example is run.
"""

import ast
import email.parser
import importlib.metadata
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile

import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Modules that need an optional extra, and that extra. Everything else imports with the
# runtime dependencies alone.
NEEDS_EXTRA = {
    "spdl_ref.plotting": "book",  # matplotlib
    "spdl_ref.equivariant.escnn_bridge": "equivariant",  # escnn
    "spdl_ref.equivariant.equivariant_denoiser": "equivariant",
}

pytestmark = pytest.mark.slow


def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def readme_example():
    """The first Python block of the README's "Using the package" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using the package", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel from a copy of the repository; return its path."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "_build", "build", "dist", "__pycache__", "*.egg-info", ".*_cache",
            ".hypothesis", ".ipynb_checkpoints",
        ),
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--isolated", "--quiet", "--wheel-dir", str(tmp / "dist"), str(src)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    (path,) = (tmp / "dist").glob("*.whl")
    return path


def test_wheel_carries_the_package_licence_and_marker_and_nothing_else(wheel):
    assert wheel.name.startswith(f"spdl_ref-{PROJECT['version']}-py3-none-any")
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = f"spdl_ref-{PROJECT['version']}.dist-info"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert "spdl_ref/py.typed" in names
    # Only the package and its metadata: no tests, chapters, notebooks, tools or benchmarks.
    assert {n.split("/")[0] for n in names} == {"spdl_ref", dist_info}
    assert not [n for n in names if n.endswith((".ipynb", "conftest.py"))]
    # Every module of the source tree, and no other.
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "spdl_ref").rglob("*.py")}
    assert {n for n in names if n.endswith(".py")} == source
    metadata = _wheel_metadata(wheel)
    assert metadata["Version"] == PROJECT["version"]
    assert metadata["License-Expression"] == PROJECT["license"]
    assert metadata.get_all("License-File") == ["LICENSE"]


def _wheel_metadata(wheel):
    dist_info = f"spdl_ref-{PROJECT['version']}.dist-info"
    text = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    return email.parser.Parser().parsestr(text)


def test_every_package_the_code_imports_is_declared(wheel):
    # Importing every module (below) cannot see imports made inside functions (tqdm, scipy and
    # geoopt are imported where they are used): read them from the source instead.
    requires = _wheel_metadata(wheel).get_all("Requires-Dist")
    declared = {_norm(Requirement(r).name) for r in requires}
    imported = set()
    for path in (ROOT / "spdl_ref").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"spdl_ref"}
    assert {"torch", "numpy"} <= third_party
    providers = importlib.metadata.packages_distributions()
    undeclared = {
        name: providers.get(name)
        for name in sorted(third_party)
        if not any(_norm(dist) in declared for dist in providers.get(name, ()))
    }
    assert not undeclared, f"imported but not in [project] dependencies or an extra: {undeclared}"


def _runtime_requirements(dist_metadata):
    """The requirements that hold without extras, on this interpreter."""
    for text in dist_metadata.get_all("Requires-Dist") or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            yield req


def _runtime_closure(wheel):
    """This environment's distributions that the wheel's runtime requirements pull in."""
    todo = [r.name for r in _runtime_requirements(_wheel_metadata(wheel))]
    seen = {}
    while todo:
        name = _norm(todo.pop())
        if name in seen:
            continue
        dist = importlib.metadata.distribution(name)  # missing here: the test cannot run
        seen[name] = dist
        todo += [r.name for r in _runtime_requirements(dist.metadata)]
    return seen


def _link_farm(dists, farm):
    """A folder of symbolic links to the top-level files of these distributions only."""
    farm.mkdir()
    for dist in dists.values():
        site = pathlib.Path(dist.locate_file(""))
        for top in {pathlib.PurePath(f).parts[0] for f in dist.files or ()}:
            if top in ("..", "__pycache__") or top.endswith(".pth") or (farm / top).exists():
                continue
            if (site / top).exists():
                (farm / top).symlink_to(site / top)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A fresh virtual environment with the wheel installed; return its python."""
    tmp = tmp_path_factory.mktemp("venv")
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    dists = _runtime_closure(wheel)
    _link_farm(dists, tmp / "runtime-deps")
    (pathlib.Path(site) / "_runtime_deps.pth").write_text(f"{tmp / 'runtime-deps'}\n")
    # pip resolves the wheel's requirements against what the new environment sees (it fails
    # if one is missing: nothing may be fetched), and installs the wheel itself.
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "--python", str(python), "install",
         "--no-index", "--no-cache-dir", "--quiet", str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return python


def _run(python, code, tmp_path):
    # -I: no current directory, PYTHONPATH or user site on the path, so the checkout's
    # spdl_ref cannot stand in for the installed one.
    return subprocess.run(
        [python, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


def test_installed_wheel_imports_every_module(installed, tmp_path):
    code = textwrap.dedent(
        """
        import importlib, json, pathlib, pkgutil, sys
        import spdl_ref
        result = {"file": spdl_ref.__file__, "version": spdl_ref.__version__, "failed": {}}
        for mod in pkgutil.walk_packages(spdl_ref.__path__, "spdl_ref."):
            try:
                importlib.import_module(mod.name)
            except ImportError as err:
                result["failed"][mod.name] = getattr(err, "name", None) or str(err)
        print(json.dumps(result))
        """
    )
    out = _run(installed, code, tmp_path)
    assert out.returncode == 0, out.stderr
    result = __import__("json").loads(out.stdout.splitlines()[-1])
    site = pathlib.Path(installed).parent.parent
    assert pathlib.Path(result["file"]).is_relative_to(site), result["file"]
    assert result["version"] == PROJECT["version"]
    # Only the modules that declare an extra may miss a package, and it must be in that extra.
    assert result["failed"].keys() == NEEDS_EXTRA.keys(), result["failed"]
    for module, extra in NEEDS_EXTRA.items():
        missing = result["failed"][module].split(".")[0]
        in_extra = {_norm(Requirement(r).name) for r in PROJECT["optional-dependencies"][extra]}
        assert _norm(missing) in in_extra, (module, missing, extra)


def test_installed_wheel_runs_the_readme_example(installed, tmp_path):
    example = readme_example()
    assert "spdl_ref" in example
    out = _run(installed, example, tmp_path)
    assert out.returncode == 0, f"{example}\n{out.stdout}{out.stderr}"
