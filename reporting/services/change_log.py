"""Writes: keep the change log's triggers firing on every write, and distrust what they may have missed."""

from __future__ import annotations

__all__ = ["change_log_distrust", "change_log_repair"]

import logging

from django.db import connections, transaction
from psycopg import sql

from reporting.declaration import source
from reporting.source_install import (
    LOCK_TIMEOUT_MS,
    TRIGGER_STATE_SQL,
    change_log_problems,
    declared_key_type,
    source_install,
)
from reporting.source_sql import (
    CHANGE_LOG,
    HISTORY_TRIGGERS,
    KEY_TRIGGERS,
    trigger_names,
)

logger = logging.getLogger(__name__)

# Every key changed, for the views of any refresh that succeeded: real-time reads
# recompute from the history until the next refresh, which absorbs it.
DISTRUST_SQL = sql.SQL(
    "INSERT INTO {} (order_ids, source) SELECT NULL, 'truncate' "
    "WHERE EXISTS (SELECT 1 FROM public.reporting_refreshrun WHERE outcome = 'ok')"
).format(CHANGE_LOG)

# These keys changed, for the views of any refresh that succeeded (before one,
# real-time reads compute every key from the history anyway).
DISTRUST_KEYS_SQL = (
    "INSERT INTO {log} (order_ids, source) SELECT %s::text[]::{key_type}[], 'audit' "
    "WHERE EXISTS (SELECT 1 FROM public.reporting_refreshrun WHERE outcome = 'ok')"
)


def change_log_distrust(keys: list[str], *, using: str = "default") -> bool:
    """Log ``keys`` (as text: integers or UUIDs) as changed, so that what holds them is recomputed.

    The same mechanism as :func:`change_log_repair`, for some keys rather than every
    one: an entry in the change log, as a write would have made. Real-time reads
    recompute these keys from the history at once (they are in the tail), the next
    fold puts their latest rows into the overlay (correcting the counts by what they
    counted as), and the next refresh sees a change rather than ``unchanged``.

    Returns:
        Whether an entry was written (not before the first successful refresh, when
        real-time reads recompute every key anyway, nor for no keys).
    """
    if not keys:
        return False
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        key_type = declared_key_type(cursor, source())
        cursor.execute(
            DISTRUST_KEYS_SQL.format(log=CHANGE_LOG.as_string(cursor.connection), key_type=key_type), [keys]
        )
        return bool(cursor.rowcount)


def change_log_repair(*, using: str = "default") -> list[str]:
    """Make every change-log trigger fire always again, and recompute what they may have missed.

    A trigger that is disabled, or fires in origin sessions only (``ENABLE TRIGGER``
    after a restore or a bulk load with triggers off), let writes through that the
    change log never saw: nothing says which keys they touched. So after putting the
    triggers back (``ENABLE ALWAYS``, or installing the source again when one is
    missing) this records "every key changed": real-time reads are exact again at
    once, recomputing from the history until the next refresh.

    Returns:
        The problems found and mended (empty: nothing to do).
    """
    connection = connections[using]
    src = source()
    with transaction.atomic(using=using), connection.cursor() as cursor:
        problems = change_log_problems(cursor, src)
        if not problems:
            return []
        raw = cursor.connection
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
        missing = False
        for table, prefix in ((src.parent, KEY_TRIGGERS), (src.history, HISTORY_TRIGGERS)):
            cursor.execute(TRIGGER_STATE_SQL, [table.identifier().as_string(raw), trigger_names(prefix)])
            found = dict(cursor.fetchall())
            missing = missing or len(found) < len(trigger_names(prefix))
            for name, state in found.items():
                if state != "A":
                    cursor.execute(
                        sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}")
                        .format(table.identifier(), sql.Identifier(name))
                        .as_string(raw)
                    )
        cursor.execute(DISTRUST_SQL.as_string(raw))
    if missing:
        source_install(using=using, force=True)
    logger.warning(
        "The change log missed writes (%s): triggers enabled again; real-time reads recompute until the "
        "next refresh",
        "; ".join(problems),
    )
    return problems
