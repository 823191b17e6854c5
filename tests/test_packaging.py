"""The project is one import package, `siammask`: it installs and runs beside distributions named like its folders.

Most ML environments have HuggingFace `datasets` installed; the PyPI names `utils`, `models` and `tools` exist too.
These tests make a scratch virtualenv next to the project's (its packages reachable through a .pth line), install
stand-in distributions with those names into it, then the project (editable, and as a wheel), and run the tools
from another folder. The stand-ins must stay importable and the tools must not pick them up.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STANDINS = ("datasets", "utils", "models", "tools")
CONSOLE_SCRIPTS = ("siammask-train", "siammask-train-refine", "siammask-test", "siammask-eval", "siammask-demo",
                   "siammask-tune-vot")


def _run(cmd: list[str], cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    full_env.update(env)
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=full_env)


def _check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return proc


def _make_standin(folder: Path, name: str) -> Path:
    """A minimal distribution `name` whose package records who it is."""
    src = folder / f"standin-{name}"
    (src / name).mkdir(parents=True)
    (src / name / "__init__.py").write_text(f"STANDIN = {name!r}\nclass DatasetError(Exception):\n    pass\n")
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "0.0.1"

        [tool.setuptools]
        packages = ["{name}"]
        """))
    return src


def _scratch_venv(root: Path) -> Path:
    """A virtualenv without pip whose site-packages also sees this interpreter's packages (torch, cv2, ...)."""
    venv = root / "venv"
    _check(_run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root))
    python = venv / "bin" / "python"
    site = _check(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root))
    (Path(site.stdout.strip()) / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _pip(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _check(_run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index",
                        "--no-deps", "--no-build-isolation", *args], cwd=cwd, SIAMMASK_NO_EXT="1"))


@pytest.fixture(scope="module")
def standin_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("standins")
    python = _scratch_venv(root)
    _pip(python, *[str(_make_standin(root, name)) for name in STANDINS], cwd=root)
    return python


def _check_tools(python: Path, cwd: Path) -> None:
    """The stand-ins stay importable, the tools run from a folder outside the checkout, console scripts exist."""
    code = ("import datasets, utils, models, tools\n"
            "assert [m.STANDIN for m in (datasets, utils, models, tools)] == ['datasets', 'utils', 'models', 'tools']\n"
            "import siammask.datasets, siammask.utils.config, siammask.models, siammask.tracker, siammask.evaluation\n"
            "import siammask.tools.test\n"
            "assert not hasattr(siammask.datasets, 'STANDIN') and hasattr(siammask.datasets, 'DataError')\n"
            "import datasets as again\n"
            "assert again.STANDIN == 'datasets'\n"
            "print('ok')\n")
    assert _check(_run([python, "-c", code], cwd=cwd)).stdout.strip() == "ok"
    for tool in ("train_siammask", "train_siammask_refine", "test", "eval", "demo", "tune_vot"):
        proc = _check(_run([python, REPO / "tools" / f"{tool}.py", "--help"], cwd=cwd))
        assert "usage:" in proc.stdout
    bindir = python.parent
    for script in CONSOLE_SCRIPTS:
        assert "usage:" in _check(_run([bindir / script, "--help"], cwd=cwd)).stdout
    # real work through the packages: a user error of eval is one line and exit 2, not an ImportError
    proc = _run([bindir / "siammask-eval", "--data-root", cwd / "nowhere", "--result_dir", cwd / "none"], cwd=cwd)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "error:" in proc.stderr


@pytest.mark.slow
def test_editable_install_beside_standin_packages(standin_env: Path, tmp_path: Path) -> None:
    _pip(standin_env, "-e", str(REPO), cwd=tmp_path)
    _check_tools(standin_env, tmp_path)


@pytest.mark.slow
def test_wheel_beside_standin_packages(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _check(_run([sys.executable, "-m", "pip", "wheel", "-q", "--no-index", "--no-deps", "--no-build-isolation",
                 "-w", wheels, REPO], cwd=tmp_path, SIAMMASK_NO_EXT="1"))
    wheel = next(wheels.glob("siammask-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "siammask/models/siammask.py" in names and "siammask/utils/region/__init__.py" in names
    assert not any(n.split("/")[0] in STANDINS for n in names), "the wheel installs a generic top-level package"
    python = _scratch_venv(tmp_path)
    _pip(python, *[str(_make_standin(tmp_path, name)) for name in STANDINS], str(wheel), cwd=tmp_path)
    _check_tools(python, tmp_path)


def test_no_bare_top_level_imports() -> None:
    """Every import of the project's own code goes through `siammask` (or is relative inside a package)."""
    import ast
    import subprocess as sp

    files = sp.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    bare = []
    for name in files:
        tree = ast.parse((REPO / name).read_text(encoding="utf-8"), filename=name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            bare += [f"{name}:{node.lineno}: {m}" for m in mods
                     if m.split(".")[0] in STANDINS + ("tracker", "evaluation", "training", "serving")]
    assert not bare, "bare top-level imports (use siammask.*):\n" + "\n".join(bare)
