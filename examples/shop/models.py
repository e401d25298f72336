"""The example shop: orders and their append-only status history.

The reporting app knows them only through ``REPORTING_SOURCE`` (in this
repository's settings): the demo, the tests and the benchmark run on them.
"""

from __future__ import annotations

__all__ = ["Order", "OrderStatus", "Status"]

from django.db import models
from django.db.models import Q
from django.utils import timezone

from reporting.exceptions import InvalidStatusError


class Status(models.TextChoices):
    """The statuses an order can be in. A database CHECK constraint enforces the same set."""

    PENDING = "pending", "Pending"
    COMPLETE = "complete", "Complete"
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def parse(cls, value: object) -> Status:
        """Return ``value`` as a status, or raise ``InvalidStatusError`` naming the valid ones."""
        if not isinstance(value, str) or value not in cls.values:
            raise InvalidStatusError(value, cls.values)
        return cls(value)


class Order(models.Model):
    id = models.BigAutoField(primary_key=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        # Named before this app held them (the reporting app did), and kept.
        db_table = "reporting_example_order"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Order {self.pk}"


class OrderStatus(models.Model):
    """One entry of an order's status history. Rows are appended, never edited.

    The status of an order is its row with the greatest ``(created, id)``.
    """

    id = models.BigAutoField(primary_key=True)
    # No index of its own: the composite index below starts with order_id and
    # serves the foreign key's lookups too.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="statuses", db_index=False)
    created = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices)

    class Meta:
        db_table = "reporting_example_orderstatus"
        verbose_name_plural = "order statuses"
        constraints = [
            # Enforced by PostgreSQL, so raw SQL and BI tools cannot write "failed" either.
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="reporting_orderstatus_status_valid"
            ),
        ]
        indexes = [
            # "The latest status of order X": an index-ordered lookup, and the
            # order DISTINCT ON (order_id) ... ORDER BY order_id, created DESC, id DESC reads in.
            models.Index(fields=["order", "-created", "-id"], name="orderstatus_order_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"Order {self.order_id}: {self.status} at {self.created:%Y-%m-%d %H:%M:%S}"
