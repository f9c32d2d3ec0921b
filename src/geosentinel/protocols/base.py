"""The contract every protocol module fulfils.

Decoders are pure: bytes (or an HTTP request) in, normalised :class:`~geosentinel.model.DeviceMessage`
objects and the exact reply bytes out. They open no socket, touch no database and never read the wall
clock; the transport owns I/O and the pipeline owns device lookup and time correction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from geosentinel.model import DeviceMessage

Transport = Literal["tcp", "http", "mqtt"]


class DecodeError(ValueError):
    """The input is not a valid frame/request of this protocol. The message is shown to the sender."""


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    """Static facts about a protocol, used by the registry, the CLI and the docs."""

    name: str
    transport: Transport
    default_port: int
    description: str


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """What one frame or request decodes to.

    ``reply`` is what the server writes back once the messages are committed (TCP frame bytes, or the
    HTTP body); ``unknown_device_status`` is the HTTP status the protocol expects when the device is not
    registered (HTTP protocols only).
    """

    messages: tuple[DeviceMessage, ...]
    reply: bytes = b""
    unknown_device_status: int = 400


def message_to_json(message: DeviceMessage, reply: bytes = b"") -> dict[str, Any]:
    """A JSON-ready view of a message, with the stable field names the CLI and the API use."""
    out: dict[str, Any] = {
        "device_id": message.unique_id,
        "protocol": message.protocol,
        "time": _iso(message.time),
        "time_is_local": message.time_is_local,
        "latitude": message.latitude,
        "longitude": message.longitude,
        "valid": message.valid,
        "speed_kmh": message.speed_kmh,
        "course_deg": message.course_deg,
        "altitude_m": message.altitude_m,
        "accuracy_m": message.accuracy_m,
        "hdop": message.hdop,
        "satellites": message.satellites,
        "battery_pct": message.battery_pct,
        "charging": message.charging,
        "steps": message.steps,
        "heart_rate_bpm": message.heart_rate_bpm,
        "spo2_pct": message.spo2_pct,
        "temperature_c": message.temperature_c,
        "alarms": sorted(a.value for a in message.alarms),
        "extras": dict(message.extras),
    }
    if reply:
        out["reply"] = reply.decode("latin-1")
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
