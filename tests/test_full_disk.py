"""A full disk during training, for real: a small tmpfs in a private mount namespace (needs root and `unshare`).

The first epoch checkpoint fits, the second file of the epoch (checkpoint_latest.pth) does not: the run stops with
one line naming that file and exit 2, leaves no temporary behind, and the complete checkpoint stays loadable.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import ROOT, builtin_root, tiny_config  # noqa: F401 - fixture and helper

pytestmark = pytest.mark.slow


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    mount = f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(str(tmp_path))}"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_full_disk_names_the_file_and_keeps_the_complete_checkpoint(tmp_path: Path,
                                                                     builtin_root: Path) -> None:  # noqa: F811
    mount = tmp_path / "disk"
    mount.mkdir()
    if not _can_mount_tmpfs(mount):
        pytest.skip("needs root and `unshare -m` to mount a small tmpfs (a real full disk)")
    config = tiny_config(tmp_path)
    snap = mount / "snap"
    train = [sys.executable, str(ROOT / "tools" / "train_siammask.py"), "--config", str(config), "--data-root",
             str(builtin_root), "-j", "0", "-b", "2", "--epochs", "2", "--device", "cpu", "--log-dir", "",
             "--backbone", "", "--log", "", "-s", str(snap)]
    # one epoch checkpoint of this model is ~96 MB: 150 MB holds checkpoint_e1.pth but not checkpoint_latest.pth too
    script = (f"mount -t tmpfs -o size=150m tmpfs {shlex.quote(str(mount))} && "
              f"{shlex.join(train)}; rc=$?; "
              f"ls -a {shlex.quote(str(snap))}; "
              f"{shlex.quote(sys.executable)} -c \"import torch; torch.load('{snap}/checkpoint_e1.pth', "
              f"weights_only=True); print('e1 loads')\"; exit $rc")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert errors == [f"error: cannot write {snap / 'checkpoint_latest.pth'}: No space left on device"], errors
    assert "Traceback" not in proc.stderr
    listing = proc.stdout.split()
    assert "checkpoint_e1.pth" in listing and "checkpoint_latest.pth" not in listing
    assert not [name for name in listing if name.endswith(".tmp")]
    assert "e1 loads" in proc.stdout  # loaded inside the namespace, where the tmpfs is visible
