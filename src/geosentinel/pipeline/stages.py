"""The ordered stages applied to each message: time → bad-fix filter → detectors → state.

:func:`process` is pure given the device states it is handed; the :class:`DeviceStates` cache loads them
from the store before and applies them after a successful commit, so memory never runs ahead of disk.
A failing detector is logged and skipped; it never drops the reading or the other detectors' events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    """In-memory per-device state, loaded lazily from the store and ahead of it by at most the batches
    in flight."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._states: dict[str, DeviceState | None] = {}

    async def load(self, device_ids: Sequence[str]) -> None:
        missing = sorted({d for d in device_ids if d not in self._states})
        if missing:  # one query for the whole batch: a cold start must not stall on a read per device
            found = await asyncio.to_thread(self._store.device_states, missing)
            for device_id in missing:
                self._states[device_id] = found.get(device_id)

    def get(self, device_id: str) -> DeviceState | None:
        return self._states.get(device_id)

    def apply(self, states: Sequence[DeviceState]) -> None:
        for state in states:
            self._states[state.device_id] = state

    def forget(self, device_ids: Sequence[str]) -> None:
        """Drop cached states (after a failed commit) so they are reloaded from the store."""
        for device_id in device_ids:
            self._states.pop(device_id, None)


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
