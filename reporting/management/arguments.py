"""Argument types shared by the management commands (argparse turns a ValueError into one clear line)."""

from __future__ import annotations

__all__ = ["positive_int"]


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number
