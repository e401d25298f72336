from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting import declaration, selectors, wording
from reporting.choices import Strategy


def _non_negative(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, not {value!r}")
    return seconds


class Command(BaseCommand):
    help = (
        "Show how fresh the reporting views and their overlay are; fail when the overlay has outgrown "
        "REPORTING_COMPACT_OVERLAY_ORDERS (refreshes are failing) or, with --max-age, when they are older."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-age",
            type=_non_negative,
            metavar="SECONDS",
            help="exit 1 when the views are older than this (or were never refreshed): a health check",
        )
        parser.add_argument("--runs", type=int, default=5, help="refresh runs to list (default 5)")

    def handle(self, *args: Any, **options: Any) -> None:
        fresh = selectors.freshness(runs=options["runs"])
        # The words of the dashboard's banner, per strategy.
        self.stdout.write(f"snapshot reads: {wording.views_freshness_words(fresh)}")
        exact = wording.freshness_words(selectors.read_freshness(Strategy.REALTIME))
        self.stdout.write(f"realtime and live reads: {exact}")
        if fresh.folded_at is not None and fresh.fold_age is not None:
            self.stdout.write(
                f"overlay: {fresh.overlay_orders:,} {declaration.noun_plural()} changed since the refresh, "
                f"folded as of {wording.clock(fresh.folded_at, today=fresh.checked_at)} "
                f"({wording.span(fresh.fold_age)} ago)"
            )
        if fresh.as_of is not None:
            undeclared = selectors.undeclared_status_counts()
            if undeclared:
                listed = ", ".join(f"{status!r} {n:,}" for status, n in undeclared.items())
                self.stdout.write(
                    "undeclared statuses (not in REPORTING_SOURCE['statuses']; counted under their own "
                    f"value): {listed}"
                )
        unlogged = selectors.change_log_check()
        for problem in unlogged:
            self.stdout.write(f"change log: {problem}")
        audit = selectors.audit_last()
        audit_problem = selectors.audit_problem(audit)
        if audit is None:
            self.stdout.write("audit: none yet (run_scheduler audits every REPORTING_AUDIT_INTERVAL seconds)")
        elif audit_problem is None:
            self.stdout.write(
                f"audit: {audit.outcome} as of {wording.clock(audit.finished, today=fresh.checked_at)} "
                f"({wording.span(fresh.checked_at - audit.finished)} ago), {audit.keys_checked:,} "
                f"{declaration.noun_plural()} checked in {audit.duration.total_seconds() * 1000:.0f} ms"
            )
        else:
            self.stdout.write(f"audit: {audit_problem}")
        holder = selectors.refresh_lock_holder()
        if holder is not None:
            self.stdout.write(f"refresh lock held by {holder}")
        for run in fresh.last_runs:
            seconds = f"{run.duration.total_seconds():.3f} s" if run.duration is not None else "-"
            detail = f"  {run.error.splitlines()[0]}" if run.error else ""
            self.stdout.write(
                f"  run {run.id}: {run.outcome:<9} {run.trigger:<8} "
                f"{run.started.isoformat(timespec='seconds')} {seconds}{detail}"
            )
        outgrown = fresh.overlay_outgrown()
        if outgrown is not None:
            raise CommandError(outgrown)
        if unlogged:
            raise CommandError(
                "writes bypass the change log, so real-time reads may be wrong; run_scheduler mends it at "
                "its next fold (or run manage.py migrate)"
            )
        if audit_problem is not None:
            raise CommandError(
                "the latest audit found real-time reads different from the history; the keys are being "
                "recomputed, and run_scheduler's next audit says whether they are exact"
            )
        max_age = options["max_age"]
        if max_age is not None:
            if fresh.age is None:
                raise CommandError("the reporting views were never refreshed")
            if fresh.age.total_seconds() > max_age:
                blocked = f"; the refresh lock is held by {holder}" if holder is not None else ""
                raise CommandError(
                    f"the reporting views are {fresh.age.total_seconds():.1f} s old, "
                    f"more than {max_age:g} s{blocked}"
                )
