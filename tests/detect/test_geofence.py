"""The geofence detector, as timelines of fixes at explicit UTC times through a real fence index."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.detect.base import WearerProfile
from geosentinel.detect.fences import METRES_PER_DEGREE, Fence, FenceIndex, FixQuery
from geosentinel.detect.geofence import (
    GEOFENCE,
    FenceTrack,
    GeofenceDetector,
    GeofenceParams,
    GeofenceState,
    classify,
    geofence_step,
)
from geosentinel.detect.schedule import Schedule, Window
from geosentinel.model import Device, DeviceMessage, Event, EventKind, Reading

DEVICE = Device("dev-1", "org-1", "w-1", "860000000000001", "watch")
CENTRE = (43.2965, 5.3698)
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
STEP = timedelta(seconds=30)
PROFILE = WearerProfile()


def offset(north_m: float, east_m: float = 0.0, origin: tuple[float, float] = CENTRE) -> tuple[float, float]:
    lat, lon = origin
    return lat + north_m / METRES_PER_DEGREE, lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat)))


def lonlat(north_m: float, east_m: float = 0.0) -> list[float]:
    lat, lon = offset(north_m, east_m)
    return [lon, lat]


def square(half_m: float) -> list[list[float]]:
    ring = [
        lonlat(-half_m, -half_m),
        lonlat(-half_m, half_m),
        lonlat(half_m, half_m),
        lonlat(half_m, -half_m),
    ]
    return [*ring, ring[0]]


def home(radius: float = 200.0, schedule: Schedule | None = None, kind: str = "safe") -> Fence:
    geometry = {"type": "Point", "coordinates": [CENTRE[1], CENTRE[0]]}
    return Fence("home", "org-1", "w-1", "Home", kind, geometry, radius, None, schedule)  # type: ignore[arg-type]


def fix(time: datetime, point: tuple[float, float], accuracy: float | None = 8.0, **fields: Any) -> Reading:
    message = DeviceMessage(
        DEVICE.unique_id,
        "watch",
        time=time,
        latitude=point[0],
        longitude=point[1],
        accuracy_m=accuracy,
        **fields,
    )
    return Reading(DEVICE, message, time, time + timedelta(seconds=2))


def at_distance(time: datetime, metres: float, accuracy: float | None = 8.0, **fields: Any) -> Reading:
    """A fix ``metres`` east of the centre."""
    return fix(time, offset(0.0, metres), accuracy, **fields)


def jittered(rng: random.Random, start: datetime, count: int, sigma: float = 20.0) -> list[Reading]:
    return [fix(start + i * STEP, offset(rng.gauss(0, sigma), rng.gauss(0, sigma))) for i in range(count)]


def replay(
    fences: Sequence[Fence],
    readings: Sequence[Reading],
    *,
    profile: WearerProfile = PROFILE,
    params: GeofenceParams | None = None,
    restart_at: int | None = None,
    state: GeofenceState | None = None,
) -> tuple[GeofenceState | None, list[Event]]:
    """Each reading through the index then the detector, as the pipeline does (a restart reloads JSON)."""
    index = FenceIndex(fences)
    detector = GeofenceDetector(params) if params is not None else GEOFENCE
    events: list[Event] = []
    for i, reading in enumerate(readings):
        if i == restart_at and state is not None:
            state = msgspec.json.decode(msgspec.json.encode(state), type=GeofenceState)
        query = FixQuery(DEVICE.org_id, DEVICE.wearer_id, reading.message.latitude, reading.message.longitude)  # type: ignore[arg-type]
        (relations,) = index.relations([query])
        state, found = detector.on_reading(state, reading, reading.received_at, profile, relations=relations)
        events.extend(found)
    return state, events


def events_of(fences: Sequence[Fence], readings: Sequence[Reading], **kwargs: Any) -> list[Event]:
    return replay(fences, readings, **kwargs)[1]


# -- the reference timeline -------------------------------------------------------------------------------


def marseille_day() -> tuple[list[Reading], list[int]]:
    """Home 200 m; noise, one wild fix, a walk out, staying out, back, out again. Returns the readings and
    the indices of the readings that must raise an event."""
    rng = random.Random(42)
    readings = jittered(rng, T0, 20)
    readings.append(at_distance(T0 + 20 * STEP, 400.0, accuracy=5.0))  # wild: 400 m away, claims 5 m
    readings += jittered(rng, T0 + 21 * STEP, 10)
    t = T0 + 31 * STEP
    walk = [at_distance(t + i * STEP, 420.0 + 40 * i) for i in range(12)]  # out, and staying out
    first_exit = len(readings) + 2
    readings += walk
    t += 12 * STEP
    readings += jittered(rng, t, 5)  # back home
    t += 5 * STEP
    second_exit = len(readings) + 2
    readings += [at_distance(t + i * STEP, -300.0 - 50 * i) for i in range(4)]  # out again, westwards
    return readings, [first_exit, second_exit]


def test_noise_and_a_wild_fix_never_alert_a_real_exit_alerts_once() -> None:
    readings, alerting = marseille_day()
    events = events_of([home()], readings)
    assert len(events) == 2
    for event, index in zip(events, alerting, strict=True):
        reading = readings[index]
        assert event.kind is EventKind.GEOFENCE_EXIT
        assert (event.time, event.received_at) == (reading.time, reading.received_at)
        assert (event.latitude, event.longitude) == (reading.message.latitude, reading.message.longitude)
        assert event.details["fence_id"] == "home"
        assert event.details["fence_name"] == "Home"
        assert (event.org_id, event.wearer_id, event.device_id) == ("org-1", "w-1", "dev-1")
    assert events[0].details["distance_m"] == pytest.approx(300.0, abs=0.1)  # the 3rd fix out: 500 m
    assert events[1].details["distance_m"] == pytest.approx(200.0, abs=0.1)  # 400 m west


def test_only_the_noise_and_the_wild_fix() -> None:
    readings, alerting = marseille_day()
    assert events_of([home()], readings[: alerting[0]]) == []


@pytest.mark.parametrize("restart_at", range(0, 60, 3))
def test_a_restart_mid_run_changes_nothing(restart_at: int) -> None:
    readings, _ = marseille_day()
    final, expected = replay([home()], readings)
    state, events = replay([home()], readings, restart_at=restart_at)
    assert events == expected
    assert state == final


def test_state_is_small_json() -> None:
    readings, alerting = marseille_day()
    state, _ = replay([home()], readings[: alerting[0]])  # two fixes out: pending
    assert state is not None
    track = state.fences["home"]
    assert (track.status, track.pending, track.pending_non_cell) == ("inside", 2, True)
    raw = msgspec.json.decode(msgspec.json.encode(state))
    assert set(raw) == {"last_fix_time", "fences"}
    assert set(raw["fences"]["home"]) == {"kind", "status", "pending", "pending_since", "pending_non_cell"}


# -- confirmation rules -----------------------------------------------------------------------------------


def test_cell_fixes_never_confirm_alone() -> None:
    inside = [at_distance(T0 + i * STEP, 0.0) for i in range(3)]
    t = T0 + 3 * STEP
    cells = [at_distance(t + i * STEP, 3000.0, accuracy=800.0) for i in range(10)]
    assert events_of([home()], inside + cells) == []
    # Far outside with "position_source": "cell" and no accuracy: the same.
    cell = {"position_source": "cell"}
    declared = [at_distance(t + i * STEP, 3000.0, None, extras=cell) for i in range(10)]
    assert events_of([home()], inside + declared) == []
    # One GPS fix joining the run is enough: the cell fixes were not wrong, only too coarse on their own.
    gps = at_distance(t + 10 * STEP, 3000.0)
    events = events_of([home()], [*inside, *cells, gps])
    assert [e.time for e in events] == [gps.time]


def test_uncertain_fixes_neither_count_nor_reset() -> None:
    t = [T0 + i * timedelta(seconds=10) for i in range(6)]  # too close together for the dwell rule
    readings = [
        at_distance(t[0], 0.0),
        at_distance(t[1], 300.0),  # out: 1
        at_distance(t[2], 210.0),  # d = 10: neither clearly out nor clearly in
        at_distance(t[3], 320.0, accuracy=150.0),  # d - u = -30: uncertain too
        at_distance(t[4], 340.0),  # out: 2
        at_distance(t[5], 360.0),  # out: 3
    ]
    assert [e.time for e in events_of([home()], readings)] == [t[5]]


def test_two_fixes_spanning_the_dwell_confirm() -> None:
    readings = [at_distance(T0, 0.0), at_distance(T0 + STEP, 300.0), at_distance(T0 + 3 * STEP, 320.0)]
    assert [e.time for e in events_of([home()], readings)] == [T0 + 3 * STEP]
    # ... but not two fixes 30 s apart.
    assert events_of([home()], [*readings[:2], at_distance(T0 + 2 * STEP, 320.0)]) == []


def test_a_stale_run_starts_again() -> None:
    gap = timedelta(minutes=16)
    readings = [
        at_distance(T0, 0.0),
        at_distance(T0 + STEP, 300.0),
        at_distance(T0 + STEP + gap, 300.0),  # 16 min after the run started: a new run
        at_distance(T0 + 2 * STEP + gap, 300.0),  # 30 s: 2 fixes, not the dwell yet
    ]
    assert events_of([home()], readings) == []
    readings.append(at_distance(T0 + 3 * STEP + gap, 300.0))
    assert [e.time for e in events_of([home()], readings)] == [T0 + 3 * STEP + gap]


def test_late_out_of_order_and_duplicate_fixes_are_ignored() -> None:
    readings = [
        at_distance(T0, 0.0),
        at_distance(T0 + 2 * STEP, 300.0),  # out: 1
        at_distance(T0 + STEP, 0.0),  # late (older than the last): would reset the run
        at_distance(T0 + 2 * STEP, 0.0),  # same time as the last: a duplicate
        at_distance(T0 + 3 * STEP, 300.0),  # out: 2 (only 30 s after the first out)
        at_distance(T0 + 3 * STEP, 300.0),  # duplicate: does not count as a third
    ]
    assert events_of([home()], readings) == []
    readings.append(at_distance(T0 + 3 * STEP + timedelta(seconds=10), 300.0))
    assert [e.time for e in events_of([home()], readings)] == [T0 + 3 * STEP + timedelta(seconds=10)]


def test_a_late_fix_leaves_the_state_untouched() -> None:
    state, _ = replay([home()], [at_distance(T0, 0.0), at_distance(T0 + STEP, 300.0)])
    assert state is not None
    (relations,) = FenceIndex([home()]).relations([FixQuery("org-1", "w-1", *CENTRE)])
    after, events = geofence_step(state, at_distance(T0, 0.0), relations, T0, PROFILE)
    assert after is state
    assert events == []


def test_rejected_fixes_do_not_count() -> None:
    readings = [at_distance(T0, 0.0), *(at_distance(T0 + i * STEP, 500.0) for i in range(1, 4))]
    rejected = [
        msgspec.structs.replace(r, rejected="impossible_jump") if i else r for i, r in enumerate(readings)
    ]
    assert events_of([home()], rejected) == []
    state, _ = replay([home()], rejected)
    assert state is not None and state.last_fix_time == T0


def test_first_seen_outside_alerts_once_confirmed() -> None:
    readings = [at_distance(T0 + i * STEP, 1000.0) for i in range(4)]
    assert [e.time for e in events_of([home()], readings)] == [T0 + 2 * STEP]


def test_small_fence_and_hysteresis_at_the_boundary() -> None:
    garden = home(radius=40.0)
    # Fixes jittering across the boundary never make an exit...
    rng = random.Random(1)
    jitter = [at_distance(T0 + i * STEP, 40.0 + rng.uniform(-30.0, 30.0)) for i in range(40)]
    assert events_of([garden], jitter) == []
    # ... a small garden is still "inside" with a good fix, so coming back ends the episode.
    t = T0 + 40 * STEP
    out_in_out = (
        [at_distance(t + i * STEP, 100.0) for i in range(3)]
        + [at_distance(t + 3 * STEP, 10.0)]
        + [at_distance(t + (4 + i) * STEP, 100.0) for i in range(3)]
    )
    assert [e.time for e in events_of([garden], out_in_out)] == [t + 2 * STEP, t + 6 * STEP]


def test_coarse_fix_cannot_say_inside_a_small_fence() -> None:
    assert classify(-20.0, 8.0, 25.0) == "inside"
    assert classify(-20.0, 100.0, 25.0) is None
    assert classify(40.0, 8.0, 25.0) == "outside"
    assert classify(30.0, 8.0, 25.0) is None


# -- shapes and kinds -------------------------------------------------------------------------------------


def test_polygon_with_hole_walking_into_the_hole_is_an_exit() -> None:
    # A park (1 km square) with a pond (400 m square) cut out of the safe zone.
    park = Fence(
        "park",
        "org-1",
        "w-1",
        "Park",
        "safe",
        {"type": "Polygon", "coordinates": [square(500), square(200)[::-1]]},
    )
    readings = [at_distance(T0 + i * STEP, 350.0 - 40 * i) for i in range(8)]  # 350, 310 … 70 m east
    # In the hole from 200 m: 190 m (d = 10, uncertain), 150 m (d = 50: out 1), 110 m, 70 m (out 3).
    assert [e.time for e in events_of([park], readings)] == [T0 + 7 * STEP]


def test_corridor_leaving_the_route_sideways() -> None:
    route = Fence(
        "route", "org-1", "w-1", "Route", "safe",
        {"type": "LineString", "coordinates": [lonlat(0, -1000), lonlat(0, 1000)]}, None, 60.0,
    )  # fmt: skip
    along = [fix(T0 + i * STEP, offset(10.0, -900.0 + 150 * i)) for i in range(10)]
    assert events_of([route], along) == []
    t = T0 + 10 * STEP
    away = [fix(t + i * STEP, offset(80.0 + 20 * i, 500.0)) for i in range(4)]  # d = 50, 70, 90, 110
    events = events_of([route], along + away)
    assert [e.time for e in events] == [t + 2 * STEP]
    assert events[0].details["distance_m"] == pytest.approx(90.0, abs=0.1)


def test_danger_zone_entry() -> None:
    pond = Fence(
        "pond",
        "org-1",
        None,
        "Pond",
        "danger",
        {"type": "Point", "coordinates": [CENTRE[1], CENTRE[0]]},
        50.0,
    )
    walk = [at_distance(T0 + i * STEP, 300.0 - 50 * i) for i in range(7)]  # 300, 250 … 0 m: d = 250 … -50
    walk += [at_distance(T0 + (7 + i) * STEP, 0.0) for i in range(5)]  # standing in the pond zone
    events = events_of([pond], walk)
    assert [e.kind for e in events] == [EventKind.GEOFENCE_ENTER]
    assert events[0].time == T0 + 8 * STEP  # the 3rd fix clearly inside (d = 0 is not "clearly")
    assert events[0].details == {"fence_id": "pond", "fence_name": "Pond", "distance_m": -50.0}


def test_danger_zone_far_away_is_forgotten() -> None:
    pond = Fence(
        "pond",
        "org-1",
        None,
        "Pond",
        "danger",
        {"type": "Point", "coordinates": [CENTRE[1], CENTRE[0]]},
        50.0,
    )
    readings = [at_distance(T0 + i * STEP, 0.0) for i in range(4)]  # in the pond zone: alert
    state, events = replay([pond], readings)
    assert len(events) == 1 and state is not None and "pond" in state.fences
    state, events = replay([pond], [at_distance(T0 + 5 * STEP, 5000.0)], state=state)  # 5 km away
    assert events == [] and state is not None and state.fences == {}
    state, events = replay([pond], [at_distance(T0 + (6 + i) * STEP, 0.0) for i in range(3)], state=state)
    assert len(events) == 1  # back in: a new episode


def test_deleted_fence_is_forgotten() -> None:
    state, _ = replay([home()], [at_distance(T0, 500.0), at_distance(T0 + STEP, 500.0)])
    assert state is not None and state.fences["home"].pending == 2
    state, events = replay([], [at_distance(T0 + 2 * STEP, 500.0)], state=state)
    assert events == [] and state is not None and state.fences == {}


def test_fence_turned_from_safe_to_danger_starts_afresh() -> None:
    state, _ = replay([home()], [at_distance(T0 + i * STEP, 0.0) for i in range(2)])
    assert state is not None and state.fences["home"] == FenceTrack("safe", "inside")
    danger = home(kind="danger")
    state, events = replay([danger], [at_distance(T0 + (2 + i) * STEP, 0.0) for i in range(3)], state=state)
    assert [e.kind for e in events] == [EventKind.GEOFENCE_ENTER]


# -- schedules --------------------------------------------------------------------------------------------


def night_home(start: str = "22:00", end: str = "07:00") -> Fence:
    return home(schedule=Schedule((Window(tuple(range(7)), start, end),)))


def test_not_home_by_22_00() -> None:
    # 2026-05-04 is in summer time: 22:00 in Paris is 20:00 UTC.
    t0 = datetime(2026, 5, 4, 19, 40, tzinfo=UTC)
    out = [at_distance(t0 + i * timedelta(minutes=5), 800.0) for i in range(8)]  # 21:40 … 22:15 local
    events = events_of([night_home()], out)
    assert [e.time for e in events] == [datetime(2026, 5, 4, 20, 0, tzinfo=UTC)]


def test_an_exit_during_the_day_is_not_watched_and_a_return_before_night_ends_it() -> None:
    t0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    day = [at_distance(t0 + i * STEP, 800.0) for i in range(10)]
    back = [at_distance(datetime(2026, 5, 4, 19, 50, tzinfo=UTC), 0.0)]
    night = [at_distance(datetime(2026, 5, 4, 20, 10, tzinfo=UTC) + i * STEP, 0.0) for i in range(5)]
    assert events_of([night_home()], day + back + night) == []


def test_schedule_on_the_spring_forward_night() -> None:
    # 02:00–03:00 does not exist in Paris on 2026-03-29: a wearer out all night raises nothing.
    fence = night_home("02:00", "03:00")
    t0 = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    out = [at_distance(t0 + i * timedelta(minutes=5), 800.0) for i in range(36)]  # 00:00 … 03:55 local
    assert events_of([fence], out) == []


def test_schedule_on_the_fall_back_night() -> None:
    # On 2026-10-25 the first 02:00 in Paris (CEST) is 00:00 UTC: confirmed before, alerted then.
    fence = night_home("02:00", "03:00")
    t0 = datetime(2026, 10, 24, 23, 40, tzinfo=UTC)
    out = [at_distance(t0 + i * timedelta(minutes=5), 800.0) for i in range(36)]
    assert [e.time for e in events_of([fence], out)] == [datetime(2026, 10, 25, 0, 0, tzinfo=UTC)]


# -- properties -------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    inside=st.lists(
        st.tuples(st.floats(0, 199), st.floats(0, 2 * math.pi), st.floats(3, 120), st.integers(1, 1200)),
        min_size=1,
        max_size=25,
    ),
    outlier_at=st.integers(0, 25),
    outlier=st.tuples(st.floats(0, 50_000), st.floats(0, 2 * math.pi), st.floats(1, 2000)),
    kind=st.sampled_from(["safe", "danger"]),
)
def test_one_outlier_among_good_fixes_never_alerts(
    inside: list[tuple[float, float, float, int]],
    outlier_at: int,
    outlier: tuple[float, float, float],
    kind: str,
) -> None:
    """Fixes on the good side (anywhere inside a safe zone, outside a danger zone) with one outlier
    anywhere, any accuracy claimed, any spacing in time: never an event."""
    radius = 200.0
    fence = home(radius, kind=kind)
    t = T0
    readings = []
    for from_centre, bearing, accuracy, gap_s in inside:
        t += timedelta(seconds=gap_s)
        # A safe zone: anywhere inside it; a danger zone: anywhere just outside it, never in it.
        metres = from_centre if kind == "safe" else from_centre + radius + 1.0
        readings.append(fix(t, offset(metres * math.cos(bearing), metres * math.sin(bearing)), accuracy))
    metres, bearing, accuracy = outlier
    at = min(outlier_at, len(readings))
    if at == len(readings):
        wild_time = readings[-1].time + timedelta(seconds=1)
    else:
        wild_time = readings[at].time - timedelta(milliseconds=1)
    readings.insert(
        at, fix(wild_time, offset(metres * math.cos(bearing), metres * math.sin(bearing)), accuracy)
    )
    assert events_of([fence], readings) == []


def test_detector_identity() -> None:
    assert GEOFENCE.name == "geofence"
    assert GEOFENCE.state_type is GeofenceState
    assert GeofenceState() == msgspec.json.decode(msgspec.json.encode(GeofenceState()), type=GeofenceState)
