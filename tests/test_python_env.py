"""test/python_env.sh sets the virtualenv up once for both README commands (training, then tests, then training).

A checkout copy with a stand-in `.venv/bin/python` that records every `pip` call: the first training run and the
first test run install, every later run of either reuses what is there.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _checkout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "checkout"
    (root / "test").mkdir(parents=True)
    shutil.copy(REPO / "test" / "python_env.sh", root / "test")
    for name in ("requirements.txt", "requirements-test.txt", "constraints.txt", "setup.py"):
        shutil.copy(REPO / name, root)
    log = tmp_path / "pip.log"
    python = root / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/usr/bin/env bash\nif [ "$1" = -m ]; then echo "$*" >> "{log}"; exit 0; fi\n'
                      f'exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return root, log


def _source(root: Path, *flags: str) -> str:
    script = f'set -euo pipefail; source test/python_env.sh {" ".join(flags)}; echo "PYTHON=$PYTHON"'
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    proc = subprocess.run(["bash", "-c", script], cwd=root, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith(str(root / ".venv" / "bin" / "python"))
    return proc.stderr


def test_venv_set_up_once_for_training_and_tests(tmp_path: Path) -> None:
    root, log = _checkout(tmp_path)
    calls = lambda: log.read_text().count("pip install") if log.exists() else 0  # noqa: E731

    assert "setting up" in _source(root)  # training script: runtime requirements
    after_train = calls()
    assert after_train > 0
    assert "setting up" in _source(root, "--with-tests")  # test runner: adds the test requirements
    after_tests = calls()
    assert after_tests > after_train
    for flags in ((), ("--with-tests",), (), ("--with-tests",)):
        assert "setting up" not in _source(root, *flags)
    assert calls() == after_tests

    (root / "requirements-test.txt").write_text("pytest>=7.4\nshapely>=2.0\nhypothesis\n")
    assert "setting up" not in _source(root)  # training does not care about test requirements
    assert "setting up" in _source(root, "--with-tests")
