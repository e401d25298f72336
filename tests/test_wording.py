"""What people read: freshness in one truthful wording per strategy, and a source's own nouns.

A support desk (tickets with eleven states, none of them the example's) reads
"tickets" on the dashboard, an order's page and in the BI catalog; never the
example shop's orders, "paid" or "pending".
"""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from examples.shop import services as shop_services
from reporting import charts, selectors, services, wording
from reporting.choices import Strategy
from tests.helpers import TICKET_STATES, ticket_desk

CLOCK = r"\d\d:\d\d:\d\d UTC"

# Words of the example shop that a desk's pages and comments must not say ("failed" is a
# refresh run's outcome, the same for every source).
EXAMPLE_WORDS = re.compile(r"(?<![\w./-])(orders?|paid|refunded|refund|pending)(?![\w-])", re.IGNORECASE)


def _visible_text(html: str) -> str:
    """What a person reads on a page: its text, without tags, attributes, styles or URLs."""
    html = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", " ", html)


# --- Freshness ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_each_strategy_words_its_freshness_truthfully_and_the_command_says_the_same():
    shop_services.orders_seed(orders=30, seed=4, until=timezone.now())
    services.views_refresh()
    counts = {
        strategy: selectors.order_status_counts(strategy=strategy).freshness
        for strategy in ("live", "realtime", "snapshot")
    }
    for strategy in ("live", "realtime"):
        assert re.fullmatch(rf"exact now \(checked {CLOCK}\)", wording.freshness_words(counts[strategy]))
    unchanged = wording.freshness_words(counts["snapshot"])
    assert re.fullmatch(rf"as of {CLOCK} \(\d+ s ago\); no changes since", unchanged), unchanged

    shop_services.order_status_record(order_id=1, status="cancelled")
    one = wording.freshness_words(selectors.order_status_counts(strategy="snapshot").freshness)
    assert re.fullmatch(rf"as of {CLOCK} \(\d+ s ago\); 1 change since, not included", one), one
    shop_services.order_create()  # an order and its first status row: two changes
    snapshot = selectors.order_status_counts(strategy="snapshot").freshness
    words = wording.freshness_words(snapshot)
    assert words.endswith("; 3 changes since, not included"), words
    assert "pending" not in words, "changes are changes: a status may be called pending"
    realtime = wording.freshness_words(selectors.order_status_counts(strategy="realtime").freshness)
    assert realtime.startswith("exact now"), "realtime includes the changes: it is exact now, not as of then"
    # The views as the command shows them: the snapshot's words.
    views = selectors.freshness()
    assert wording.views_freshness_words(views).endswith("; 3 changes since, not included")

    out = StringIO()
    call_command("reporting_status", stdout=out)
    lines = out.getvalue().splitlines()
    views_line = rf"snapshot reads: as of {CLOCK} \(\d+ s ago\); 3 changes since, not included"
    assert re.fullmatch(views_line, lines[0]), lines
    assert re.fullmatch(rf"realtime and live reads: exact now \(checked {CLOCK}\)", lines[1])


def test_a_snapshot_of_views_never_refreshed_says_so():
    never = selectors.ReadFreshness(Strategy.SNAPSHOT, None, None, None, timezone.now())
    assert wording.freshness_words(never).startswith("not refreshed yet")


def test_an_old_snapshot_gives_its_day_and_age_in_days():
    now = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)
    old = selectors.ReadFreshness(Strategy.SNAPSHOT, now, now - dt.timedelta(days=2, hours=3), 1234, now)
    assert wording.freshness_words(old) == (
        "as of 2026-12-03 06:00:00 UTC (2 d 3 h ago); 1,234 changes since, not included"
    )


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_banner_and_an_order_page_use_the_same_words(client, settings):
    shop_services.orders_seed(orders=30, seed=4, until=timezone.now())
    services.views_refresh()
    shop_services.order_status_record(order_id=1, status="cancelled")
    services.reports_user_ensure(username="viewer", password="viewer-password-1")
    client.force_login(get_user_model().objects.get(username="viewer"))

    banner = re.compile(r'<div id="freshness"[^>]*>\s*(.*?)\s*</div>', re.DOTALL)
    realtime = banner.search(client.get(reverse("dashboard")).content.decode())
    assert realtime is not None
    assert re.match(rf"Exact now \(checked {CLOCK}\)\.", realtime.group(1)), realtime.group(1)
    settings.REPORTING_DEFAULT_STRATEGY = "snapshot"
    snapshot = banner.search(client.get(reverse("dashboard")).content.decode())
    assert snapshot is not None
    assert re.match(rf"As of {CLOCK} \(\d+ s ago\); 1 change since, not included\.", snapshot.group(1))
    assert "pending" not in snapshot.group(1) and "Exact as of" not in snapshot.group(1)

    page = client.get(reverse("order", args=[1])).content.decode()
    cells = r'data-strategy="(\w+)".*?<td class="wrap" data-freshness>(.*?)</td>'
    said = dict(re.findall(cells, page, re.DOTALL))
    assert set(said) == {"live", "snapshot", "realtime"}
    for exact in ("live", "realtime"):
        assert said[exact].startswith("Exact now (checked "), said
    assert said["snapshot"].endswith("; 1 change since, not included"), said


