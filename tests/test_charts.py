"""The dashboard's palette: a colour and a pattern per status, distinct for any number, readable text."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from reporting import charts

EXAMPLE = dict(django_settings.REPORTING_SOURCE)


def _declare(settings, statuses: list[str]) -> None:
    settings.REPORTING_SOURCE = {**EXAMPLE, "statuses": statuses}


@pytest.mark.parametrize("count", range(1, 31))
def test_every_declared_status_gets_a_colour_and_pattern_of_its_own(settings, count):
    statuses = [f"state_{i}" for i in range(count)]
    _declare(settings, statuses)
    styles = {status: charts.style(status) for status in [*statuses, "none"]}
    pairs = {(s.color, s.image, s.size) for s in styles.values()}
    assert len(pairs) == count + 1, f"{count} statuses and none share a style: {styles}"
    # The first seven differ in colour and in pattern each, so neither alone is needed.
    first = [styles[s] for s in statuses[:7]]
    assert len({s.color for s in first}) == len(first)
    assert len({s.pattern for s in first}) == len(first)


def test_styles_stay_distinct_past_every_pair_of_colour_and_pattern():
    seen = [charts.style_at(i) for i in range(3 * charts.CYCLE)]
    assert len({(s.color, s.image, s.size) for s in seen}) == len(seen)


def test_text_on_every_colour_meets_wcag_aa(settings):
    _declare(settings, [f"state_{i}" for i in range(100)])
    for status in [*(f"state_{i}" for i in range(100)), "none", "undeclared", "", "ünïcode ☃"]:
        style = charts.style(status)
        ratio = charts.contrast(style.color, style.text)
        assert ratio >= charts.AA, (status, style, ratio)
        assert charts.text_on(status) == style.text and charts.color(status) == style.color


def test_the_example_keeps_its_three_colours_and_pending_its_stripes():
    assert charts.color("complete") == "#0072B2"
    assert charts.color("pending") == "#E69F00"
    assert charts.color("cancelled") == "#D55E00"
    assert "repeating-linear-gradient(45deg" in charts.pattern("pending")
    assert charts.style("complete").image == "none" and charts.style("cancelled").image == "none"


def test_an_undeclared_value_gets_a_style_no_declared_status_has(settings):
    statuses = ["new", "open", "waiting", "closed", "spam"]
    _declare(settings, statuses)
    declared = {charts.pattern(s) for s in [*statuses, "none"]}
    for value in ("escalated", "Closed", "new ", "", "x" * 500, "\u0663", "a\x00b"):
        assert charts.pattern(value) not in declared, value
        assert charts.pattern(value) == charts.pattern(value), "the same every time"


def test_an_undeclared_value_has_the_same_style_in_another_process(settings):
    """A hash of the value, not Python's per-process hash(): every worker draws it alike."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'demo_project.settings'; django.setup(); "
        "from reporting import charts; print(charts.pattern('escalated'))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == charts.pattern("escalated")
