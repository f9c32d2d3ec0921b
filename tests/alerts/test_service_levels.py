"""The service-level report's figures on a hand-made set of alerts, worked out by hand below."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from geosentinel.alerts.service_levels import AlertFacts, figures, nearest_rank, report, to_csv
from geosentinel.model import AlertStatus, EventKind

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 15:00 in Paris
NOW = T0 + timedelta(hours=12)


def alert(
    name: str,
    kind: EventKind,
    received: datetime,
    taken_after_s: float | None,
    status: AlertStatus,
    outcome: str | None = None,
) -> AlertFacts:
    taken = None if taken_after_s is None else received + timedelta(seconds=taken_after_s)
    resolved = received + timedelta(minutes=20) if status is AlertStatus.RESOLVED else None
    return AlertFacts(
        name, "w", kind, status, received, taken, taken, None if taken is None else "user:u", None, resolved,
        outcome,
    )  # fmt: skip


FACTS = [
    alert("a1", EventKind.SOS, T0, 30, AlertStatus.ACKNOWLEDGED),
    alert("a2", EventKind.SOS, T0 + timedelta(minutes=1), 45, AlertStatus.ACKNOWLEDGED),
    alert("a3", EventKind.FALL, T0 + timedelta(minutes=2), 90, AlertStatus.RESOLVED, "false_alarm"),
    alert("a4", EventKind.FALL, T0 + timedelta(hours=8, minutes=30), 200, AlertStatus.ACKNOWLEDGED),  # 23:30
    alert("a5", EventKind.SOS, T0 + timedelta(minutes=4), None, AlertStatus.OPEN),  # never answered
    alert("a6", EventKind.OFFLINE, T0 + timedelta(minutes=5), None, AlertStatus.RESOLVED, "back_online"),
    alert("a7", EventKind.SOS, T0 + timedelta(minutes=6), 10, AlertStatus.RESOLVED, "emergency_services"),
    alert("a8", EventKind.SOS, NOW - timedelta(seconds=100), None, AlertStatus.OPEN),  # still ringing
    alert("old", EventKind.SOS, T0 - timedelta(days=1), None, AlertStatus.OPEN),  # before the period
]


def test_the_overall_figures() -> None:
    result = report(FACTS, T0, NOW, NOW, PARIS)
    g = result.overall
    assert (g.alerts, g.answered, g.closed_without_person, g.never_answered) == (8, 5, 1, 1)
    # ≤ 60 s: a1, a2, a7 of the 7 that needed a person and had 60 s (a8 has rung 100 s: a miss so far).
    assert g.within_s[60] == pytest.approx(3 / 7)
    # ≤ 180 s: a1, a2, a3, a7 of 6 (a8 has not rung 180 s yet: left out).
    assert g.within_s[180] == pytest.approx(4 / 6)
    # Delays 10, 30, 45, 90, 200 and a5's ∞: median (45 + 90) / 2; p95 falls on a5: no flattering number.
    assert g.median_s == 67.5 and g.p95_s is None
    assert g.outcomes == {"false_alarm": 1, "back_online": 1, "emergency_services": 1}
    assert result.real_emergency_share == pytest.approx(1 / 2)  # of a3 and a7: a6 closed itself
    assert g.outcome_shares == pytest.approx(
        {"back_online": 1 / 3, "emergency_services": 1 / 3, "false_alarm": 1 / 3}
    )
    assert result.overdue == ["a5"]  # a8 is under 180 s; "old" is outside the period


def test_by_kind_and_by_local_hour() -> None:
    result = report(FACTS, T0, NOW, NOW, PARIS)
    kinds = {g.key: g for g in result.by_kind}
    assert sorted(kinds) == ["fall", "offline", "sos"]
    assert kinds["fall"].within_s == {60: 0.0, 180: 0.5} and kinds["fall"].median_s == 145.0
    assert kinds["offline"].alerts == 1 and kinds["offline"].within_s == {60: None, 180: None}
    hours = {g.key: g.alerts for g in result.by_hour}
    assert hours == {"15": 6, "23": 1, "02": 1}  # a8 arrived at 02:58 Paris time


def test_the_local_hour_follows_daylight_saving() -> None:
    spring = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST, the night clocks go forward
    winter = datetime(2026, 3, 28, 1, 30, tzinfo=UTC)  # 02:30 CET
    facts = [alert("s", EventKind.SOS, spring, 20, AlertStatus.ACKNOWLEDGED),
             alert("w", EventKind.SOS, winter, 20, AlertStatus.ACKNOWLEDGED)]  # fmt: skip
    result = report(facts, winter - timedelta(hours=1), spring + timedelta(hours=1), NOW, PARIS)
    assert [g.key for g in result.by_hour] == ["02", "03"]


def test_per_alert_figures_and_overdue() -> None:
    facts = FACTS[0]
    numbers = figures(facts, NOW)
    assert (numbers.to_taken_s, numbers.to_shown_s, numbers.to_arrival_s, numbers.overdue) == (
        30,
        30,
        None,
        False,
    )
    assert figures(FACTS[4], NOW).overdue and not figures(FACTS[7], NOW).overdue


def test_everything_answered_in_time() -> None:
    facts = [alert(f"x{i}", EventKind.SOS, T0 + timedelta(minutes=i), 5 + i, AlertStatus.ACKNOWLEDGED)
             for i in range(20)]  # fmt: skip
    g = report(facts, T0, NOW, NOW, PARIS).overall
    assert g.within_s == {60: 1.0, 180: 1.0} and g.median_s == 14.5 and g.p95_s == 23.0


def test_nearest_rank() -> None:
    assert nearest_rank([], 0.95) is None
    assert nearest_rank([3.0, 1.0, 2.0], 0.5) == 2.0
    assert nearest_rank([float(v) for v in range(1, 101)], 0.95) == 95.0


def test_csv_has_one_row_per_group() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(report(FACTS, T0, NOW, NOW, PARIS)))))
    groups = [(r["group"], r["key"]) for r in rows]
    assert groups[:4] == [("all", "all"), ("kind", "fall"), ("kind", "offline"), ("kind", "sos")]
    overall = rows[0]
    assert overall["within_60s"] == "0.4286" and overall["p95_s"] == "" and overall["median_s"] == "67.5"
    assert overall["outcome_emergency_services"] == "1" and overall["never_answered"] == "1"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        report(FACTS, T0.replace(tzinfo=None), NOW, NOW, PARIS)
