"""Settings of this project, read lazily with defaults (``REPORTING_*``).

Each function reads ``django.conf.settings`` when called, so tests can override
a setting with ``settings`` fixtures. This repository's project
(``demo_project/settings.py``) fills them from environment variables of the same name.
"""

from __future__ import annotations

__all__ = [
    "audit_interval",
    "audit_sample",
    "bi_group",
    "bi_lockout_terminations",
    "bi_lockout_window",
    "bi_watchdog_interval",
    "dashboard_days",
    "default_strategy",
    "pooled",
    "prepared_reads",
    "ready_max_age",
    "refresh_cron",
    "refresh_interval",
    "refresh_jitter",
    "refresh_lock_timeout",
    "refresh_log_retention_days",
    "refresh_statement_timeout",
    "scheduler_metrics_address",
    "schema",
    "schema_take_over",
    "shutdown_grace",
    "stuck_pending_hours",
    "web_csv_exports_per_hour",
    "web_live_for_all",
    "web_statement_timeout",
]

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from reporting.routers import read_database


def _get(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# A plain lower-case PostgreSQL identifier: never needs quoting, never surprises.
IDENTIFIER_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _identifier(name: str, default: str) -> str:
    value = _get(name, default)
    if not isinstance(value, str) or not IDENTIFIER_RE.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name} must be a lower-case identifier (letters, digits, _; at most 63), not {value!r}"
        )
    return value


def _flag(name: str, default: bool = False) -> bool:
    value = _get(name, default)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("", "0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be 1 or 0 (true or false), not {value!r}")


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
    """Seconds between scheduled refreshes (``REPORTING_REFRESH_INTERVAL``, default 900).

    With folding on, a refresh is a compaction: it rebuilds the materialized views
    and empties the overlay. Reads stay exact and fast in between, so it can be
    rare; its cost grows with the data (about a minute at 10 M orders).
    """
    return _seconds("REPORTING_REFRESH_INTERVAL", 900, minimum=0.1)


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


def schema() -> str:
    """The PostgreSQL schema of the reporting views, the one BI roles see (``REPORTING_SCHEMA``).

    Default ``reporting``. Read once, when the view models are declared: choose it
    before the first ``migrate``.
    """
    return _identifier("REPORTING_SCHEMA", "reporting")


def schema_take_over() -> bool:
    """Create the views in a schema that already holds objects of others (``REPORTING_SCHEMA_TAKE_OVER``).

    Off by default: ``migrate`` refuses such a schema, since BI roles are given
    USAGE on it. On, the views are created next to those objects, which stay
    unreadable to BI roles (grants name the project's views only).
    """
    return _flag("REPORTING_SCHEMA_TAKE_OVER")


def bi_group() -> str:
    """The NOLOGIN group role of BI logins (``REPORTING_BI_GROUP``, default ``reporting_reader``).

    Roles are shared by every database of a PostgreSQL cluster: two projects on
    one cluster that want separate BI users give each its own group.
    """
    return _identifier("REPORTING_BI_GROUP", "reporting_reader")


def bi_watchdog_interval() -> float:
    """Seconds between two rounds of the BI watchdog in the scheduler (``REPORTING_BI_WATCHDOG_INTERVAL``, 5).

    The watchdog cancels BI queries that run past their role's statement timeout
    and ends BI sessions idle in a transaction past theirs: limits that a BI
    role could otherwise switch off for itself. 0 turns it off.
    """
    return _seconds("REPORTING_BI_WATCHDOG_INTERVAL", 5)


def bi_lockout_terminations() -> int:
    """How many terminations in the window lock a BI role out (``REPORTING_BI_LOCKOUT_TERMINATIONS``).

    The watchdog ends a session that holds what the product needs; a BI login
    that reconnects as fast as it is ended would still hold it most of the
    time. After this many of its sessions ended (or prepared transactions
    rolled back) within ``REPORTING_BI_LOCKOUT_WINDOW`` seconds, the role is
    made ``NOLOGIN`` until ``manage.py bi_role unlock`` lets it in again. Default
    10; 0 never locks a role out; at most 100000.
    """
    value = _whole("REPORTING_BI_LOCKOUT_TERMINATIONS", 10)
    if value > 100_000:
        raise ImproperlyConfigured(f"REPORTING_BI_LOCKOUT_TERMINATIONS must be at most 100000, not {value!r}")
    return value


