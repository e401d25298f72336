"""``{{ key|order_key }}``: an order's key as people read it (``12,345``, or a UUID as it is)."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.filter
def order_key(value: Any) -> str:
    # intcomma would put commas into the digits a UUID starts with.
    return intcomma(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)
