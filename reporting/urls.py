"""The reporting app's URLs: the dashboard, the JSON API, metrics and health checks.

A project includes them where it likes (``path("reports/", include("reporting.urls"))``);
the dashboard sends people without a session to the admin's login page.
"""

from __future__ import annotations

from django.urls import path, re_path, register_converter

from reporting import api, pages, probes


class KeyConverter:
    """An order's key in a URL: an integer, or a UUID (``REPORTING_SOURCE["key"]`` may be either)."""

    regex = "[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> int | str:
        # A UUID stays text: the view reads it as the declared key's type (selectors.key_parse).
        return int(value) if value.isdigit() else value

    def to_url(self, value: object) -> str:
        return str(value)


register_converter(KeyConverter, "key")

urlpatterns = [
    path("", pages.dashboard, name="dashboard"),
    path("api/status-counts", api.status_counts, name="api-status-counts"),
    path("api/orders", api.orders, name="api-orders"),
    path("api/orders/stuck", api.orders_stuck, name="api-orders-stuck"),
    path("api/orders/<key:order_id>", api.order, name="api-order"),
    path("orders/<key:order_id>", pages.order_page, name="order"),
    path("api/orders.csv", api.orders_csv, name="api-orders-csv"),
    path("api/transitions/daily", api.transitions_daily, name="api-transitions-daily"),
    path("api/transitions/times", api.transition_times, name="api-transition-times"),
    path("api/freshness", api.freshness, name="api-freshness"),
    path("api/<path:path>", api.not_found),
    re_path(r"^api/?$", api.not_found),
    path("metrics", api.prometheus_metrics, name="metrics"),
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
]
