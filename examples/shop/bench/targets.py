"""The goals ``manage.py bench`` checks, as data: what is measured against what, and the bound.

One-shot targets (the read and refresh goals) are judged at the largest size
measured; steady-state targets (the overlay design's goals) between compactions
and, for reads and lag, while one runs. A target whose figures were not measured
in a run is left out of its report rather than judged.
"""

from __future__ import annotations

__all__ = ["ONE_SHOT", "STEADY", "one_shot_targets", "steady_targets"]

from collections.abc import Callable
from dataclasses import dataclass

from examples.shop.bench.cases import BASELINE
from examples.shop.bench.report import Target
from examples.shop.bench.runner import AUDIT_SHARE, BenchResults, Measurement, batch_rows
from examples.shop.bench.steady import (
    PhaseResult,
    SteadyResults,
    Window,
    compaction_share,
    cpu_per_1000,
    maintenance,
    percentile,
)
from reporting import conf

# A measurement of a one-shot run: (group, query, approach).
Key = tuple[str, str, str]


def _ms(value: float) -> str:
    return f"{value:,.2f} ms" if value < 10 else f"{value:,.0f} ms"


@dataclass(frozen=True)
class Faster:
    """``subject`` is at least ``times`` faster than ``baseline`` (medians)."""

    text: str
    subject: Key
    baseline: Key
    times: float

    def judge(self, find: Callable[[Key], Measurement | None], _: list[Measurement]) -> Target | None:
        subject, baseline = find(self.subject), find(self.baseline)
        if subject is None or baseline is None:
            return None
        ratio = baseline.median / subject.median
        figure = f"{ratio:,.1f}x ({_ms(subject.median)} vs {_ms(baseline.median)})"
        return Target(self.text, ratio >= self.times, figure)


@dataclass(frozen=True)
class Within:
    """``subject`` takes at most ``times`` the time of ``reference``; ``times=None``: reported only."""

    text: str
    subject: Key
    reference: Key
    times: float | None

    def judge(self, find: Callable[[Key], Measurement | None], _: list[Measurement]) -> Target | None:
        subject, reference = find(self.subject), find(self.reference)
        if subject is None or reference is None:
            return None
        ratio = subject.median / reference.median
        figure = f"{ratio:.2f}x ({_ms(subject.median)} vs {_ms(reference.median)})"
        return Target(self.text, None if self.times is None else ratio <= self.times, figure)


@dataclass(frozen=True)
class Overhead:
    """``subject`` costs less than ``limit`` (a fraction) more than ``reference``."""

    text: str
    subject: Key
    reference: Key
    limit: float

    def judge(self, find: Callable[[Key], Measurement | None], _: list[Measurement]) -> Target | None:
        subject, reference = find(self.subject), find(self.reference)
        if subject is None or reference is None:
            return None
        overhead = subject.median / reference.median - 1
        return Target(self.text, overhead < self.limit, f"{overhead:+.0%}")


@dataclass(frozen=True)
class Below:
    """The median of ``subject`` is under ``limit`` milliseconds."""

    text: str
    subject: Key
    limit: float

    def judge(self, find: Callable[[Key], Measurement | None], _: list[Measurement]) -> Target | None:
        subject = find(self.subject)
        if subject is None:
            return None
        return Target(self.text, subject.median < self.limit, f"{subject.median:.3f} ms")


@dataclass(frozen=True)
class FlatAcrossSizes:
    """A figure measured at every size varies by at most ``spread`` (its unit) across them."""

    text: str
    group: str
    approach: str
    spread: float

    def judge(self, _: Callable[[Key], Measurement | None], measurements: list[Measurement]) -> Target | None:
        values = {
            m.orders: m.median for m in measurements if (m.group, m.approach) == (self.group, self.approach)
        }
        if not values:
            return None
        figure = ", ".join(f"{orders:,}: {value:.1f} MiB" for orders, value in sorted(values.items()))
        if len(values) < 2:
            return Target(self.text, None, f"one size only: {figure} (run several --orders sizes)")
        return Target(self.text, max(values.values()) - min(values.values()) <= self.spread, figure)


@dataclass(frozen=True)
class Share:
    """The median of ``subject`` (a percentage) is under ``limit``."""

    text: str
    subject: Key
    limit: float

    def judge(self, find: Callable[[Key], Measurement | None], _: list[Measurement]) -> Target | None:
        subject = find(self.subject)
        if subject is None:
            return None
        figure = f"{subject.median:.2f} % (every {conf.audit_interval() or 60:g} s)"
        return Target(self.text, subject.median < self.limit, figure)


R0, R1 = "read, 0% changed", "read, 1% changed"
# The batch is as large as the orders, up to 100,000 rows: its name has the size.
BATCH = "{batch:,} rows in one INSERT"

