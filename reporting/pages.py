"""The HTML pages: the dashboard and an order's page.

Like the JSON API (:mod:`reporting.api`), they parse their input, call one
selector and render; people without a session are sent to the admin's login page,
users without the ``reporting.view_reports`` permission get a 403 page.
"""

from __future__ import annotations

__all__ = ["dashboard", "order_page"]

import datetime as dt
import logging
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from reporting import charts, conf, declaration, exports, selectors, wording
from reporting.api import DIGITS, PERMISSION, date_range_parameter, int_parameter
from reporting.choices import RefreshOutcome
from reporting.exceptions import InvalidParameterError, ReportingError, UnknownOrderError

logger = logging.getLogger(__name__)


def _styled(status: str) -> tuple[str, str, str]:
    """A status as people read it, the inline CSS of its colour and pattern, and of text on it."""
    style = charts.style(status)
    return (
        declaration.status_label(status),
        style.css,
        f"background-color: {style.color}; color: {style.text}",
    )


def _words() -> dict[str, str]:
    """The declared entity's nouns, for a template."""
    return {"noun": declaration.noun(), "noun_plural": declaration.noun_plural()}


def order_page(request: HttpRequest, order_id: int | str) -> HttpResponse:
    """``/orders/<id>``: an order's status history as a timeline, and its status by every strategy."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not request.user.has_perm(PERMISSION):
        return render(request, "reporting/forbidden.html", status=403)
    try:
        with selectors.read_statement_timeout(conf.web_statement_timeout()):
            detail = selectors.order_detail(order_id=order_id)
    except UnknownOrderError as exc:
        # The API's error keeps its words (a contract); the page says the declared noun.
        noun = declaration.noun()
        context = {"title": f"No such {noun}", "message": f"No {noun} has the key {exc.order_id}."}
        return render(request, "reporting/forbidden.html", context, status=404)
    except DatabaseError as exc:
        logger.warning("Order page: the database could not answer: %s", exc)
        context = {"title": "Not available", "message": "The database did not answer in time; try again."}
        return render(request, "reporting/forbidden.html", context, status=503)
    longest = max((entry.duration.total_seconds() for entry in detail.history), default=0) or 1
    return render(
        request,
        "reporting/order.html",
        {
            **_words(),
            "detail": detail,
            # REPORTING_ORDER_HISTORY_ROWS at most: the latest rows, and how many earlier ones are not shown.
            "omitted": detail.history_omitted,
            "now": [
                (
                    strategy,
                    seen,
                    *_styled(seen.row.status if seen.row else "none"),
                    wording.freshness_words(seen.freshness),
                )
                for strategy, seen in detail.by_strategy.items()
            ],
            "timeline": [
                (
                    entry,
                    max(2.0, 100 * entry.duration.total_seconds() / longest),
                    *_styled(entry.status),
                    dt.timedelta(seconds=round(entry.duration.total_seconds())),
                    # Pairs, not the mapping: a template would read a column named
                    # "items" for .items.
                    [(name, exports.plain_value(value)) for name, value in entry.columns.items()],
                )
                for entry in detail.history
            ],
        },
    )


# --- The dashboard -----------------------------------------------------------------------------------------


PAGE_SIZE = 25
MAX_TRAIL = 200


def _trail(request: HttpRequest) -> list[int]:
    """The ``after`` of every page before this one, oldest first (0: the first page), for "previous"."""
    raw = request.GET.get("trail", "")
    if raw == "":
        return []
    parts = raw.split(",")
    if len(parts) > MAX_TRAIL or not all(DIGITS.fullmatch(part) for part in parts):
        raise InvalidParameterError("trail", raw[:40], f"at most {MAX_TRAIL} page positions, comma-separated")
    return [int(part) for part in parts]


def _dashboard_filters(request: HttpRequest) -> tuple[str, tuple[dt.date, dt.date] | None]:
    """The status and date range of the dashboard's URL; both days or neither."""
    status = request.GET.get("status") or declaration.default_status()
    selectors.status_read_parse(status)
    return status, date_range_parameter(request)


