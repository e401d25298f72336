"""One exactness audit run, as the audit returns it and as health checks, metrics and commands read it."""

from __future__ import annotations

__all__ = ["AuditRunSummary"]

import datetime as dt
from dataclasses import dataclass

from reporting.choices import AuditOutcome
from reporting.models import AuditRun


@dataclass(frozen=True)
class AuditRunSummary:
    """One audit run, as recorded."""

    id: int
    started: dt.datetime
    duration: dt.timedelta
    outcome: AuditOutcome
    keys_checked: int
    range_keys: int
    recent_keys: int
    mismatches: int
    mismatched_keys: list[str]

    @property
    def finished(self) -> dt.datetime:
        return self.started + self.duration

    @classmethod
    def of(cls, run: AuditRun) -> AuditRunSummary:
        return cls(
            id=run.pk,
            started=run.started,
            duration=run.duration,
            outcome=AuditOutcome(run.outcome),
            keys_checked=run.keys_checked,
            range_keys=run.range_keys,
            recent_keys=run.recent_keys,
            mismatches=run.mismatches,
            mismatched_keys=list(run.mismatched_keys),
        )
