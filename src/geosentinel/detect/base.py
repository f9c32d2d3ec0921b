"""The contract every detector follows, and what a detector may know about a wearer.

A detector is pure: ``on_reading(state, reading, now, profile) -> (state, events)`` and, for detectors
that notice the *absence* of something (offline, inactivity), ``on_tick(state, now, device, profile) ->
(state, events)``. ``now`` is the time the platform is at (a reading's receive time, or the time of a
sweep): detectors never read the wall clock. ``state`` is ``None`` the first time a device is seen.

States are ``msgspec.Struct``s so the pipeline can save them as JSON with the device's state (one
``detectors`` column) and load them back after a restart; a detector must therefore keep its state small
and bounded (no unbounded history).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from geosentinel.model import Device, Event, EventKind, ExtraValue, Reading

S = TypeVar("S", bound=msgspec.Struct)
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True, slots=True)
class WearerProfile:
    """Per-wearer thresholds (organisation defaults until someone overrides them) and local time.

    Defaults follow common practice for elderly people at rest; a caregiver tunes them per person.
    """

    timezone: ZoneInfo = PARIS
    battery_low_pct: float = 15.0
    heart_rate_min_bpm: float = 40.0
    heart_rate_max_bpm: float = 120.0
    spo2_min_pct: float = 90.0
    temperature_min_c: float = 35.0
    temperature_max_c: float = 38.0
    # Heart rate far from the wearer's own baseline (robust: median and MAD of recent days).
    heart_rate_baseline: bool = True
    # The wearer's day: inactivity is only looked for between these local times.
    day_start: time = time(8, 0)
    day_end: time = time(21, 0)
    inactivity_hours: float = 3.0
    # Offline after ``offline_factor`` x the device's expected reporting interval without any message.
    expected_interval_s: float | None = None  # None: learned from the device's own rhythm
    offline_factor: float = 1.5


SETTABLE = frozenset(f for f in WearerProfile.__dataclass_fields__ if f != "timezone")
_TIMES = frozenset({"day_start", "day_end"})
_FLAGS = frozenset({"heart_rate_baseline"})
_OPTIONAL = frozenset({"expected_interval_s"})


def validate_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Check a wearer's threshold overrides; returns them as stored (raises ValueError with the reason).

    Times of day are ``"HH:MM"`` strings, ``heart_rate_baseline`` a boolean, ``expected_interval_s`` a
    number of seconds (at least 10) or null, everything else a number.
    """
    unknown = set(settings) - SETTABLE
    if unknown:
        raise ValueError(f"unknown detection settings: {', '.join(sorted(unknown))}")
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        if key in _TIMES:
            if not isinstance(value, str):
                raise ValueError(f"{key} must be a time of day HH:MM")
            try:
                time.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"{key} must be a time of day HH:MM, not {value!r}") from exc
        elif key in _FLAGS:
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
        elif value is None and key in _OPTIONAL:
            pass
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{key} must be a number")
        elif value < 0 or (key == "expected_interval_s" and value < 10):
            raise ValueError(f"{key} is out of range: {value}")
        checked[key] = value
    return checked


def profile_from_settings(timezone: str, settings: Mapping[str, Any]) -> WearerProfile:
    """The organisation's defaults in its time zone, with the wearer's overrides (see validate_settings)."""
    values: dict[str, Any] = {"timezone": ZoneInfo(timezone)}
    for key, value in validate_settings(settings).items():
        values[key] = time.fromisoformat(value) if key in _TIMES else value
    return WearerProfile(**values)


def profile_settings(profile: WearerProfile) -> dict[str, Any]:
    """Every setting of a profile as JSON-friendly values (what a caregiver sees and may change)."""
    out: dict[str, Any] = {}
    for key in sorted(SETTABLE):
        value = getattr(profile, key)
        out[key] = value.strftime("%H:%M") if key in _TIMES else value
    return out


class ReadingDetector(Protocol[S]):
    name: str
    state_type: type[S]

    def on_reading(
        self, state: S | None, reading: Reading, now: datetime, profile: WearerProfile
    ) -> tuple[S, list[Event]]: ...


class TickDetector(Protocol[S]):
    """A detector that also runs on a periodic sweep (for things that did *not* happen)."""

    name: str
    state_type: type[S]

    def on_reading(
        self, state: S | None, reading: Reading, now: datetime, profile: WearerProfile
    ) -> tuple[S, list[Event]]: ...

    def on_tick(
        self,
        state: S | None,
        now: datetime,
        device: Device,
        profile: WearerProfile,
        listening_since: datetime | None = None,
    ) -> tuple[S | None, list[Event]]:
        """``listening_since``: when the platform started receiving; silence before it (the platform
        was down, not the device) does not count."""
        ...


def event(
    device: Device,
    kind: EventKind,
    time: datetime,
    received_at: datetime,
    latitude: float | None = None,
    longitude: float | None = None,
    **details: ExtraValue,
) -> Event:
    """An event about ``device``'s wearer (the one constructor detectors use)."""
    return Event(
        device.org_id, device.wearer_id, device.id, kind, time, received_at, latitude, longitude, details
    )


def reading_position(reading: Reading) -> tuple[float | None, float | None]:
    """The reading's position if it passed the bad-fix filter (never send a caregiver to a wild fix)."""
    if reading.position_ok:
        return reading.message.latitude, reading.message.longitude
    return None, None


# States whose JSON is at least this long are kept encoded (see encode_states). Above what a device's
# everyday states add up to (about 1 KB: rhythms, last fix, step counts), so that the common case is a
# single encoding call.
CACHED_STATE_BYTES = 2048


def encode_states(
    states: Mapping[str, msgspec.Struct], cache: dict[str, tuple[msgspec.Struct, msgspec.Raw]] | None = None
) -> str:
    """The detectors' states as one JSON object (detector name → state).

    ``cache`` remembers the encoding of large states (a week of heart-rate means), so one that did not
    change (the same frozen object, as on a plain fix) is not encoded again. Small states are encoded
    every time: most change with every reading anyway, and keeping their JSON would cost memory for each
    of thousands of devices. Everything is encoded in one call (cached states as ``msgspec.Raw``): the
    pipeline does this for every reading, and assembling the members by hand cost more than encoding them.
    """
    if cache is None:
        return msgspec.json.encode(dict(states)).decode()
    values: dict[str, msgspec.Struct | msgspec.Raw] = {}
    cached_bytes = 0
    for name, state in states.items():
        known = cache.get(name)
        if known is not None and known[0] is state:
            values[name] = known[1]
            cached_bytes += len(known[1])
        else:
            if known is not None:
                del cache[name]  # changed: kept again below if it is still large
            values[name] = state
    encoded = msgspec.json.encode(values)
    if len(encoded) - cached_bytes < CACHED_STATE_BYTES:
        return encoded.decode()  # no state encoded afresh can be large: nothing new to keep
    for name, value in values.items():
        if not isinstance(value, msgspec.Raw):
            raw = msgspec.Raw(msgspec.json.encode(value))
            if len(raw) >= CACHED_STATE_BYTES:
                cache[name] = (value, raw)
    return encoded.decode()


def decode_state(raw: Mapping[str, Any], name: str, state_type: type[S]) -> S | None:
    """One detector's state from the saved JSON, or ``None`` if absent or from an incompatible version."""
    value = raw.get(name)
    if value is None:
        return None
    try:
        return msgspec.convert(value, state_type)
    except msgspec.ValidationError:
        return None  # a state saved by an older layout: start afresh rather than refuse the device
