"""The example shop the demo, the tests and the benchmark report on."""

from __future__ import annotations

from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "examples.shop"
    label = "shop"
    verbose_name = "Example shop"
    default_auto_field = "django.db.models.BigAutoField"
