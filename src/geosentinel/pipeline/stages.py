"""The ordered stages applied to each message: time → bad-fix filter → detectors → state.

:func:`process` is pure given the device memories and the detection context it is handed; the
:class:`DeviceStates` cache loads memories from the store before and applies them after a successful
commit's submission, so memory never runs ahead of disk by more than the batches in flight. A failing
detector is logged and skipped; it never drops the reading or the other detectors' events.

:func:`sweep` runs the detectors that notice what did *not* happen (offline, inactivity) at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from geosentinel.detect.alarms import ALARMS
from geosentinel.detect.base import WearerProfile, decode_state, encode_states
from geosentinel.detect.battery import BATTERY
from geosentinel.detect.falls import FallScorer, judge_window
from geosentinel.detect.fences import FenceIndex
from geosentinel.detect.geofence import GEOFENCE, GeofenceState, geofence_batch
from geosentinel.detect.inactivity import INACTIVITY
from geosentinel.detect.offline import OFFLINE
from geosentinel.detect.vitals import VITALS
from geosentinel.model import Device, DeviceMessage, Event, Reading
from geosentinel.pipeline.fixfilter import FixLimits, LastFix, check_fix, check_time
from geosentinel.pipeline.normalise import message_time
from geosentinel.store import Store
from geosentinel.store.base import DeviceState

log = logging.getLogger(__name__)

# Detectors that look at each reading, in order; offline and inactivity also run on the sweep.
READING_DETECTORS: tuple[Any, ...] = (ALARMS, BATTERY, VITALS, INACTIVITY, OFFLINE)
TICK_DETECTORS: tuple[Any, ...] = (OFFLINE, INACTIVITY)
STATE_TYPES: dict[str, type[msgspec.Struct]] = {d.name: d.state_type for d in (*READING_DETECTORS, GEOFENCE)}


@dataclass(slots=True)
class Memory:
    """What the pipeline remembers about one device: its stored row and its detectors' states."""

    state: DeviceState | None
    detectors: dict[str, msgspec.Struct] = field(default_factory=dict)
    # Large detector states as last encoded for saving (see encode_states): shared by a device's
    # successive memories, since it only ever maps a frozen state to its own JSON.
    encoded: dict[str, tuple[msgspec.Struct, msgspec.Raw]] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: DeviceState | None) -> Memory:
        if state is None:
            return cls(None)
        try:
            raw = msgspec.json.decode(state.detectors)
        except msgspec.DecodeError:
            raw = {}
        decoded: dict[str, msgspec.Struct] = {}
        if isinstance(raw, dict):
            for name, state_type in STATE_TYPES.items():
                value = decode_state(raw, name, state_type)
                if value is not None:
                    decoded[name] = value
        return cls(state, decoded)


