"""Device time to UTC: the per-device time-zone correction for devices that send local time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from geosentinel.model import Device, DeviceMessage


def message_time(message: DeviceMessage, device: Device, received_at: datetime) -> datetime:
    """The UTC time a message refers to.

    Messages without a time get the receive time. Times the protocol gives in the device's local time
    (``time_is_local``), and every time of a device configured with a ``timezone`` (cheap trackers that
    send local wall time while claiming UTC), are read as wall time in that IANA zone, so DST is right.
    """
    if message.time is None:
        return received_at
    zone_name = device.timezone
    if zone_name is None:
        return message.time
    wall = message.time.replace(tzinfo=None)
    return wall.replace(tzinfo=ZoneInfo(zone_name)).astimezone(UTC)
