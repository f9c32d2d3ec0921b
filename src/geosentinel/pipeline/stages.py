"""The ordered stages applied to each message: time → bad-fix filter → detectors → state.

:func:`process` is pure given the device states it is handed; the :class:`DeviceStates` cache loads them
from the store before and applies them after a successful commit, so memory never runs ahead of disk.
A failing detector is logged and skipped; it never drops the reading or the other detectors' events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from geosentinel.detect.alarms import alarm_events
from geosentinel.model import Device, DeviceMessage, Event, Reading
from geosentinel.pipeline.fixfilter import FixLimits, LastFix, check_fix, check_time
from geosentinel.pipeline.normalise import message_time
from geosentinel.store import Store
from geosentinel.store.base import DeviceState

log = logging.getLogger(__name__)

Detector = Callable[[Reading], list[Event]]
DETECTORS: tuple[tuple[str, Detector], ...] = (("alarms", alarm_events),)


class DeviceStates:
    """In-memory copy of the committed per-device state, loaded lazily from the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._states: dict[str, DeviceState | None] = {}

    async def load(self, device_ids: Sequence[str]) -> None:
        missing = {d for d in device_ids if d not in self._states}
        for device_id in missing:
            self._states[device_id] = await asyncio.to_thread(self._store.device_state, device_id)

    def get(self, device_id: str) -> DeviceState | None:
        return self._states.get(device_id)

    def apply(self, states: Sequence[DeviceState]) -> None:
        for state in states:
            self._states[state.device_id] = state


@dataclass(frozen=True, slots=True)
class StageResult:
    readings: list[Reading]
    events: list[Event]
    states: list[DeviceState]


def process(
    items: Sequence[tuple[Device, DeviceMessage, datetime]], states: DeviceStates, limits: FixLimits
) -> StageResult:
    """Run the stages over messages in arrival order (per device order is preserved)."""
    readings: list[Reading] = []
    events: list[Event] = []
    updated: dict[str, DeviceState] = {}
    for device, message, received_at in items:
        state = updated.get(device.id) or states.get(device.id)
        reading = _check(device, message, received_at, state, limits)
        readings.append(reading)
        events.extend(_detect(reading))
        updated[device.id] = _next_state(state, reading)
    return StageResult(readings, events, list(updated.values()))


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


def _detect(reading: Reading) -> list[Event]:
    events: list[Event] = []
    for name, detector in DETECTORS:
        try:
            events.extend(detector(reading))
        except Exception:
            log.exception("detector %s failed on a reading of device %s", name, reading.device.unique_id)
    return events


def _next_state(state: DeviceState | None, reading: Reading) -> DeviceState:
    m = reading.message
    if state is None:
        state = DeviceState(reading.device.id, reading.received_at)
    state = replace(state, last_seen=max(state.last_seen, reading.received_at))
    if m.battery_pct is not None:
        state = replace(state, battery_pct=m.battery_pct)
    # A late (out-of-order) fix is stored but does not move the wearer back in time.
    newer = state.fix_time is None or reading.time >= state.fix_time
    if reading.position_ok and newer:
        state = replace(state, fix_time=reading.time, fix_latitude=m.latitude, fix_longitude=m.longitude)
    return state