# The goals of the read-path issue (#7), at the largest size measured.
ONE_SHOT: list[Faster | Within | Overhead | Below | Share | FlatAcrossSizes] = [
    Faster(
        "page of 100: snapshot (0% changed) >= 500x faster than Subquery",
        (R0, "page of 100", "snapshot"),
        (R0, "page of 100", BASELINE),
        500,
    ),
    Faster(
        "page of 100: realtime (1% changed) >= 500x faster than Subquery",
        (R1, "page of 100", "realtime"),
        (R0, "page of 100", BASELINE),
        500,
    ),
    Below(
        "counts per status: snapshot < 1 ms server time",
        (R0, "counts per status, server time", "snapshot"),
        1,
    ),
    Faster(
        "counts per status: realtime (1% changed) >= 100x faster than Subquery",
        (R1, "counts per status", "realtime"),
        (R0, "counts per status", BASELINE),
        100,
    ),
    Faster(
        "all cancelled ids: snapshot >= 10x faster than Subquery",
        (R0, "all cancelled ids", "snapshot"),
        (R0, "all cancelled ids", BASELINE),
        10,
    ),
    Within(
        "all cancelled ids: snapshot within 2x of a plain table",
        (R0, "all cancelled ids", "snapshot"),
        (R0, "all cancelled ids", "plain table (transfer bound)"),
        2,
    ),
    Below(
        "refresh: unchanged skip < 10 ms", ("refresh, nothing changed", "scheduled run", "unchanged skip"), 10
    ),
    Within(
        "refresh CONCURRENTLY (1% changed) reported against plain",
        ("refresh, 1% changed", "order_latest_status", "concurrently"),
        ("refresh, 1% changed", "order_latest_status", "plain"),
        None,
    ),
    Overhead(
        "change-log trigger: < 25% overhead on the batch insert",
        ("writes", BATCH, "with trigger"),
        ("writes", BATCH, "without trigger"),
        0.25,
    ),
    Share(
        "exactness audit (default sample): run time under 3% of its interval (bounds its share of a core)",
        ("audit", "sample 1,000 (range + recent keys)", AUDIT_SHARE),
        3,
    ),
    FlatAcrossSizes(
        "CSV export: peak memory flat (within 50 MB) across sizes", "csv export", "peak Python memory", 50
    ),
]


def one_shot_targets(results: BenchResults) -> list[Target]:
    """Judge every one-shot target at the largest size measured."""
    n = max(results.config.sizes)

    def find(key: Key) -> Measurement | None:
        group, name, approach = key
        return results.find(n, group, name.format(batch=batch_rows(n)), approach)

    targets = []
    for spec in ONE_SHOT:
        judged = spec.judge(find, results.measurements)
        if judged is not None:
            targets.append(Target(judged.target, judged.met, judged.figure, orders=n))
    return targets


# --- Steady state ------------------------------------------------------------------------------------------

Metric = Callable[[PhaseResult, Window], float | None]


@dataclass(frozen=True)
class AtMost:
    """A figure of a window of the overlay phase is at most a bound (a number, or one from the same window).

    ``compacting``: judged also while a compaction runs (the reads and the lag).
    """

    text: str
    metric: Metric
    limit: float | Metric
    unit: str
    compacting: bool = True

    def judge(self, phase: PhaseResult, window: Window, when: str) -> Target:
        text = self.text.format(interval=f"{conf.refresh_interval():g} s") + when
        value = self.metric(phase, window)
        limit = self.limit(phase, window) if callable(self.limit) else self.limit
        if value is None or limit is None:
            return Target(text, None, "not measured")
        return Target(text, value <= limit, f"{value:,.2f} {self.unit}")


def _read_p99(name: str) -> Metric:
    return lambda _, window: percentile(window.reads_ms[name], 0.99)


def _twice(metric: Metric) -> Metric:
    def bound(phase: PhaseResult, window: Window) -> float | None:
        value = metric(phase, window)
        return None if value is None else 2 * value

    return bound


def _folds_and_compaction(phase: PhaseResult, window: Window) -> float | None:
    cpu, share = maintenance(window)[1], compaction_share(phase)
    return None if cpu is None or share is None else cpu + share


# The goals of the maintenance issue (#12), for the overlay design.
STEADY: list[AtMost] = [
    AtMost("realtime page of 100 p99 <= 10 ms (selector)", _read_p99("page"), 10, "ms"),
    AtMost("realtime counts p99 <= 5 ms (selector)", _read_p99("counts"), 5, "ms"),
    AtMost(
        "BI _live page p99 within 2x of the selector's", _read_p99("bi_page"), _twice(_read_p99("page")), "ms"
    ),
    AtMost(
        "BI _live counts p99 within 2x of the selector's",
        _read_p99("bi_counts"),
        _twice(_read_p99("counts")),
        "ms",
    ),
    AtMost(
        "lag: a committed change folded within 2 s (p99)",
        lambda _, window: percentile(window.lag_s, 0.99),
        2,
        "s",
    ),
    AtMost(
        "maintenance work per 1,000 changed orders <= 100 ms (wall time)",
        lambda _, window: maintenance(window)[0],
        100,
        "ms",
        compacting=False,
    ),
    AtMost(
        "maintenance work per 1,000 changed orders <= 100 ms (CPU time)",
        lambda _, window: cpu_per_1000(window),
        100,
        "ms",
        compacting=False,
    ),
    AtMost(
        "maintenance process (folds) <= 10% of one core",
        lambda _, window: maintenance(window)[1],
        10,
        "%",
        compacting=False,
    ),
    AtMost(
        "folds and a compaction every {interval} <= 10% of one core",
        _folds_and_compaction,
        10,
        "%",
        compacting=False,
    ),
]


def steady_targets(results: SteadyResults) -> list[Target]:
    """Judge the overlay design: every target between compactions, reads and lag also during one."""
    phase = next(p for p in results.phases if p.design == "overlay")
    targets = [spec.judge(phase, phase.steady, "") for spec in STEADY]
    targets += [
        spec.judge(phase, phase.compacting, ", during a compaction") for spec in STEADY if spec.compacting
    ]
    targets.append(
        Target(
            "0 mismatches between realtime and live",
            not phase.mismatches and phase.checks > 0,
            f"{len(phase.mismatches)} in {phase.checks}",
        )
    )
    if phase.errors:
        targets.append(Target("no errors in the run", False, "; ".join(phase.errors)[:300]))
    return targets
