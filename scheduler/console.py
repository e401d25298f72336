"""The scheduler's log on the console, for a project whose ``LOGGING`` does not say where it goes.

A new Django project configures no handler for the ``scheduler`` and
``reporting`` loggers: Python then prints their warnings only (its "last
resort"), and ``run_scheduler`` said nothing for as long as refreshes and folds
worked. So the command adds a console handler to each of them that no handler
reaches, at the level its ``--verbosity`` asks for, and takes it away when it
returns. A project that routes these loggers (or the root logger) to a handler
of its own keeps its handlers and levels untouched.
"""

from __future__ import annotations

__all__ = ["LOGGERS", "console_logging"]

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import TextIO

# The loggers whose lines an operator of run_scheduler reads.
LOGGERS = ("scheduler", "reporting")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _level(verbosity: int) -> int:
    """Django's --verbosity as a logging level: 0 warnings, 1 (the default) info, 2 and 3 debug."""
    if verbosity <= 0:
        return logging.WARNING
    return logging.INFO if verbosity == 1 else logging.DEBUG


@contextlib.contextmanager
def console_logging(*, verbosity: int, stream: TextIO | io.TextIOBase) -> Iterator[list[str]]:
    """Log the scheduler's and the app's lines to ``stream`` where the project's ``LOGGING`` does not.

    Args:
        verbosity: Django's ``--verbosity`` (0 to 3).
        stream: where the lines go (the command's standard error).

    Yields:
        The names of the loggers it added a handler to (none when the project
        routes them itself).
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    added: list[tuple[logging.Logger, int]] = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if logger.hasHandlers():  # the project's LOGGING reaches it: leave it as configured
            continue
        added.append((logger, logger.level))
        logger.addHandler(handler)
        logger.setLevel(_level(verbosity))
    try:
        yield [logger.name for logger, _ in added]
    finally:
        for logger, level in added:
            logger.removeHandler(handler)
            logger.setLevel(level)
