"""Escalation plans as timelines: steps in order at their delays, rounds, severity, quiet hours (DST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geosentinel.alerts.policy import (
    Plan,
    Policy,
    PolicyError,
    Position,
    QuietHours,
    Step,
    first_due,
    parse_policy,
    plan,
    policy_json,
)
from geosentinel.model import EventKind

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
POLICY = Policy(
    [Step(["duty"]), Step(["family-1", "family-2"], delay_s=300), Step(["on-call"], delay_s=600)],
    repeat_after_s=900,
    max_rounds=2,
)


def run(
    policy: Policy, kind: EventKind, opened: datetime, until: datetime
) -> list[tuple[datetime, tuple[str, ...]]]:
    """Every notification batch of an escalation left to run (nobody acknowledges) until ``until``, with
    the service looking exactly at each due time."""
    sent = []
    position, due = Position(), first_due(policy, kind, opened)
    while due is not None and due <= until:
        step: Plan = plan(policy, kind, position, due, due, PARIS)
        if step.contacts:
            sent.append((due, step.contacts))
        position, due = step.next_position, step.next_due
    return sent


def test_steps_go_out_at_their_delays_then_the_policy_repeats_up_to_max_rounds() -> None:
    sent = run(POLICY, EventKind.SOS, T0, T0 + timedelta(days=1))
    minutes = [((t - T0) / timedelta(minutes=1), who) for t, who in sent]
    assert minutes == [
        (0, ("duty",)), (5, ("family-1", "family-2")), (15, ("on-call",)),
        (30, ("duty",)), (35, ("family-1", "family-2")), (45, ("on-call",)),
    ]  # fmt: skip


def test_a_late_service_sends_overdue_steps_each_at_its_own_due_time() -> None:
    """Down for 20 minutes: the steps that fell due meanwhile keep their schedule (no drift)."""
    step = plan(
        POLICY, EventKind.FALL, Position(0, 1), T0 + timedelta(minutes=5), T0 + timedelta(minutes=25), PARIS
    )
    assert step.contacts == ("family-1", "family-2")
    assert step.next_due == T0 + timedelta(minutes=15)


def test_without_repeat_the_escalation_ends_after_the_last_step() -> None:
    policy = Policy([Step(["a"]), Step(["b"], delay_s=60)], repeat_after_s=None)
    assert [who for _, who in run(policy, EventKind.SOS, T0, T0 + timedelta(days=2))] == [("a",), ("b",)]


def test_low_severity_tells_the_first_step_once() -> None:
    assert run(POLICY, EventKind.LOW_BATTERY, T0, T0 + timedelta(days=1)) == [(T0, ("duty",))]


@pytest.mark.parametrize(
    ("opened_utc", "sent_utc"),
    [
        # 23:30 in Paris in winter (UTC+1) waits for 08:00 local = 07:00 UTC.
        (datetime(2026, 11, 27, 22, 30, tzinfo=UTC), datetime(2026, 11, 28, 7, 0, tzinfo=UTC)),
        # The night the clocks go forward (29 March 2026, 02:00 → 03:00): 08:00 local is 06:00 UTC.
        (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
        # The night they go back (25 October 2026): 08:00 local is 07:00 UTC.
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
        # Early morning before 08:00 the same day.
        (datetime(2026, 11, 27, 5, 0, tzinfo=UTC), datetime(2026, 11, 27, 7, 0, tzinfo=UTC)),
        # Daytime: at once.
        (datetime(2026, 11, 27, 10, 0, tzinfo=UTC), datetime(2026, 11, 27, 10, 0, tzinfo=UTC)),
    ],
)
def test_low_battery_never_wakes_anyone_at_night(opened_utc: datetime, sent_utc: datetime) -> None:
    assert run(POLICY, EventKind.LOW_BATTERY, opened_utc, opened_utc + timedelta(days=2)) == [
        (sent_utc, ("duty",))
    ]


def test_critical_alerts_ignore_quiet_hours_and_a_policy_may_change_a_kinds_severity() -> None:
    night = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    assert run(POLICY, EventKind.SOS, night, night)[0] == (night, ("duty",))
    relaxed = Policy(
        POLICY.steps, severity={EventKind.GEOFENCE_EXIT: "low"}, quiet_hours=QuietHours("22:00", "07:00")
    )
    assert run(relaxed, EventKind.GEOFENCE_EXIT, night, night + timedelta(days=1)) == [
        (datetime(2026, 11, 28, 6, 0, tzinfo=UTC), ("duty",))
    ]


def test_a_policy_that_lost_steps_finishes_the_round_cleanly() -> None:
    short = Policy([Step(["only"])], repeat_after_s=None)
    step = plan(short, EventKind.SOS, Position(0, 2), T0, T0, PARIS)
    assert step.contacts == ("only",) and step.next_due is None


def test_policies_round_trip_and_bad_documents_say_why() -> None:
    assert parse_policy(policy_json(POLICY)) == POLICY
    for document, reason in [
        ('{"steps": []}', "$.steps"),
        ('{"steps": [{"contacts": []}]}', "$.steps[0].contacts"),
        ('{"steps": [{"contacts": ["a"], "delay_s": -1}]}', "$.steps[0].delay_s"),
        ('{"steps": [{"contacts": ["a"]}], "quiet_hours": {"start": "25:00"}}', "$.quiet_hours.start"),
        ('{"steps": [{"contacts": ["a"]}], "severity": {"meteor": "low"}}', "$.severity"),
        ("not json", "invalid escalation policy"),
    ]:
        with pytest.raises(PolicyError, match=reason.replace("$", r"\$").replace("[", r"\[")):
            parse_policy(document)


@given(st.text(max_size=300))
def test_any_document_parses_or_raises_a_policy_error(document: str) -> None:
    try:
        parse_policy(document)
    except PolicyError:
        pass


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        plan(POLICY, EventKind.SOS, Position(), datetime(2026, 1, 1), T0, PARIS)
