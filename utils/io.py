"""Atomic file writes: a reader never sees a half-written checkpoint, result or JSON file.

Each writer writes to a temporary file in the destination folder and renames it over the final name with
`os.replace`, which is atomic on POSIX and Windows.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`, on error removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def atomic_write_json(path: PathLike, data: Any, indent: int = 2) -> None:
    """Write `data` as JSON to `path` atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """torch.save `obj` to `path` atomically (the file is complete or absent)."""
    import torch  # here, so that torch-free users of this module (the evaluation package) do not load it

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
