"""When a fence is watched: weekly windows of local wall-clock time, in the organisation's time zone.

Pure: times are passed in (tz-aware); the time zone comes with the organisation.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

import msgspec

_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


@cache  # at most 1,440 distinct values; schedules are checked on every violating fix
def _minute_of_day(hhmm: str) -> int:
    match = _HHMM.fullmatch(hhmm)
    if match is None:
        raise ValueError(f"time {hhmm!r} is not HH:MM between 00:00 and 23:59")
    return int(match[1]) * 60 + int(match[2])


class Window(msgspec.Struct, frozen=True):
    """Local wall-clock times on some weekdays (0 = Monday … 6 = Sunday) when a fence is watched.

    A window whose end is not after its start runs past midnight (21:00–07:00: "at night"); the hours
    after midnight belong to the day the window started on, so ``days=(4,)`` 21:00–07:00 is Friday night
    until Saturday 07:00. ``start == end`` is a full 24 hours from ``start``.
    """

    days: tuple[int, ...]
    start: str
    end: str

    def __post_init__(self) -> None:
        if not self.days:
            raise ValueError("a schedule window needs at least one day")
        for day in self.days:
            if isinstance(day, bool) or not 0 <= day <= 6:
                raise ValueError(f"day {day!r} is not 0 (Monday) … 6 (Sunday)")
        _minute_of_day(self.start)
        _minute_of_day(self.end)

    def covers(self, weekday: int, minute: int) -> bool:
        """Whether the local time ``minute`` (0…1439) of ``weekday`` falls in this window."""
        start, end = _minute_of_day(self.start), _minute_of_day(self.end)
        if start < end:
            return weekday in self.days and start <= minute < end
        started_today = weekday in self.days and minute >= start
        started_yesterday = (weekday - 1) % 7 in self.days and minute < end
        return started_today or started_yesterday


class Schedule(msgspec.Struct, frozen=True):
    """When a fence is watched, in the organisation's local wall-clock time.

    Wall-clock semantics across daylight-saving changes, as a caregiver reads a schedule: on the
    spring-forward night the skipped hour never happens (a 02:00–03:00 window is not active at all, a
    21:00–07:00 window lasts 9 real hours); on the fall-back night the repeated hour happens twice (a
    02:00–03:00 window is active for two real hours).
    """

    windows: tuple[Window, ...]

    def __post_init__(self) -> None:
        if not self.windows:
            raise ValueError("a schedule needs at least one window (no schedule means always active)")

    def active(self, at: datetime, tz: ZoneInfo) -> bool:
        if at.tzinfo is None:
            raise ValueError("schedule times must be timezone-aware")
        local = at.astimezone(tz)
        weekday, minute = local.weekday(), local.hour * 60 + local.minute
        return any(window.covers(weekday, minute) for window in self.windows)


def schedule_active(schedule: Schedule | None, at: datetime, tz: ZoneInfo) -> bool:
    """Whether a fence with this schedule is watched at ``at`` (no schedule: always)."""
    return schedule is None or schedule.active(at, tz)
