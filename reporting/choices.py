"""Statuses, strategies and outcomes: the names every layer agrees on."""

from __future__ import annotations

__all__ = ["Status", "Strategy"]

from django.db import models


class Status(models.TextChoices):
    """The statuses an order can be in. A database CHECK constraint enforces the same set."""

    PENDING = "pending", "Pending"
    COMPLETE = "complete", "Complete"
    CANCELLED = "cancelled", "Cancelled"


class Strategy(models.TextChoices):
    """How a read is answered: one contract, three costs (DESIGN.md section 3)."""

    LIVE = "live", "Live: computed from the status history, exact, slow"
    SNAPSHOT = "snapshot", "Snapshot: the materialized view, as fresh as its last refresh"
