"""The Oscar example: what a shop on django-oscar adds to report on its orders."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _record_initial_status(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    """Give a new order's initial status a row in its history.

    Oscar sets a new order's status without an ``OrderStatusChange`` (only
    ``set_status`` writes one), so without this an order that never changed status
    would have no history row, and the reports would count it as ``none``.
    """
    if created and not raw and instance.status:
        instance.status_changes.create(old_status="", new_status=instance.status)


class OscarShopConfig(AppConfig):
    name = "examples.oscar_shop"
    label = "oscar_shop"
    verbose_name = "Oscar shop (example)"

    def ready(self) -> None:
        from django.db.models.signals import post_save
        from oscar.core.loading import get_model

        post_save.connect(
            _record_initial_status,
            sender=get_model("order", "Order"),
            dispatch_uid="oscar-shop-initial-status",
        )
