"""Writes: the record of CSV exports, and the per-token rate limit it makes possible."""

from __future__ import annotations

__all__ = ["csv_export_start"]

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from reporting import conf
from reporting.exceptions import RateLimitedError
from reporting.models import ApiToken, CsvExport

WINDOW = dt.timedelta(hours=1)


def csv_export_start(*, user: Any, token: ApiToken | None, status: str) -> None:
    """Record that ``user`` (through ``token``, if any) starts a CSV export, if the limit allows.

    Exports through a token count against that token; exports of a logged-in
    session against the user's exports without a token.

    Raises:
        RateLimitedError: ``REPORTING_CSV_EXPORTS_PER_HOUR`` exports were started
            in the last hour; it says when the next one may start.
    """
    limit = conf.web_csv_exports_per_hour()
    now = timezone.now()
    with transaction.atomic():
        # One at a time per user, so that two requests cannot both take the last slot.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        recent = CsvExport.objects.filter(user=user, token=token, started__gt=now - WINDOW)
        if limit and recent.count() >= limit:
            oldest = recent.order_by("started").values_list("started", flat=True).first() or now
            raise RateLimitedError(
                f"at most {limit} CSV exports an hour",
                retry_after=(oldest + WINDOW - now).total_seconds(),
                setting="REPORTING_CSV_EXPORTS_PER_HOUR",
            )
        CsvExport.objects.create(user=user, token=token, status=status, started=now)
        CsvExport.objects.filter(started__lt=now - 2 * WINDOW).delete()
