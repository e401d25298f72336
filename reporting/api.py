"""The JSON API: its endpoints, the streaming CSV export and the metrics endpoint.

The HTML pages are in :mod:`reporting.pages`, the health probes in :mod:`reporting.probes`.

Views only parse their input, call one selector and render. Order data is never
served to anonymous users: every view needs a logged-in user (a session, as
after the admin's login page, or an API token) with the ``reporting.view_reports``
permission. API calls without them get JSON 401/403, never a redirect.
"""

from __future__ import annotations

__all__ = [
    "DIGITS",
    "date_range_parameter",
    "freshness",
    "int_parameter",
    "not_found",
    "order",
    "orders",
    "orders_csv",
    "orders_stuck",
    "prometheus_metrics",
    "status_counts",
    "transition_times",
    "transitions_daily",
]

import datetime as dt
import functools
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from reporting import conf, declaration, exports, metrics, selectors, services
from reporting.choices import Strategy
from reporting.exceptions import (
    InvalidParameterError,
    InvalidTokenError,
    RateLimitedError,
    ReportingError,
    UnknownOrderError,
)

logger = logging.getLogger(__name__)

PERMISSION = "reporting.view_reports"
LIVE_PERMISSION = "reporting.read_live"
DEFAULT_LIMIT = 100
ALLOWED_METHODS = ("GET", "HEAD")
# Digits only, ASCII only: str.isdigit() also takes "²" and "٣", which int()
# refuses or reads differently. 19 digits hold every bigint.
DIGITS = re.compile(r"[0-9]{1,19}")

View = Callable[..., HttpResponseBase]


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _parameters(request: HttpRequest, allowed: frozenset[str]) -> None:
    """Refuse unknown and repeated query parameters, naming them.

    Raises:
        InvalidParameterError: a parameter outside ``allowed``, or one given twice.
        SuspiciousOperation: too many parameters (Django's DATA_UPLOAD_MAX_NUMBER_FIELDS).
    """
    for name in request.GET:
        if name not in allowed:
            raise InvalidParameterError("parameter", name, sorted(allowed))
        if len(request.GET.getlist(name)) > 1:
            raise InvalidParameterError(name, request.GET.getlist(name), "one value, given once")


def api_view(*parameters: str, permission: str = PERMISSION) -> Callable[[View], View]:
    """An API endpoint: every answer JSON, GET or HEAD only, a token or session user with the permission.

    Args:
        parameters: the query parameters it takes; any other, or one given twice, is a 400.
        permission: what the user needs.
    """
    allowed = frozenset(parameters)

    def decorator(view: View) -> View:
        @csrf_exempt  # no cookie-authenticated writes here: every method but GET and HEAD is refused
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in ALLOWED_METHODS:
                refused = _error(405, f"method {request.method} not allowed; use GET")
                refused["Allow"] = ", ".join(ALLOWED_METHODS)
                return refused
            started = time.perf_counter()
            response = _guarded(request, view, allowed, permission, *args, **kwargs)
            # For the CSV export: the time to its first byte, the rest streams after.
            metrics.API_REQUEST_SECONDS.labels(view.__name__, str(response.status_code)).observe(
                time.perf_counter() - started
            )
            return response

        return wrapper

    return decorator


def _guarded(
    request: HttpRequest, view: View, allowed: frozenset[str], permission: str, *args: Any, **kwargs: Any
) -> HttpResponseBase:
    """:func:`_answer`, with every failure as a JSON answer."""
    try:
        return _answer(request, view, allowed, permission, *args, **kwargs)
    except DatabaseError as exc:
        if _timed_out(exc):
            return _error(
                504,
                f"the query took longer than {conf.web_statement_timeout():g} s and was cancelled "
                "(REPORTING_WEB_STATEMENT_TIMEOUT)",
            )
        # A restart, a lost connection: the client may try again.
        logger.warning("API %s: the database could not answer: %s", request.path, exc)
        return _error(503, "the database could not answer; try again")
    except Exception:
        logger.exception("API %s failed", request.path)
        return _error(500, "internal error")


