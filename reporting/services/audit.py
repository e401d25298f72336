"""Writes: the exactness audit, which proves in production that real-time reads equal the history.

One audit (:func:`exactness_audit`) compares a sample of keys in one snapshot
(:func:`reporting.selectors.audit.exactness_check` says which keys and how),
records the run (``reporting_auditrun``), and when keys differ, logs them (at most
``MAX_LOGGED_KEYS``) and marks them changed in the change log
(:func:`reporting.services.change_log.change_log_distrust`): real-time reads
recompute them at once, the next fold corrects the overlay, and the scheduler asks
for a refresh (a full recompute) too. ``/readyz``, ``reporting_status`` and the
metrics say so until an audit finds every key it checks exact again.

Its cost follows the sample (``REPORTING_AUDIT_SAMPLE``), not the data: a few
index lookups per key (docs/refreshing.md, "The exactness audit").
"""

from __future__ import annotations

__all__ = ["exactness_audit"]

import datetime as dt
import logging
import random
import time

from django.db import transaction
from django.utils import timezone

from reporting import conf
from reporting.audit_log import AuditRunSummary
from reporting.choices import AuditOutcome
from reporting.models import AuditRun
from reporting.selectors.audit import MAX_LOGGED_KEYS, exactness_check
from reporting.services.change_log import change_log_distrust

logger = logging.getLogger(__name__)


def _row(row: tuple | None) -> str:
    if row is None:
        return "no row"
    status_id, status, created, since = row
    return f"row {status_id} {status!r} at {created} since {since}"


def exactness_audit(
    *, sample: int | None = None, using: str = "default", rng: random.Random | None = None
) -> AuditRunSummary:
    """Audit a sample of keys, record the run, and have the keys found wrong recomputed.

    Args:
        sample: keys per part of the sample; ``None``: ``REPORTING_AUDIT_SAMPLE``.
        using: the database alias (the primary: an audit writes its run).
        rng: where the random key range starts (a seeded one for tests).

    Raises:
        RuntimeError: called inside a transaction.
        django.core.exceptions.ImproperlyConfigured: a malformed ``REPORTING_AUDIT_SAMPLE``.
        django.db.Error: the database failed; nothing was recorded.
    """
    sample = conf.audit_sample() if sample is None else sample
    started = timezone.now()
    clock = time.perf_counter()
    previous = AuditRun.objects.using(using).order_by("-id").values_list("fold_snapshot", flat=True).first()
    found = exactness_check(sample=sample, since=previous or None, using=using, rng=rng)
    keys = [mismatch.key for mismatch in found.mismatches]
    outcome = (
        AuditOutcome.RECOMPUTING
        if found.recomputing
        else AuditOutcome.MISMATCH
        if keys
        else AuditOutcome.EXACT
    )
    keep_after = started - dt.timedelta(days=conf.refresh_log_retention_days())
    with transaction.atomic(using=using):
        change_log_distrust(keys, using=using)
        run = AuditRun.objects.using(using).create(
            started=started,
            duration=dt.timedelta(seconds=time.perf_counter() - clock),
            outcome=outcome,
            generation=found.generation,
            range_keys=len(found.range_keys),
            recent_keys=len(found.recent_keys),
            keys_checked=found.keys_checked,
            mismatches=len(keys),
            mismatched_keys=keys[:MAX_LOGGED_KEYS],
            fold_snapshot=found.fold_snapshot or "",
        )
        # As long as the refresh log: the latest run always stays.
        AuditRun.objects.using(using).filter(started__lt=keep_after).exclude(pk=run.pk).delete()
    if keys:
        # The first few with both rows, then the keys alone, at most MAX_LOGGED_KEYS.
        shown = [
            f"{m.key} (real-time {_row(m.realtime)}; history {_row(m.history)})" for m in found.mismatches[:5]
        ]
        shown += keys[5:MAX_LOGGED_KEYS]
        more = f" and {len(keys) - MAX_LOGGED_KEYS} more" if len(keys) > MAX_LOGGED_KEYS else ""
        logger.error(
            "Audit %d: %d of %d keys differ from the history in real-time reads; marked changed, so "
            "they are recomputed: %s%s",
            run.pk,
            len(keys),
            found.keys_checked,
            ", ".join(shown),
            more,
        )
    else:
        logger.debug("Audit %d: %s, %d keys checked", run.pk, outcome, found.keys_checked)
    return AuditRunSummary.of(run)
