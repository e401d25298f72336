from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.management.base import CommandError


def _regrant_after_sync(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """pgviews-redux may have dropped and recreated views, and their grants and comments with them."""
    from reporting import services

    services.bi_grants_apply(using=using)
    services.bi_comments_apply(using=using)


def _schema_before_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Create the reporting schema before every migrate, or refuse one that holds others' objects.

    Every migrate, not only the first: the views are (re)created in it on
    post_migrate, also after REPORTING_SCHEMA was changed.
    """
    from reporting import bi, services

    try:
        services.reporting_schema_create(using=using)
    except bi.ForeignSchemaObjectsError as exc:
        raise CommandError(str(exc)) from None


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Order status reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import pre_migrate
        from django_pgviews.signals import all_views_synced

        all_views_synced.connect(_regrant_after_sync, dispatch_uid="reporting-regrant-after-sync")
        pre_migrate.connect(
            _schema_before_migrate, sender=self, dispatch_uid="reporting-schema-before-migrate"
        )
