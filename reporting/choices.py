"""Statuses, strategies and outcomes: the names every layer agrees on."""

from __future__ import annotations

__all__ = ["AuditOutcome", "ChangeSource", "RefreshOutcome", "RefreshTrigger", "Strategy"]

from django.db import models


class Strategy(models.TextChoices):
    """How a read is answered: one contract, three costs (see docs/reading.md)."""

    LIVE = "live", "Live: computed from the status history, exact, slow"
    SNAPSHOT = "snapshot", "Snapshot: the materialized view, as fresh as its last refresh"
    REALTIME = "realtime", "Real-time: the view corrected by the change log, exact and fast"


class RefreshOutcome(models.TextChoices):
    """How a refresh run ended (``running`` while it is in flight)."""

    RUNNING = "running", "Running"
    OK = "ok", "Refreshed"
    UNCHANGED = "unchanged", "Skipped: nothing changed since the last refresh"
    SKIPPED = "skipped", "Skipped: another refresh was running"
    FAILED = "failed", "Failed"
    # Found still "running" by a later run: the process doing it died (kill -9,
    # a server restart) before it could record an outcome. Nothing of it was kept.
    ABANDONED = "abandoned", "Abandoned: its process stopped before it finished"
    # Cancelled on purpose (the scheduler's stop, pg_cancel_backend): rolled back
    # like a failure, but nothing is wrong.
    CANCELLED = "cancelled", "Cancelled: stopped on request, rolled back"


class RefreshTrigger(models.TextChoices):
    """What started a refresh run."""

    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    STARTUP = "startup", "Scheduler start-up"
    DEPLOY = "deploy", "Deploy: changed views built beside and swapped in"


class ChangeSource(models.TextChoices):
    """Which write put an order into the change log."""

    ORDER_INSERT = "order_insert", "Order created"
    ORDER_DELETE = "order_delete", "Order deleted"
    # An UPDATE of order rows is logged as two entries, the ids of the rows before
    # it and after it: for the change log an update removes a row and adds one
    # (its id or its creation time may differ).
    ORDER_UPDATE_OLD = "order_update_old", "Order updated (its row before)"
    ORDER_UPDATE_NEW = "order_update_new", "Order updated (its row after)"
    STATUS_INSERT = "status_insert", "Status row inserted"
    STATUS_UPDATE = "status_update", "Status row updated"
    STATUS_DELETE = "status_delete", "Status row deleted"
    TRUNCATE = "truncate", "Table truncated: every order changed"
    # Not a write: the exactness audit found these orders' real-time rows wrong, and
    # logs them as changed so that reads and the next fold recompute them.
    AUDIT = "audit", "Found wrong by the audit: recomputed"


class AuditOutcome(models.TextChoices):
    """What one exactness audit found."""

    EXACT = "exact", "Exact: every key checked agrees with the history"
    MISMATCH = "mismatch", "Mismatch: keys whose real-time row differs from the history (recomputed)"
    # Real-time reads compute every key from the history (no refresh yet, a TRUNCATE,
    # views rewritten): there is no maintained state to audit until a refresh.
    RECOMPUTING = "recomputing", "Not checked: real-time reads recompute everything from the history"