def _answer(
    request: HttpRequest, view: View, allowed: frozenset[str], permission: str, *args: Any, **kwargs: Any
) -> HttpResponseBase:
    """Authenticate, authorise, check the parameters, and call the view under the web's limits.

    Database errors, also those of the authentication (tokens and sessions live
    in the database), are the caller's to answer.
    """
    try:
        token = services.api_token_authenticate(request.headers.get("Authorization", ""))
    except InvalidTokenError as exc:
        return _unauthorized(str(exc))
    user = token.user if token is not None else request.user
    # For views that act on who asked (the CSV export's rate limit).
    request.api_token, request.api_user = token, user  # type: ignore[attr-defined]
    if user is None or not user.is_authenticated:
        return _unauthorized("authentication required: log in, or send 'Authorization: Bearer <token>'")
    if not user.has_perm(permission):
        return _error(403, f"permission {permission} required")
    try:
        _parameters(request, allowed)
        if "strategy" in allowed and not _may_read_live(user, request.GET.get("strategy")):
            return _error(
                403,
                f"strategy live needs the permission {LIVE_PERMISSION}: its cost grows with "
                "the data; realtime is exact too",
            )
        with selectors.read_statement_timeout(conf.web_statement_timeout()):
            return view(request, *args, **kwargs)
    except RateLimitedError as exc:
        response = _error(429, str(exc), setting=exc.setting)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except InvalidParameterError as exc:
        return _error(400, str(exc), parameter=exc.parameter, valid=exc.valid)
    except UnknownOrderError as exc:
        return _error(404, str(exc))
    except SuspiciousOperation as exc:  # e.g. more query parameters than Django parses
        return _error(400, str(exc) or "bad request")
    except ReportingError as exc:
        return _error(400, str(exc))


def _may_read_live(user: Any, strategy: str | None) -> bool:
    effective = strategy or conf.default_strategy()
    return effective != Strategy.LIVE or conf.web_live_for_all() or user.has_perm(LIVE_PERMISSION)


def _timed_out(exc: BaseException) -> bool:
    """Whether a database error is a statement cancelled by its timeout."""
    cause = exc.__cause__
    return isinstance(cause, psycopg.errors.QueryCanceled) and "statement timeout" in str(cause)


def _unauthorized(message: str) -> JsonResponse:
    response = _error(401, message)
    response["WWW-Authenticate"] = 'Bearer realm="reporting"'
    return response


