"""Service levels of alarm handling, measured like a social-alarm centre (pure: facts and times in).

Social-alarm practice (TSA code, EN 50134) asks that 98.5 % of alarm calls be answered within 60 s and
99 % within 180 s, and that calls not answered within 3 minutes be investigated. Here an alarm is
*answered* when a person takes it: acknowledges, resolves or records an arrival (a caregiver in the
dashboard or API, a contact through an acknowledgement link, an operator with the CLI). The clock starts
when the platform received the alarm's first event.

Counting rules (the same for every group):

- An alert the system or the device closed before any person took it (a device back online, a fall the
  wearer cancelled in its grace period) needed nobody: it is counted apart, not as answered or missed.
- An alert nobody has taken counts as not answered within a threshold once it is older than the
  threshold; younger ones (the end of the period, still ringing) are left out of that threshold.
- Median and 95th percentile take never-answered alerts as infinitely late: when more than half (or 5 %)
  were never answered, the figure is ``None`` ("later than every answer"), never a flattering number.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from geosentinel.alerts.lifecycle import Outcome
from geosentinel.model import AlertStatus, EventKind

THRESHOLDS_S: Final = (60, 180)
OVERDUE_AFTER = timedelta(seconds=180)


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """What happened to one alert, from the store."""

    alert_id: str
    wearer_id: str
    kind: EventKind
    status: AlertStatus
    received_at: datetime  # the platform received its first event
    shown_at: datetime | None  # first delivered to a contact, or first seen by a person
    taken_at: datetime | None  # first acknowledged / resolved / arrival recorded by a person
    taken_by: str | None
    arrived_at: datetime | None  # first arrival on site recorded
    resolved_at: datetime | None
    outcome: str | None
    contact_attempts: int = 0  # notifications created for it
    failed_attempts: int = 0  # notifications given up

    @property
    def closed_without_person(self) -> bool:
        return self.status is AlertStatus.RESOLVED and self.taken_at is None


@dataclass(frozen=True, slots=True)
class AlertFigures:
    """One alert's service figures, in seconds from its reception (None: did not happen)."""

    alert_id: str
    to_shown_s: float | None
    to_taken_s: float | None
    to_arrival_s: float | None
    to_resolved_s: float | None
    overdue: bool  # nobody has taken it and it is older than 180 s


def figures(facts: AlertFacts, now: datetime) -> AlertFigures:
    def since(moment: datetime | None) -> float | None:
        return None if moment is None else (moment - facts.received_at).total_seconds()

    return AlertFigures(
        facts.alert_id, since(facts.shown_at), since(facts.taken_at), since(facts.arrived_at),
        since(facts.resolved_at), is_overdue(facts, now),
    )  # fmt: skip


def is_overdue(facts: AlertFacts, now: datetime) -> bool:
    """Not taken by anyone, still open, and received more than 180 s ago: to be looked into now."""
    return (
        facts.status is AlertStatus.OPEN
        and facts.taken_at is None
        and now - facts.received_at > OVERDUE_AFTER
    )


@dataclass(frozen=True, slots=True)
class GroupFigures:
    group: str  # "all", "kind", "hour"
    key: str  # "all", the kind's name, or the local hour "00".."23"
    alerts: int
    answered: int
    closed_without_person: int
    within_s: dict[int, float | None]  # threshold -> share answered within it (None: nothing to count)
    median_s: float | None
    p95_s: float | None
    never_answered: int  # not taken, older than the largest threshold
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def outcome_shares(self) -> dict[str, float]:
        resolved = sum(self.outcomes.values())
        return {k: v / resolved for k, v in sorted(self.outcomes.items())} if resolved else {}


@dataclass(frozen=True, slots=True)
class Report:
    start: datetime
    end: datetime
    timezone: str
    generated_at: datetime
    overall: GroupFigures
    by_kind: list[GroupFigures]
    by_hour: list[GroupFigures]
    overdue: list[str]  # ids of the alerts not taken after 180 s, still open now

    @property
    def real_emergency_share(self) -> float | None:
        """Among alerts people resolved (not the system's ``back_online``): those where someone had to go
        or call for help."""
        outcomes = self.overall.outcomes
        resolved = sum(v for k, v in outcomes.items() if k != Outcome.BACK_ONLINE.value)
        if resolved == 0:
            return None
        real = sum(
            self.overall.outcomes.get(o.value, 0)
            for o in (Outcome.ASSISTANCE_AT_HOME, Outcome.EMERGENCY_SERVICES)
        )
        return real / resolved


