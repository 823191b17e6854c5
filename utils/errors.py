"""The error boundary: one base class for errors meant for the user, and the one runner every entry point uses.

* :class:`SiamMaskError` — a problem with the user's input or environment (a file, a key, a flag); ``str()`` is one
  line naming it. Every package's errors derive from it (``ConfigError``, ``CheckpointError``, ``DataError``, ...).
* :func:`run_tool` — runs a tool's work: a ``SiamMaskError`` prints ``error: <message>`` on stderr and exits 2;
  Ctrl-C (SIGINT) exits 130 and SIGTERM 143 after the work's ``finally`` blocks and the atomic writers removed what
  was half-written; anything else is a bug and keeps its traceback.
* Errors raised inside DataLoader worker processes come back wrapped in the worker's traceback; :func:`one_line`
  gives the original one-line message again, so ``-j 2`` reads the same as ``-j 0``.
"""
from __future__ import annotations

import contextlib
import signal
import sys
from typing import Any, Callable, Iterator, Optional

__all__ = ["SiamMaskError", "OutputError", "Interrupted", "one_line", "run_tool", "tool_cli"]

_WORKER_MARK = "Original Traceback (most recent call last):"


class SiamMaskError(Exception):
    """An error meant for the user: the message is one line naming the file, key or flag at fault."""


class OutputError(SiamMaskError):
    """An output path cannot be created or written (not a directory, read-only, disk full)."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM (what a cluster scheduler sends before it kills), handled like Ctrl-C; exit status 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def one_line(error: BaseException) -> str:
    """The user message of `error` on one line (unwrapping the traceback a DataLoader worker adds)."""
    text = str(error).strip()
    if _WORKER_MARK in text:  # "Caught X in DataLoader worker process 0.\nOriginal Traceback ...\nmod.X: <message>"
        last = text.splitlines()[-1].strip()
        prefix = f"{type(error).__name__}: "
        text = last.split(prefix, 1)[1] if prefix in last else last
    text = text or type(error).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Interrupted` (main thread only; elsewhere nothing changes)."""

    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_tool(work: Callable[[Any], object], args: Any, interrupted: str = "interrupted") -> int:
    """Run ``work(args)`` behind the error boundary; returns the exit status (0, 2 user error, 130/143 signal)."""
    try:
        with _sigterm_as_interrupt():
            work(args)
    except SiamMaskError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(interrupted, file=sys.stderr)
        return 128 + e.signum if isinstance(e, Interrupted) else 130
    return 0


def tool_cli(main: Callable[[Any], int], get_args_parser: Callable[[], Any],
             argv: Optional[list[str]] = None) -> None:
    """A console script's body: parse ``argv`` (default ``sys.argv[1:]``), run ``main`` and exit with its status."""
    sys.exit(main(get_args_parser().parse_args(argv)))