def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under ``/api/``: a JSON 404, like every API answer."""
    return _error(404, f"no API endpoint at {request.path!r}")


def int_parameter(
    request: HttpRequest, name: str, *, default: int | None, minimum: int, maximum: int
) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    valid = f"an integer from {minimum} to {maximum}"
    if not DIGITS.fullmatch(raw):  # also refuses "-1", "+1", "1.5", " 1", "²", "٣" and 5,000 digits
        raise InvalidParameterError(name, raw if len(raw) <= 40 else raw[:40] + "...", valid)
    value = int(raw)
    if not minimum <= value <= maximum:
        raise InvalidParameterError(name, raw, valid)
    return value


@api_view("strategy")
def status_counts(request: HttpRequest) -> HttpResponse:
    """``GET /api/status-counts``: orders per latest status, ``none`` and the total."""
    # The selectors check status and strategy themselves; their errors become 400s.
    counts = selectors.order_status_counts(strategy=request.GET.get("strategy"))
    return JsonResponse(
        {
            "counts": counts.as_dict(),
            "none": counts.none,
            # Values the history holds that REPORTING_SOURCE["statuses"] does not list: counted
            # under their own value in "counts", named here.
            "undeclared": counts.undeclared,
            "labels": {status: declaration.status_label(status) for status in counts.counts},
            "total": counts.total,
            "freshness": counts.freshness.as_dict(),
        }
    )


@api_view("status", "after", "limit", "strategy")
def orders(request: HttpRequest) -> HttpResponse:
    """``GET /api/orders?status=cancelled&after=&limit=``: one keyset page, most recent first."""
    status = request.GET.get("status", "")
    limit = int_parameter(request, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=selectors.MAX_PAGE_SIZE)
    after_id = int_parameter(request, "after", default=None, minimum=1, maximum=2**63 - 1)
    strategy = request.GET.get("strategy")
    after = selectors.cursor_after_status_row(after_id) if after_id is not None else None
    page = selectors.order_list_by_status(
        status=status, strategy=strategy, after=after, limit=limit or DEFAULT_LIMIT
    )
    return JsonResponse(
        {
            "status": status,
            "orders": [
                {
                    "order_id": row.order_id,
                    "status_id": row.status_id,
                    "status": row.status,
                    "status_created": row.status_created.isoformat(),
                    "status_since": row.status_since.isoformat(),
                    **{name: exports.plain_value(value) for name, value in row.columns.items()},
                }
                for row in page.rows
            ],
            # The status row of the last order: pass it as ?after= for the next page.
            "next_after": page.next_after_status_id,
            "freshness": page.freshness.as_dict(),
        },
        # A NaN would be written as NaN, which is not JSON: fail instead.
        json_dumps_params={"allow_nan": False},
    )


def _row(row: selectors.OrderRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "status_id": row.status_id,
        "status": row.status,
        "status_created": row.status_created.isoformat(),
        "status_since": row.status_since.isoformat(),
    }


@api_view("limit")
def order(request: HttpRequest, order_id: int | str) -> HttpResponse:
    """``GET /api/orders/<id>?limit=``: an order, its latest history rows, its status by every strategy.

    ``history`` holds the latest ``limit`` rows (default ``REPORTING_ORDER_HISTORY_ROWS``);
    ``history_count`` says how many there are, ``history_truncated`` whether some were left out.
    """
    limit = int_parameter(
        request, "limit", default=conf.order_history_rows(), minimum=1, maximum=conf.MAX_ORDER_HISTORY_ROWS
    )
    detail = selectors.order_detail(order_id=order_id, history_limit=limit)
    return JsonResponse(
        {
            "order_id": detail.order_id,
            "created": detail.created.isoformat(),
            "status": {
                strategy: {**(_row(seen.row) or {"status": None}), "freshness": seen.freshness.as_dict()}
                for strategy, seen in detail.by_strategy.items()
            },
            "history": [
                {
                    "status_id": entry.status_id,
                    "status": entry.status,
                    "created": entry.created.isoformat(),
                    "duration_seconds": entry.duration.total_seconds(),
                    "latest": entry.latest,
                    # Nested: a declared column may be called "created" or "latest".
                    "columns": {name: exports.plain_value(value) for name, value in entry.columns.items()},
                }
                for entry in detail.history
            ],
            "history_count": detail.history_count,
            "history_truncated": detail.history_omitted > 0,
        }
    )


@api_view("hours", "limit")
def orders_stuck(request: HttpRequest) -> HttpResponse:
    """``GET /api/orders/stuck?hours=24&limit=25``: orders pending for longer than that, exact."""
    hours = int_parameter(request, "hours", default=None, minimum=1, maximum=24 * 366)
    limit = int_parameter(request, "limit", default=25, minimum=0, maximum=1000)
    stuck = selectors.orders_stuck_pending(
        older_than=dt.timedelta(hours=hours) if hours is not None else None, limit=limit or 0
    )
    return JsonResponse(
        {
            "older_than_hours": stuck.older_than.total_seconds() / 3600,
            "count": stuck.count,
            "oldest": [
                {
                    "order_id": row.order_id,
                    "status_id": row.status_id,
                    # When it entered the status (a repeated pending row does not move it).
                    "pending_since": row.status_since.isoformat(),
                }
                for row in stuck.oldest
            ],
            "freshness": stuck.freshness.as_dict(),
        }
    )


@api_view("from", "to", "strategy")
def transitions_daily(request: HttpRequest) -> HttpResponse:
    """``GET /api/transitions/daily?from=&to=``: status changes per day (UTC) and kind; the last 30 days."""
    dates = date_range_parameter(request)
    days, last = (selectors.range_days(*dates), dates[1]) if dates is not None else (30, None)
    result = selectors.order_transitions_daily(days=days, until=last, strategy=request.GET.get("strategy"))
    return JsonResponse(
        {
            "days": [day.isoformat() for day in result.days],
            "transitions": [
                {"from": before, "to": after, "per_day": counts, "total": sum(counts)}
                for (before, after), counts in result.series.items()
            ],
            "freshness": result.freshness.as_dict(),
        }
    )


def _seconds(value: dt.timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


@api_view("weeks", "strategy")
def transition_times(request: HttpRequest) -> HttpResponse:
    """``GET /api/transitions/times?weeks=8``: median and p90 time to complete and to cancel, per week."""
    weeks = int_parameter(request, "weeks", default=8, minimum=1, maximum=selectors.MAX_WEEKS) or 8
    result = selectors.order_transition_times(weeks=weeks, strategy=request.GET.get("strategy"))
    return JsonResponse(
        {
            "weeks": [week.isoformat() for week in result.weeks],
            **{
                status: [
                    {
                        "week": week.isoformat(),
                        "transitions": times.transitions,
                        "median_seconds": _seconds(times.median),
                        "p90_seconds": _seconds(times.p90),
                    }
                    for week, times in zip(result.weeks, series, strict=True)
                ]
                for status, series in result.series.items()
            },
            "freshness": result.freshness.as_dict(),
        }
    )


@api_view("runs")
def freshness(request: HttpRequest) -> HttpResponse:
    """``GET /api/freshness``: as-of time, age, changes since, and the latest refresh runs."""
    runs = int_parameter(request, "runs", default=10, minimum=1, maximum=100)
    fresh = selectors.freshness(runs=runs or 10)
    return JsonResponse(
        {
            "as_of": fresh.as_of.isoformat() if fresh.as_of else None,
            "checked_at": fresh.checked_at.isoformat(),
            "age_seconds": fresh.age.total_seconds() if fresh.age is not None else None,
            "changes_since": fresh.changes_since,
            "folded_at": fresh.folded_at.isoformat() if fresh.folded_at else None,
            "overlay_orders": fresh.overlay_orders,
            "on_replica": fresh.on_replica,
            "replay_lag_seconds": fresh.replay_lag.total_seconds() if fresh.replay_lag is not None else None,
            "runs": [
                {
                    "id": run.id,
                    "trigger": run.trigger,
                    "outcome": run.outcome,
                    "started": run.started.isoformat(),
                    "snapshot_at": run.snapshot_at.isoformat() if run.snapshot_at else None,
                    "duration_seconds": run.duration.total_seconds() if run.duration is not None else None,
                    "rows": run.rows,
                    "changes_absorbed": run.changes_absorbed,
                    "error": run.error,
                }
                for run in fresh.last_runs
            ],
        }
    )


@api_view("status", "strategy")
def orders_csv(request: HttpRequest) -> HttpResponseBase:
    """``GET /api/orders.csv?status=cancelled``: every order in the status, streamed."""
    status = request.GET.get("status", "")
    strategy = request.GET.get("strategy")
    chunks = exports.orders_csv_chunks(status=status, strategy=strategy)  # checks both at once
    user = request.api_user  # type: ignore[attr-defined]
    if request.method == "GET":  # HEAD sends no rows
        services.csv_export_start(user=user, token=request.api_token, status=status)  # type: ignore[attr-defined]
    # The body is read after this view returns: its statements get the limit then.
    response = StreamingHttpResponse(
        _limited(chunks, conf.web_statement_timeout()), content_type="text/csv; charset=utf-8"
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="orders-{_filename_part(status)}-{stamp}.csv"'
    return response


# A status may be any text the history holds (an undeclared value with a line
# break, a quote or a slash): in a file name it keeps letters, digits, '.', '_'
# and '-', and the rest become '_'.
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def _filename_part(value: str) -> str:
    return _UNSAFE_IN_FILENAME.sub("_", value)[:40].strip("._") or "status"


def _limited(chunks: Iterator[bytes], seconds: float) -> Iterator[bytes]:
    with selectors.read_statement_timeout(seconds):
        yield from chunks


@api_view(permission="reporting.view_metrics")
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: Prometheus metrics, for a token (or user) with ``reporting.view_metrics``.

    Without prometheus-client (the ``metrics`` extra): a 501 that says what to install.
    """
    if not metrics.available():
        return _error(501, f"Prometheus metrics are not installed: {metrics.INSTALL}")
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(request: HttpRequest, name: str) -> dt.date | None:
    raw = request.GET.get(name, "")
    if raw == "":
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        day = dt.date.fromisoformat(raw)
        if not 1900 <= day.year <= 9998:  # room for "the day after", and no nonsense
            raise ValueError(raw)
        return day
    except ValueError:
        raise InvalidParameterError(name, raw[:40], "a day as YYYY-MM-DD (UTC), years 1900 to 9998") from None


def date_range_parameter(request: HttpRequest) -> tuple[dt.date, dt.date] | None:
    """The ``from`` and ``to`` days of a request (UTC, both or neither)."""
    first, last = _date(request, "from"), _date(request, "to")
    if (first is None) != (last is None):
        raise InvalidParameterError("from" if first is None else "to", "", "both from and to, or neither")
    return (first, last) if first is not None and last is not None else None