class DeviceStates:
    """In-memory per-device memories, loaded lazily from the store and ahead of it by at most the
    batches in flight."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._memories: dict[str, Memory] = {}

    @property
    def memories(self) -> dict[str, Memory]:
        """Every cached memory by device id (read-only use: the stages' hot loop)."""
        return self._memories

    async def load(self, device_ids: Sequence[str]) -> None:
        missing = sorted({d for d in device_ids if d not in self._memories})
        if missing:  # one query for the whole batch: a cold start must not stall on a read per device
            found = await asyncio.to_thread(self._store.device_states, missing)
            for device_id in missing:
                self._memories[device_id] = Memory.from_state(found.get(device_id))

    def preload(self, states: Iterable[DeviceState]) -> None:
        for state in states:
            self._memories.setdefault(state.device_id, Memory.from_state(state))

    def get(self, device_id: str) -> Memory:
        return self._memories.get(device_id) or Memory(None)

    def items(self) -> list[tuple[str, Memory]]:
        return list(self._memories.items())

    def apply(self, memories: dict[str, Memory]) -> None:
        self._memories.update(memories)

    def forget(self, device_ids: Sequence[str]) -> None:
        """Drop cached memories (after a failed commit) so they are reloaded from the store."""
        for device_id in device_ids:
            self._memories.pop(device_id, None)


class Profiles:
    """Each wearer's detection profile (organisation time zone + overrides); defaults until loaded."""

    def __init__(self, profiles: dict[str, WearerProfile] | None = None) -> None:
        self._profiles = profiles or {}
        self.default = WearerProfile()

    def get(self, wearer_id: str | None) -> WearerProfile:
        if wearer_id is None:
            return self.default
        return self._profiles.get(wearer_id, self.default)

    def known(self, wearer_id: str) -> bool:
        return wearer_id in self._profiles

    def wearer_ids(self) -> set[str]:
        return set(self._profiles)

    def update(self, profiles: dict[str, WearerProfile]) -> None:
        self._profiles.update(profiles)

    def forget(self, wearer_ids: Iterable[str]) -> None:
        """Drop erased wearers' profiles (and stop refreshing them)."""
        for wearer_id in wearer_ids:
            self._profiles.pop(wearer_id, None)


@dataclass(slots=True)
class Context:
    """What detectors need besides the readings: the geofence index and wearer profiles."""

    fences: FenceIndex = field(default_factory=FenceIndex.empty)
    profiles: Profiles = field(default_factory=Profiles)
    # Judges devices' motion windows (None: no classifier loaded; device fall alarms alone count).
    fall_scorer: FallScorer | None = None


@dataclass(frozen=True, slots=True)
class StageResult:
    readings: list[Reading]
    events: list[Event]
    memories: dict[str, Memory]

    @property
    def states(self) -> list[DeviceState]:
        return [m.state for m in self.memories.values() if m.state is not None]


def process(
    items: Sequence[tuple[Device, DeviceMessage, datetime]],
    states: DeviceStates,
    limits: FixLimits,
    context: Context | None = None,
) -> StageResult:
    """Run the stages over messages in arrival order (per device order is preserved)."""
    context = context or Context()
    current: dict[str, DeviceState] = {}
    readings: list[Reading] = []
    judged: dict[int, list[Event]] = {}  # fall_rejected events, by reading
    memories = states.memories  # looked up directly: three lookups per reading otherwise
    for device, message, received_at in items:
        state = current.get(device.id)
        if state is None:
            memory = memories.get(device.id)
            state = None if memory is None else memory.state
        reading = _check(device, message, received_at, state, limits)
        if message.imu is not None and context.fall_scorer is not None:
            reading, judged[len(readings)] = _judge(reading, context.fall_scorer)
        readings.append(reading)
        current[device.id] = _next_state(state, reading)
    working: dict[str, dict[str, msgspec.Struct]] = {}
    profiles = context.profiles
    found: list[list[Event]] = []
    for reading in readings:
        device = reading.device
        detectors = working.get(device.id)
        if detectors is None:
            memory = memories.get(device.id)
            detectors = working[device.id] = {} if memory is None else dict(memory.detectors)
        found.append(_detect(reading, detectors, profiles.get(device.wearer_id)))
    for position, rejected in judged.items():
        found[position][:0] = rejected
    events: list[Event] = []
    for reading_events, fence_events in zip(found, _geofences(readings, working, context), strict=True):
        events += reading_events
        events += fence_events
    updated: dict[str, Memory] = {}
    for device_id, detectors in working.items():
        memory = memories.get(device_id)
        encoded = {} if memory is None else memory.encoded
        updated[device_id] = Memory(
            _with_detectors(current[device_id], detectors, encoded), detectors, encoded
        )
    return StageResult(readings, events, updated)


def sweep(
    now: datetime,
    devices: dict[str, Device],
    states: DeviceStates,
    profiles: Profiles,
    listening_since: datetime | None = None,
) -> StageResult:
    """Run the time-driven detectors over every known device at ``now``.

    ``listening_since``: when the service started; a device is not silent for the time the service
    itself was down.
    """
    events: list[Event] = []
    updated: dict[str, Memory] = {}
    for device_id, memory in states.items():
        device = devices.get(device_id)
        if device is None or memory.state is None:
            continue
        detectors = dict(memory.detectors)
        changed = False
        for detector in TICK_DETECTORS:
            before = detectors.get(detector.name)
            try:
                after, found = detector.on_tick(
                    before, now, device, profiles.get(device.wearer_id), listening_since
                )
            except Exception:
                log.exception("detector %s failed on the sweep of device %s", detector.name, device.unique_id)
                continue
            if after is not None and after is not before and after != before:
                detectors[detector.name] = after
                changed = True
            events.extend(found)
        if changed:
            updated[device_id] = Memory(
                _with_detectors(memory.state, detectors, memory.encoded), detectors, memory.encoded
            )
    return StageResult([], events, updated)


def _geofences(
    readings: Sequence[Reading], working: dict[str, dict[str, msgspec.Struct]], context: Context
) -> list[list[Event]]:
    """The geofence detector over the whole batch at once (one index query, vectorised sides); updates
    the devices' geofence states in ``working`` and returns each reading's events."""
    starts: dict[str, GeofenceState | None] = {}
    for device_id, detectors in working.items():
        previous = detectors.get(GEOFENCE.name)
        assert previous is None or isinstance(previous, GeofenceState)
        starts[device_id] = previous
    try:
        after, events = geofence_batch(
            starts, readings, context.fences, context.profiles.get, GEOFENCE.params
        )
    except Exception:
        # Never lose the readings or the other detectors' events: this batch's fixes go unchecked
        # against fences (and are logged), the devices keep their geofence states.
        log.exception("geofence detector failed on a batch of %d readings", len(readings))
        return [[] for _ in readings]
    for device_id, state in after.items():
        working[device_id][GEOFENCE.name] = state
    return events


def _judge(reading: Reading, scorer: FallScorer) -> tuple[Reading, list[Event]]:
    """The fall classifier's verdict on the reading's motion window; a failing classifier is logged and
    the reading kept as the device sent it (its own fall alarm still counts)."""
    try:
        return judge_window(reading, scorer)
    except Exception:
        log.exception("fall classifier failed on a window of device %s", reading.device.unique_id)
        return reading, []


def _detect(reading: Reading, detectors: dict[str, msgspec.Struct], profile: WearerProfile) -> list[Event]:
    events: list[Event] = []
    now = reading.received_at
    for detector in READING_DETECTORS:
        try:
            detectors[detector.name], found = detector.on_reading(
                detectors.get(detector.name), reading, now, profile
            )
        except Exception:
            log.exception(
                "detector %s failed on a reading of device %s", detector.name, reading.device.unique_id
            )
            continue
        if found:
            events += found
    return events


def _check(
    device: Device,
    message: DeviceMessage,
    received_at: datetime,
    state: DeviceState | None,
    limits: FixLimits,
) -> Reading:
    time = message_time(message, device, received_at)
    last = None
    if state is not None and state.fix_time is not None:
        assert state.fix_latitude is not None and state.fix_longitude is not None
        last = LastFix(state.fix_time, state.fix_latitude, state.fix_longitude)
    rejected = check_fix(message, time, received_at, last, limits)
    if check_time(time, received_at, limits) is not None:
        # A clock that is wildly off must not misplace the reading (or an SOS without a fix) in history.
        time = received_at
    return Reading(device, message, time, received_at, None if rejected is None else rejected.value)


def _with_detectors(
    state: DeviceState,
    detectors: dict[str, msgspec.Struct],
    encoded: dict[str, tuple[msgspec.Struct, msgspec.Raw]],
) -> DeviceState:
    return DeviceState(
        state.device_id, state.last_seen, state.fix_time, state.fix_latitude, state.fix_longitude,
        state.battery_pct, encode_states(detectors, encoded),
    )  # fmt: skip


def _next_state(state: DeviceState | None, reading: Reading) -> DeviceState:
    m = reading.message
    previous = state or DeviceState(reading.device.id, reading.received_at)
    fix_time, fix_lat, fix_lon = previous.fix_time, previous.fix_latitude, previous.fix_longitude
    # A late (out-of-order) fix is stored but does not move the wearer back in time.
    if reading.position_ok and (fix_time is None or reading.time >= fix_time):
        fix_time, fix_lat, fix_lon = reading.time, m.latitude, m.longitude
    return DeviceState(
        previous.device_id,
        max(previous.last_seen, reading.received_at),
        fix_time,
        fix_lat,
        fix_lon,
        previous.battery_pct if m.battery_pct is None else m.battery_pct,
        previous.detectors,
    )
