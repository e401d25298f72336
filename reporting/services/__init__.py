"""Writes. Interfaces (commands, HTTP views, scheduler jobs) call one function here."""

from __future__ import annotations

from reporting.services.audit import exactness_audit
from reporting.services.bi import (
    bi_comments_apply,
    bi_grants_apply,
    bi_role_create,
    bi_role_drop,
    bi_role_rotate_password,
    bi_role_unlock,
    bi_roles_repair,
    reporting_schema_create,
)
from reporting.services.bi_watchdog import bi_watchdog_run
from reporting.services.change_log import change_log_distrust, change_log_repair
from reporting.services.exports import csv_export_start
from reporting.services.fold import FoldResult, overlay_fold
from reporting.services.refresh import (
    compaction_at_start_reason,
    refresh_cancel,
    reporting_views,
    views_refresh,
)
from reporting.services.tokens import api_token_authenticate, api_token_create, api_token_revoke
from reporting.services.users import reports_user_ensure

__all__ = [
    "FoldResult",
    "api_token_authenticate",
    "api_token_create",
    "api_token_revoke",
    "bi_comments_apply",
    "bi_grants_apply",
    "bi_role_create",
    "bi_role_drop",
    "bi_role_rotate_password",
    "bi_role_unlock",
    "bi_roles_repair",
    "bi_watchdog_run",
    "change_log_distrust",
    "change_log_repair",
    "compaction_at_start_reason",
    "csv_export_start",
    "exactness_audit",
    "overlay_fold",
    "refresh_cancel",
    "reporting_schema_create",
    "reporting_views",
    "reports_user_ensure",
    "views_refresh",
]
