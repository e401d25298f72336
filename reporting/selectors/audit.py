"""Reads: the exactness audit's comparison of the real-time state with the history, and its latest run.

The real-time strategy is exact by construction (docs/architecture.md, "The parts,
and the path of a write"), but only as long as every write reaches the change log
and every fold and refresh does what it should. :func:`exactness_check` tests that
in production, on a sample, in one MVCC snapshot (a ``REPEATABLE READ, READ ONLY``
transaction): for each key of the sample it reads the latest row the real-time
strategy serves (``reporting_latest_status_rows``: the materialized view, the
overlay and the tail) and computes the latest row from the history directly,
as the materialized view's SQL does (``order_latest_status.sql``), restricted
to those keys. Any difference in ``status_id``, ``status``, ``status_created`` or
``status_since``, or a row on one side only, is a mismatch.

The sample has two parts:

* a **random range** of keys: up to ``sample`` consecutive keys of the parent
  table from a random start (an integer between the smallest and the largest key,
  or a random UUID), wrapping round to the first keys; this finds drift nobody
  logged (a write with the change-log triggers off), sooner or later;
* the **recent keys**: the keys of the change-log entries after the previous
  audit's position, the most recent first, up to ``sample``. The position only
  moves past entries the overlay has folded, so a key changed since the previous
  audit is checked once folded (its overlay row), and while still in the tail.

Both are read by index: the cost follows ``sample``, not the data.
"""

from __future__ import annotations

__all__ = ["MAX_LOGGED_KEYS", "AuditFindings", "AuditRunSummary", "Mismatch", "audit_last", "exactness_check"]

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from reporting.audit_log import AuditRunSummary
from reporting.declaration import source
from reporting.models import AuditRun
from reporting.routers import read_database
from reporting.source_install import declared_key_type

# The keys an audit run records and logs; a mismatch of more is counted, not listed.
MAX_LOGGED_KEYS = 100
# Change-log entries read per round trip while gathering the recent keys.
CHANGE_BATCH = 100
# An audit only reads by index; past this something is wrong (a lock held by a
# plain refresh, a history of millions of rows for one key): it fails, and the
# next one tries again.
STATEMENT_TIMEOUT = "60s"
LOCK_TIMEOUT = "5s"

# Where the maintained state is, and how far the overlay has folded the change log:
# the snapshot of its latest fold (the refresh's, before the first fold).
STATE_SQL = """
SELECT s.generation, s.needs_full_recompute, s.fold_snapshot::text FROM public.reporting_snapshot_state AS s
"""
BOUNDS_SQL = "SELECT min(k.id)::text, max(k.id)::text FROM public.reporting_order AS k"
RANGE_FROM_SQL = (
    "SELECT k.id::text FROM public.reporting_order AS k WHERE k.id >= %s::{key_type} ORDER BY k.id LIMIT %s"
)
RANGE_BEFORE_SQL = (
    "SELECT k.id::text FROM public.reporting_order AS k WHERE k.id < %s::{key_type} ORDER BY k.id LIMIT %s"
)
# Entries newest first, each array cut to what could still be used: every entry,
# or (WINDOW) those of transactions the previous audit's fold had not seen, found
# by the index on xid as a fold finds its tail.
CHANGES_SQL = """
SELECT c.id, c.order_ids[1:%(sample)s]::text[] FROM public.reporting_orderchange AS c
WHERE c.id < %(before)s AND c.order_ids IS NOT NULL {window}
ORDER BY c.id DESC LIMIT %(batch)s
"""
WINDOW = (
    "AND c.xid >= pg_snapshot_xmin(%(since)s::pg_snapshot) "
    "AND NOT pg_visible_in_snapshot(c.xid, %(since)s::pg_snapshot)"
)
# What real-time reads serve for these keys (the filter reaches into every part).
REALTIME_SQL = """
SELECT r.order_id::text, r.status_id, r.status, r.status_created::text, r.status_since::text
FROM public.reporting_latest_status_rows(NULL::text) AS r
WHERE r.order_id = ANY(%s::text[]::{key_type}[])
"""
# Times are compared as PostgreSQL's text (one session, one TimeZone): a history may
# hold timestamps Python cannot ('infinity', year 10000), which must not stop an audit.
# The latest row of these keys from the history itself, as the materialized view
# computes it (order_latest_status.sql): an independent formula from the tail's
# and the fold's, which find status_since from the key's index range.
LIVE_SQL = """
SELECT DISTINCT ON (h.order_id) h.order_id::text, h.id::bigint, h.status::text, h.created::text,
    (max(h.created) FILTER (WHERE h.starts_run) OVER (PARTITION BY h.order_id))::text
FROM (
    SELECT s.order_id, s.id, s.status, s.created,
        s.status IS DISTINCT FROM lead(s.status) OVER (
            PARTITION BY s.order_id ORDER BY s.created DESC, s.id DESC
        ) AS starts_run
    FROM public.reporting_orderstatus AS s
    WHERE s.order_id = ANY(%s::text[]::{key_type}[])
) AS h
ORDER BY h.order_id, h.created DESC, h.id DESC
"""

LatestRow = tuple[int, str, str, str]


