"""Histories of shapes the example shop never had, each compared with the brute force in every strategy.

- **tickets**: a support desk imported from elsewhere: UUID keys, no foreign key
  from the history to the tickets (rows of tickets that are not there), and state
  values nobody declared (``escalated``, ``none``, the empty string, a formula);
- **desk**: the ``examples.desk`` models: integer states (``IntegerChoices``), the
  statuses and their labels taken from the field's choices, and an integer no
  choice names;
- **storefront**: a Saleor-like order event log in a schema of its own: UUID
  orders, a ``type`` column whose values are mostly events, not statuses, and a
  deferred foreign key.

Random writes (keys, rows with ties and backfills, deletes) interleaved with
folds and refreshes (compactions), then more of them while a compaction runs
(which its overlay handover carries, or its new tail holds); after each sequence
every strategy, page walk, SQL view, API answer and CSV export equals the brute
force.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from hypothesis import example, given
from hypothesis import settings as hsettings

from reporting import checks, declaration, selectors, services
from reporting.choices import RefreshOutcome
from tests.helpers import examples, writes_during_compaction
from tests.sources import (
    DESK,
    PARENTED,
    SHAPES,
    STOREFRONT,
    STRATEGIES,
    TICKETS,
    assert_exact,
    reset,
    shape_apply,
    shape_declared,
    shape_ops,
)


@pytest.fixture
def reader(transactional_db, client, settings):
    """A client logged in as a user who may read the reports, live ones included."""
    # A property test exports a CSV per status in every example: more than an hour's
    # default allowance (the limit has tests of its own in test_csv_export.py).
    settings.REPORTING_CSV_EXPORTS_PER_HOUR = 0
    user = get_user_model().objects.create_superuser("shapes", password="shapes-password-1")
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_strategy_page_view_api_and_csv_equal_the_brute_force_through_folds_and_compactions(
    name, reader, settings
):
    shape = SHAPES[name]
    has_foreign_key = shape is not TICKETS

    @hsettings(max_examples=examples(6))
    @given(ops=shape_ops(shape), during=shape_ops(shape))
    # A row of a key without a parent while the compaction runs: the handover must not
    # take it for a key that existed.
    @example(ops=[], during=[("row", PARENTED, 0, 0)])
    def run(ops, during):
        reset(shape)
        for op in ops:
            shape_apply(shape, op, has_foreign_key=has_foreign_key)
        # Exact now, with whatever is folded and whatever is still in the tail.
        assert_exact(shape, ("live", "realtime"))
        services.overlay_fold()
        assert_exact(shape, ("live", "realtime"))
        # Writes and folds while the compaction runs: before its overlay handover (the
        # new overlay must carry them) and after it (the new tail).
        writes = [op for op in during if op[0] != "refresh"]
        half = (len(writes) + 1) // 2

        def apply(part):
            def write() -> None:
                for op in part:
                    shape_apply(shape, op, has_foreign_key=has_foreign_key)

            return write

        with writes_during_compaction(apply(writes[:half]), after=apply(writes[half:])):
            run = services.views_refresh(force=True)
        assert run.outcome == RefreshOutcome.OK
        assert run.handed_over is not None, "the handover ran (a failure would only be slower)"
        assert_exact(shape, ("live", "realtime"))
        services.overlay_fold()
        assert_exact(shape, ("realtime",))
        # The views as of now: every strategy, the snapshot's too, and every interface.
        assert services.views_refresh().outcome in {RefreshOutcome.OK, RefreshOutcome.UNCHANGED}
        assert_exact(shape, STRATEGIES, client=reader)

    with shape_declared(shape, settings):
        run()


def test_integer_states_read_as_their_choices_labels(reader, settings):
    with shape_declared(DESK, settings):
        assert declaration.statuses() == ("1", "2", "3", "4")
        assert [declaration.status_label(s) for s in ("1", "3", "7")] == ["New", "Solved", "7"]
        for op in [("row", 0, 0, 0), ("row", 0, 1, 2), ("row", 1, 0, 4), ("refresh",)]:
            shape_apply(DESK, op, has_foreign_key=True)
        body = reader.get("/api/status-counts").json()
        assert body["labels"] == {
            "1": "New",
            "2": "Waiting on customer",
            "3": "Solved",
            "4": "Closed",
            "7": "7",
        }
        assert body["undeclared"] == {"7": 1}
        # The list of an undeclared value that orders are in is served; one no order is in is a 400.
        assert reader.get("/api/orders", {"status": "7"}).status_code == 200
        refused = reader.get("/api/orders", {"status": "9"})
        assert refused.status_code == 400 and "valid values: 1, 2, 3, 4, 7" in refused.json()["error"]


def test_the_checks_warn_of_keys_without_a_foreign_key_and_of_undeclared_values(reader, settings):
    from django.db import connection

    with shape_declared(TICKETS, settings):
        for op in [("row", 0, 0, 3), ("row", 7, 0, 0), ("refresh",)]:
            shape_apply(TICKETS, op, has_foreign_key=False)
        found = {error.id: error for error in checks.source_errors("default")}
        assert set(found) == {"reporting.W004", "reporting.W005"}, found
        assert "'escalated' (1 orders)" in found["reporting.W005"].msg
        # The hint's statements add the foreign key once the rows without a parent are gone.
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM support_ticket_event AS e "
                "WHERE NOT EXISTS (SELECT 1 FROM support_ticket AS t WHERE t.id = e.ticket_id)"
            )
            hint = found["reporting.W004"].hint or ""
            cursor.execute(hint.partition(" (NOT VALID")[0])
        # The history's view no longer needs to look up the parent: migrate installs it again.
        assert {e.id for e in checks.source_errors("default")} == {"reporting.W002", "reporting.W005"}
        call_command("migrate", verbosity=0)
        assert {e.id for e in checks.source_errors("default")} == {"reporting.W005"}


def test_reporting_status_and_metrics_name_the_undeclared_values(reader, settings):
    from io import StringIO

    with shape_declared(STOREFRONT, settings):
        for op in [("row", 0, 0, 4), ("row", 1, 0, 4), ("row", 2, 0, 0), ("refresh",)]:
            shape_apply(STOREFRONT, op, has_foreign_key=True)
        out = StringIO()
        call_command("reporting_status", stdout=out)
        assert "undeclared statuses" in out.getvalue() and "'note_added' 2" in out.getvalue(), out.getvalue()
        metrics = reader.get("/metrics").content.decode()
        assert 'reporting_undeclared_status_orders{status="note_added"} 2.0' in metrics, metrics
        assert selectors.undeclared_status_counts() == {"note_added": 2}
