"""Settings of this project, read lazily with defaults (``REPORTING_*``).

Each function reads ``django.conf.settings`` when called, so tests can override
a setting with ``settings`` fixtures. ``reporting/settings.py`` fills them from
environment variables of the same name.
"""

from __future__ import annotations

__all__ = [
    "dashboard_days",
    "default_strategy",
    "refresh_cron",
    "refresh_interval",
    "refresh_jitter",
    "refresh_lock_timeout",
    "refresh_log_retention_days",
    "refresh_statement_timeout",
    "shutdown_grace",
]

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _seconds(name: str, default: float, *, minimum: float = 0.0) -> float:
    value = _get(name, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {value!r}") from None
    if not seconds >= minimum:  # also refuses NaN
        raise ImproperlyConfigured(f"{name} must be at least {minimum:g} seconds, not {value!r}")
    return seconds


def default_strategy() -> str:
    """The read strategy of the dashboard, the API and selectors called without one.

    ``REPORTING_DEFAULT_STRATEGY``: ``realtime`` (default), ``snapshot`` or ``live``.
    """
    from reporting.choices import Strategy

    value = _get("REPORTING_DEFAULT_STRATEGY", Strategy.REALTIME)
    if value not in Strategy.values:
        raise ImproperlyConfigured(
            f"REPORTING_DEFAULT_STRATEGY must be one of {', '.join(Strategy.values)}, not {value!r}"
        )
    return str(value)


def dashboard_days() -> int:
    """Days of the dashboard's orders-per-day chart (``REPORTING_DASHBOARD_DAYS``, 30)."""
    value = _get("REPORTING_DASHBOARD_DAYS", 30)
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"REPORTING_DASHBOARD_DAYS must be a whole number, not {value!r}"
        ) from None
    if not 1 <= days <= 366:
        raise ImproperlyConfigured(f"REPORTING_DASHBOARD_DAYS must be from 1 to 366, not {value!r}")
    return days


def refresh_interval() -> float:
    """Seconds between scheduled refreshes (``REPORTING_REFRESH_INTERVAL``, default 60)."""
    return _seconds("REPORTING_REFRESH_INTERVAL", 60, minimum=0.1)


def refresh_cron() -> str | None:
    """A crontab expression that replaces the interval (``REPORTING_REFRESH_CRON``), or ``None``."""
    value = _get("REPORTING_REFRESH_CRON", None)
    return value or None


def refresh_jitter() -> float | None:
    """Random delay added to each scheduled run, in seconds (``REPORTING_REFRESH_JITTER``).

    By default a tenth of the interval, at most 10 s: scheduler replicas started
    together do not all fire at the same instant.
    """
    if _get("REPORTING_REFRESH_JITTER", None) in (None, ""):
        return None
    return _seconds("REPORTING_REFRESH_JITTER", 0)


def refresh_statement_timeout() -> float:
    """Longest a refresh statement may run, in seconds (``REPORTING_REFRESH_STATEMENT_TIMEOUT``, 900)."""
    return _seconds("REPORTING_REFRESH_STATEMENT_TIMEOUT", 900, minimum=0.001)


def refresh_lock_timeout() -> float:
    """Longest a refresh waits for a table lock, in seconds (``REPORTING_REFRESH_LOCK_TIMEOUT``, 30)."""
    return _seconds("REPORTING_REFRESH_LOCK_TIMEOUT", 30, minimum=0.001)


def refresh_log_retention_days() -> float:
    """Days of refresh-log rows kept (``REPORTING_REFRESH_LOG_RETENTION_DAYS``, 14)."""
    return _seconds("REPORTING_REFRESH_LOG_RETENTION_DAYS", 14, minimum=0)


def shutdown_grace() -> float:
    """Seconds the scheduler lets a refresh in flight finish on SIGTERM (``REPORTING_SHUTDOWN_GRACE``, 30).

    After that it cancels the refresh, which rolls back and leaves the previous data.
    """
    return _seconds("REPORTING_SHUTDOWN_GRACE", 30)