@dataclass(frozen=True)
class Mismatch:
    """A key whose real-time latest row is not the history's.

    ``realtime`` and ``history``: ``(status_id, status, status_created, status_since)``
    (the times as PostgreSQL's text), or ``None`` where that side has no row.
    """

    key: str
    realtime: LatestRow | None
    history: LatestRow | None


@dataclass(frozen=True)
class AuditFindings:
    """What one comparison found, in one snapshot.

    Attributes:
        generation: the refresh run whose views the real-time state corrects.
        recomputing: real-time reads computed every key from the history (nothing
            maintained to audit); nothing was compared.
        range_keys: the keys of the random range checked.
        recent_keys: the keys changed since the previous audit's fold (``since``) checked.
        mismatches: the keys found wrong, sorted by their text.
        fold_snapshot: the snapshot of the overlay's latest fold; the next audit's
            recent keys are those of the changes it had not seen.
    """

    generation: int | None
    recomputing: bool
    range_keys: list[str]
    recent_keys: list[str]
    mismatches: list[Mismatch]
    fold_snapshot: str | None

    @property
    def keys_checked(self) -> int:
        return len(set(self.range_keys) | set(self.recent_keys))


def exactness_check(
    *,
    sample: int,
    since: str | None,
    using: str = "default",
    rng: random.Random | None = None,
) -> AuditFindings:
    """Compare the real-time latest rows of a sample of keys with the history, in one snapshot.

    Args:
        sample: keys per part (the random range; the recent keys).
        since: the ``fold_snapshot`` of the previous audit: its recent keys are those
            of the changes that fold had not seen; ``None``: the most recent changes.
        using: the database alias (the primary, whose state the scheduler maintains).
        rng: where the random range starts (a seeded one for tests).

    Raises:
        RuntimeError: called inside a transaction (the check needs a snapshot of its own).
        django.db.Error: the database failed or a statement ran out of time.
    """
    connection = connections[using]
    if connection.in_atomic_block:
        raise RuntimeError("exactness_check() must run in autocommit mode, not inside a transaction")
    rng = rng or random.Random()
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        key_type = declared_key_type(cursor, source())
        cursor.execute(STATE_SQL)
        generation, recomputing, fold_snapshot = cursor.fetchone()
        if recomputing:
            # Reads compute every key from the history: they cannot differ from it.
            return AuditFindings(generation, True, [], [], [], fold_snapshot)
        range_keys = _random_range(cursor, key_type, sample, rng)
        recent_keys = _recent_keys(cursor, sample, since)
        keys = list(dict.fromkeys([*range_keys, *recent_keys]))
        mismatches = _compare(cursor, key_type, keys)
    return AuditFindings(generation, False, range_keys, recent_keys, mismatches, fold_snapshot)


def _random_range(cursor: Any, key_type: str, sample: int, rng: random.Random) -> list[str]:
    """Up to ``sample`` consecutive keys of the parent table from a random start, wrapping round."""
    if key_type == "uuid":
        start = str(uuid.UUID(int=rng.getrandbits(128)))
    else:
        cursor.execute(BOUNDS_SQL)
        low, high = cursor.fetchone()
        if low is None:
            return []
        start = str(rng.randint(int(low), int(high)))
    cursor.execute(RANGE_FROM_SQL.format(key_type=key_type), [start, sample])
    keys = [row[0] for row in cursor.fetchall()]
    if len(keys) < sample:
        cursor.execute(RANGE_BEFORE_SQL.format(key_type=key_type), [start, sample - len(keys)])
        keys += [row[0] for row in cursor.fetchall()]
    return keys


def _recent_keys(cursor: Any, sample: int, since: str | None) -> list[str]:
    """The keys of the changes the fold of snapshot ``since`` had not seen, newest first, up to ``sample``."""
    found: dict[str, None] = {}
    params = {"sample": sample, "before": 2**63 - 1, "batch": CHANGE_BATCH, "since": since}
    query = CHANGES_SQL.format(window=WINDOW if since is not None else "")
    while len(found) < sample:
        cursor.execute(query, params)
        entries = cursor.fetchall()
        for change_id, keys in entries:
            params["before"] = change_id
            found.update(dict.fromkeys(key for key in keys if key is not None))
            if len(found) >= sample:
                break
        if len(entries) < CHANGE_BATCH:
            break
    return list(found)[:sample]


def _compare(cursor: Any, key_type: str, keys: Sequence[str]) -> list[Mismatch]:
    if not keys:
        return []
    cursor.execute(REALTIME_SQL.format(key_type=key_type), [list(keys)])
    realtime = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
    cursor.execute(LIVE_SQL.format(key_type=key_type), [list(keys)])
    history = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
    return [
        Mismatch(key, realtime.get(key), history.get(key))  # type: ignore[arg-type]
        for key in sorted(set(realtime) | set(history))
        if realtime.get(key) != history.get(key)
    ]


def audit_last(*, using: str | None = None) -> AuditRunSummary | None:
    """The latest audit run, or ``None`` before the first (on the read database by default)."""
    run = AuditRun.objects.using(using or read_database()).order_by("-id").first()
    return AuditRunSummary.of(run) if run is not None else None
