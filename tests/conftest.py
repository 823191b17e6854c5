"""Shared pytest fixtures: repository paths, the shared spec/conformance folders, thread limits, graph compiler."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
# The tools run in the suite's subprocesses compile the CPU network with TorchScript (about a second) instead of
# torch.compile (~20 s per process); tests/test_frozen.py checks each compiler explicitly.
os.environ.setdefault("SIAMMASK_GRAPHS", "torchscript")


def shared_dir(name: str) -> Path:
    """`../shared/<name>` beside the checkout (or $SIAMMASK_<NAME>)."""
    env = os.environ.get(f"SIAMMASK_{name.upper()}")
    return Path(env) if env else REPO_ROOT.parent / "shared" / name


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """The original's parity vectors; tests using it are skipped (with the reason) where the folder is absent."""
    path = shared_dir("conformance")
    if not (path / "README.md").exists():
        pytest.skip(f"conformance vectors not found at {path} (set SIAMMASK_CONFORMANCE)")
    return path


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    path = shared_dir("spec")
    if not (path / "reference.md").exists():
        pytest.skip(f"spec folder not found at {path} (set SIAMMASK_SPEC)")
    return path
