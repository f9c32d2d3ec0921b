"""A device's motion window decides whether its fall counts: confirmed, set aside, or left to the device.

The classifier itself is tested on real data in tests/falls; here a plain rule (peak |a| over 3 g) stands
in for it, so that each routing case is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from geosentinel.detect.alarms import ALARMS
from geosentinel.detect.base import WearerProfile
from geosentinel.detect.falls import CONFIRMED, FALL_SCORE, FALL_VERDICT, REJECTED, UNJUDGED, judge_window
from geosentinel.model import Alarm, Device, DeviceMessage, EventKind, ImuWindow, Reading

DEVICE = Device("dev-7", "org-3", "wearer-5", "860000000000007", "mqtt")
TIME = datetime(2026, 3, 10, 11, 59, tzinfo=UTC)
RECEIVED = datetime(2026, 3, 10, 12, 0, 3, tzinfo=UTC)
STILL = ((0.0, 0.0, 1.0),) * 40
IMPACT = ((0.0, 0.0, 1.0),) * 20 + ((3.0, 4.0, 1.0),) + ((0.0, 0.0, 1.0),) * 19  # |a| ≈ 5.1 g
MS = tuple(50.0 * i for i in range(40))


@dataclass(frozen=True)
class Verdict:
    probability: float
    is_fall: bool


def peak_rule(window: ImuWindow) -> Verdict:
    if len(window.accel_g) < 10:
        raise ValueError("window too short: 10 samples at least")
    peak = max(math.hypot(*sample) for sample in window.accel_g)
    return Verdict(min(peak / 6, 1.0), peak > 3.0)


def reading(*alarms: Alarm, samples: tuple[tuple[float, float, float], ...] | None) -> Reading:
    imu = None if samples is None else ImuWindow(TIME, MS[: len(samples)], samples)
    message = DeviceMessage(
        DEVICE.unique_id, "mqtt", time=TIME, latitude=43.3, longitude=5.4, alarms=frozenset(alarms), imu=imu
    )
    return Reading(DEVICE, message, TIME, RECEIVED)


def kinds_after_judging(r: Reading) -> tuple[list[EventKind], list[EventKind], Reading]:
    judged, window_events = judge_window(r, peak_rule)
    _, events = ALARMS.on_reading(None, judged, RECEIVED, WearerProfile())
    return [e.kind for e in window_events], [e.kind for e in events], judged


def test_a_device_fall_with_a_fall_window_is_confirmed_with_its_score() -> None:
    rejected, alarms, judged = kinds_after_judging(reading(Alarm.FALL, samples=IMPACT))
    assert rejected == [] and alarms == [EventKind.FALL]
    assert judged.message.extras[FALL_VERDICT] == CONFIRMED
    _, events = ALARMS.on_reading(None, judged, RECEIVED, WearerProfile())
    assert (
        events[0].details[FALL_SCORE]
        == judged.message.extras[FALL_SCORE]
        == round(math.hypot(3, 4, 1) / 6, 4)
    )


def test_a_device_fall_whose_window_shows_no_fall_is_set_aside_and_recorded() -> None:
    rejected, alarms, judged = kinds_after_judging(reading(Alarm.FALL, Alarm.SOS, samples=STILL))
    assert alarms == [EventKind.SOS]  # the other alarms of the reading still count
    assert rejected == [EventKind.FALL_REJECTED]
    assert judged.message.extras[FALL_VERDICT] == REJECTED
    assert judged.message.alarms == {Alarm.FALL, Alarm.SOS}  # stored as the device sent it


def test_a_window_without_a_device_alarm_raises_a_fall_when_the_classifier_finds_one() -> None:
    rejected, alarms, _ = kinds_after_judging(reading(samples=IMPACT))
    assert (rejected, alarms) == ([], [EventKind.FALL])
    rejected, alarms, _ = kinds_after_judging(reading(samples=STILL))
    assert (rejected, alarms) == ([EventKind.FALL_REJECTED], [])


def test_a_window_that_cannot_be_judged_leaves_the_device_alarm_in_charge() -> None:
    rejected, alarms, judged = kinds_after_judging(reading(Alarm.FALL, samples=STILL[:5]))
    assert (rejected, alarms) == ([], [EventKind.FALL])
    assert judged.message.extras[FALL_VERDICT] == UNJUDGED
    assert "too short" in str(judged.message.extras["fall_window_error"])
    rejected, alarms, _ = kinds_after_judging(reading(samples=STILL[:5]))
    assert (rejected, alarms) == ([], [])


@pytest.mark.parametrize("alarms", [(), (Alarm.FALL,), (Alarm.SOS,)])
def test_readings_without_a_window_are_untouched(alarms: tuple[Alarm, ...]) -> None:
    r = reading(*alarms, samples=None)
    assert judge_window(r, peak_rule) == (r, [])
