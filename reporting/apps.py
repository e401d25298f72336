from __future__ import annotations

import logging
from typing import Any

from django.apps import AppConfig
from django.core.management.base import CommandError

logger = logging.getLogger(__name__)


# Where this migrate's lines go (its stdout), per database, set when migrate ends.
_migrate_output: dict[str, Any] = {}


def _regrant_after_sync(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """pgviews-redux may have dropped and recreated views, and their grants and comments with them.

    Then, if the views are no longer what the latest refresh left (a declaration
    installed again, a view pgviews-redux made anew), real-time reads would
    recompute every key until the next refresh: a refresh now ends that within
    this migrate (concurrently: no reader waits for it).
    """
    from reporting import services
    from reporting.services.view_deploy import views_catch_up

    services.bi_grants_apply(using=using)
    services.bi_comments_apply(using=using)
    write = _migrate_output.pop(using, None)
    if write is not None:  # after a migrate (the sync also runs from sync_pgviews)
        try:
            views_catch_up(using=using, write=write)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from None


def _schema_before_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Create the reporting schema before every migrate, or refuse one that holds others' objects.

    Every migrate, not only the first: the views are (re)created in it on
    post_migrate, also after REPORTING_SCHEMA was changed.
    """
    from reporting import bi, services, source_install

    partly = source_install.partly_migrated_history(using)
    if partly:
        raise CommandError(
            f"This database has {len(partly)} of the reporting migrations before 0.1.0 applied (the last: "
            f"{partly[-1]}), not all of them: migrate it to the end of that history with the release before "
            "0.1.0 first, then with this one"
        )
    try:
        services.reporting_schema_create(using=using)
    except bi.ForeignSchemaObjectsError as exc:
        raise CommandError(str(exc)) from None


def _install_source(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    """Install the views and triggers of REPORTING_SOURCE when migrate ends, before the view sync.

    post_migrate is sent once per app with models, in INSTALLED_APPS order, and
    pgviews-redux syncs the views on the last one; the reporting views read the
    generated views, so they are installed on the first.
    """
    from django.apps import apps

    first = next(app for app in apps.get_app_configs() if app.models_module is not None)
    if sender is not first:
        return
    from reporting import checks, source_install

    if not source_install.app_migrated(using):
        return  # migrated back to zero: nothing to install into
    errors = [error for error in checks.source_errors(using, made=True) if error.is_serious()]
    if errors:
        error = errors[0]
        raise CommandError(f"{error.msg}{f' ({error.hint})' if error.hint else ''}")
    source_install.source_install(using=using)
    # Changed view SQL, built beside and swapped in before pgviews-redux's sync,
    # which then finds every view as its file says (reporting.services.view_deploy).
    from reporting.services.view_deploy import views_deploy

    stdout = kwargs.get("stdout")
    write = (lambda line: stdout.write(line + "\n")) if stdout else logger.info
    _migrate_output[using] = write
    try:
        views_deploy(using=using, write=write)
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None


class ReportingConfig(AppConfig):
    name = "reporting"
    verbose_name = "Order status reporting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_migrate
        from django_pgviews.signals import all_views_synced

        from reporting import checks  # noqa: F401 - registers the checks of REPORTING_SOURCE

        all_views_synced.connect(_regrant_after_sync, dispatch_uid="reporting-regrant-after-sync")
        pre_migrate.connect(
            _schema_before_migrate, sender=self, dispatch_uid="reporting-schema-before-migrate"
        )
        post_migrate.connect(_install_source, dispatch_uid="reporting-install-source")
