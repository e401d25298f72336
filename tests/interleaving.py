"""Writers, refreshes, folds and a reader at once: the harness of the concurrency tests.

Each test brings its writers (what they write is what finds holes) and a reader
(what it compares); this runs them with the scheduler's maintenance, concurrent
refreshes and folds, and reads in REPEATABLE READ snapshots until the writers
are done and at least ``min_reads`` reads were made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction

from reporting import services


@dataclass
class Interleaving:
    """What ran: mismatches the reader reported, errors of any thread, and how often each part ran."""

    mismatches: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    reads: int = 0
    refreshes: int = 0
    #: Fold runs, whatever their outcome.
    folds: int = 0


def interleave(
    writers: list[Callable[[], None]],
    reader: Callable[[], list[str]],
    *,
    folders: int = 1,
    refresh_pause: float = 0.5,
    min_reads: int = 10,
    timeout: float = 300,
) -> Interleaving:
    """Run ``writers`` to their end while refreshes, folds and ``reader`` run; return what happened.

    Args:
        writers: each runs in a thread of its own, once.
        reader: called in a REPEATABLE READ transaction; returns what it found wrong.
        folders: fold threads (two act as two schedulers: one folds, the other skips).
        refresh_pause: seconds between two concurrent refreshes.
    """
    result = Interleaving()
    done = threading.Event()

    def guarded(func: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                func()
            except BaseException as exc:  # reported to the test, never lost in a thread
                result.errors.append(exc)
            finally:
                connection.close()

        return run

    # Each part runs once more after the writers are done, so that every part ran
    # whatever the machine's load (no count of how much work it got done).
    def refresher() -> None:
        while result.refreshes == 0 or not done.is_set():
            # Concurrently, as the scheduler does: a plain refresh takes ACCESS
            # EXCLUSIVE locks view by view, and a reader that already read one view
            # of its transaction can deadlock with it (PostgreSQL then aborts one).
            services.views_refresh(concurrently=True)
            result.refreshes += 1
            done.wait(refresh_pause)

    def folder() -> None:
        while result.folds == 0 or not done.is_set():
            services.overlay_fold()
            result.folds += 1

    def reading() -> None:
        while not done.is_set() or result.reads < min_reads:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                result.mismatches += [f"read {result.reads}: {problem}" for problem in reader()]
            result.reads += 1

    writing = [threading.Thread(target=guarded(w)) for w in writers]
    others = [threading.Thread(target=guarded(f)) for f in (refresher, *[folder] * folders, reading)]
    for thread in writing + others:
        thread.start()
    for thread in writing:
        thread.join(timeout)
    done.set()
    for thread in others:
        thread.join(timeout)
    return result


def assert_interleaved_exact(result: Interleaving) -> None:
    """No error, no mismatch, and every part ran (how often depends on the machine's load, not asserted)."""
    assert not result.errors, result.errors
    assert not result.mismatches, result.mismatches[:5]
    assert result.reads >= 10 and result.refreshes >= 1 and result.folds >= 1, result
