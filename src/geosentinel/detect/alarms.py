"""Device alarms (SOS button, on-device fall, bracelet removed, low battery, power off) become events.

Devices resend an alarm frame until the platform acknowledges it, so the same alarm often arrives several
times in a row. An alarm of the same kind raised within :data:`REPEAT_WINDOW` of the previous one (by
reading time, either side: a late frame is a repeat too) is emitted with ``repeat=True``, which the store
attaches to the open alert instead of opening a new one. The window slides: a device resending every 30 s
for ten minutes produces one alert. The same alarm after a quiet window is a new one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from geosentinel.detect.base import ReadingDetector, WearerProfile, event, reading_position
from geosentinel.detect.falls import FALL_SCORE, is_fall_alarm
from geosentinel.model import Alarm, Event, EventKind, ExtraValue, Reading

ALARM_EVENTS: dict[Alarm, EventKind] = {
    Alarm.SOS: EventKind.SOS,
    Alarm.FALL: EventKind.FALL,
    Alarm.REMOVED: EventKind.REMOVED,
    Alarm.LOW_BATTERY: EventKind.LOW_BATTERY,
    Alarm.POWER_OFF: EventKind.POWER_OFF,
    Alarm.POWER_CUT: EventKind.POWER_OFF,
    Alarm.CANCEL: EventKind.CANCELLED,
}

REPEAT_WINDOW = timedelta(seconds=120)


def alarm_kinds(reading: Reading) -> list[EventKind]:
    """The distinct event kinds the reading's alarms map to, in kind-name order with a cancel last
    (informative alarms such as vibration or the device's own geofences produce nothing). A fall follows
    the fall classifier's verdict on the reading's motion window when there is one
    (:mod:`geosentinel.detect.falls`)."""
    message = reading.message
    if not message.alarms and message.imu is None:  # nearly every reading: skip building a set
        return []
    kinds = {ALARM_EVENTS[a] for a in message.alarms if a in ALARM_EVENTS and a is not Alarm.FALL}
    if is_fall_alarm(reading):
        kinds.add(EventKind.FALL)
    # A cancel comes last: a report that raises and cancels a fall cancels the fall it raised.
    return sorted(kinds, key=lambda kind: (kind is EventKind.CANCELLED, kind.value))


class AlarmsState(msgspec.Struct, frozen=True, omit_defaults=True):
    # Newest reading time at which each event kind (its value) was raised: at most one entry per kind.
    last: dict[str, datetime] = msgspec.field(default_factory=dict)


class AlarmsDetector:
    name: str = "alarms"
    state_type: type[AlarmsState] = AlarmsState

    def on_reading(
        self, state: AlarmsState | None, reading: Reading, now: datetime, profile: WearerProfile
    ) -> tuple[AlarmsState, list[Event]]:
        kinds = alarm_kinds(reading)
        if not kinds:
            return state if state is not None else AlarmsState(), []
        last = dict(state.last) if state is not None else {}  # a copy: the caller's state stays as it was
        lat, lon = reading_position(reading)
        events: list[Event] = []
        for kind in kinds:
            previous = last.get(kind.value)
            repeat = previous is not None and abs(reading.time - previous) <= REPEAT_WINDOW
            details: dict[str, ExtraValue] = {"repeat": True} if repeat else {}
            if kind is EventKind.FALL and FALL_SCORE in reading.message.extras:
                details[FALL_SCORE] = reading.message.extras[FALL_SCORE]
            events.append(event(reading.device, kind, reading.time, reading.received_at, lat, lon, **details))
            # Never move back: a late frame must not reopen the window of a newer one.
            last[kind.value] = reading.time if previous is None else max(previous, reading.time)
        return AlarmsState(last), events


ALARMS = AlarmsDetector()
_CONTRACT: ReadingDetector[AlarmsState] = ALARMS
