"""Device alarms (SOS button, on-device fall, bracelet removed, low battery, power off) become events."""

from __future__ import annotations

from geosentinel.model import Alarm, Event, EventKind, Reading

ALARM_EVENTS: dict[Alarm, EventKind] = {
    Alarm.SOS: EventKind.SOS,
    Alarm.FALL: EventKind.FALL,
    Alarm.REMOVED: EventKind.REMOVED,
    Alarm.LOW_BATTERY: EventKind.LOW_BATTERY,
    Alarm.POWER_OFF: EventKind.POWER_OFF,
    Alarm.POWER_CUT: EventKind.POWER_OFF,
}


def alarm_events(reading: Reading) -> list[Event]:
    """One event per distinct alarm kind the device raised in this reading.

    The event carries the reading's position only when that position passed the bad-fix filter: a
    caregiver must never be sent to a (0, 0) or a wild fix.
    """
    kinds = sorted({ALARM_EVENTS[a] for a in reading.message.alarms if a in ALARM_EVENTS})
    lat, lon = (reading.message.latitude, reading.message.longitude) if reading.position_ok else (None, None)
    device = reading.device
    return [
        Event(device.org_id, device.wearer_id, device.id, kind, reading.time, reading.received_at, lat, lon)
        for kind in kinds
    ]