def bi_lockout_window() -> float:
    """Seconds over which a BI role's terminations count for its lockout (``REPORTING_BI_LOCKOUT_WINDOW``).

    Default 600; at least 1, at most a day (86400).
    """
    value = _seconds("REPORTING_BI_LOCKOUT_WINDOW", 600, minimum=1)
    if value > 86_400:
        raise ImproperlyConfigured(
            f"REPORTING_BI_LOCKOUT_WINDOW must be at most 86400 seconds, not {value!r}"
        )
    return value


def web_statement_timeout() -> float:
    """Longest a web read (API, dashboard, CSV export) may run a statement, in seconds.

    ``REPORTING_WEB_STATEMENT_TIMEOUT``, default 10; 0 turns the limit off. A read
    over it is cancelled and answered with a 504.
    """
    return _seconds("REPORTING_WEB_STATEMENT_TIMEOUT", 10)


def web_live_for_all() -> bool:
    """Let every reports user ask for ``strategy=live`` (``REPORTING_WEB_LIVE_FOR_ALL``, off).

    Off: only users with the ``reporting.read_live`` permission may, since a
    live read costs as much as the data is large.
    """
    return _flag("REPORTING_WEB_LIVE_FOR_ALL")


def pooled(alias: str) -> bool:
    """Whether database ``alias`` is reached through a transaction pooler.

    Django's own switch says so: ``DISABLE_SERVER_SIDE_CURSORS`` in the alias's
    ``DATABASES`` entry, which Django's documentation asks for behind PgBouncer in
    transaction mode. Behind such a pooler, consecutive transactions of one Django
    connection may run in different server sessions: nothing may outlive a
    transaction (prepared statements, cursors WITH HOLD, session settings).
    """
    return bool(settings.DATABASES.get(alias, {}).get("DISABLE_SERVER_SIDE_CURSORS", False))


def prepared_reads() -> bool:
    """Run the hot reads as prepared statements (``REPORTING_PREPARED_READS``).

    The real-time page and counts take longer to plan than to run; prepared, they
    are planned once per connection. On by default, off by default when the read
    database is pooled (:func:`pooled`): PgBouncer in transaction mode before 1.21,
    or without ``max_prepared_statements``, does not keep prepared statements across
    transactions. Set it to 1 behind a pooler that does (PgBouncer 1.21 or newer
    with ``max_prepared_statements``).
    """
    if _get("REPORTING_PREPARED_READS", None) in (None, ""):
        return not pooled(read_database())
    return _flag("REPORTING_PREPARED_READS", True)


def _whole(name: str, default: int) -> int:
    value = _get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if number < 0:
        raise ImproperlyConfigured(f"{name} must be 0 or more, not {value!r}")
    return number


def web_csv_exports_per_hour() -> int:
    """CSV exports one API token (or one user's session) may start per hour.

    ``REPORTING_CSV_EXPORTS_PER_HOUR``, default 30; 0 means no limit.
    """
    return _whole("REPORTING_CSV_EXPORTS_PER_HOUR", 30)


def fold_interval() -> float:
    """Seconds between two folds of the change log into the overlay (``REPORTING_FOLD_INTERVAL``, 0.5).

    Real-time reads recompute the orders changed since the latest fold, so this
    bounds their cost by the write rate times this interval. 0 turns folding off:
    real-time reads then recompute every order changed since the refresh.
    """
    return _seconds("REPORTING_FOLD_INTERVAL", 0.5)


def compact_overlay_orders() -> int:
    """Overlay size past which the scheduler refreshes at once (``REPORTING_COMPACT_OVERLAY_ORDERS``).

    Default 200 000; 0: only on the refresh schedule. Also the size past which
    ``reporting_status`` fails: an overlay that grows past it means refreshes fail.
    """
    return _whole("REPORTING_COMPACT_OVERLAY_ORDERS", 200_000)


def ready_max_age() -> float:
    """Oldest the views may be, in seconds, for ``/readyz`` to say ready (``REPORTING_READY_MAX_AGE``).

    Default: five refresh intervals, at least 5 minutes. A quiet shop stays
    fresh: every scheduled check that finds nothing changed counts.
    """
    if _get("REPORTING_READY_MAX_AGE", None) in (None, ""):
        return max(300.0, 5 * refresh_interval())
    return _seconds("REPORTING_READY_MAX_AGE", 300, minimum=1)


