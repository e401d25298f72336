from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from reporting.models import ApiToken, OrderLatestStatus, OrderLatestStatusLive, RefreshRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Views and logs: to look at, never to add, change or delete."""

    # Counting a million-row view for the paginator costs more than the page itself.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OrderLatestStatus)
class OrderLatestStatusAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "status", "status_since", "status_created", "status_id"]
    list_filter = ["status"]
    ordering = ["-status_created", "-order"]
    search_fields = ["=order__id"]


@admin.register(OrderLatestStatusLive)
class OrderLatestStatusLiveAdmin(OrderLatestStatusAdmin):
    pass


@admin.register(RefreshRun)
class RefreshRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "trigger",
        "outcome",
        "started",
        "snapshot_at",
        "duration",
        "rows",
        "changes_absorbed",
    ]
    list_filter = ["outcome", "trigger"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "created", "last_used"]
    readonly_fields = ["digest", "created", "last_used"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # tokens are shown once, so they are made with manage.py api_token create
