"""File I/O shared by every package: atomic writes, output folders checked up front, JSON and image reads.

* Every writer writes to a temporary file beside the target (``.<name>.<random>.tmp``) and renames it over the final
  name with ``os.replace`` (atomic on POSIX and Windows): a reader never sees a half-written checkpoint, result,
  mask or JSON file. The file gets the permissions ``open()`` gives (0666 less the umask), not ``mkstemp``'s 0600.
* A failing write (read-only folder, full disk, a path under a regular file) raises :class:`OutputError` naming the
  target file, never the temporary one, and leaves the previous file under that name intact.
* :func:`ensure_output_dir` is what a tool calls for each output folder **before** it starts its work.
* :func:`read_json` and :func:`read_image` raise the caller's error class with a one-line message naming the file.
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import secrets
from typing import Any, Iterator, Optional, Sequence, Union

from .errors import OutputError, SiamMaskError

PathLike = Union[str, "os.PathLike[str]"]

_PROBE_BYTES = 4096  # a probe that needs a data block: creating an empty file can succeed on a full disk


def _describe(error: OSError) -> str:
    return error.strerror or str(error)


def temporary_pattern(path: PathLike) -> str:
    """The glob of the temporaries the atomic writers create for `path` (for removing stale ones)."""
    path = os.fspath(path)
    return os.path.join(os.path.dirname(os.path.abspath(path)), f".{glob.escape(os.path.basename(path))}.*.tmp")


def remove_stale_temporaries(folder: PathLike, name_glob: str = "*") -> list[str]:
    """Remove the writers' temporaries of files matching `name_glob` in `folder` (left by a killed run)."""
    removed = []
    for tmp in glob.glob(os.path.join(os.fspath(folder), f".{name_glob}.*.tmp")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
            removed.append(tmp)
    return removed


def ensure_output_dir(path: PathLike, what: str = "output folder") -> str:
    """Create folder `path` if needed and check that a file can be written there; returns the path.

    Args:
        what: how the user named it, for the message (a flag such as ``--save-dir``).

    Raises:
        OutputError: the path is under a regular file, is not a folder, is read-only or its disk is full.
    """
    path = os.fspath(path)
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{what} {path}: exists and is not a folder") from None
    except NotADirectoryError:
        raise OutputError(f"{what} {path}: a parent of it is a regular file") from None
    except OSError as e:
        raise OutputError(f"{what} {path}: cannot create it ({_describe(e)})") from None
    probe = os.path.join(path, f".siammask-write-probe.{secrets.token_hex(4)}.tmp")
    try:
        with open(probe, "wb") as f:
            f.write(b"\0" * _PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise OutputError(f"{what} {path}: not writable ({_describe(e)})") from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(probe)
    return path


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`, on error removed.

    The body should only write the temporary file: an ``OSError`` raised in it becomes :class:`OutputError` naming
    `path`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        os.makedirs(folder, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask's permissions
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_describe(e)}") from None
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise OutputError(f"cannot write {path}: {_describe(e)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, data: Any, indent: Optional[int] = 2, **kwargs: Any) -> None:
    """Write `data` as JSON to `path` atomically (``kwargs`` go to ``json.dumps``, e.g. ``sort_keys``)."""
    atomic_write_text(path, json.dumps(data, indent=indent, **kwargs) + "\n")


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """torch.save `obj` to `path` atomically (the file is complete or absent).

    The object is serialised in memory first, so that a full disk is a plain ``OSError`` of the write (named
    `path`), not torch's ``unexpected pos`` from inside its zip writer.
    """
    import torch  # here, so that torch-free users of this module (the evaluation package) do not load it

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getbuffer())


def atomic_write_image(path: PathLike, image: Any, params: Sequence[int] = ()) -> None:
    """Encode `image` (cv2 layout, BGR or single channel) by the extension of `path` and write it atomically.

    Args:
        params: cv2.imencode parameters (e.g. ``(cv2.IMWRITE_PNG_BILEVEL, 1)``).
    """
    import cv2

    path = os.fspath(path)
    ok, buf = cv2.imencode(os.path.splitext(path)[1] or ".png", image, list(params))
    if not ok:
        raise OutputError(f"cannot encode {path} as an image")
    atomic_write_bytes(path, buf.tobytes())


def read_json(path: PathLike, what: str = "file", error: type[SiamMaskError] = SiamMaskError) -> Any:
    """Load a JSON file, or raise `error` with one line naming it (missing, unreadable, invalid JSON)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise error(f"{path}: {what} not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise error(f"{path}: {what} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read {what} ({e})") from None


def read_image(path: PathLike, flags: Optional[int] = None, error: type[SiamMaskError] = SiamMaskError,
               strict: bool = True) -> Any:
    """Read an image file as cv2.imread does (BGR uint8 HWC by default), raising `error` naming the file.

    Args:
        path: the image file.
        flags: a cv2 imread flag (default ``cv2.IMREAD_COLOR``).
        error: the caller's SiamMaskError class.
        strict: also refuse damaged files, a JPEG cut short or with corrupt data (:mod:`siammask.utils.images`).
    """
    import cv2

    from .images import ImageDecodeError, decode_image

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise error(f"{path}: image not found") from None
    except OSError as e:
        raise error(f"{path}: cannot read image ({_describe(e)})") from None
    try:
        return decode_image(data, cv2.IMREAD_COLOR if flags is None else flags, strict=strict)
    except ImageDecodeError as e:
        raise error(f"{path}: {e}") from None


class OutputLock:
    """An exclusive lock on an output folder for one run: ``<folder>/.lock`` holding the owner's pid and host.

    Two runs writing the same result folder would interleave their files without a word; the second one instead
    stops at once with an :class:`OutputError` naming the folder and the owner. A lock left by a killed run (its pid
    no longer alive on this host) is taken over. Use as a context manager; the lock file is removed on exit.

    Args:
        folder: the output folder (created if missing).
        what: the flag or name the folder came from, for the message (e.g. ``"--result-dir"``).
    """

    def __init__(self, folder: PathLike, what: str = "output folder") -> None:
        self.folder = os.fspath(folder)
        self.what = what
        self.path = os.path.join(self.folder, ".lock")
        self._held = False

    def _owner(self) -> tuple[int, str]:
        try:
            with open(self.path, encoding="utf-8") as f:
                pid_text, _, host = f.read().strip().partition(" ")
            return int(pid_text), host
        except (OSError, ValueError):
            return 0, ""

    def acquire(self) -> "OutputLock":
        """Take the lock, or raise OutputError when another live run holds it."""
        import socket

        ensure_output_dir(self.folder, self.what)
        me = f"{os.getpid()} {socket.gethostname()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                pid, host = self._owner()
                if pid and host == socket.gethostname() and not pid_alive(pid):
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(self.path)  # a killed run's lock
                    continue
                owner = f"pid {pid} on {host}" if pid else "another run"
                raise OutputError(f"{self.what} {self.folder}: {owner} is writing here (lock file {self.path}); "
                                  f"wait for it, or choose another folder / name") from None
            except OSError as e:
                raise OutputError(f"{self.path}: cannot create the lock file ({_describe(e)})") from None
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(me + "\n")
            self._held = True
            return self
        raise OutputError(f"{self.path}: cannot take the lock file")

    def release(self) -> None:
        """Remove the lock file (only if this run holds it)."""
        if self._held:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)
            self._held = False

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host (signal 0 probe)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
