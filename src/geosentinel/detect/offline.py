"""Offline: a device silent for longer than its own reporting rhythm allows.

Devices report at very different rhythms (a watch every 30 s over TCP, an HTTP tracker every 10 min), so
the expected interval is learned per device from the gaps between its recent transmissions: the median of
the last :data:`GAPS_KEPT` gaps, clamped to [:data:`MIN_INTERVAL_S`, :data:`MAX_INTERVAL_S`]. The median
shrugs off an outage or a burst. A configured interval overrides it, for devices whose rhythm is known
or irregular (e.g. trackers that report rarely at rest): the wearer's ``profile.expected_interval_s``
first, then the device's own ``Device.expected_interval_s``. Until :data:`MIN_GAPS` gaps are known and
without a configured interval, a conservative :data:`DEFAULT_INTERVAL_S` is assumed, or the longest gap
seen so far if longer (a new 10-minute HTTP tracker is not reported offline between its first messages).

A sweep (``on_tick``) raises one ``offline`` event once ``now − last arrival > offline_factor × expected
interval``; the next message raises ``back_online`` (which closes the offline alert). With the default
factor 1.5 and sweeps every few seconds, a device is reported offline before twice its interval.

Times here are *arrival* times (``now``), not the device's clock: a device replaying buffered readings is
talking now, whatever time its readings carry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import median

import msgspec

from geosentinel.detect.base import TickDetector, WearerProfile, event, reading_position
from geosentinel.model import Device, Event, EventKind, Reading

GAPS_KEPT = 16
MIN_GAPS = 3
# Arrivals closer than this to the start of a transmission belong to it (a burst of buffered frames, a
# position and a heartbeat sent together): counting them as gaps would make a 30 s device look like a 1 s
# one and report it offline between two normal messages. It is also the shortest interval ever expected.
MIN_INTERVAL_S = 10.0
MAX_INTERVAL_S = 86_400.0
DEFAULT_INTERVAL_S = 300.0
_MIN_INTERVAL = timedelta(seconds=MIN_INTERVAL_S)
_MILLISECOND = timedelta(milliseconds=1)


class Rhythm(msgspec.Struct, frozen=True, omit_defaults=True):
    """When a device last sent something, and the gaps between its recent transmissions.

    Gaps are whole milliseconds: the rhythm is saved with the device's state after every message, and
    encoding sixteen floats cost ten times as much as sixteen integers (1.8 µs against 0.35, twice per
    reading since inactivity keeps a rhythm too). A state saved with the earlier ``gaps_s`` (seconds, as
    floats) loads without its gaps: the rhythm is learned again within a few messages.
    """

    last_arrival: datetime
    transmission_start: datetime
    gaps_ms: tuple[int, ...] = ()


def observe(rhythm: Rhythm | None, now: datetime) -> Rhythm:
    """The rhythm after a message arriving at ``now``."""
    if rhythm is None:
        return Rhythm(now, now)
    if now <= rhythm.last_arrival:  # same batch, or receive times out of order: nothing new learned
        return rhythm
    gap = now - rhythm.transmission_start
    if gap < _MIN_INTERVAL:
        return msgspec.structs.replace(rhythm, last_arrival=now)
    # Outage gaps are kept too: one is an outlier the median ignores, and a device that really changed its
    # rhythm (e.g. to a slower one) must be learned rather than reported offline at every message.
    return Rhythm(now, now, (*rhythm.gaps_ms, round(gap / _MILLISECOND))[-GAPS_KEPT:])


def expected_interval_s(rhythm: Rhythm, profile: WearerProfile, device: Device) -> float:
    """How often the device is expected to send something (seconds)."""
    if profile.expected_interval_s is not None:
        return profile.expected_interval_s
    if device.expected_interval_s is not None:
        return device.expected_interval_s
    gaps_ms = rhythm.gaps_ms
    if len(gaps_ms) < MIN_GAPS:
        return min(max(DEFAULT_INTERVAL_S, max(gaps_ms, default=0) / 1000), MAX_INTERVAL_S)
    return min(max(median(gaps_ms) / 1000, MIN_INTERVAL_S), MAX_INTERVAL_S)


def silence_limit(rhythm: Rhythm, profile: WearerProfile, device: Device) -> timedelta:
    """How long the device may stay silent before it counts as offline."""
    return timedelta(seconds=profile.offline_factor * expected_interval_s(rhythm, profile, device))


def shortest_silence_limit(profile: WearerProfile, device: Device) -> timedelta:
    """A lower bound of :func:`silence_limit` that needs no rhythm: a sweep over thousands of devices
    that all spoke moments ago settles each with one comparison instead of a median."""
    configured = profile.expected_interval_s or device.expected_interval_s
    return timedelta(seconds=profile.offline_factor * (configured or MIN_INTERVAL_S))


class OfflineState(msgspec.Struct, frozen=True, omit_defaults=True):
    rhythm: Rhythm
    offline: bool = False
    # The newest good fix (by reading time), given with the offline event: where to start looking.
    fix_time: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None


class OfflineDetector:
    name: str = "offline"
    state_type: type[OfflineState] = OfflineState

    def on_reading(
        self, state: OfflineState | None, reading: Reading, now: datetime, profile: WearerProfile
    ) -> tuple[OfflineState, list[Event]]:
        rhythm = observe(state.rhythm if state is not None else None, now)
        fix_time, lat, lon = _newest_fix(state, reading)
        new = OfflineState(rhythm, False, fix_time, lat, lon)
        if state is None or not state.offline:
            return new, []
        return new, [_back_online(state, reading, now)]

    def on_tick(
        self,
        state: OfflineState | None,
        now: datetime,
        device: Device,
        profile: WearerProfile,
        listening_since: datetime | None = None,
    ) -> tuple[OfflineState | None, list[Event]]:
        if state is None or state.offline:
            return state, []
        rhythm = state.rhythm
        # While the platform itself was down, devices were not silent: it was not listening.
        silent_since = (
            rhythm.last_arrival if listening_since is None else max(rhythm.last_arrival, listening_since)
        )
        silent = now - silent_since
        if silent <= shortest_silence_limit(profile, device):
            return state, []
        if silent <= silence_limit(rhythm, profile, device):
            return state, []
        offline = event(
            device,
            EventKind.OFFLINE,
            now,
            now,
            state.latitude,
            state.longitude,
            expected_interval_s=expected_interval_s(rhythm, profile, device),
            last_seen=rhythm.last_arrival.isoformat(),
        )
        return msgspec.structs.replace(state, offline=True), [offline]


def _newest_fix(
    state: OfflineState | None, reading: Reading
) -> tuple[datetime | None, float | None, float | None]:
    lat, lon = reading_position(reading)
    if state is None:
        return (reading.time, lat, lon) if lat is not None else (None, None, None)
    newer = state.fix_time is None or reading.time > state.fix_time
    if lat is not None and newer:  # a late reading must not replace a newer position
        return reading.time, lat, lon
    return state.fix_time, state.latitude, state.longitude


def _back_online(state: OfflineState, reading: Reading, now: datetime) -> Event:
    last = state.rhythm.last_arrival
    lat, lon = reading_position(reading)
    return event(
        reading.device,
        EventKind.BACK_ONLINE,
        now,  # when it came back, whatever (buffered) time the reading carries
        now,
        lat,
        lon,
        silent_s=(now - last).total_seconds(),
        last_seen=last.isoformat(),
    )


OFFLINE = OfflineDetector()
_CONTRACT: TickDetector[OfflineState] = OFFLINE
