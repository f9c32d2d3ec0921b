"""Device alarms become events: the mapping, collapsing, and what each event carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from geosentinel.detect.alarms import ALARM_EVENTS, alarm_events
from geosentinel.model import Alarm, Device, DeviceMessage, Event, EventKind, Reading

DEVICE = Device("dev-7", "org-3", "wearer-5", "860000000000007", "osmand")
SENT = datetime(2026, 3, 10, 12, 59, tzinfo=UTC)  # as sent (e.g. local wall time), differs from the reading's
TIME = datetime(2026, 3, 10, 11, 59, tzinfo=UTC)
RECEIVED = datetime(2026, 3, 10, 12, 0, 3, tzinfo=UTC)
POSITION = (43.2951, 5.3744)

# Every alarm a device can raise, and the event it must produce (None: informative only, no event).
EXPECTED_KIND: dict[Alarm, EventKind | None] = {
    Alarm.SOS: EventKind.SOS,
    Alarm.FALL: EventKind.FALL,
    Alarm.REMOVED: EventKind.REMOVED,
    Alarm.LOW_BATTERY: EventKind.LOW_BATTERY,
    Alarm.POWER_OFF: EventKind.POWER_OFF,
    Alarm.POWER_CUT: EventKind.POWER_OFF,
    Alarm.GEOFENCE_ENTER: None,  # geofences are the platform's, not the device's
    Alarm.GEOFENCE_EXIT: None,
    Alarm.VIBRATION: None,
    Alarm.OVERSPEED: None,
    Alarm.TAMPERING: None,
    Alarm.GENERAL: None,
}


def reading(
    *alarms: Alarm,
    position: tuple[float, float] | None = POSITION,
    rejected: str | None = None,
    device: Device = DEVICE,
) -> Reading:
    lat, lon = position if position is not None else (None, None)
    message = DeviceMessage(
        device.unique_id, "osmand", time=SENT, latitude=lat, longitude=lon, alarms=frozenset(alarms)
    )
    return Reading(device, message, TIME, RECEIVED, rejected)


def event(kind: EventKind, position: tuple[float, float] | None = POSITION) -> Event:
    lat, lon = position if position is not None else (None, None)
    return Event("org-3", "wearer-5", "dev-7", kind, TIME, RECEIVED, lat, lon)


def test_table_covers_every_alarm() -> None:
    assert set(EXPECTED_KIND) == set(Alarm)
    assert {a: k for a, k in EXPECTED_KIND.items() if k is not None} == ALARM_EVENTS


@pytest.mark.parametrize(("alarm", "kind"), EXPECTED_KIND.items(), ids=[a.value for a in EXPECTED_KIND])
def test_single_alarm(alarm: Alarm, kind: EventKind | None) -> None:
    expected = [] if kind is None else [event(kind)]
    assert alarm_events(reading(alarm)) == expected


@pytest.mark.parametrize(
    ("alarms", "kinds"),
    [
        pytest.param((), [], id="no-alarm"),
        pytest.param((Alarm.VIBRATION, Alarm.GENERAL, Alarm.OVERSPEED), [], id="only-informative"),
        pytest.param(
            (Alarm.POWER_CUT, Alarm.POWER_OFF), [EventKind.POWER_OFF], id="power-cut-and-off-collapse"
        ),
        pytest.param((Alarm.SOS, Alarm.VIBRATION), [EventKind.SOS], id="sos-and-vibration"),
        # One event per kind, in kind-name order.
        pytest.param((Alarm.SOS, Alarm.FALL), [EventKind.FALL, EventKind.SOS], id="sos-and-fall"),
        pytest.param(
            tuple(Alarm),
            [EventKind.FALL, EventKind.LOW_BATTERY, EventKind.POWER_OFF, EventKind.REMOVED, EventKind.SOS],
            id="everything",
        ),
    ],
)
def test_alarm_sets(alarms: tuple[Alarm, ...], kinds: list[EventKind]) -> None:
    assert alarm_events(reading(*alarms)) == [event(k) for k in kinds]


def test_events_carry_ids_and_the_reading_time() -> None:
    [sos] = alarm_events(reading(Alarm.SOS))
    assert (sos.org_id, sos.wearer_id, sos.device_id) == ("org-3", "wearer-5", "dev-7")
    assert (sos.time, sos.received_at) == (TIME, RECEIVED)  # the corrected time, not the device's
    assert (sos.latitude, sos.longitude) == POSITION
    assert dict(sos.details) == {}


def test_device_without_wearer() -> None:
    spare = Device("dev-9", "org-3", None, "860000000000009", "osmand")
    assert alarm_events(reading(Alarm.REMOVED, device=spare)) == [
        Event("org-3", None, "dev-9", EventKind.REMOVED, TIME, RECEIVED, *POSITION)
    ]


@pytest.mark.parametrize(
    ("position", "rejected"),
    [
        pytest.param(None, None, id="no-fix"),
        pytest.param((0.0, 0.0), "null_island", id="null-island"),
        pytest.param(POSITION, "invalid_fix", id="invalid"),
        pytest.param(POSITION, "impossible_jump", id="impossible-jump"),
        pytest.param(POSITION, "time_future", id="future"),
    ],
)
def test_position_only_when_it_passed_the_filter(
    position: tuple[float, float] | None, rejected: str | None
) -> None:
    assert alarm_events(reading(Alarm.SOS, Alarm.FALL, position=position, rejected=rejected)) == [
        event(EventKind.FALL, None),
        event(EventKind.SOS, None),
    ]
