"""Rank-aware logging: coloured console (colorama) plus an optional log file.

Ports `utils/log_helper.py` of the original (logger 'global', format `[time-rk<rank>-file#line] message`). Only the
main process logs INFO to the console and writes the file; other ranks print warnings and errors only.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Optional

import colorama

from .runtime import Runtime, versions

LOG_FORMAT = "[%(asctime)s-rk{rank}-%(filename)s#%(lineno)3d] %(message)s"
_COLORS = {logging.WARNING: colorama.Fore.YELLOW, logging.ERROR: colorama.Fore.RED,
           logging.CRITICAL: colorama.Fore.RED + colorama.Style.BRIGHT}


class ColorFormatter(logging.Formatter):
    """Colours warnings and errors when the stream is a terminal."""

    def __init__(self, fmt: str, use_color: bool) -> None:
        super().__init__(fmt)
        self.use_color = use_color

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        color = _COLORS.get(record.levelno)
        if self.use_color and color:
            return f"{color}{text}{colorama.Style.RESET_ALL}"
        return text


def init_log(name: str = "global", rank: int = 0, log_file: Optional[str] = None,
             level: int = logging.INFO) -> logging.Logger:
    """Configure and return logger `name`: console always, `log_file` on rank 0 only. Safe to call twice."""
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(level if rank == 0 else logging.WARNING)
    logger.propagate = False
    fmt = LOG_FORMAT.format(rank=rank)
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(ColorFormatter(fmt, use_color=sys.stdout.isatty()))
    logger.addHandler(console)
    if log_file and rank == 0:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(logging.Formatter(fmt))
        logger.addHandler(file_handler)
    return logger


def log_environment(logger: logging.Logger, runtime: Runtime) -> None:
    """Log library versions and the chosen device / precision / world size."""
    logger.info("versions: %s", ", ".join(f"{k} {v}" for k, v in versions().items()))
    logger.info("runtime: %s", runtime.describe())