def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard page: freshness, counts, orders per day and the orders in a status."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    if not request.user.has_perm(PERMISSION):
        return render(request, "reporting/forbidden.html", status=403)
    try:
        for name in request.GET:
            if len(request.GET.getlist(name)) > 1:
                raise InvalidParameterError(name, request.GET.getlist(name)[:3], "one value, given once")
        status, dates = _dashboard_filters(request)
        after_id = int_parameter(request, "after", default=None, minimum=1, maximum=2**63 - 1)
        trail = _trail(request)
        page = int_parameter(request, "page", default=len(trail) + 1, minimum=1, maximum=10**9) or 1
        after = selectors.cursor_after_status_row(after_id) if after_id is not None else None
        with selectors.read_statement_timeout(conf.web_statement_timeout()):
            data = selectors.dashboard_data(
                status=status, after=after, dates=dates, days=conf.dashboard_days(), page_size=PAGE_SIZE
            )
    except ReportingError as exc:
        return render(request, "reporting/forbidden.html", {"message": str(exc)}, status=400)
    except DatabaseError as exc:
        logger.warning("Dashboard: the database could not answer: %s", exc)
        message = "The database did not answer in time; try again in a moment."
        context = {"title": "Not available", "message": message}
        return render(request, "reporting/forbidden.html", context, status=503)
    today = data.freshness.checked_at.astimezone(dt.UTC).date()
    columns, ticks = charts.stacked_columns(data.daily.days, data.daily.series, today=today)
    last_run = data.freshness.last_runs[0] if data.freshness.last_runs else None
    # Values the declaration does not list are shown under their own value, flagged.
    shown = [
        name
        for name in charts.order([*data.counts.counts, *data.daily.series])
        if name != "none" or data.counts.none
    ]
    labelled = wording.transition_labels()
    totals = data.transitions.totals()
    filters = {"status": status} if status != declaration.default_status() else {}
    if dates is not None:
        filters |= {"from": dates[0].isoformat(), "to": dates[1].isoformat()}
    base = urlencode(filters)
    first_row = (page - 1) * PAGE_SIZE + 1
    here = after_id or 0
    rows = data.orders.rows

    def query(**params: str) -> str:
        return "?" + "&".join(part for part in (base, urlencode(params, safe=",")) if part)

    return render(
        request,
        "reporting/dashboard.html",
        {
            **_words(),
            "data": data,
            "freshness": wording.freshness_words(data.counts.freshness),
            "bars": charts.bar_chart(data.counts.as_dict()),
            "columns": columns,
            "ticks": ticks,
            "legend": [(name, *_styled(name)) for name in shown],
            "table_rows": [
                (column, [data.daily.series[name][i] for name in shown]) for i, column in enumerate(columns)
            ],
            "badge": _styled(data.status),
            # The declared statuses, then the values nobody declared that orders are in.
            "statuses": [(name, declaration.status_label(name)) for name in data.counts.counts],
            "undeclared": [name for name in shown if not declaration.is_declared(name) and name != "none"],
            "first_status": declaration.status_label(declaration.statuses()[0]),
            "stuck_hours": data.stuck.older_than.total_seconds() / 3600,
            # The example's named changes always; another declaration's many kinds
            # (n statuses make n(n-1)) only where some happened.
            "transitions": [
                (label, before, after, totals[(before, after)], counts[-1])
                for (label, (before, after)) in labelled
                for counts in [data.transitions.series[(before, after)]]
                if labelled is wording.EXAMPLE_TRANSITIONS or totals[(before, after)]
            ],
            "transitions_named": labelled is wording.EXAMPLE_TRANSITIONS,
            "transitions_other": sum(n for kind, n in totals.items() if kind not in dict(labelled).values()),
            "timed": [declaration.status_label(name) for name in data.times.series],
            "times": [
                (week, [(t.transitions, wording.span(t.median), wording.span(t.p90)) for t in series_at])
                for week, series_at in zip(
                    data.times.weeks, zip(*data.times.series.values(), strict=True), strict=True
                )
            ],
            "default_status": declaration.default_status(),
            "last_run_label": RefreshOutcome(last_run.outcome).label if last_run else None,
            # "of N" only without dates: the list's window (status changes) is not the counts' (creations).
            "position": (
                first_row,
                first_row + len(rows) - 1,
                data.counts.counts[data.status] if dates is None else None,
            ),
            # The trail keeps the last MAX_TRAIL pages for "previous"; the page number goes on.
            "next_query": (
                query(
                    after=str(data.orders.next_after_status_id),
                    trail=",".join(map(str, [*trail, here][-MAX_TRAIL:])),
                    page=str(page + 1),
                )
                if data.orders.next_after
                else None
            ),
            "previous_query": (
                query(
                    **({"after": str(trail[-1])} if trail[-1] else {}),
                    **({"trail": ",".join(map(str, trail[:-1]))} if len(trail) > 1 else {}),
                    **({"page": str(page - 1)} if page > 2 else {}),
                )
                if trail
                else None
            ),
            "first_query": query() if page > 1 and not trail else None,
        },
    )
