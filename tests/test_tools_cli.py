"""Every command-line tool prints a usage line with --help, and importing a tool parses nothing and starts nothing."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = sorted(p for p in (ROOT / "tools").glob("*.py") if p.name != "__init__.py")
SCRIPTS = sorted((ROOT / "test").glob("train_*.sh")) + [ROOT / "make.sh"]


@pytest.mark.parametrize("tool", TOOLS, ids=lambda p: p.name)
def test_tool_help(tool: Path) -> None:
    proc = subprocess.run([sys.executable, str(tool), "--help"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")


@pytest.mark.parametrize("tool", TOOLS, ids=lambda p: p.name)
def test_tool_import_has_no_side_effects(tool: Path, tmp_path: Path) -> None:
    """In a fresh interpreter (collection may have imported the tools already), with an argv the tool would reject,
    from an empty folder: importing parses nothing, prints nothing and writes nothing."""
    code = (f"import sys; sys.argv = ['x', '--definitely-not-a-flag']\n"
            f"import siammask.tools.{tool.stem} as m\n"
            f"assert callable(m.get_args_parser) and callable(m.main)\n"
            f"assert callable(getattr(m, 'cli', None)), 'no cli() for the console script'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and not list(tmp_path.iterdir())


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.exists()], ids=lambda p: p.name)
def test_shell_script_usage(script: Path) -> None:
    proc = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage" in (proc.stdout + proc.stderr).lower()
