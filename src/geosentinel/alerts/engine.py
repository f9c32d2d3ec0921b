"""Which events open an alert. Pure; repeats attach to the wearer's active alert of the same kind."""

from __future__ import annotations

from geosentinel.model import EventKind

# Every kind a caregiver must act on (``back_online`` only closes the offline alert).
OPENS_ALERT: frozenset[EventKind] = frozenset(
    {
        EventKind.SOS,
        EventKind.FALL,
        EventKind.REMOVED,
        EventKind.LOW_BATTERY,
        EventKind.POWER_OFF,
        EventKind.GEOFENCE_EXIT,
        EventKind.GEOFENCE_ENTER,
        EventKind.HEART_RATE,
        EventKind.SPO2,
        EventKind.TEMPERATURE,
        EventKind.INACTIVITY,
        EventKind.OFFLINE,
    }
)
