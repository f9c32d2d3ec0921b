"""Inactivity: what counts as activity, day hours only (DST included), once per stillness, silent devices."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from timeline import (
    DEVICE,
    HOME,
    Step,
    assert_restart_invariant,
    events_of,
    every,
    merge,
    reading,
    replay,
    sweeps,
    utc,
)

from geosentinel.detect.base import WearerProfile
from geosentinel.detect.inactivity import (
    INACTIVITY,
    InactivityState,
    day_hours_between,
    in_day_hours,
)
from geosentinel.model import Event, EventKind, Reading

PROFILE = WearerProfile()  # Europe/Paris, 08:00–21:00, 3 hours
BEAT = timedelta(minutes=5)
SWEEP = timedelta(minutes=1)
METRE_LAT = 1 / 111_195  # degrees of latitude per metre


def north(metres: float) -> tuple[float, float]:
    return HOME[0] + metres * METRE_LAT, HOME[1]


def beat(t: datetime, *, at: tuple[float, float] | None = HOME, **fields: object) -> Reading:
    """A message from a wearer who does not move (same place, no step count)."""
    lat, lon = at if at is not None else (None, None)
    fields.setdefault("accuracy_m", 10.0)
    return reading(t, latitude=lat, longitude=lon, **fields)


def still(start: datetime, end: datetime, *active: Reading) -> list[Step]:
    """Heartbeats every 5 min and sweeps every minute from ``start`` to ``end``, plus ``active``."""
    return merge([beat(t) for t in every(start, BEAT, end)], active, sweeps(start, end, SWEEP))


def walked(t: datetime, steps: int) -> Reading:
    return beat(t, steps=steps)


def times(events: list[Event]) -> list[datetime]:
    assert all(e.kind is EventKind.INACTIVITY for e in events)
    return [e.time for e in events]


# --- the basic rule -----------------------------------------------------------------------------------


def test_three_still_hours_in_the_day_raise_once() -> None:
    start = utc(2026, 6, 10, 7, 0)  # 09:00 in Paris (CEST)
    events = events_of(INACTIVITY, still(start, utc(2026, 6, 10, 13, 0), walked(start, 500)))
    assert events == [
        Event(
            DEVICE.org_id,
            DEVICE.wearer_id,
            DEVICE.id,
            EventKind.INACTIVITY,
            utc(2026, 6, 10, 10, 0),
            utc(2026, 6, 10, 10, 0),
            *HOME,
            details={
                "inactive_hours": 3.0,
                "limit_hours": 3.0,
                "last_activity": "2026-06-10T07:00:00+00:00",
            },
        )
    ]


def test_activity_re_arms() -> None:
    start = utc(2026, 6, 10, 7, 0)
    steps = still(start, utc(2026, 6, 10, 16, 0), walked(start, 500), walked(utc(2026, 6, 10, 10, 30), 900))
    assert times(events_of(INACTIVITY, steps)) == [utc(2026, 6, 10, 10, 0), utc(2026, 6, 10, 13, 30)]


def test_activity_before_the_limit_prevents_it() -> None:
    start = utc(2026, 6, 10, 7, 0)
    walks = [walked(start + timedelta(hours=2 * k), 100 * (k + 1)) for k in range(4)]
    assert events_of(INACTIVITY, still(start, utc(2026, 6, 10, 14, 59), *walks)) == []


def test_limit_comes_from_the_profile() -> None:
    start = utc(2026, 6, 10, 7, 0)
    profile = WearerProfile(inactivity_hours=1.5)
    events = events_of(INACTIVITY, still(start, utc(2026, 6, 10, 9, 0), walked(start, 1)), profile)
    assert times(events) == [utc(2026, 6, 10, 8, 30)]


# --- day hours ----------------------------------------------------------------------------------------


def test_night_does_not_count() -> None:
    # Last seen walking at 20:00 (CEST): one still hour that evening, two more the next morning.
    last = utc(2026, 6, 10, 18, 0)
    steps = still(last, utc(2026, 6, 11, 12, 0), walked(last, 4000))
    assert times(events_of(INACTIVITY, steps)) == [utc(2026, 6, 11, 8, 0)]  # 10:00 local


def test_no_event_at_night_even_when_long_still() -> None:
    # 2.5 still hours before 21:00: nothing at night, the last half hour at 08:30 the next morning.
    last = utc(2026, 6, 10, 16, 30)
    steps = still(last, utc(2026, 6, 11, 9, 0), walked(last, 4000))
    assert times(events_of(INACTIVITY, steps)) == [utc(2026, 6, 11, 6, 30)]


def test_day_crossing_midnight() -> None:
    # A night-shift profile: awake 20:00–06:00 local.
    profile = WearerProfile(day_start=time(20, 0), day_end=time(6, 0), inactivity_hours=2)
    last = utc(2026, 6, 10, 21, 0)  # 23:00 CEST
    steps = still(last, utc(2026, 6, 11, 3, 0), walked(last, 1))
    assert times(events_of(INACTIVITY, steps, profile)) == [utc(2026, 6, 10, 23, 0)]


def test_spring_forward_morning() -> None:
    # 2026-03-29 02:00 CET → 03:00 CEST. Still from 20:30 CET (30 min before 21:00), the day starts at
    # 08:00 CEST = 06:00 UTC (07:00 UTC the day before): 2.5 hours more is 08:30 UTC.
    last = utc(2026, 3, 28, 19, 30)
    steps = still(last, utc(2026, 3, 29, 10, 0), walked(last, 1))
    assert times(assert_restart_invariant(INACTIVITY, steps, stride=97)) == [utc(2026, 3, 29, 8, 30)]


def test_fall_back_morning() -> None:
    # 2026-10-25 03:00 CEST → 02:00 CET. One still hour before 21:00 CEST (19:00 UTC), the day starts at
    # 08:00 CET = 07:00 UTC: two hours more is 09:00 UTC.
    last = utc(2026, 10, 24, 18, 0)
    steps = still(last, utc(2026, 10, 25, 11, 0), walked(last, 1))
    assert times(assert_restart_invariant(INACTIVITY, steps, stride=97)) == [utc(2026, 10, 25, 9, 0)]


EARLY = WearerProfile(day_start=time(1, 0), day_end=time(5, 0))  # day hours that contain the change


def test_fall_back_within_day_hours_counts_the_extra_hour() -> None:
    # 01:00 CEST (23:00 UTC) to 05:00 CET (04:00 UTC) lasts five hours that night, not four.
    profile = WearerProfile(day_start=EARLY.day_start, day_end=EARLY.day_end, inactivity_hours=4.5)
    last = utc(2026, 10, 24, 22, 0)
    steps = still(last, utc(2026, 10, 25, 4, 30), walked(last, 1))
    assert times(events_of(INACTIVITY, steps, profile)) == [utc(2026, 10, 25, 3, 30)]


def test_spring_forward_within_day_hours_loses_an_hour() -> None:
    # 01:00 CET (00:00 UTC) to 05:00 CEST (03:00 UTC) lasts three hours that night.
    last = utc(2026, 3, 28, 23, 0)
    short = WearerProfile(day_start=EARLY.day_start, day_end=EARLY.day_end, inactivity_hours=2.5)
    assert times(events_of(INACTIVITY, still(last, utc(2026, 3, 29, 4, 0), walked(last, 1)), short)) == [
        utc(2026, 3, 29, 2, 30)
    ]
    # 3.5 hours do not fit in that night: the next night's 01:00 CEST (23:00 UTC) + 30 min.
    long = WearerProfile(day_start=EARLY.day_start, day_end=EARLY.day_end, inactivity_hours=3.5)
    steps = still(last, utc(2026, 3, 30, 1, 0), walked(last, 1))
    assert times(events_of(INACTIVITY, steps, long)) == [utc(2026, 3, 29, 23, 30)]


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (utc(2026, 3, 29, 5, 59), False),  # 07:59 CEST
        (utc(2026, 3, 29, 6, 0), True),  # 08:00 CEST
        (utc(2026, 3, 28, 6, 30), False),  # 07:30 CET
        (utc(2026, 10, 25, 6, 30), False),  # 07:30 CET
        (utc(2026, 10, 24, 6, 30), True),  # 08:30 CEST
        (utc(2026, 10, 25, 19, 59), True),  # 20:59 CET
        (utc(2026, 10, 25, 20, 0), False),  # 21:00 CET
    ],
)
def test_in_day_hours_uses_local_time(now: datetime, inside: bool) -> None:
    assert in_day_hours(now, PROFILE) is inside


DAY_BOUNDS = st.builds(
    time, st.sampled_from([h for h in range(24) if h != 2]), st.sampled_from([0, 15, 30, 45])
)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([utc(2026, 3, 27), utc(2026, 6, 1), utc(2026, 10, 23)]),
    st.integers(0, 3 * 24 * 60),
    st.integers(0, 3 * 24 * 60),
    DAY_BOUNDS,
    DAY_BOUNDS,
)
def test_day_hours_match_a_minute_by_minute_count(
    origin: datetime, offset_min: int, span_min: int, day_start: time, day_end: time
) -> None:
    # Day bounds inside the changeover hour (02:xx) are ambiguous or missing on that day: left out.
    profile = WearerProfile(day_start=day_start, day_end=day_end)
    start = origin + timedelta(minutes=offset_min)
    minutes = [start + timedelta(minutes=m) for m in range(span_min)]
    expected = timedelta(minutes=sum(in_day_hours(m, profile) for m in minutes))
    assert (
        day_hours_between(start, start + timedelta(minutes=span_min), profile, timedelta(days=30)) == expected
    )


def test_day_hours_count_stops_when_enough() -> None:
    # Still for 17 months: the count looks at the last day only (08:00–12:00 CEST).
    start, end = utc(2025, 1, 1), utc(2026, 6, 1, 10)
    assert day_hours_between(start, end, PROFILE, timedelta(hours=3)) == timedelta(hours=4)


# --- what counts as activity --------------------------------------------------------------------------

T = utc(2026, 6, 10, 7, 0)


def after_first(second: Reading, first: Reading | None = None) -> InactivityState:
    first = first if first is not None else beat(T, steps=1000)
    state, _ = replay(INACTIVITY, [first, second])
    assert isinstance(state, InactivityState)
    return state


@pytest.mark.parametrize(
    ("fields", "active"),
    [
        pytest.param({"at": north(60), "accuracy_m": 5.0}, True, id="moved-60m"),
        pytest.param({"at": north(60), "accuracy_m": None}, True, id="moved-60m-no-accuracy"),
        pytest.param({"at": north(60), "accuracy_m": 15.0}, False, id="within-accuracy"),
        pytest.param({"at": north(40), "accuracy_m": 0.0}, False, id="within-50m"),
        pytest.param({"at": north(500), "rejected": "impossible_jump"}, False, id="rejected-fix"),
        pytest.param({"at": None, "speed_kmh": 5.0}, False, id="speed-without-fix"),
        pytest.param({"speed_kmh": 3.0}, True, id="walking-speed"),
        pytest.param({"speed_kmh": 0.8}, False, id="gps-noise-speed"),
        pytest.param({"speed_kmh": 3.0, "rejected": "invalid_fix"}, False, id="speed-of-rejected-fix"),
        pytest.param({"steps": 1010}, True, id="steps-up"),
        pytest.param({"steps": 1000}, False, id="steps-same"),
        pytest.param({"steps": 12}, False, id="steps-reset"),
        pytest.param({"at": None}, False, id="nothing"),
    ],
)
def test_activity(fields: dict[str, object], active: bool) -> None:
    second = beat(T + timedelta(minutes=5), **fields)
    assert after_first(second).last_activity == (second.time if active else T)


def test_steps_after_a_reset_count() -> None:
    steps = [beat(T, steps=5000), beat(T + BEAT, steps=3), beat(T + 2 * BEAT, steps=40)]
    state, _ = replay(INACTIVITY, steps)
    assert state.last_activity == T + 2 * BEAT


def test_slow_drift_adds_up_against_the_anchor() -> None:
    # 12 m more every 5 min: never 50 m from the previous fix, but 60 m from where the wearer settled.
    steps = [beat(T + k * BEAT, at=north(12 * k), accuracy_m=0.0) for k in range(8)]
    state, _ = replay(INACTIVITY, steps)
    assert state.last_activity == T + 5 * BEAT
    assert (state.anchor_lat, state.anchor_lon) == north(60)


def test_first_good_fix_sets_the_anchor() -> None:
    state = after_first(beat(T + BEAT, at=north(500)), first=beat(T, at=None))
    assert (state.last_activity, state.anchor_lat) == (T, north(500)[0])


def test_late_and_duplicate_readings_are_not_activity() -> None:
    first = beat(T, steps=1000)
    late = beat(T - timedelta(minutes=30), received=T + timedelta(minutes=1), steps=2000, at=north(900))
    state = after_first(late, first)
    assert (state.last_activity, state.last_time, state.steps, state.anchor_lat) == (T, T, 1000, HOME[0])
    assert state.rhythm.last_arrival == late.received_at  # but the device is talking
    assert after_first(first, first).last_activity == T


def test_activity_position_is_the_anchor() -> None:
    start = utc(2026, 6, 10, 7, 0)
    moved = beat(start + timedelta(minutes=1), at=north(200))
    steps = merge(
        [beat(t, at=north(200 + (t.minute % 3))) for t in every(start + BEAT, BEAT, utc(2026, 6, 10, 11, 0))],
        [walked(start, 1), moved],
        sweeps(start, utc(2026, 6, 10, 11, 0), SWEEP),
    )
    [event] = events_of(INACTIVITY, steps)
    assert (event.latitude, event.longitude) == north(200)
    assert event.time == moved.time + timedelta(hours=3)


# --- a silent device is offline, not inactive ---------------------------------------------------------


def test_device_that_never_sent_anything() -> None:
    assert INACTIVITY.on_tick(None, T, DEVICE, PROFILE) == (None, [])


@pytest.mark.parametrize(
    ("last_beat", "raised"),
    [
        (utc(2026, 6, 10, 9, 50), True),  # silent 10 min at 10:00: within 2 x 1.5 x 5 min
        (utc(2026, 6, 10, 9, 40), False),  # silent 20 min: offline's business
    ],
)
def test_silent_device(last_beat: datetime, raised: bool) -> None:
    start = utc(2026, 6, 10, 7, 0)
    beats = [beat(t) for t in every(start, BEAT, last_beat + BEAT)]
    steps = merge(beats, [walked(start, 1)], sweeps(start, utc(2026, 6, 10, 10, 1), SWEEP))
    assert times(events_of(INACTIVITY, steps)) == ([utc(2026, 6, 10, 10, 0)] if raised else [])


def test_device_back_from_silence_without_movement() -> None:
    start = utc(2026, 6, 10, 7, 0)
    steps = merge(
        [walked(start, 1), *(beat(t) for t in every(start + BEAT, BEAT, utc(2026, 6, 10, 8, 0)))],
        [beat(utc(2026, 6, 10, 12, 0))],
        sweeps(start, utc(2026, 6, 10, 12, 5), SWEEP),
    )
    # Nothing while it was silent; still not seen moving once it talks again.
    assert times(events_of(INACTIVITY, steps)) == [utc(2026, 6, 10, 12, 1)]


def test_restart_changes_nothing() -> None:
    start = utc(2026, 6, 10, 7, 0)
    steps = still(
        start,
        utc(2026, 6, 10, 16, 0),
        walked(start, 500),
        walked(utc(2026, 6, 10, 10, 30), 900),
        beat(utc(2026, 6, 10, 9, 0), received=utc(2026, 6, 10, 11, 0, 30), steps=950),  # late
    )
    assert times(assert_restart_invariant(INACTIVITY, steps, stride=13)) == [
        utc(2026, 6, 10, 10, 0),
        utc(2026, 6, 10, 13, 30),
    ]


def test_time_the_platform_was_down_does_not_count_as_stillness() -> None:
    """Nobody could see whether the wearer moved while the service was down."""
    start = utc(2026, 6, 10, 7, 0)  # 09:00 in Paris
    state = None
    for r in (walked(start, 500), beat(start + timedelta(minutes=5))):
        state, _ = INACTIVITY.on_reading(state, r, r.received_at, PROFILE)
    restart = utc(2026, 6, 10, 9, 30)
    for t in every(restart, BEAT, utc(2026, 6, 10, 10, 5)):
        state, _ = INACTIVITY.on_reading(state, beat(t), t, PROFILE)
    at = utc(2026, 6, 10, 10, 5)  # 3 h after the last activity, but only 35 min after the restart
    assert INACTIVITY.on_tick(state, at, DEVICE, PROFILE)[1] != []
    assert INACTIVITY.on_tick(state, at, DEVICE, PROFILE, restart)[1] == []
    later = restart + timedelta(hours=3)
    for t in every(utc(2026, 6, 10, 10, 10), BEAT, later):
        state, _ = INACTIVITY.on_reading(state, beat(t), t, PROFILE)
    assert times(INACTIVITY.on_tick(state, later, DEVICE, PROFILE, restart)[1]) == [later]
