"""Low battery: two readings below the threshold, hysteresis, charging, late readings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from timeline import DEVICE, HOME, assert_restart_invariant, events_of, reading, utc

from geosentinel.detect.base import WearerProfile
from geosentinel.detect.battery import BATTERY, BatteryState
from geosentinel.model import Event, EventKind, Reading

T0 = utc(2026, 5, 4, 14, 0)
PROFILE = WearerProfile()  # 15 %


def level(minutes: float, pct: float | None, *, charging: bool | None = None, **fields: object) -> Reading:
    return reading(T0 + timedelta(minutes=minutes), battery_pct=pct, charging=charging, **fields)


def series(*levels: float | None, step_min: float = 10) -> list[Reading]:
    return [level(i * step_min, pct) for i, pct in enumerate(levels)]


def alert_levels(events: list[Event]) -> list[float]:
    assert all(e.kind is EventKind.LOW_BATTERY for e in events)
    return [float(e.details["battery_pct"]) for e in events]


def test_two_readings_below_alert_once() -> None:
    steps = series(30, 20, 14, 13, 12, 11, 10)
    [low] = events_of(BATTERY, steps)
    assert low == Event(
        DEVICE.org_id,
        DEVICE.wearer_id,
        DEVICE.id,
        EventKind.LOW_BATTERY,
        steps[3].time,
        steps[3].received_at,
        details={"battery_pct": 13.0, "threshold_pct": 15.0},
    )


def test_single_dip_does_not_alert() -> None:
    assert events_of(BATTERY, series(30, 14, 16, 14, 17, 12, 40)) == []


def test_at_the_threshold_is_not_below() -> None:
    assert events_of(BATTERY, series(15, 15, 15)) == []


def test_hovering_around_the_threshold_alerts_once() -> None:
    # Recovering to 18 (not above 15 + 5) does not re-arm.
    assert alert_levels(events_of(BATTERY, series(14, 13, 18, 14, 13, 19, 12, 11, 20, 14, 13))) == [13]


def test_recovery_above_threshold_plus_margin_re_arms() -> None:
    assert alert_levels(events_of(BATTERY, series(14, 13, 21, 14, 12))) == [13, 12]


def test_charging_re_arms_and_never_alerts() -> None:
    steps = [
        level(0, 14),
        level(10, 13),  # alert
        level(20, 12, charging=True),
        level(30, 13, charging=True),
        level(40, 14, charging=True),  # charging: below, yet no alert
        level(50, 14, charging=False),  # unplugged at once
        level(60, 13),  # second reading below: a new alert
    ]
    assert alert_levels(events_of(BATTERY, steps)) == [13, 13]


def test_charging_between_two_low_readings_breaks_the_pair() -> None:
    steps = [level(0, 14), level(10, 14, charging=True), level(20, 13)]
    assert events_of(BATTERY, steps) == []


def test_readings_without_battery_are_ignored() -> None:
    steps = series(14, None, None, 13)
    assert alert_levels(events_of(BATTERY, steps)) == [13]
    assert BATTERY.on_reading(None, level(0, None), T0, PROFILE) == (BatteryState(), [])


def test_late_and_duplicate_readings_change_nothing() -> None:
    late = reading(T0 - timedelta(minutes=5), received=T0 + timedelta(minutes=11), battery_pct=10.0)
    first = level(0, 14)
    # Neither the late 10 % nor the same 14 % frame twice is a second reading below.
    assert events_of(BATTERY, [first, first, late]) == []
    state, _ = BATTERY.on_reading(None, first, first.received_at, PROFILE)
    assert BATTERY.on_reading(state, late, late.received_at, PROFILE) == (state, [])


def test_late_high_reading_does_not_re_arm() -> None:
    late_full = reading(T0 - timedelta(hours=3), received=T0 + timedelta(minutes=25), battery_pct=90.0)
    steps = [level(0, 14), level(10, 13), late_full, level(30, 12), level(40, 11)]
    assert alert_levels(events_of(BATTERY, steps)) == [13]


def test_position_only_from_a_good_fix() -> None:
    good = [level(0, 14), level(10, 13, latitude=HOME[0], longitude=HOME[1])]
    bad = [level(0, 14), level(10, 13, latitude=0.0, longitude=0.0, rejected="null_island")]
    assert (events_of(BATTERY, good)[0].latitude, events_of(BATTERY, good)[0].longitude) == HOME
    assert (events_of(BATTERY, bad)[0].latitude, events_of(BATTERY, bad)[0].longitude) == (None, None)


@pytest.mark.parametrize("threshold", [10.0, 25.0])
def test_threshold_comes_from_the_profile(threshold: float) -> None:
    profile = WearerProfile(battery_low_pct=threshold)
    events = events_of(BATTERY, series(30, 20, 12, 11), profile)
    assert alert_levels(events) == ([] if threshold == 10.0 else [12])  # 20 is the first below


def test_restart_changes_nothing() -> None:
    steps = [*series(30, 14, 13, 12, 19, 14, 13, 21, 14, 13), level(200, 12, charging=True), level(210, 11)]
    steps.append(level(220, 10))
    assert alert_levels(assert_restart_invariant(BATTERY, steps)) == [13, 13, 10]


@given(st.lists(st.floats(min_value=15, max_value=100), min_size=2, max_size=20), st.data())
def test_a_single_dip_never_alerts(normal: list[float], data: st.DataObject) -> None:
    dip_at = data.draw(st.integers(min_value=0, max_value=len(normal)))
    dip = data.draw(st.floats(min_value=0, max_value=14.99))
    assert events_of(BATTERY, series(*normal[:dip_at], dip, *normal[dip_at:])) == []