def report(
    facts: Sequence[AlertFacts], start: datetime, end: datetime, now: datetime, zone: ZoneInfo
) -> Report:
    """The service levels of the alerts received in ``[start, end)``, as they stand at ``now``."""
    if now.tzinfo is None or start.tzinfo is None or end.tzinfo is None:
        raise ValueError("naive datetime: reports only take tz-aware times")
    chosen = [f for f in facts if start <= f.received_at < end]
    kinds = sorted({f.kind.value for f in chosen})
    return Report(
        start, end, zone.key, now,
        _group("all", "all", chosen, now),
        [_group("kind", k, [f for f in chosen if f.kind.value == k], now) for k in kinds],
        _by(chosen, lambda f: f"{f.received_at.astimezone(zone).hour:02d}", "hour", now),
        [f.alert_id for f in chosen if is_overdue(f, now)],
    )  # fmt: skip


def _by(
    facts: Iterable[AlertFacts], key: Callable[[AlertFacts], str], name: str, now: datetime
) -> list[GroupFigures]:
    groups: dict[str, list[AlertFacts]] = {}
    for f in facts:
        groups.setdefault(key(f), []).append(f)
    return [_group(name, k, groups[k], now) for k in sorted(groups)]


def _group(group: str, key: str, facts: Sequence[AlertFacts], now: datetime) -> GroupFigures:
    needing = [f for f in facts if not f.closed_without_person]
    within: dict[int, float | None] = {}
    for threshold in THRESHOLDS_S:
        counted = [
            f for f in needing
            if f.taken_at is not None or (now - f.received_at).total_seconds() >= threshold
        ]  # fmt: skip
        hits = sum(
            1
            for f in counted
            if f.taken_at is not None and (f.taken_at - f.received_at).total_seconds() <= threshold
        )
        within[threshold] = hits / len(counted) if counted else None
    last = THRESHOLDS_S[-1]
    delays = [
        (f.taken_at - f.received_at).total_seconds() if f.taken_at is not None else math.inf
        for f in needing
        if f.taken_at is not None or (now - f.received_at).total_seconds() >= last
    ]
    outcomes: dict[str, int] = {}
    for f in facts:
        if f.status is AlertStatus.RESOLVED and f.outcome is not None:
            outcomes[f.outcome] = outcomes.get(f.outcome, 0) + 1
    return GroupFigures(
        group, key, len(facts), sum(1 for f in needing if f.taken_at is not None),
        len(facts) - len(needing), within, _finite(_median(delays)), _finite(nearest_rank(delays, 0.95)),
        sum(1 for f in needing if f.taken_at is None and (now - f.received_at).total_seconds() >= last),
        outcomes,
    )  # fmt: skip


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def nearest_rank(values: Sequence[float], share: float) -> float | None:
    """The smallest value with at least ``share`` of the values at or below it (None: no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) or math.isnan(value) else round(value, 1)


CSV_OUTCOMES: Final = [o.value for o in Outcome]


def to_csv(result: Report) -> str:
    """One row per group (overall, each kind, each local hour of the day), for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["group", "key", "alerts", "answered", "closed_without_person", "within_60s", "within_180s",
         "median_s", "p95_s", "never_answered", *(f"outcome_{o}" for o in CSV_OUTCOMES)]
    )  # fmt: skip
    for row in [result.overall, *result.by_kind, *result.by_hour]:
        writer.writerow(
            [row.group, row.key, row.alerts, row.answered, row.closed_without_person,
             _share(row.within_s.get(60)), _share(row.within_s.get(180)), _seconds(row.median_s),
             _seconds(row.p95_s),
             row.never_answered, *(row.outcomes.get(o, 0) for o in CSV_OUTCOMES)]
        )  # fmt: skip
    return out.getvalue()


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
