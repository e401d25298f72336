"""Template filters: ``{{ key|order_key }}``, a key as people read it (``12,345``, or a UUID as
it is); ``{{ status|breakable }}``, a long status that may wrap at its ``_`` and ``-``."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def order_key(value: Any) -> str:
    # intcomma would put commas into the digits a UUID starts with.
    return intcomma(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


@register.filter
def breakable(value: Any) -> SafeString:
    # A narrow column wraps "waiting_for_customer" after an underscore, not mid-word,
    # and never cuts it off.
    text = str(escape(value))
    return mark_safe(text.replace("_", "_<wbr>").replace("-", "-<wbr>"))