def scheduler_metrics_address() -> tuple[str, int] | None:
    """Where the scheduler serves its Prometheus metrics, or ``None`` (the default: nowhere).

    ``REPORTING_SCHEDULER_METRICS_PORT`` (1-65535) and ``REPORTING_SCHEDULER_METRICS_ADDR``
    (default ``127.0.0.1``: only this machine; it answers without a login).
    """
    port = _get("REPORTING_SCHEDULER_METRICS_PORT", None)
    if port in (None, ""):
        return None
    if not str(port).isascii() or not str(port).isdigit() or not 1 <= int(port) <= 65535:
        raise ImproperlyConfigured(
            f"REPORTING_SCHEDULER_METRICS_PORT must be a port from 1 to 65535, not {port!r}"
        )
    return str(_get("REPORTING_SCHEDULER_METRICS_ADDR", "127.0.0.1")), int(port)


def stuck_pending_hours() -> float:
    """Hours after which a pending order counts as stuck (``REPORTING_STUCK_PENDING_HOURS``, 24)."""
    return _seconds("REPORTING_STUCK_PENDING_HOURS", 24, minimum=0.001)


def audit_interval() -> float:
    """Seconds between two exactness audits in the scheduler (``REPORTING_AUDIT_INTERVAL``, 60).

    Each audit compares the real-time latest rows of a sample of keys with the
    history, in one snapshot (:func:`reporting.services.exactness_audit`). 0 turns it off.
    """
    seconds = _seconds("REPORTING_AUDIT_INTERVAL", 60)
    if seconds > MAX_AUDIT_INTERVAL:  # also refuses inf, which no schedule can hold
        raise ImproperlyConfigured(
            f"REPORTING_AUDIT_INTERVAL must be at most {MAX_AUDIT_INTERVAL:g} seconds (a day), "
            f"not {_get('REPORTING_AUDIT_INTERVAL', 60)!r}"
        )
    return seconds


MAX_AUDIT_INTERVAL = 86_400.0


# A sample is held in Python (the keys, and two rows per key): past this it would
# cost the scheduler's memory and the database a long snapshot, not a few milliseconds.
MAX_AUDIT_SAMPLE = 100_000
_COUNT_RE = re.compile(r"[0-9]{1,9}")


def audit_sample() -> int:
    """Keys per part of an audit (``REPORTING_AUDIT_SAMPLE``, 1000; 1 to 100 000).

    An audit checks a random range of this many keys, and up to this many keys
    changed since the previous audit (the most recent ones first).
    """
    value = _get("REPORTING_AUDIT_SAMPLE", 1000)
    # Digits only: not a bool, not 2.5 (int() would truncate it), not "1e9" nor Unicode digits.
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not _COUNT_RE.fullmatch(text) or not 1 <= int(text) <= MAX_AUDIT_SAMPLE:
        raise ImproperlyConfigured(
            f"REPORTING_AUDIT_SAMPLE must be a whole number of keys from 1 to {MAX_AUDIT_SAMPLE:,}, "
            f"not {value!r}"
        )
    return int(text)


# The most history rows an order's page or API answer may show.
MAX_ORDER_HISTORY_ROWS = 10_000


def order_history_rows() -> int:
    """History rows an order's page and API answer show: its latest ones (``REPORTING_ORDER_HISTORY_ROWS``).

    Default 1000, from 1 to ``MAX_ORDER_HISTORY_ROWS``: one order's history has no
    bound of its own, and a page of 300,000 rows was 98 MB of HTML.
    """
    rows = _whole("REPORTING_ORDER_HISTORY_ROWS", 1000)
    if not 1 <= rows <= MAX_ORDER_HISTORY_ROWS:
        raise ImproperlyConfigured(
            f"REPORTING_ORDER_HISTORY_ROWS must be from 1 to {MAX_ORDER_HISTORY_ROWS}, not {rows!r}"
        )
    return rows


def realtime_live_tail() -> tuple[int, float]:
    """When a real-time read takes the live path: the tail's size, in changes, at or above both
    ``REPORTING_REALTIME_LIVE_TAIL_MIN`` (10000; 0 means never) and
    ``REPORTING_REALTIME_LIVE_TAIL_FRACTION`` (0.1) of the orders."""
    minimum = _whole("REPORTING_REALTIME_LIVE_TAIL_MIN", 10_000)
    fraction = _get("REPORTING_REALTIME_LIVE_TAIL_FRACTION", 0.1)
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"REPORTING_REALTIME_LIVE_TAIL_FRACTION must be a number, not {fraction!r}"
        ) from None
    if not fraction >= 0:
        raise ImproperlyConfigured(
            f"REPORTING_REALTIME_LIVE_TAIL_FRACTION must be 0 or more, not {fraction!r}"
        )
    return minimum, fraction
