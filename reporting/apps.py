from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _regrant_after_sync(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """pgviews-redux may have dropped and recreated views, and their grants with them."""
    from reporting import bi

    bi.bi_grants_apply(using=using)


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Order status reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_pgviews.signals import all_views_synced

        all_views_synced.connect(_regrant_after_sync, dispatch_uid="reporting-regrant-after-sync")
