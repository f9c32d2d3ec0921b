"""Inactivity: no movement and no steps for ``profile.inactivity_hours`` during the wearer's day.

Activity is any of: a good fix more than :data:`ANCHOR_RADIUS_M` beyond its accuracy from the anchor (the
position where the wearer was last seen settling; it follows each such move, so a slow walk adds up), a
good fix with speed above :data:`MOVING_SPEED_KMH`, or a step counter that went up (a counter that went
down was reset, usually at midnight: not a step). Rejected fixes never count. Late readings (older than the
newest reading seen) are ignored: they tell nothing about *now*. A reading with the same time is used (two
messages of one instant, e.g. a fix and a step count; a true duplicate changes nothing).

A sweep (``on_tick``) raises one ``inactivity`` event when the local time (``profile.timezone``, DST
included) is within the day hours [``day_start``, ``day_end``) and the time since the last activity,
counted *only within day hours*, reaches the limit: someone asleep from 21:00 to 08:00 is not inactive,
and an evening without movement carries over to the next morning. It is not raised again until activity
resumes.

A silent device is not an inactive wearer: that is the offline detector's business. No inactivity is
raised when the last message is older than :data:`SILENT_FACTOR` × the offline limit, computed exactly
like the offline detector does (from this device's own rhythm, tracked here too).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import msgspec

from geosentinel.detect.base import TickDetector, WearerProfile, event, reading_position
from geosentinel.detect.offline import Rhythm, observe, silence_limit
from geosentinel.geodesy import distance_m
from geosentinel.model import Device, Event, EventKind, Reading

ANCHOR_RADIUS_M = 50.0
MOVING_SPEED_KMH = 1.0
SILENT_FACTOR = 2.0
ONE_DAY = timedelta(days=1)


class InactivityState(msgspec.Struct, frozen=True, omit_defaults=True):
    rhythm: Rhythm  # message arrivals: a silent device is offline, not inactive
    last_time: datetime  # newest reading time (older readings are late)
    last_activity: datetime  # the first reading counts: nothing is known about before it
    anchor_lat: float | None = None
    anchor_lon: float | None = None
    steps: int | None = None  # the last step counter seen
    alerted: bool = False  # raised, waiting for activity


class InactivityDetector:
    name: str = "inactivity"
    state_type: type[InactivityState] = InactivityState

    def on_reading(
        self, state: InactivityState | None, reading: Reading, now: datetime, profile: WearerProfile
    ) -> tuple[InactivityState, list[Event]]:
        rhythm = observe(state.rhythm if state is not None else None, now)
        lat, lon = reading_position(reading)
        steps = reading.message.steps
        if state is None:
            return InactivityState(rhythm, reading.time, reading.time, lat, lon, steps), []
        if reading.time < state.last_time:  # late: the device is talking, that is all
            return msgspec.structs.replace(state, rhythm=rhythm), []
        moved = _moved(state, reading)
        active = moved or _stepped(state, reading) or _walking_speed(reading)
        # The anchor follows each move (and is set by the first good fix), never by drift within it.
        resettle = lat is not None and (moved or state.anchor_lat is None)
        anchor = (lat, lon) if resettle else (state.anchor_lat, state.anchor_lon)
        return InactivityState(
            rhythm,
            reading.time,
            reading.time if active else state.last_activity,
            *anchor,
            steps if steps is not None else state.steps,
            alerted=state.alerted and not active,
        ), []

    def on_tick(
        self,
        state: InactivityState | None,
        now: datetime,
        device: Device,
        profile: WearerProfile,
        listening_since: datetime | None = None,
    ) -> tuple[InactivityState | None, list[Event]]:
        if state is None or state.alerted:
            return state, []
        limit = timedelta(hours=profile.inactivity_hours)
        # Time the platform was down does not count: nobody could see whether the wearer moved.
        since = state.last_activity if listening_since is None else max(state.last_activity, listening_since)
        if now - since < limit:  # day hours within it are fewer still: the common case, settled cheaply
            return state, []
        if not in_day_hours(now, profile):
            return state, []
        if now - state.rhythm.last_arrival > SILENT_FACTOR * silence_limit(state.rhythm, profile, device):
            return state, []
        inactive = day_hours_between(since, now, profile, limit)
        if inactive < limit:
            return state, []
        alert = event(
            device,
            EventKind.INACTIVITY,
            now,
            now,
            state.anchor_lat,
            state.anchor_lon,
            inactive_hours=round(inactive / timedelta(hours=1), 2),  # counted up to the limit at least
            limit_hours=profile.inactivity_hours,
            last_activity=state.last_activity.isoformat(),
        )
        return msgspec.structs.replace(state, alerted=True), [alert]


def _moved(state: InactivityState, reading: Reading) -> bool:
    lat, lon = reading_position(reading)
    if lat is None or lon is None or state.anchor_lat is None or state.anchor_lon is None:
        return False
    # Beyond the fix's own accuracy: an indoor fix wandering within its error circle is not a walk.
    accuracy = reading.message.accuracy_m or 0.0
    return distance_m(state.anchor_lat, state.anchor_lon, lat, lon) - accuracy > ANCHOR_RADIUS_M


def _stepped(state: InactivityState, reading: Reading) -> bool:
    steps = reading.message.steps
    return steps is not None and state.steps is not None and steps > state.steps


def _walking_speed(reading: Reading) -> bool:
    # Only with a good fix: the speed of a rejected fix is as wild as its position.
    return reading.position_ok and (reading.message.speed_kmh or 0.0) > MOVING_SPEED_KMH


# --- the wearer's day hours ---------------------------------------------------------------------------


def in_day_hours(now: datetime, profile: WearerProfile) -> bool:
    local = now.astimezone(profile.timezone).time()
    start, end = profile.day_start, profile.day_end
    if start < end:
        return start <= local < end
    return local >= start or local < end  # a day crossing midnight (or, start == end, the whole day)


def day_hours_between(start: datetime, end: datetime, profile: WearerProfile, enough: timedelta) -> timedelta:
    """Time within day hours between two instants, counted back from ``end`` and stopping at ``enough``
    (a wearer still for months costs no more than one still for an afternoon)."""
    total = timedelta()
    if end <= start:  # an activity time ahead of the sweep (a device clock slightly fast)
        return total
    for window_start, window_end in _day_windows(end, profile):
        if window_end <= start or total >= enough:
            break
        total += min(window_end, end) - max(window_start, start)
    return total


def _day_windows(end: datetime, profile: WearerProfile) -> Iterator[tuple[datetime, datetime]]:
    """The day-hour windows, in UTC, of the local days up to ``end``, newest first (a window may start
    after ``end``: it then adds nothing).

    Local times are turned into instants one by one: arithmetic on aware datetimes sharing a ZoneInfo is
    wall-clock arithmetic and would be an hour off across a DST change.
    """
    zone = profile.timezone
    crosses_midnight = profile.day_start >= profile.day_end
    day: date = end.astimezone(zone).date()
    while True:
        end_day = day + ONE_DAY if crosses_midnight else day
        window_start = datetime.combine(day, profile.day_start, tzinfo=zone).astimezone(UTC)
        window_end = datetime.combine(end_day, profile.day_end, tzinfo=zone).astimezone(UTC)
        if window_start < end:
            yield window_start, window_end
        day -= ONE_DAY


INACTIVITY = InactivityDetector()
_CONTRACT: TickDetector[InactivityState] = INACTIVITY