# --- The declared entity's words ---------------------------------------------------------------------------


def test_comments_put_the_declared_noun_for_the_entity_only(settings):
    settings.REPORTING_SOURCE = {**settings.REPORTING_SOURCE, "noun": "ticket"}
    assert wording.comment("Each order's latest status; orders without one: none. Order 5.") == (
        "Each ticket's latest status; tickets without one: none. Ticket 5."
    )
    # Column and view names stay what they are.
    assert wording.comment("Join order_latest_status on order_id; see reporting.orders.") == (
        "Join order_latest_status on order_id; see reporting.orders."
    )


def test_transition_labels_are_the_examples_only_for_its_own_statuses(settings):
    assert [label for label, _ in wording.transition_labels()] == ["Paid", "Refunded", "Failed or abandoned"]
    # The same three plus one: not the example shop any more, so no "Paid".
    settings.REPORTING_SOURCE = {
        **settings.REPORTING_SOURCE,
        "statuses": ["pending", "complete", "cancelled", "disputed"],
    }
    labels = dict(wording.transition_labels())
    # Named by the status field's choices where it has them, by the value where not.
    assert "Paid" not in labels and labels["Pending → Complete"] == ("pending", "complete")
    assert labels["Cancelled → disputed"] == ("cancelled", "disputed")
    assert len(labels) == 12


@pytest.fixture
def tickets(transactional_db, settings):
    """A support desk declared as the source, with tickets opened and moved in the last days."""
    with ticket_desk(settings):
        services.bi_comments_apply()
        yield
    services.bi_comments_apply()


def test_a_support_desk_reads_tickets_everywhere(tickets, client):
    services.reports_user_ensure(username="desk", password="desk-password-1")
    client.force_login(get_user_model().objects.get(username="desk"))

    html = client.get(reverse("dashboard"), {"status": "new"}).content.decode()
    text = _visible_text(html)
    assert "<title>Tickets · reporting</title>" in html and "<h1>Tickets</h1>" in html
    assert "tickets" in text and "New tickets, most recent first" in text
    assert not EXAMPLE_WORDS.findall(text), EXAMPLE_WORDS.findall(text)
    # Every status in the legend, each drawn its own way.
    legend = dict(re.findall(r'<span data-status="([^"]+)"><i style="([^"]+)"></i>', html))
    assert set(legend) == {*TICKET_STATES, "none"}, legend
    assert len(set(legend.values())) == len(legend)
    assert legend["merged_into_another_ticket"] == charts.pattern("merged_into_another_ticket")
    # The changes are named by their statuses, never "Paid".
    assert re.search(r"<td>new → [a-z_]+</td>", html)

    page = client.get(reverse("order", args=[1])).content.decode()
    assert "<title>Ticket 1 · reporting</title>" in page and "<h1>Ticket 1</h1>" in page
    assert not EXAMPLE_WORDS.findall(_visible_text(page)), EXAMPLE_WORDS.findall(_visible_text(page))
    missing = client.get(reverse("order", args=[999]))
    assert missing.status_code == 404 and "No such ticket" in missing.content.decode()
    assert not EXAMPLE_WORDS.findall(_visible_text(missing.content.decode()))

    # The BI catalog: every comment on the reporting views speaks of tickets.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, coalesce(a.attname, ''), d.description FROM pg_description d "
            "JOIN pg_class c ON c.oid = d.objoid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0 "
            "WHERE n.nspname = 'reporting'"
        )
        comments = cursor.fetchall()
    assert len(comments) > 50
    wrong = [(view, column, said) for view, column, said in comments if EXAMPLE_WORDS.search(said)]
    assert not wrong, wrong
    latest = {said for view, column, said in comments if view == "order_latest_status" and not column}
    assert latest and all("Each ticket's latest status" in said for said in latest), latest
