"""Errors that the core raises for bad input, with messages fit to show a user."""

from __future__ import annotations

__all__ = [
    "InvalidParameterError",
    "InvalidStatusError",
    "InvalidTokenError",
    "RateLimitedError",
    "ReportingError",
    "UnknownOrderError",
]

from collections.abc import Iterable


class ReportingError(Exception):
    """Base class of the errors this project raises on purpose."""


class InvalidParameterError(ReportingError, ValueError):
    """A parameter has a value outside the ones allowed.

    Attributes:
        parameter: the parameter's name, as the caller spelled it.
        value: the value given.
        valid: a description of the valid values, or ``None``.
    """

    def __init__(self, parameter: str, value: object, valid: Iterable[str] | str | None = None) -> None:
        self.parameter = parameter
        self.value = value
        if valid is not None and not isinstance(valid, str):
            valid = ", ".join(valid)
        self.valid = valid
        message = f"invalid {parameter} {value!r}"
        if valid:
            message += f"; valid values: {valid}"
        super().__init__(message)


class InvalidStatusError(InvalidParameterError):
    """A status outside the declared ones (``valid``, as ``Status.parse`` gives them)."""

    def __init__(self, value: object, valid: Iterable[str], parameter: str = "status") -> None:
        super().__init__(parameter, value, valid)


class InvalidTokenError(ReportingError):
    """A ``Bearer`` token was sent, but it is unknown, expired, or its user is inactive."""


class UnknownOrderError(ReportingError, LookupError):
    """No order has the given id."""

    def __init__(self, order_id: object) -> None:
        self.order_id = order_id
        super().__init__(f"unknown order {order_id!r}: no order has this id")


class RateLimitedError(ReportingError):
    """Too many requests of a kind in a while.

    Attributes:
        retry_after: seconds until the next one may be made.
        setting: the setting that holds the limit.
    """

    def __init__(self, message: str, *, retry_after: float, setting: str) -> None:
        self.retry_after = max(1, round(retry_after))
        self.setting = setting
        super().__init__(f"{message} ({setting}); try again in {self.retry_after} s")
