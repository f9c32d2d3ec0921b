"""Vital signs: limits with hysteresis per quantity, sensor errors, the wearer's own heart-rate baseline."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from timeline import DEVICE, HOME, assert_restart_invariant, events_of, reading, replay, utc

from geosentinel.detect.base import WearerProfile
from geosentinel.detect.vitals import (
    BASELINE_HOURS_KEPT,
    STREAK_WINDOW,
    VITALS,
    HeartBaseline,
    VitalsState,
    feed,
)
from geosentinel.model import Event, EventKind, Reading

T0 = utc(2026, 6, 1, 6, 0)
PROFILE = WearerProfile()  # HR 40–120, SpO2 ≥ 90, temperature 35–38
NO_BASELINE = WearerProfile(heart_rate_baseline=False)


def vital(minutes: float, **fields: object) -> Reading:
    return reading(T0 + timedelta(minutes=minutes), **fields)


def hr(*values: float, step_min: float = 2, start_min: float = 0) -> list[Reading]:
    return [vital(start_min + i * step_min, heart_rate_bpm=v) for i, v in enumerate(values)]


def summary(events: list[Event]) -> list[tuple[str, float, str]]:
    return [(e.kind.value, float(e.details["value"]), str(e.details["direction"])) for e in events]


# --- limits and hysteresis ----------------------------------------------------------------------------


def test_two_abnormal_readings_alert_once_with_details() -> None:
    steps = hr(80, 130, 135, 140, 150)
    [alert] = events_of(VITALS, steps)
    assert alert == Event(
        DEVICE.org_id,
        DEVICE.wearer_id,
        DEVICE.id,
        EventKind.HEART_RATE,
        steps[2].time,
        steps[2].received_at,
        details={"value": 135.0, "limit": 120.0, "direction": "high", "reason": "limit"},
    )


@pytest.mark.parametrize(
    ("fields", "kind", "limit", "direction"),
    [
        ({"heart_rate_bpm": 35.0}, EventKind.HEART_RATE, 40.0, "low"),
        ({"spo2_pct": 86.0}, EventKind.SPO2, 90.0, "low"),
        ({"temperature_c": 38.6}, EventKind.TEMPERATURE, 38.0, "high"),
        ({"temperature_c": 34.2}, EventKind.TEMPERATURE, 35.0, "low"),
    ],
)
def test_each_quantity(fields: dict[str, float], kind: EventKind, limit: float, direction: str) -> None:
    [alert] = events_of(VITALS, [vital(0, **fields), vital(3, **fields), vital(6, **fields)])
    assert alert.kind is kind
    assert dict(alert.details) == {**{"value": next(iter(fields.values()))}, "limit": limit} | {
        "direction": direction,
        "reason": "limit",
    }


def test_at_the_limit_is_normal() -> None:
    steps = [vital(i, heart_rate_bpm=120.0, spo2_pct=90.0, temperature_c=38.0) for i in range(5)]
    assert events_of(VITALS, steps) == []


def test_one_normal_reading_breaks_a_streak() -> None:
    assert events_of(VITALS, hr(130, 80, 130, 80, 130)) == []


def test_abnormal_readings_too_far_apart_do_not_pair() -> None:
    window_min = STREAK_WINDOW / timedelta(minutes=1)
    assert window_min == 10
    assert events_of(VITALS, hr(130, 130, step_min=10.5)) == []
    assert len(events_of(VITALS, hr(130, 130, step_min=10))) == 1
    # The second one starts a new streak that the third confirms.
    steps = [*hr(130, 130, step_min=11), vital(15, heart_rate_bpm=131)]
    assert summary(events_of(VITALS, steps)) == [("heart_rate", 131, "high")]


def test_episode_ends_after_two_normal_readings() -> None:
    # One normal reading inside the episode does not end it; two do, and the next episode alerts again.
    values = (130, 130, 80, 130, 80, 80, 130, 135)
    assert summary(events_of(VITALS, hr(*values))) == [
        ("heart_rate", 130, "high"),
        ("heart_rate", 135, "high"),
    ]


def test_high_then_low_is_still_abnormal() -> None:
    assert summary(events_of(VITALS, hr(130, 35))) == [("heart_rate", 35, "low")]


def test_quantities_are_independent() -> None:
    steps = [
        vital(0, heart_rate_bpm=130, spo2_pct=97),
        vital(2, spo2_pct=85),  # no heart rate in this one: the HR streak is not broken
        vital(4, heart_rate_bpm=128, spo2_pct=96, temperature_c=36.5),
        vital(6, heart_rate_bpm=70, spo2_pct=84, temperature_c=38.5),  # the SpO2 streak starts again
        vital(8, spo2_pct=83, temperature_c=38.7),
    ]
    assert summary(events_of(VITALS, steps)) == [
        ("heart_rate", 128, "high"),
        ("spo2", 83, "low"),
        ("temperature", 38.7, "high"),
    ]


def test_one_reading_can_raise_several_events() -> None:
    bad = {"heart_rate_bpm": 150.0, "spo2_pct": 82.0, "temperature_c": 39.0}
    events = events_of(VITALS, [vital(0, **bad), vital(1, **bad)])
    assert [e.kind for e in events] == [EventKind.HEART_RATE, EventKind.SPO2, EventKind.TEMPERATURE]


@pytest.mark.parametrize(
    "impossible",
    [
        {"heart_rate_bpm": 0.0},
        {"heart_rate_bpm": -5.0},
        {"heart_rate_bpm": 251.0},
        {"spo2_pct": 101.0},
        {"spo2_pct": 49.0},
        {"temperature_c": 24.9},
        {"temperature_c": 45.5},
    ],
)
def test_impossible_values_are_sensor_errors(impossible: dict[str, float]) -> None:
    # Never abnormal on their own, and they do not break a streak either.
    assert events_of(VITALS, [vital(i, **impossible) for i in range(5)]) == []
    name = next(iter(impossible))
    abnormal = {"heart_rate_bpm": 130.0, "spo2_pct": 85.0, "temperature_c": 39.0}[name]
    steps = [vital(0, **{name: abnormal}), vital(1, **impossible), vital(2, **{name: abnormal})]
    assert len(events_of(VITALS, steps)) == 1


def test_limits_are_inclusive_plausibility_bounds() -> None:
    steps = [vital(0, heart_rate_bpm=250, spo2_pct=50), vital(1, heart_rate_bpm=250, spo2_pct=50)]
    assert [e.kind for e in events_of(VITALS, steps)] == [EventKind.HEART_RATE, EventKind.SPO2]


def test_late_and_duplicate_readings_are_ignored_by_the_hysteresis() -> None:
    first = vital(0, heart_rate_bpm=130)
    late_high = reading(T0 - timedelta(minutes=3), received=T0 + timedelta(minutes=1), heart_rate_bpm=135)
    assert events_of(VITALS, [first, first, late_high]) == []
    late_normal = reading(T0 - timedelta(minutes=1), received=T0 + timedelta(minutes=1), heart_rate_bpm=70)
    steps = [first, late_normal, vital(2, heart_rate_bpm=131)]  # the late normal one does not break it
    assert summary(events_of(VITALS, steps)) == [("heart_rate", 131, "high")]


def test_position_only_from_a_good_fix() -> None:
    good = [vital(i, spo2_pct=85, latitude=HOME[0], longitude=HOME[1]) for i in range(2)]
    rejected = [vital(i, spo2_pct=85, latitude=0.0, longitude=0.0, rejected="null_island") for i in range(2)]
    assert (events_of(VITALS, good)[0].latitude, events_of(VITALS, good)[0].longitude) == HOME
    assert (events_of(VITALS, rejected)[0].latitude, events_of(VITALS, rejected)[0].longitude) == (None, None)


def test_limits_come_from_the_profile() -> None:
    tolerant = WearerProfile(heart_rate_max_bpm=140, spo2_min_pct=85)
    steps = [vital(i, heart_rate_bpm=130, spo2_pct=87) for i in range(3)]
    assert events_of(VITALS, steps, tolerant) == []


def test_restart_changes_nothing() -> None:
    values = (80, 130, 130, 80, 130, 80, 80, 35, 36, 0, 70, 71, 300, 125, 126)
    steps = [
        vital(i * 2, heart_rate_bpm=v, spo2_pct=86 + i % 6, temperature_c=37 + i % 3)
        for i, v in enumerate(values)
    ]
    assert len(assert_restart_invariant(VITALS, steps)) >= 3


# --- one noisy reading never alerts -------------------------------------------------------------------

NORMAL_HR = st.floats(min_value=40, max_value=120)
NORMAL_SPO2 = st.floats(min_value=90, max_value=100)
NORMAL_TEMPERATURE = st.floats(min_value=35, max_value=38)
ABNORMAL = {
    "heart_rate_bpm": st.one_of(
        st.floats(min_value=1, max_value=39.9), st.floats(min_value=120.1, max_value=250)
    ),
    "spo2_pct": st.floats(min_value=50, max_value=89.9),
    "temperature_c": st.one_of(
        st.floats(min_value=25, max_value=34.9), st.floats(min_value=38.1, max_value=45)
    ),
}


@settings(max_examples=60)
@given(
    st.lists(st.tuples(NORMAL_HR, NORMAL_SPO2, NORMAL_TEMPERATURE), min_size=1, max_size=25),
    st.sampled_from(sorted(ABNORMAL)),
    st.data(),
)
def test_a_single_abnormal_reading_never_alerts(
    normal: list[tuple[float, float, float]], quantity: str, data: st.DataObject
) -> None:
    steps = [
        vital(i * 2, heart_rate_bpm=h, spo2_pct=s, temperature_c=t) for i, (h, s, t) in enumerate(normal)
    ]
    at = data.draw(st.integers(min_value=0, max_value=len(steps)))
    noisy = vital(at * 2 - 1, **{quantity: data.draw(ABNORMAL[quantity])})
    assert events_of(VITALS, [*steps[:at], noisy, *steps[at:]], NO_BASELINE) == []


@settings(max_examples=60)
@given(st.lists(st.one_of(NORMAL_HR, ABNORMAL["heart_rate_bpm"]), max_size=30))
def test_alerts_need_two_abnormal_in_a_row(values: list[float]) -> None:
    abnormal = [not 40 <= v <= 120 for v in values]
    events = events_of(VITALS, hr(*values), NO_BASELINE)
    if not any(a and b for a, b in pairwise(abnormal)):
        assert events == []
    else:
        assert events, "two abnormal readings in a row must alert"


# --- the wearer's own baseline ------------------------------------------------------------------------


def steady(hours: int, bpm: float | None = None, *, per_hour: int = 6, start: datetime = T0) -> list[Reading]:
    """``hours`` of readings; ``bpm`` None alternates hourly means of 50 and 70 bpm."""
    steps = []
    for h in range(hours):
        value = bpm if bpm is not None else (50.0 if h % 2 == 0 else 70.0)
        for k in range(per_hour):
            time = start + timedelta(hours=h, minutes=k * 60 / per_hour)
            steps.append(reading(time, heart_rate_bpm=value))
    return steps


def later(hours: float, *values: float) -> list[Reading]:
    return [
        reading(T0 + timedelta(hours=hours, minutes=2 * i), heart_rate_bpm=v) for i, v in enumerate(values)
    ]


def test_baseline_catches_a_change_within_the_fixed_limits() -> None:
    events = events_of(VITALS, [*steady(30, 60), *later(30, 90, 92, 93)])
    assert [(e.time, dict(e.details)) for e in events] == [
        (
            T0 + timedelta(hours=30, minutes=2),
            {
                "value": 92.0,
                "limit": 85.0,  # a steady wearer: max(4 x spread, 25 bpm) = 25
                "direction": "high",
                "reason": "baseline",
                "baseline": 60.0,
                "spread": 0.0,
            },
        )
    ]


def test_baseline_low_direction() -> None:
    profile = WearerProfile(heart_rate_min_bpm=20)
    events = events_of(VITALS, [*steady(30, 60), *later(30, 33, 30)], profile)
    assert [(e.details["direction"], e.details["limit"], e.details["reason"]) for e in events] == [
        ("low", 35.0, "baseline")
    ]


def test_baseline_needs_a_day_of_data() -> None:
    assert events_of(VITALS, [*steady(23, 60), *later(23, 90, 92, 93)]) == []
    assert len(events_of(VITALS, [*steady(24, 60), *later(24, 90, 92, 93)])) == 1


def test_baseline_margin_follows_the_spread() -> None:
    # Hourly means of 50 and 70: median 60, MAD 10, spread 14.826, margin 4 x spread = 59.3 bpm.
    wide = WearerProfile(heart_rate_max_bpm=200)
    assert events_of(VITALS, [*steady(30), *later(30, 115, 118)], wide) == []
    [alert] = events_of(VITALS, [*steady(30), *later(30, 121, 125)], wide)
    assert alert.details["baseline"] == 60.0
    assert alert.details["spread"] == pytest.approx(14.826)
    assert alert.details["limit"] == pytest.approx(60 + 4 * 14.826)


def test_fixed_limit_wins_over_baseline() -> None:
    [alert] = events_of(VITALS, [*steady(30, 60), *later(30, 125, 126)])
    assert alert.details == {"value": 126.0, "limit": 120.0, "direction": "high", "reason": "limit"}


def test_baseline_can_be_switched_off() -> None:
    assert events_of(VITALS, [*steady(30, 60), *later(30, 90, 92, 93)], NO_BASELINE) == []


def test_baseline_single_deviation_never_alerts() -> None:
    assert events_of(VITALS, [*steady(30, 60), *later(30, 95, 60, 95, 61)]) == []


def test_baseline_keeps_seven_days_then_forgets() -> None:
    state, _ = replay(VITALS, steady(10 * 24, 60, per_hour=2))
    assert isinstance(state, VitalsState)
    assert len(state.baseline.hours) == BASELINE_HOURS_KEPT - 1  # plus the hour being accumulated
    assert len(msgspec.json.encode(state)) < 6000
    # A week away: the old hours are gone, the baseline needs a new day of data.
    back = T0 + timedelta(days=18)
    steps = [reading(back, heart_rate_bpm=95), reading(back + timedelta(minutes=2), heart_rate_bpm=96)]
    state, events = replay(VITALS, steps, state=state)
    assert events == []
    assert state.baseline.hours == ()
    assert (state.baseline.baseline_bpm, state.baseline.count) == (None, 2)


def test_late_reading_feeds_only_the_current_hour() -> None:
    base = feed(HeartBaseline(), T0 + timedelta(minutes=10), 60)
    assert feed(base, T0 + timedelta(minutes=5), 80).count == 2  # same hour: counted
    assert feed(base, T0 - timedelta(minutes=5), 80) == base  # an hour already closed: ignored
    assert feed(base, T0 + timedelta(hours=1), 70).hours == ((base.hour, 60.0),)


def test_duplicate_does_not_feed_the_baseline() -> None:
    first = vital(0, heart_rate_bpm=60)
    state, _ = replay(VITALS, [first, first])
    assert state.baseline.count == 1


def test_restart_with_a_baseline_changes_nothing() -> None:
    steps = [*steady(26, 60, per_hour=2), *later(26, 90, 93, 60, 60, 92, 94)]
    assert len(assert_restart_invariant(VITALS, steps, stride=5)) == 2


# --- the baseline is a resting heart rate ---------------------------------------------------------------


def walking(hours: float, *values: float, speed_kmh: float = 4.0) -> list[Reading]:
    """Heart rates measured while walking (with a good fix and a walking speed)."""
    return [
        reading(
            T0 + timedelta(hours=hours, minutes=2 * i),
            heart_rate_bpm=v,
            latitude=43.3,
            longitude=5.37,
            speed_kmh=speed_kmh,
        )
        for i, v in enumerate(values)
    ]


def test_a_walk_raises_the_heart_rate_without_alerting() -> None:
    events = events_of(VITALS, [*steady(30, 60), *walking(30, 95, 98, 100, 99)])
    assert events == []


def test_steps_count_as_activity_too() -> None:
    walk = [
        reading(T0 + timedelta(hours=30, minutes=2 * i), heart_rate_bpm=v, steps=100 * (i + 1))
        for i, v in enumerate((95, 98, 100, 99))
    ]
    assert events_of(VITALS, [*steady(30, 60), *walk]) == []


def test_the_same_heart_rate_at_rest_after_recovery_alerts() -> None:
    rest_after_walk = later(30 + 20 / 60, 95, 96)  # 12 minutes after the last walking reading
    events = events_of(VITALS, [*steady(30, 60), *walking(30, 95, 98, 100, 99), *rest_after_walk])
    assert [(e.details["reason"], e.details["value"]) for e in events] == [("baseline", 96.0)]


def test_walking_readings_do_not_feed_the_resting_baseline() -> None:
    state = None
    for r in [*steady(30, 60), *walking(30, *([110.0] * 30))]:
        state, _ = VITALS.on_reading(state, r, r.received_at, PROFILE)
    assert state is not None and state.baseline.baseline_bpm == 60.0
    assert state.baseline.total_bpm / max(state.baseline.count, 1) <= 60.0


def test_fixed_limits_still_apply_while_walking() -> None:
    events = events_of(VITALS, [*steady(30, 60), *walking(30, 130, 135)])
    assert [(e.details["reason"], e.details["value"]) for e in events] == [("limit", 135.0)]
