"""Device alarms become events: the mapping, collapsing, what each event carries, and repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from timeline import assert_restart_invariant, events_of, utc
from timeline import reading as at

from geosentinel.detect.alarms import ALARM_EVENTS, ALARMS, REPEAT_WINDOW, AlarmsState
from geosentinel.detect.base import WearerProfile
from geosentinel.model import Alarm, Device, DeviceMessage, Event, EventKind, Reading

DEVICE = Device("dev-7", "org-3", "wearer-5", "860000000000007", "osmand")
SENT = datetime(2026, 3, 10, 12, 59, tzinfo=UTC)  # as sent (e.g. local wall time), differs from the reading's
TIME = datetime(2026, 3, 10, 11, 59, tzinfo=UTC)
RECEIVED = datetime(2026, 3, 10, 12, 0, 3, tzinfo=UTC)
POSITION = (43.2951, 5.3744)
PROFILE = WearerProfile()

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
    Alarm.CANCEL: EventKind.CANCELLED,  # the wearer cancelled (closes a fall in its grace period)
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


def first(r: Reading) -> list[Event]:
    """The events of a reading from a device seen for the first time."""
    return ALARMS.on_reading(None, r, r.received_at, PROFILE)[1]


# --- the mapping (unchanged by deduplication) ---------------------------------------------------------


def test_table_covers_every_alarm() -> None:
    assert set(EXPECTED_KIND) == set(Alarm)
    assert {a: k for a, k in EXPECTED_KIND.items() if k is not None} == ALARM_EVENTS


@pytest.mark.parametrize(("alarm", "kind"), EXPECTED_KIND.items(), ids=[a.value for a in EXPECTED_KIND])
def test_single_alarm(alarm: Alarm, kind: EventKind | None) -> None:
    expected = [] if kind is None else [event(kind)]
    assert first(reading(alarm)) == expected


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
            [
                EventKind.FALL,
                EventKind.LOW_BATTERY,
                EventKind.POWER_OFF,
                EventKind.REMOVED,
                EventKind.SOS,
                EventKind.CANCELLED,
            ],
            id="everything",
        ),
    ],
)
def test_alarm_sets(alarms: tuple[Alarm, ...], kinds: list[EventKind]) -> None:
    assert first(reading(*alarms)) == [event(k) for k in kinds]


def test_events_carry_ids_and_the_reading_time() -> None:
    [sos] = first(reading(Alarm.SOS))
    assert (sos.org_id, sos.wearer_id, sos.device_id) == ("org-3", "wearer-5", "dev-7")
    assert (sos.time, sos.received_at) == (TIME, RECEIVED)  # the corrected time, not the device's
    assert (sos.latitude, sos.longitude) == POSITION
    assert dict(sos.details) == {}  # a first occurrence carries no ``repeat``


def test_device_without_wearer() -> None:
    spare = Device("dev-9", "org-3", None, "860000000000009", "osmand")
    assert first(reading(Alarm.REMOVED, device=spare)) == [
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
    assert first(reading(Alarm.SOS, Alarm.FALL, position=position, rejected=rejected)) == [
        event(EventKind.FALL, None),
        event(EventKind.SOS, None),
    ]


# --- repeats ------------------------------------------------------------------------------------------

T0 = utc(2026, 3, 10, 9, 0)


def alarm_at(seconds: float, *alarms: Alarm, received: datetime | None = None, **fields: object) -> Reading:
    return at(T0 + timedelta(seconds=seconds), received=received, alarms=frozenset(alarms), **fields)


def repeats(events: list[Event]) -> list[tuple[EventKind, bool]]:
    return [(e.kind, bool(e.details.get("repeat", False))) for e in events]


def test_window_is_two_minutes() -> None:
    assert timedelta(seconds=120) == REPEAT_WINDOW


def test_resent_sos_is_one_sos_and_repeats() -> None:
    # The device resends the SOS every 30 s for ten minutes until it is acknowledged: one alert.
    steps = [alarm_at(s, Alarm.SOS) for s in range(0, 600, 30)]
    events = events_of(ALARMS, steps)
    assert repeats(events) == [(EventKind.SOS, False)] + [(EventKind.SOS, True)] * 19
    assert [dict(e.details) for e in events[1:]] == [{"repeat": True}] * 19
    assert [e.time for e in events] == [r.time for r in steps]  # every repeat keeps its own time


@pytest.mark.parametrize(
    ("gap_s", "repeat"), [(1, True), (119, True), (120, True), (121, False), (3600, False)]
)
def test_window_boundary(gap_s: int, repeat: bool) -> None:
    events = events_of(ALARMS, [alarm_at(0, Alarm.SOS), alarm_at(gap_s, Alarm.SOS)])
    assert repeats(events) == [(EventKind.SOS, False), (EventKind.SOS, repeat)]


def test_new_sos_after_the_window_then_its_own_repeats() -> None:
    steps = [alarm_at(s, Alarm.SOS) for s in (0, 60, 400, 430, 1000)]
    assert [r for _, r in repeats(events_of(ALARMS, steps))] == [False, True, False, True, False]


def test_kinds_are_independent() -> None:
    steps = [alarm_at(0, Alarm.SOS), alarm_at(20, Alarm.FALL), alarm_at(40, Alarm.SOS, Alarm.FALL)]
    assert repeats(events_of(ALARMS, steps)) == [
        (EventKind.SOS, False),
        (EventKind.FALL, False),
        (EventKind.FALL, True),
        (EventKind.SOS, True),
    ]


def test_power_cut_then_power_off_is_one_power_off() -> None:
    steps = [alarm_at(0, Alarm.POWER_CUT), alarm_at(30, Alarm.POWER_OFF)]
    assert repeats(events_of(ALARMS, steps)) == [(EventKind.POWER_OFF, False), (EventKind.POWER_OFF, True)]


def test_readings_without_alarms_do_not_break_a_repeat() -> None:
    steps = [alarm_at(0, Alarm.SOS), alarm_at(30), alarm_at(60, Alarm.VIBRATION), alarm_at(90, Alarm.SOS)]
    assert repeats(events_of(ALARMS, steps)) == [(EventKind.SOS, False), (EventKind.SOS, True)]


def test_duplicate_frame_is_a_repeat() -> None:
    sos = alarm_at(0, Alarm.SOS)
    assert repeats(events_of(ALARMS, [sos, sos])) == [(EventKind.SOS, False), (EventKind.SOS, True)]


def test_late_frame_within_the_window_is_a_repeat() -> None:
    # A frame measured 60 s before the one already seen, delivered late from the device's buffer.
    late = alarm_at(-60, Alarm.SOS, received=T0 + timedelta(seconds=30))
    events = events_of(ALARMS, [alarm_at(0, Alarm.SOS), late])
    assert repeats(events) == [(EventKind.SOS, False), (EventKind.SOS, True)]


def test_late_frame_does_not_move_the_window_back() -> None:
    late = alarm_at(-100, Alarm.SOS, received=T0 + timedelta(seconds=10))
    steps = [alarm_at(0, Alarm.SOS), late, alarm_at(110, Alarm.SOS)]
    assert [r for _, r in repeats(events_of(ALARMS, steps))] == [False, True, True]


def test_much_older_buffered_alarm_is_its_own() -> None:
    # An SOS pressed half an hour earlier while out of coverage is a distinct call for help.
    late = alarm_at(-1800, Alarm.SOS, received=T0 + timedelta(seconds=10))
    steps = [alarm_at(0, Alarm.SOS), late, alarm_at(60, Alarm.SOS)]
    assert [r for _, r in repeats(events_of(ALARMS, steps))] == [False, False, True]


def test_repeat_keeps_position_rules() -> None:
    steps = [
        alarm_at(0, Alarm.SOS, latitude=POSITION[0], longitude=POSITION[1]),
        at(
            T0 + timedelta(seconds=30),
            rejected="invalid_fix",
            latitude=0.0,
            longitude=0.0,
            alarms={Alarm.SOS},
        ),
    ]
    [sos, again] = events_of(ALARMS, steps)
    assert (sos.latitude, sos.longitude) == POSITION
    assert (again.latitude, again.longitude, dict(again.details)) == (None, None, {"repeat": True})


def test_state_is_not_mutated_and_stays_bounded() -> None:
    state, _ = ALARMS.on_reading(None, alarm_at(0, Alarm.SOS), T0, PROFILE)
    before = AlarmsState(dict(state.last))
    for s in range(30, 3000, 30):
        newer, _ = ALARMS.on_reading(state, alarm_at(s, *ALARM_EVENTS), T0, PROFILE)
        assert state == before  # the pipeline's copy is untouched until it commits
        assert len(newer.last) <= len(set(ALARM_EVENTS.values()))


def test_no_alarm_keeps_the_state() -> None:
    state, _ = ALARMS.on_reading(None, alarm_at(0, Alarm.SOS), T0, PROFILE)
    assert ALARMS.on_reading(state, alarm_at(10), T0, PROFILE) == (state, [])
    assert ALARMS.on_reading(None, alarm_at(10), T0, PROFILE) == (AlarmsState(), [])


def test_restart_changes_nothing() -> None:
    steps = [alarm_at(s, Alarm.SOS) for s in (0, 30, 60, 300, 320)] + [
        alarm_at(330, Alarm.FALL, Alarm.POWER_CUT),
        alarm_at(400, Alarm.FALL),
        alarm_at(250, Alarm.SOS, received=T0 + timedelta(seconds=410)),
    ]
    events = assert_restart_invariant(ALARMS, steps)
    assert [r for _, r in repeats(events)] == [False, True, True, False, True, False, False, True, True]


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=30))
def test_in_order_repeats_follow_the_gaps(offsets: list[int]) -> None:
    times = sorted(offsets)
    events = events_of(ALARMS, [alarm_at(t, Alarm.SOS) for t in times])
    expected = [False] + [b - a <= REPEAT_WINDOW.total_seconds() for a, b in pairwise(times)]
    assert [r for _, r in repeats(events)] == expected
