"""geofence_batch gives exactly what FenceIndex.relations then geofence_step, reading by reading, give."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.detect.base import WearerProfile
from geosentinel.detect.fences import METRES_PER_DEGREE, Fence, FenceIndex, FixQuery
from geosentinel.detect.geofence import (
    DEFAULT_PARAMS,
    GeofenceParams,
    GeofenceState,
    geofence_batch,
    geofence_step,
)
from geosentinel.detect.schedule import Schedule, Window
from geosentinel.model import CellTower, Device, DeviceMessage, Event, Reading

CENTRE = (43.2965, 5.3698)
T0 = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)  # the spring-forward night in Paris is next
DEVICES = [
    Device("d-1", "org-1", "w-1", "860000000000001", "watch"),
    Device("d-2", "org-1", "w-2", "860000000000002", "watch"),
    Device("d-3", "org-1", None, "860000000000003", "watch"),  # no wearer: meets no fence
    Device("d-4", "org-2", "w-4", "860000000000004", "watch"),
]
PROFILES = {"w-1": WearerProfile(), "w-2": WearerProfile(), "w-4": WearerProfile()}


def offset(north_m: float, east_m: float) -> tuple[float, float]:
    lat, lon = CENTRE
    return lat + north_m / METRES_PER_DEGREE, lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat)))


def lonlat(north_m: float, east_m: float) -> list[float]:
    lat, lon = offset(north_m, east_m)
    return [lon, lat]


def random_schedule(rng: random.Random) -> Schedule | None:
    if rng.random() < 0.6:
        return None
    start = rng.randrange(24 * 60)
    end = (start + rng.randrange(30, 600)) % (24 * 60)
    days = tuple(sorted(rng.sample(range(7), rng.randint(1, 7))))
    return Schedule((Window(days, f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}"),))


def random_fence(rng: random.Random, fence_id: str) -> Fence:
    north, east = rng.uniform(-400, 400), rng.uniform(-400, 400)
    owner = rng.choice(
        [("org-1", "w-1"), ("org-1", "w-1"), ("org-1", "w-2"), ("org-1", None), ("org-2", None)]
    )
    kind = rng.choice(["safe", "danger"])
    shape = rng.random()
    radius = width = None
    if shape < 0.5:
        geometry: dict[str, Any] = {"type": "Point", "coordinates": lonlat(north, east)}
        radius = rng.uniform(20, 400)
    elif shape < 0.8:
        half = rng.uniform(20, 300)
        ring = [
            lonlat(north - half, east - half),
            lonlat(north - half, east + half),
            lonlat(north + half, east + half),
            lonlat(north + half, east - half),
        ]
        geometry = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    else:
        line = [lonlat(north, east)]
        for _ in range(rng.randint(1, 3)):
            north, east = north + rng.uniform(-300, 300), east + rng.uniform(-300, 300)
            line.append(lonlat(north, east))
        geometry = {"type": "LineString", "coordinates": line}
        width = rng.uniform(10, 120)
    org, wearer = owner
    return Fence(
        fence_id, org, wearer, f"Fence {fence_id}", kind, geometry, radius, width, random_schedule(rng)
    )  # type: ignore[arg-type]


def random_fences(rng: random.Random, count: int, repeated_ids: bool) -> list[Fence]:
    """``count`` fences with ids from f0 to f(2 count): two sets share some ids (a fence that changed)."""
    pool = [f"f{i}" for i in range(2 * count)]
    ids = [rng.choice(pool) for _ in range(count)] if repeated_ids else rng.sample(pool, count)
    return [random_fence(rng, fence_id) for fence_id in ids]


def random_reading(rng: random.Random, time: datetime, device: Device, north: float, east: float) -> Reading:
    lat, lon = offset(north, east)
    fields: dict[str, Any] = {}
    source = rng.random()
    if source < 0.5:
        fields["accuracy_m"] = rng.choice([3.0, 8.0, 20.0, 45.0])
    elif source < 0.6:
        fields["accuracy_m"] = rng.choice([0.0, 350.0, 900.0, float("nan")])
    elif source < 0.7:
        fields["extras"] = {"position_source": rng.choice(["cell", "lbs", "wifi", "gps"])}
    elif source < 0.8:
        fields.update(valid=False, cells=(CellTower(208, 1, 100, 200),))  # a cell position
    elif source < 0.9:
        fields["hdop"] = rng.uniform(0.5, 8.0)
    if rng.random() < 0.03:
        lat = lon = None  # no fix at all
    message = DeviceMessage(
        device.unique_id, device.protocol, time=time, latitude=lat, longitude=lon, **fields
    )
    rejected = "implausible speed" if rng.random() < 0.05 else None
    return Reading(device, message, time, time + timedelta(seconds=3), rejected)


def random_stream(rng: random.Random, count: int) -> list[Reading]:
    """Each device walks (with now and then a jump), reporting every few seconds to minutes; some fixes
    come late, some twice, some at the same time as the previous one."""
    readings = []
    time = T0
    places = {device.id: (rng.gauss(0, 300), rng.gauss(0, 300)) for device in DEVICES}
    for _ in range(count):
        device = rng.choice(DEVICES)
        north, east = places[device.id]
        if rng.random() < 0.1:
            north, east = rng.gauss(0, 350), rng.gauss(0, 350)
        else:
            north, east = north + rng.gauss(0, 40), east + rng.gauss(0, 40)
        places[device.id] = (north, east)
        time += timedelta(seconds=rng.choice([0, 5, 10, 20, 30, 60, 300, 1200]))
        at = time - timedelta(seconds=rng.choice([30, 60, 600])) if rng.random() < 0.08 else time
        readings.append(random_reading(rng, at, device, north, east))
        if rng.random() < 0.03:
            readings.append(readings[-1])  # sent twice
    return readings


def reference(
    states: dict[str, GeofenceState | None],
    batch: Sequence[Reading],
    index: FenceIndex,
    params: GeofenceParams,
) -> tuple[dict[str, GeofenceState], list[list[Event]]]:
    """What the pipeline did: relations for the good fixes of wearers, then geofence_step per good fix."""
    good = [r for r in batch if r.position_ok and r.device.wearer_id is not None]
    queries = [
        FixQuery(r.device.org_id, r.device.wearer_id, r.message.latitude, r.message.longitude) for r in good
    ]  # type: ignore[arg-type]
    relations = dict(zip(map(id, good), index.relations(queries), strict=True))
    current = dict(states)
    touched: dict[str, GeofenceState] = {}
    events: list[list[Event]] = []
    for reading in batch:
        if not reading.position_ok:
            events.append([])
            continue
        device_id = reading.device.id
        profile = PROFILES.get(reading.device.wearer_id or "", WearerProfile())
        state, raised = geofence_step(
            current.get(device_id),
            reading,
            relations.get(id(reading), ()),
            reading.received_at,
            profile,
            params,
        )
        current[device_id] = touched[device_id] = state
        events.append(raised)
    return touched, events


def encoded(states: dict[str, GeofenceState]) -> dict[str, bytes]:
    return {device_id: msgspec.json.encode(state) for device_id, state in states.items()}


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    fence_count=st.integers(0, 40),
    repeated_ids=st.sampled_from([False, False, False, True]),
    confirm_fixes=st.sampled_from([1, 2, 3, 3, 4]),
    dwell_s=st.sampled_from([0, 30, 60, 600]),
    max_gap_min=st.sampled_from([1, 5, 15]),
    margin_m=st.sampled_from([0.0, 15.0, 40.0]),
)
def test_the_batch_path_is_the_reading_by_reading_path(
    seed: int,
    fence_count: int,
    repeated_ids: bool,
    confirm_fixes: int,
    dwell_s: int,
    max_gap_min: int,
    margin_m: float,
) -> None:
    rng = random.Random(seed)
    params = GeofenceParams(
        margin_m, confirm_fixes, timedelta(seconds=dwell_s), timedelta(minutes=max_gap_min)
    )
    # The fences change halfway (a refresh): some go, some come, some turn from safe to danger.
    indexes = [FenceIndex(random_fences(rng, fence_count, repeated_ids)) for _ in range(2)]
    readings = random_stream(rng, rng.randint(1, 200))
    batch_states: dict[str, GeofenceState | None] = {}
    step_states: dict[str, GeofenceState | None] = {}
    start = 0
    while start < len(readings):
        size = rng.choice([1, 2, 5, 20, 60])
        batch = readings[start : start + size]
        index = indexes[0] if start < len(readings) // 2 else indexes[1]
        if rng.random() < 0.2:  # a restart: states come back from JSON (fence ids are new strings)
            restored = {
                k: msgspec.json.decode(msgspec.json.encode(v), type=GeofenceState)
                for k, v in batch_states.items()
            }
            batch_states = dict(restored)
            step_states = dict(restored)
        expected_states, expected_events = reference(step_states, batch, index, params)
        found_states, found_events = geofence_batch(
            batch_states, batch, index, lambda wearer: PROFILES.get(wearer or "", WearerProfile()), params
        )
        assert found_events == expected_events
        assert found_states == expected_states
        assert encoded(found_states) == encoded(expected_states)  # the saved JSON too, tracks in order
        batch_states.update(found_states)
        step_states.update(expected_states)
        start += size


def test_a_batch_of_nothing_and_of_bad_fixes() -> None:
    index = FenceIndex([random_fence(random.Random(1), "f1")])
    assert geofence_batch({}, [], index, lambda _: WearerProfile()) == ({}, [])
    bad = random_reading(random.Random(2), T0, DEVICES[0], 0.0, 0.0)
    bad = msgspec.structs.replace(bad, rejected="implausible speed")
    assert geofence_batch({}, [bad], index, lambda _: WearerProfile()) == ({}, [[]])


def test_the_input_states_are_left_as_they_were() -> None:
    rng = random.Random(5)
    index = FenceIndex(random_fences(rng, 30, repeated_ids=False))
    readings = random_stream(rng, 200)
    states, _ = geofence_batch({}, readings[:100], index, lambda _: WearerProfile(), DEFAULT_PARAMS)
    frozen = encoded(states)
    geofence_batch(states, readings[100:], index, lambda _: WearerProfile(), DEFAULT_PARAMS)
    assert encoded(states) == frozen


def test_fences_all_deleted_drop_the_tracks_as_step_by_step() -> None:
    rng = random.Random(7)
    index = FenceIndex(random_fences(rng, 30, repeated_ids=False))
    readings = random_stream(rng, 120)
    states, _ = geofence_batch({}, readings[:60], index, lambda _: WearerProfile(), DEFAULT_PARAMS)
    assert any(state.fences for state in states.values())  # tracks to drop
    empty = FenceIndex([])
    expected = reference(dict(states), readings[60:], empty, DEFAULT_PARAMS)
    found = geofence_batch(states, readings[60:], empty, lambda _: WearerProfile(), DEFAULT_PARAMS)
    assert found == expected
    assert {k: msgspec.json.encode(v) for k, v in found[0].items()} == encoded(expected[0])


def rebuilt(fences: list[Fence], rng: random.Random) -> list[Fence]:
    """The same fences as the store would give them again: new objects (ids are new strings, equal to the
    old ones), in another order, one turned from safe to danger or back now and then."""
    again = []
    for fence in rng.sample(fences, len(fences)):
        kind = fence.kind
        if rng.random() < 0.1:
            kind = "danger" if kind == "safe" else "safe"
        again.append(msgspec.structs.replace(fence, id=fence.id.encode().decode(), kind=kind))
    return again


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    fence_count=st.integers(1, 30),
    confirm_fixes=st.sampled_from([1, 2, 3, 4]),
    dwell_s=st.sampled_from([0, 30, 60, 600]),
    max_gap_min=st.sampled_from([1, 5, 15]),
)
def test_the_batch_path_holds_across_rebuilt_indexes_restarts_and_busy_devices(
    seed: int, fence_count: int, confirm_fixes: int, dwell_s: int, max_gap_min: int
) -> None:
    """geofence_batch against geofence_step reading by reading, batch after batch, while the same fences
    come back as new objects in another order (tracks then meet their fences by value, and are written in
    the new order), states come back from JSON, and a device sends several fixes in one batch."""
    rng = random.Random(seed)
    params = GeofenceParams(15.0, confirm_fixes, timedelta(seconds=dwell_s), timedelta(minutes=max_gap_min))
    fences = random_fences(rng, fence_count, repeated_ids=False)
    index = FenceIndex(fences)
    readings = random_stream(rng, rng.randint(20, 300))
    batch_states: dict[str, GeofenceState | None] = {}
    step_states: dict[str, GeofenceState | None] = {}
    start = 0
    while start < len(readings):
        batch = readings[start : start + rng.choice([1, 3, 10, 40, 100])]
        if rng.random() < 0.25:
            index = FenceIndex(rebuilt(fences, rng))
        if rng.random() < 0.15:
            restored = {
                k: msgspec.json.decode(msgspec.json.encode(v), type=GeofenceState)
                for k, v in batch_states.items()
            }
            batch_states, step_states = dict(restored), dict(restored)
        expected_states, expected_events = reference(step_states, batch, index, params)
        found_states, found_events = geofence_batch(
            batch_states, batch, index, lambda wearer: PROFILES.get(wearer or "", WearerProfile()), params
        )
        assert found_events == expected_events
        assert found_states == expected_states
        assert encoded(found_states) == encoded(expected_states)
        batch_states.update(found_states)
        step_states.update(expected_states)
        start += len(batch)


def test_unchanged_tracks_are_written_in_the_order_of_a_rebuilt_index() -> None:
    """A fix that leaves every track as it was still writes them in the order it meets their fences, as
    geofence_step does: after the index is rebuilt in another order, the saved JSON follows it."""
    home, garden = offset(0.0, 0.0), offset(10.0, 0.0)
    fences = [
        Fence(name, "org-1", "w-1", name, "safe", {"type": "Point", "coordinates": [lon, lat]}, 300.0)
        for name, (lat, lon) in (("a", home), ("b", garden))
    ]
    device = DEVICES[0]

    def at(minute: int) -> Reading:
        time = T0 + timedelta(minutes=minute)
        message = DeviceMessage(
            device.unique_id, device.protocol, time=time, latitude=home[0], longitude=home[1], accuracy_m=5.0
        )
        return Reading(device, message, time, time)

    first = FenceIndex(fences)
    states, _ = geofence_batch({}, [at(0)], first, lambda _: WearerProfile())
    assert list(states[device.id].fences) == ["a", "b"]
    second = FenceIndex(fences[::-1])
    expected, _ = reference(dict(states), [at(1)], second, DEFAULT_PARAMS)
    found, _ = geofence_batch(states, [at(1)], second, lambda _: WearerProfile())
    assert list(expected[device.id].fences) == ["b", "a"]
    assert encoded(found) == encoded(expected)


def test_tracks_with_fields_set_by_other_code_are_kept_as_they_are() -> None:
    """A settled track that also carries a run's start or sources (a state saved by other code) is kept,
    or marked alerted, as geofence_step keeps it, not replaced by the plain track of the same status."""
    home = offset(0.0, 0.0)
    fence = Fence(
        "home", "org-1", None, "Home", "safe", {"type": "Point", "coordinates": [home[1], home[0]]}, 300.0
    )
    index = FenceIndex([fence])
    stray = {"pending_since": "2026-03-28T22:00:00Z", "pending_non_cell": True}
    saved = {
        DEVICES[0].id: {"fences": {"home": {"kind": "safe", "status": "outside", **stray}}},
        DEVICES[1].id: {"fences": {"home": {"kind": "safe", "status": "inside", **stray}}},
    }
    states: dict[str, GeofenceState | None] = {
        device_id: msgspec.json.decode(msgspec.json.encode(state), type=GeofenceState)
        for device_id, state in saved.items()
    }
    far, near = offset(2_000.0, 0.0), home
    readings = []
    for device, (lat, lon) in ((DEVICES[0], far), (DEVICES[1], near)):
        message = DeviceMessage(
            device.unique_id, device.protocol, time=T0, latitude=lat, longitude=lon, accuracy_m=5.0
        )
        readings.append(Reading(device, message, T0, T0))
    expected = reference(dict(states), readings, index, DEFAULT_PARAMS)
    found = geofence_batch(states, readings, index, lambda _: WearerProfile(), DEFAULT_PARAMS)
    assert found == expected
    assert encoded(found[0]) == encoded(expected[0])
    assert [len(events) for events in found[1]] == [1, 0]  # the exit held back, raised now
    assert found[0][DEVICES[0].id].fences["home"].pending_since is not None
