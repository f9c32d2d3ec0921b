"""The bad-fix filter: positions that must never be taken as where the wearer is.

Pure: the decision depends only on the message, the receive time and the last accepted fix. A rejected
fix is still stored (with its reason) because its battery, alarms and vitals are real; only its position
is ignored. An SOS with a bad fix still raises its alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import msgspec

from geosentinel.geodesy import distance_m
from geosentinel.model import DeviceMessage


class Rejection(StrEnum):
    INVALID = "invalid_fix"  # the device itself says the fix is not valid
    NULL_ISLAND = "null_island"  # (0, 0): what cheap trackers send indoors
    FUTURE = "time_future"
    TOO_OLD = "time_too_old"
    IMPOSSIBLE_JUMP = "impossible_jump"


@dataclass(frozen=True, slots=True)
class FixLimits:
    max_future: timedelta = timedelta(minutes=10)
    max_age: timedelta = timedelta(days=365)
    # Faster than a high-speed train between two fixes is a glitch, not a journey.
    max_speed_kmh: float = 400.0
    # Jumps shorter than this are never "impossible" (two fixes seconds apart with a few metres of noise).
    min_jump_m: float = 1000.0


class LastFix(msgspec.Struct, frozen=True, gc=False):
    """The last accepted fix (a Struct: the pipeline builds one for every reading)."""

    time: datetime
    latitude: float
    longitude: float


def check_time(time: datetime, received_at: datetime, limits: FixLimits) -> Rejection | None:
    if time - received_at > limits.max_future:
        return Rejection.FUTURE
    if received_at - time > limits.max_age:
        return Rejection.TOO_OLD
    return None


def check_fix(
    message: DeviceMessage,
    time: datetime,
    received_at: datetime,
    last: LastFix | None,
    limits: FixLimits,
) -> Rejection | None:
    """Why this message's position must not be used, or ``None`` when it is a good fix."""
    lat, lon = message.latitude, message.longitude
    if lat is None or lon is None:
        return None
    if message.valid is False:
        return Rejection.INVALID
    if lat == 0.0 and lon == 0.0:
        return Rejection.NULL_ISLAND
    too_early_or_late = check_time(time, received_at, limits)
    if too_early_or_late is not None:
        return too_early_or_late
    if last is not None:
        metres = distance_m(last.latitude, last.longitude, lat, lon)
        hours = abs((time - last.time).total_seconds()) / 3600
        if metres > limits.min_jump_m and metres / 1000 > limits.max_speed_kmh * max(hours, 1 / 3600):
            return Rejection.IMPOSSIBLE_JUMP
    return None
