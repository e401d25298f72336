"""One refresh run, as a refresh returns it and as the freshness report lists it."""

from __future__ import annotations

__all__ = ["RefreshRunSummary"]

import datetime as dt
from dataclasses import dataclass

from reporting.choices import RefreshOutcome, RefreshTrigger
from reporting.models import RefreshRun

# The columns a summary reads: everything but the run's snapshot, which only the
# refresh and fold machinery use.
FIELDS = (
    "id",
    "trigger",
    "outcome",
    "views",
    "started",
    "snapshot_at",
    "duration",
    "rows",
    "changes_absorbed",
    "error",
)


@dataclass(frozen=True)
class RefreshRunSummary:
    """What one refresh run did: the facts of its ``RefreshRun`` row.

    ``handed_over`` and ``handover_duration`` are known only to the refresh that
    ran (not stored): the orders changed while it ran that its overlay handover
    carried into the new generation, and how long that took; ``None`` without a
    handover (skipped, failed, or not an ``ok`` compaction).
    """

    id: int
    trigger: RefreshTrigger
    outcome: RefreshOutcome
    views: list[str]
    started: dt.datetime
    snapshot_at: dt.datetime | None = None
    duration: dt.timedelta | None = None
    rows: int | None = None
    changes_absorbed: int | None = None
    error: str = ""
    handed_over: int | None = None
    handover_duration: dt.timedelta | None = None

    @classmethod
    def of(cls, run: RefreshRun) -> RefreshRunSummary:
        """Summarize ``run``."""
        return cls(
            id=run.pk,
            trigger=RefreshTrigger(run.trigger),
            outcome=RefreshOutcome(run.outcome),
            views=run.views.split(",") if run.views else [],
            started=run.started,
            snapshot_at=run.snapshot_at,
            duration=run.duration,
            rows=run.rows,
            changes_absorbed=run.changes_absorbed,
            error=run.error,
        )
