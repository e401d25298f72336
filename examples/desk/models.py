"""A support desk, a second shape of history: integer states with labels, another noun than "order".

Declared as the source (``REPORTING_SOURCE``) by the tests only, without
``statuses``: the states and the words people read for them come from the
field's choices::

    REPORTING_SOURCE = {
        "history": "desk.TicketEvent",
        "key": "ticket_id",
        "latest_by": ["-at", "-id"],
        "status": "state",
        "parent": "desk.Ticket",
        "parent_created": "opened",
    }
"""

from __future__ import annotations

__all__ = ["State", "Ticket", "TicketEvent"]

from django.db import models
from django.utils import timezone


class State(models.IntegerChoices):
    NEW = 1, "New"
    WAITING = 2, "Waiting on customer"
    SOLVED = 3, "Solved"
    CLOSED = 4, "Closed"


class Ticket(models.Model):
    opened = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "ticket"

    def __str__(self) -> str:
        return f"Ticket {self.pk}"


class TicketEvent(models.Model):
    """A change of a ticket's state; no CHECK constraint, as Django makes none for choices."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events", db_index=False)
    state = models.SmallIntegerField(choices=State.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["ticket", "-at", "-id"], name="desk_ticketevent_latest")]

    def __str__(self) -> str:
        return f"{self.get_state_display()} at {self.at:%Y-%m-%d %H:%M}"
