"""The read-only models the ORM queries: keys, history rows and latest statuses.

Over the views generated from ``REPORTING_SOURCE`` (``public.reporting_order``,
``public.reporting_orderstatus``) and the reporting views that
:mod:`reporting.matviews` declares (see its docstring for why a view has two
models). Every write through them is refused.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django_pgviews.managers import ReadOnlyViewManager

from reporting.sql_files import SCHEMA


class KeyField(models.Field):  # type: ignore[type-arg]
    """A declared key (``REPORTING_SOURCE["key"]``): an integer, or a uuid.

    Its values go to PostgreSQL as they are, where an integer field's lookups
    would turn a uuid into a number; the ORM's lookups (``=``, ``<``, ``__in``)
    then compare keys of either kind. Only on models over views: it makes no
    column.
    """

    def get_internal_type(self) -> str:
        return "KeyField"

    def db_type(self, connection: Any) -> None:
        return None


class ReadOnlyModelMixin:
    """Refuse writes through model instances; the queryset refuses bulk writes."""

    def save(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(
            f"{type(self).__name__} is a read-only view; write OrderStatus rows instead"
        )

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(
            f"{type(self).__name__} is a read-only view; write OrderStatus rows instead"
        )


class LatestStatusRow(ReadOnlyModelMixin, models.Model):
    """The columns of ``order_latest_status`` and its real-time twin, for the ORM (read-only)."""

    status_id = models.BigIntegerField()
    status = models.CharField(max_length=16)
    status_created = models.DateTimeField()
    status_since = models.DateTimeField()

    objects = ReadOnlyViewManager()

    class Meta:
        abstract = True
        managed = False
        base_manager_name = "objects"

    def __str__(self) -> str:
        return f"Order {self.order_id}: {self.status}"  # type: ignore[attr-defined]


class HistoryRow(ReadOnlyModelMixin, models.Model):
    """One row of the declared history, through the view generated from ``REPORTING_SOURCE``.

    ``public.reporting_orderstatus`` (reporting/source_sql.py) shows whatever table
    the project declared with these four columns; the ``live`` strategy reads it.
    """

    id = models.BigIntegerField(primary_key=True)
    order_id = KeyField()
    status = models.TextField()
    created = models.DateTimeField()

    objects = ReadOnlyViewManager()

    class Meta:
        managed = False
        db_table = "reporting_orderstatus"

    def __str__(self) -> str:
        return f"{self.order_id}: {self.status} at {self.created:%Y-%m-%d %H:%M:%S}"


class KeyRow(ReadOnlyModelMixin, models.Model):
    """One key of the declared source (an order), through the generated ``public.reporting_order``."""

    id = KeyField(primary_key=True)
    created = models.DateTimeField()

    objects = ReadOnlyViewManager()

    class Meta:
        managed = False
        db_table = "reporting_order"

    def __str__(self) -> str:
        return f"{self.pk}"


class OrderLatestStatus(LatestStatusRow):
    """The latest status of each order, as of the last refresh (read-only).

    Orders without any status row have no row here.
    """

    # No database constraint: a materialized view cannot carry a foreign key.
    order = models.OneToOneField(
        KeyRow,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="latest_status",
    )

    class Meta(LatestStatusRow.Meta):
        # Quoted by the ORM into "reporting"."order_latest_status".
        db_table = f'{SCHEMA}"."order_latest_status'
        verbose_name = "order latest status"
        verbose_name_plural = "order latest statuses"


class OrderLatestStatusLive(LatestStatusRow):
    """The latest status of each order, exact at query time (read-only; ``realtime`` reads).

    The ORM's mapping of ``reporting.order_latest_status_live``: the materialized
    view corrected by the change log. Same columns as :class:`OrderLatestStatus`.
    """

    order = models.OneToOneField(
        KeyRow,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="latest_status_live",
    )

    class Meta(LatestStatusRow.Meta):
        db_table = f'{SCHEMA}"."order_latest_status_live'
        verbose_name = "order latest status (real-time)"
        verbose_name_plural = "order latest statuses (real-time)"
