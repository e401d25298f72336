"""Reads. Interfaces (HTTP views, commands, the dashboard) call one function here."""

from __future__ import annotations

from reporting.selectors.audit import AuditFindings, AuditRunSummary, Mismatch, audit_last, exactness_check
from reporting.selectors.bi import bi_grants_check, bi_notes, bi_role, bi_role_list, schema_foreign_objects
from reporting.selectors.dashboard import DashboardData, dashboard_data, range_days
from reporting.selectors.freshness import (
    Freshness,
    LockHolder,
    ReadFreshness,
    freshness,
    lock_holder,
    read_freshness,
    refresh_lock_holder,
)
from reporting.selectors.health import Readiness, audit_problem, change_log_check, readiness
from reporting.selectors.limits import read_statement_timeout
from reporting.selectors.order_detail import HistoryEntry, OrderDetail, order_detail
from reporting.selectors.orders import (
    MAX_PAGE_SIZE,
    Cursor,
    DailyCounts,
    OrderPage,
    OrderRow,
    StatusCounts,
    cursor_after_status_row,
    order_daily_counts,
    order_ids_by_status,
    order_iter_by_status,
    order_list_by_status,
    order_status_counts,
    status_read_parse,
    undeclared_status_counts,
)
from reporting.selectors.stuck import StuckOrders, orders_stuck_pending
from reporting.selectors.tokens import TokenInfo, api_token_list
from reporting.selectors.transitions import (
    MAX_WEEKS,
    TransitionCounts,
    TransitionTimes,
    WeekTimes,
    order_transition_times,
    order_transitions_daily,
    timed_statuses,
    transition_kinds,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_WEEKS",
    "AuditFindings",
    "AuditRunSummary",
    "Cursor",
    "DailyCounts",
    "DashboardData",
    "Freshness",
    "HistoryEntry",
    "LockHolder",
    "Mismatch",
    "OrderDetail",
    "OrderPage",
    "OrderRow",
    "ReadFreshness",
    "Readiness",
    "StatusCounts",
    "StuckOrders",
    "TokenInfo",
    "TransitionCounts",
    "TransitionTimes",
    "WeekTimes",
    "api_token_list",
    "audit_last",
    "audit_problem",
    "bi_grants_check",
    "bi_notes",
    "bi_role",
    "bi_role_list",
    "change_log_check",
    "cursor_after_status_row",
    "dashboard_data",
    "exactness_check",
    "freshness",
    "lock_holder",
    "order_daily_counts",
    "order_detail",
    "order_ids_by_status",
    "order_iter_by_status",
    "order_list_by_status",
    "order_status_counts",
    "order_transition_times",
    "order_transitions_daily",
    "orders_stuck_pending",
    "range_days",
    "read_freshness",
    "read_statement_timeout",
    "readiness",
    "refresh_lock_holder",
    "schema_foreign_objects",
    "status_read_parse",
    "timed_statuses",
    "transition_kinds",
    "undeclared_status_counts",
]
