"""A support desk: tickets whose history stores its states as integers (``IntegerChoices``)."""

from __future__ import annotations

from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "examples.desk"
    label = "desk"
    verbose_name = "Example support desk"
    default_auto_field = "django.db.models.BigAutoField"
