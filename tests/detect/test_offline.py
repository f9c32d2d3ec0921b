"""Offline: detected from the device's own rhythm, within twice its interval, closed by the next message."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from timeline import (
    DEVICE,
    HOME,
    Step,
    Tick,
    assert_restart_invariant,
    events_of,
    merge,
    reading,
    replay,
    sweeps,
    utc,
)

from geosentinel.detect.base import WearerProfile, decode_state
from geosentinel.detect.offline import (
    DEFAULT_INTERVAL_S,
    GAPS_KEPT,
    MIN_INTERVAL_S,
    OFFLINE,
    OfflineState,
    Rhythm,
    expected_interval_s,
    observe,
)
from geosentinel.model import Event, EventKind, Reading

T0 = utc(2026, 2, 2, 10, 0)
PROFILE = WearerProfile()  # offline after 1.5 x the expected interval
SWEEP = timedelta(seconds=5)


def arrivals(gaps_s: list[float], start: datetime = T0, **fields: object) -> list[Reading]:
    """Readings received at ``start`` and then after each gap (measured 2 s before they arrive)."""
    times = [start]
    for gap in gaps_s:
        times.append(times[-1] + timedelta(seconds=gap))
    return [reading(t - timedelta(seconds=2), received=t, **fields) for t in times]


def with_sweeps(
    readings: list[Reading], until: datetime, sweep: timedelta = SWEEP, phase: timedelta = timedelta()
) -> list[Step]:
    """The readings interleaved with sweeps every ``sweep`` (shifted by ``phase``) from the first arrival
    to ``until``."""
    return merge(
        readings, sweeps(readings[0].received_at + sweep + phase, until + timedelta(microseconds=1), sweep)
    )


def kinds(events: list[Event]) -> list[EventKind]:
    return [e.kind for e in events]


def jittery(n: int, seed: int = 7, low: float = 25, high: float = 35) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(n)]


# --- the acceptance target ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_30s_device_offline_between_1_5x_and_2x_its_interval(seed: int) -> None:
    readings = arrivals(jittery(40, seed))
    last = readings[-1].received_at
    [offline] = events_of(OFFLINE, with_sweeps(readings, last + timedelta(minutes=10)))
    expected = float(offline.details["expected_interval_s"])
    assert 25 <= expected <= 35
    assert 1.5 * expected < (offline.time - last).total_seconds() <= 2 * expected
    assert (offline.kind, offline.received_at) == (EventKind.OFFLINE, offline.time)
    assert offline.details["last_seen"] == last.isoformat()


def test_30s_device_exact_detection_time() -> None:
    readings = arrivals([30.0] * 20)
    last = readings[-1].received_at
    [offline] = events_of(OFFLINE, with_sweeps(readings, last + timedelta(minutes=5)))
    assert offline.time == last + timedelta(seconds=50)  # first sweep after 45 s
    assert dict(offline.details) == {"expected_interval_s": 30.0, "last_seen": last.isoformat()}


@pytest.mark.parametrize("seed", range(10))
def test_no_false_offline_from_normal_jitter(seed: int) -> None:
    readings = arrivals(jittery(200, seed))
    assert events_of(OFFLINE, with_sweeps(readings, readings[-1].received_at)) == []


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=25, max_value=35), min_size=4, max_size=40), st.integers(0, 4))
def test_jitter_never_offline_and_silence_always_in_time(gaps: list[float], phase_s: int) -> None:
    readings = arrivals(gaps)
    last = readings[-1].received_at
    # Sweeps not aligned with arrivals.
    steps = with_sweeps(readings, last + timedelta(minutes=3), phase=timedelta(seconds=phase_s))
    [offline] = events_of(OFFLINE, steps)
    expected = float(offline.details["expected_interval_s"])
    assert 1.5 * expected < (offline.time - last).total_seconds() <= 2 * expected


def test_http_device_long_gap() -> None:
    # An HTTP tracker posting every 10 min (its rhythm learned before the sweeps start: see the test
    # below for a new one), swept every 30 s, then silent for 3 hours.
    sweep = timedelta(seconds=30)
    readings = arrivals([600.0, 610.0, 590.0, 600.0, 605.0])
    last = readings[-1].received_at
    back = reading(
        last + timedelta(hours=3), received=last + timedelta(hours=3), latitude=HOME[0], longitude=HOME[1]
    )
    later = arrivals([600.0, 600.0], start=back.received_at)[1:]
    steps = [
        *readings[:3],
        *with_sweeps(readings[3:], last + timedelta(hours=3) - sweep, sweep),
        back,
        *with_sweeps([back, *later], later[-1].received_at + timedelta(minutes=20), sweep)[1:],
    ]
    events = events_of(OFFLINE, steps)
    assert kinds(events) == [EventKind.OFFLINE, EventKind.BACK_ONLINE, EventKind.OFFLINE]
    offline, online, again = events
    assert offline.details["expected_interval_s"] == 600.0
    assert 900 < (offline.time - last).total_seconds() <= 1200  # one event for the whole 3 hours
    assert (online.time, online.latitude, online.longitude) == (back.received_at, *HOME)
    assert online.details == {"silent_s": 3 * 3600.0, "last_seen": last.isoformat()}
    # The 3-hour gap is one outlier among the learned gaps: the rhythm is still 10 min.
    assert 900 < (again.time - later[-1].received_at).total_seconds() <= 1200


def test_new_http_device_is_not_offline_between_its_first_messages() -> None:
    readings = arrivals([600.0] * 6)
    events = events_of(OFFLINE, with_sweeps(readings, readings[-1].received_at, timedelta(seconds=30)))
    # Only the very first gap is judged against the 300 s default.
    assert kinds(events) == [EventKind.OFFLINE, EventKind.BACK_ONLINE]
    assert events[1].time == readings[1].received_at


def test_configured_interval_of_the_device_is_used_from_the_start() -> None:
    http = replace(DEVICE, expected_interval_s=600.0)
    readings = [msgspec.structs.replace(r, device=http) for r in arrivals([600.0] * 6)]
    state = None
    events: list[Event] = []
    for step in with_sweeps(
        readings, readings[-1].received_at + timedelta(minutes=16), timedelta(seconds=30)
    ):
        if isinstance(step, Tick):
            state, found = OFFLINE.on_tick(state, step.now, http, PROFILE)
        else:
            state, found = OFFLINE.on_reading(state, step, step.received_at, PROFILE)
        events.extend(found)
    [offline] = events
    assert offline.time - readings[-1].received_at == timedelta(minutes=15, seconds=30)


# --- rules --------------------------------------------------------------------------------------------


def test_device_that_never_sent_anything() -> None:
    assert OFFLINE.on_tick(None, T0, DEVICE, PROFILE) == (None, [])


def test_before_three_gaps_a_conservative_default() -> None:
    readings = arrivals([30.0, 30.0])  # two gaps only
    last = readings[-1].received_at
    [offline] = events_of(OFFLINE, with_sweeps(readings, last + timedelta(hours=1)))
    assert offline.details["expected_interval_s"] == DEFAULT_INTERVAL_S
    assert offline.time == last + timedelta(seconds=455)


def test_profile_interval_overrides_what_was_learned() -> None:
    profile = WearerProfile(expected_interval_s=120.0, offline_factor=2.0)
    readings = arrivals([30.0] * 20)
    last = readings[-1].received_at
    [offline] = events_of(OFFLINE, with_sweeps(readings, last + timedelta(hours=1)), profile)
    assert offline.time == last + timedelta(seconds=245)
    assert offline.details["expected_interval_s"] == 120.0


def test_one_offline_event_per_silence_and_back_online_resets() -> None:
    first = arrivals([30.0] * 10)
    second = arrivals([30.0] * 10, start=first[-1].received_at + timedelta(minutes=30))
    third = arrivals([30.0] * 3, start=second[-1].received_at + timedelta(minutes=5))
    steps = with_sweeps([*first, *second, *third], third[-1].received_at + timedelta(minutes=5))
    events = events_of(OFFLINE, steps)
    assert kinds(events) == [EventKind.OFFLINE, EventKind.BACK_ONLINE] * 2 + [EventKind.OFFLINE]
    assert [e.time for e in events if e.kind is EventKind.BACK_ONLINE] == [
        second[0].received_at,
        third[0].received_at,
    ]


def test_back_online_uses_the_arrival_time_of_a_buffered_reading() -> None:
    readings = arrivals([30.0] * 5)
    last = readings[-1].received_at
    buffered = reading(last + timedelta(minutes=1), received=last + timedelta(minutes=20))
    events = events_of(OFFLINE, [*with_sweeps(readings, last + timedelta(minutes=19)), buffered])
    assert [(e.kind, e.time) for e in events][-1] == (EventKind.BACK_ONLINE, buffered.received_at)


def test_offline_event_carries_the_newest_good_position() -> None:
    good = (45.76, 4.83)
    readings = [
        *arrivals([30.0] * 5, latitude=good[0], longitude=good[1]),
    ]
    t = readings[-1].received_at
    rejected = reading(
        t, received=t + timedelta(seconds=30), latitude=0.0, longitude=0.0, rejected="null_island"
    )
    late = reading(
        T0 - timedelta(hours=1), received=t + timedelta(seconds=60), latitude=HOME[0], longitude=HOME[1]
    )
    steps = with_sweeps([*readings, rejected, late], late.received_at + timedelta(minutes=5))
    [offline] = events_of(OFFLINE, steps)
    assert (offline.latitude, offline.longitude) == good
    assert events_of(OFFLINE, with_sweeps(arrivals([30.0] * 5), T0 + timedelta(hours=1)))[0].latitude is None


def test_bursts_do_not_shrink_the_interval() -> None:
    # Every 30 s the device sends a position and a heartbeat 1 s apart; after an outage it replays its
    # buffer in a burst. Neither makes it look like a 1 s device.
    times = [T0 + timedelta(seconds=30 * i + d) for i in range(20) for d in (0, 1)]
    burst_at = times[-1] + timedelta(seconds=30)
    times += [burst_at + timedelta(milliseconds=20 * k) for k in range(50)]
    rhythm: Rhythm | None = None
    for t in times:
        rhythm = observe(rhythm, t)
    assert rhythm is not None
    assert expected_interval_s(rhythm, PROFILE, DEVICE) == 30.0
    assert rhythm.last_arrival == times[-1]


def test_fast_device_is_clamped_and_gaps_are_bounded() -> None:
    rhythm: Rhythm | None = None
    for k in range(100):
        rhythm = observe(rhythm, T0 + timedelta(seconds=3 * k))
    assert rhythm is not None
    assert len(rhythm.gaps_ms) == GAPS_KEPT
    assert expected_interval_s(rhythm, PROFILE, DEVICE) >= MIN_INTERVAL_S


def test_gaps_are_whole_milliseconds() -> None:
    rhythm = observe(observe(None, T0), T0 + timedelta(seconds=30, microseconds=1_600))
    assert rhythm.gaps_ms == (30_002,)


def test_a_rhythm_saved_with_gaps_in_seconds_is_learned_again() -> None:
    at = "2026-02-02T10:00:00Z"
    saved = {"offline": {"rhythm": {"last_arrival": at, "transmission_start": at, "gaps_s": [30.0] * 5}}}
    state = decode_state(saved, OFFLINE.name, OfflineState)
    assert state is not None and state.rhythm == Rhythm(T0, T0)
    assert expected_interval_s(state.rhythm, PROFILE, DEVICE) == DEFAULT_INTERVAL_S


def test_out_of_order_receive_times_are_ignored() -> None:
    rhythm = observe(observe(None, T0), T0 + timedelta(seconds=30))
    assert observe(rhythm, T0 + timedelta(seconds=10)) == rhythm
    assert observe(rhythm, T0 + timedelta(seconds=30)) == rhythm  # same batch


def test_state_is_not_mutated() -> None:
    state, _ = replay(OFFLINE, arrivals([30.0] * 5))
    assert isinstance(state, OfflineState)
    copy = OfflineState(state.rhythm, state.offline, state.fix_time, state.latitude, state.longitude)
    OFFLINE.on_tick(state, T0 + timedelta(hours=1), DEVICE, PROFILE)
    OFFLINE.on_reading(state, reading(T0 + timedelta(hours=1)), T0 + timedelta(hours=1), PROFILE)
    assert state == copy


def test_restart_changes_nothing() -> None:
    first = arrivals(jittery(12), latitude=HOME[0], longitude=HOME[1])
    second = arrivals(jittery(6, seed=3), start=first[-1].received_at + timedelta(minutes=4))
    steps = with_sweeps([*first, *second], second[-1].received_at + timedelta(minutes=3))
    events = assert_restart_invariant(OFFLINE, steps)
    assert kinds(events) == [EventKind.OFFLINE, EventKind.BACK_ONLINE, EventKind.OFFLINE]


def test_time_the_platform_was_down_does_not_make_devices_offline() -> None:
    """After an outage of the service, a device gets its full allowance from the restart."""
    state = None
    for r in arrivals([30.0] * 5):
        state, _ = OFFLINE.on_reading(state, r, r.received_at, PROFILE)
    last = T0 + timedelta(seconds=150)
    restart = last + timedelta(hours=2)
    # Without knowing when the service came back, two hours of silence look like a dead device...
    assert [e.kind for e in OFFLINE.on_tick(state, restart + SWEEP, DEVICE, PROFILE)[1]] == [
        EventKind.OFFLINE
    ]
    # ... but the service was not listening: only silence after the restart counts (1.5 x 30 s).
    assert OFFLINE.on_tick(state, restart + timedelta(seconds=40), DEVICE, PROFILE, restart)[1] == []
    late = OFFLINE.on_tick(state, restart + timedelta(seconds=50), DEVICE, PROFILE, restart)[1]
    assert [e.kind for e in late] == [EventKind.OFFLINE]
