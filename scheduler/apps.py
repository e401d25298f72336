from __future__ import annotations

from django.apps import AppConfig


class SchedulerConfig(AppConfig):
    """The refresh schedule. It never starts anything in ``ready()``: the
    scheduler runs only in its own process, through ``run_scheduler``."""

    name = "scheduler"
    verbose_name = "Refresh scheduler"
