"""The contract every protocol module fulfils.

Decoders are pure: bytes (or an HTTP request) in, normalised :class:`~geosentinel.model.DeviceMessage`
objects and the exact reply bytes out. They open no socket, touch no database and never read the wall
clock; the transport owns I/O and the pipeline owns device lookup and time correction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

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
    binary: bool = False  # replies shown as hex (CLI, logs) rather than text


class FrameTooLarge(DecodeError):
    """A frame in progress exceeds the framer's limit; the transport closes the connection."""


class Framer(Protocol):
    """Cuts one TCP connection's byte stream into whole frames, whatever the segmentation.

    ``feed`` returns the frames completed by ``data`` (possibly none, possibly several) and keeps at most
    ``max_frame`` bytes of an unfinished frame. Bytes that cannot start a frame are dropped and counted in
    ``skipped``, so garbage between frames loses neither neighbour and never grows memory.
    """

    skipped: int

    def feed(self, data: bytes) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class Session:
    """What a stream decoder needs to remember about its connection.

    ``unique_id`` is the device identity once known (GT06 sends it only in its login frame); ``model`` is
    the per-device model setting for vendor variants of a protocol (configured by an operator);
    ``dialect`` is what the device revealed about itself on this connection (a watch's vendor code and
    frame form), which commands must echo. Decoders never mutate a session: a frame that changes it
    returns the new one in :attr:`DecodeResult.session`.
    """

    unique_id: str | None = None
    model: str | None = None
    dialect: str | None = None


# msgspec matches keyword arguments one by one: with twenty fields, keywords cost 1.5 µs more than
# positions, a tenth of a location frame's decoding. So the hot decoders build DeviceMessage positionally,
# in this order, checked at import so that a reordered model fails loudly (mypy only notices a change of
# type). DecodeResult is built positionally too: (messages, reply, unknown_device_status, session, device_id).
MESSAGE_FIELDS = tuple(
    "unique_id protocol time time_is_local latitude longitude valid speed_kmh course_deg altitude_m"
    " accuracy_m hdop satellites battery_pct charging steps heart_rate_bpm spo2_pct temperature_c"
    " systolic_mmhg diastolic_mmhg alarms cells wifi extras imu".split()
)
if DeviceMessage.__struct_fields__ != MESSAGE_FIELDS:
    raise ImportError("DeviceMessage fields changed: update the positional calls in the protocol decoders")


# DecodeResult's default unknown_device_status, named for the decoders that build results positionally
# (stream protocols never answer over HTTP, so for them it is only a placeholder).
UNKNOWN_DEVICE_STATUS = 400


class DecodeResult(msgspec.Struct, frozen=True, gc=False):
    """What one frame or request decodes to.

    ``reply`` is what the server writes back once the messages are committed (TCP frame bytes, or the
    HTTP body); ``unknown_device_status`` is the HTTP status the protocol expects when the device is not
    registered (HTTP protocols only). ``session`` is the connection's new session when the frame changed
    it (a login), else ``None``; ``device_id`` is the identity the frame declared, even when it carries no
    message (a login or a heartbeat), so the transport can check the device is registered.
    """

    messages: tuple[DeviceMessage, ...]
    reply: bytes = b""
    unknown_device_status: int = UNKNOWN_DEVICE_STATUS
    session: Session | None = None
    device_id: str | None = None


if DecodeResult.__struct_fields__ != ("messages", "reply", "unknown_device_status", "session", "device_id"):
    raise ImportError("DecodeResult fields changed: update the positional calls in the protocol decoders")


class StreamDecoder(Protocol):
    """A TCP protocol's decoder: one whole frame, the connection's session and the current time in."""

    def __call__(self, frame: bytes, session: Session, now: datetime) -> DecodeResult: ...


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
        "systolic_mmhg": message.systolic_mmhg,
        "diastolic_mmhg": message.diastolic_mmhg,
        "alarms": sorted(a.value for a in message.alarms),
        "cells": [
            {"mcc": c.mcc, "mnc": c.mnc, "lac": c.lac, "cid": c.cid, "signal": c.signal}
            for c in message.cells
        ],
        "wifi": [{"mac": w.mac, "signal_dbm": w.signal_dbm, "ssid": w.ssid} for w in message.wifi],
        "extras": dict(message.extras),
    }
    if reply:
        out["reply"] = reply.decode("latin-1")
    return out


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class CommandKind(enum.StrEnum):
    """What the platform can ask a device to do (each protocol encodes the ones its devices support)."""

    LOCATE = "locate"  # report a fix now
    SET_INTERVAL = "set_interval"  # reporting interval, ``interval_s``
    SET_SOS_NUMBERS = "set_sos_numbers"  # ``phone_numbers`` in slot order
    REMOVAL_ALARM = "removal_alarm"  # ``enabled``
    SET_TIMEZONE = "set_timezone"  # ``utc_offset_min``, computed by the caller from an IANA zone at send time


@dataclass(frozen=True, slots=True)
class DeviceCommand:
    """A command for one device, independent of its protocol."""

    kind: CommandKind
    interval_s: int | None = None
    phone_numbers: tuple[str, ...] = ()
    enabled: bool | None = None
    utc_offset_min: int | None = None


class UnsupportedCommand(ValueError):
    """The protocol (or this device model) has no encoding for the command, or a parameter is missing."""


class CommandEncoder(Protocol):
    """Encodes a command as the bytes written to the device's connection (or MQTT payload)."""

    def __call__(self, command: DeviceCommand, session: Session, now: datetime) -> bytes: ...
