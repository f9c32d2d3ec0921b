"""Timelines for detector tests: readings and sweeps at explicit UTC times, replayed through a detector.

``replay`` can save and reload the detector's state as JSON at any step, as the pipeline does across a
restart; ``assert_restart_invariant`` checks that a restart anywhere changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from geosentinel.detect.base import WearerProfile
from geosentinel.model import Device, DeviceMessage, Event, Reading

DEVICE = Device("dev-1", "org-1", "wearer-1", "860000000000001", "watch")
HOME = (48.8566, 2.3522)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def reading(
    time: datetime,
    *,
    received: datetime | None = None,
    delay: timedelta = timedelta(seconds=2),
    rejected: str | None = None,
    device: Device = DEVICE,
    **fields: Any,
) -> Reading:
    """A reading measured at ``time`` and received ``delay`` later (or at ``received``)."""
    message = DeviceMessage(device.unique_id, device.protocol, time=time, **fields)
    return Reading(device, message, time, received if received is not None else time + delay, rejected)


@dataclass(frozen=True, slots=True)
class Tick:
    """A sweep at ``now``."""

    now: datetime


Step = Reading | Tick


def every(start: datetime, step: timedelta, end: datetime) -> list[datetime]:
    """Times from ``start`` (included) to ``end`` (excluded)."""
    times = []
    t = start
    while t < end:
        times.append(t)
        t += step
    return times


def when(step: Step) -> datetime:
    """When a step happens: a reading at its receive time."""
    return step.now if isinstance(step, Tick) else step.received_at


def merge(*parts: Sequence[Step]) -> list[Step]:
    """Steps in time order; a sweep at the same instant as an arrival runs after it."""
    return sorted((s for part in parts for s in part), key=lambda s: (when(s), isinstance(s, Tick)))


def sweeps(start: datetime, end: datetime, step: timedelta) -> list[Tick]:
    """Sweeps from ``start`` (included) to ``end`` (excluded)."""
    return [Tick(t) for t in every(start, step, end)]


def restarted(detector: Any, state: msgspec.Struct | None) -> Any:
    """The state as the pipeline has it after saving it and loading it back."""
    if state is None:
        return None
    return msgspec.json.decode(msgspec.json.encode(state), type=detector.state_type)


def replay(
    detector: Any,
    steps: Sequence[Step],
    profile: WearerProfile | None = None,
    *,
    restart_at: int | None = None,
    state: Any = None,
) -> tuple[Any, list[Event]]:
    """Run the steps in order (a reading is processed at its receive time) and collect the events."""
    profile = profile if profile is not None else WearerProfile()
    events: list[Event] = []
    for index, step in enumerate(steps):
        if index == restart_at:
            state = restarted(detector, state)
        if isinstance(step, Tick):
            state, found = detector.on_tick(state, step.now, DEVICE, profile)
        else:
            state, found = detector.on_reading(state, step, step.received_at, profile)
        events.extend(found)
    return state, events


def events_of(detector: Any, steps: Sequence[Step], profile: WearerProfile | None = None) -> list[Event]:
    return replay(detector, steps, profile)[1]


def assert_restart_invariant(
    detector: Any, steps: Sequence[Step], profile: WearerProfile | None = None, *, stride: int = 1
) -> list[Event]:
    """Saving and reloading the state before any step (every ``stride``-th) gives the same events."""
    final, expected = replay(detector, steps, profile)
    for index in range(0, len(steps), stride):
        state, events = replay(detector, steps, profile, restart_at=index)
        assert events == expected, f"restart before step {index} changed the events"
        assert state == final, f"restart before step {index} changed the final state"
    return expected
