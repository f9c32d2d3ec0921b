"""GeoSentinel's own JSON payload over MQTT (version 1), for devices and hubs that can speak it.

Devices publish to ``geosentinel/<org id>/<device unique id>/up`` at QoS 1 and receive commands on
``…/down``. The payload is validated against a typed schema (msgspec), so a malformed message gets a
precise error (``$.position.lat: Expected float``) and never half-decodes. See docs/protocols/mqtt.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from geosentinel import model
from geosentinel.model import Alarm, CellTower, DeviceMessage, WifiAccessPoint
from geosentinel.protocols.base import (
    CommandKind,
    DecodeError,
    DecodeResult,
    DeviceCommand,
    ProtocolSpec,
)

SPEC = ProtocolSpec(
    name="mqtt",
    transport="mqtt",
    default_port=1883,
    description="GeoSentinel JSON v1 over MQTT: positions, vitals, alarms, IMU windows; commands down.",
)

TOPIC_PREFIX = "geosentinel"
UP_FILTER = f"{TOPIC_PREFIX}/+/+/up"
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_IMU_SAMPLES = 5000

Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Percent = Annotated[float, msgspec.Meta(ge=0, le=100)]


class Position(msgspec.Struct, forbid_unknown_fields=True):
    lat: Latitude
    lon: Longitude
    accuracy_m: NonNegative | None = None
    altitude_m: float | None = None
    speed_kmh: NonNegative | None = None
    course_deg: Annotated[float, msgspec.Meta(ge=0, lt=360)] | None = None
    satellites: Annotated[int, msgspec.Meta(ge=0, le=64)] | None = None
    source: Literal["gps", "wifi", "cell"] = "gps"
    valid: bool = True


class Cell(msgspec.Struct, forbid_unknown_fields=True):
    mcc: int
    mnc: int
    lac: int
    cid: int
    signal: int | None = None


class Wifi(msgspec.Struct, forbid_unknown_fields=True):
    mac: str
    signal_dbm: int | None = None
    ssid: str | None = None


Sample = tuple[float, float, float]
Samples = Annotated[list[Sample], msgspec.Meta(min_length=1, max_length=MAX_IMU_SAMPLES)]
Offsets = Annotated[list[float], msgspec.Meta(max_length=MAX_IMU_SAMPLES)]


class ImuWindow(msgspec.Struct, forbid_unknown_fields=True):
    """Motion around a suspected fall: accelerometer in g, optional gyroscope in deg/s, one row per sample.

    Sample times are either regular (``rate_hz``) or given per sample in milliseconds from ``start``
    (``t_ms``; ``gyro_t_ms`` for the gyroscope when its samples have their own times), for devices whose
    sampling jitters or drops samples.
    """

    start: datetime
    accel_g: Samples
    rate_hz: Annotated[float, msgspec.Meta(ge=5, le=200)] | None = None
    t_ms: Offsets | None = None
    gyro_dps: Samples | None = None
    gyro_t_ms: Offsets | None = None


class UpV1(msgspec.Struct, forbid_unknown_fields=True):
    v: Literal[1]
    time: datetime | None = None
    position: Position | None = None
    battery_pct: Percent | None = None
    charging: bool | None = None
    steps: Annotated[int, msgspec.Meta(ge=0)] | None = None
    heart_rate_bpm: Annotated[float, msgspec.Meta(gt=0, lt=300)] | None = None
    spo2_pct: Percent | None = None
    temperature_c: Annotated[float, msgspec.Meta(gt=20, lt=45)] | None = None
    systolic_mmhg: Annotated[float, msgspec.Meta(gt=0, lt=300)] | None = None
    diastolic_mmhg: Annotated[float, msgspec.Meta(gt=0, lt=300)] | None = None
    alarms: list[Alarm] = msgspec.field(default_factory=list)
    cells: list[Cell] = msgspec.field(default_factory=list)
    wifi: list[Wifi] = msgspec.field(default_factory=list)
    imu: ImuWindow | None = None


_decoder = msgspec.json.Decoder(UpV1)


def parse_topic(topic: str) -> tuple[str, str]:
    """``(org id, device unique id)`` of an up topic; raises :class:`DecodeError` for any other topic."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_PREFIX or parts[3] != "up" or not parts[1] or not parts[2]:
        raise DecodeError(f"topic {topic!r} is not {TOPIC_PREFIX}/<org>/<device>/up")
    return parts[1], parts[2]


def down_topic(org_id: str, unique_id: str) -> str:
    return f"{TOPIC_PREFIX}/{org_id}/{unique_id}/down"


def decode(topic: str, payload: bytes) -> DecodeResult:
    """One MQTT message to one normalised device message. Pure; the payload carries its own time."""
    return decode_payload(parse_topic(topic)[1], payload)


def decode_payload(unique_id: str, payload: bytes) -> DecodeResult:
    """The payload of an up topic whose device is ``unique_id``."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        up = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"invalid payload: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(f"payload is not JSON: {exc}") from exc
    if up.time is not None and up.time.tzinfo is None:
        raise DecodeError("invalid payload: time needs a UTC offset (e.g. 2026-01-01T10:00:00Z)")
    imu = None if up.imu is None else _imu_window(up.imu)
    return DecodeResult((_message(unique_id, up, imu),), device_id=unique_id)


def _offsets(count: int, given: list[float] | None, rate_hz: float | None, what: str) -> tuple[float, ...]:
    """Each sample's time in ms from the window's start: as given, or from the rate."""
    if given is not None:
        if len(given) != count:
            raise DecodeError(f"invalid payload: $.imu.{what} has {len(given)} times for {count} samples")
        return tuple(given)
    if rate_hz is None:
        raise DecodeError(f"invalid payload: $.imu needs rate_hz or {what} (the samples' times)")
    step_ms = 1000.0 / rate_hz
    return tuple(i * step_ms for i in range(count))


def _imu_window(window: ImuWindow) -> model.ImuWindow:
    if window.start.tzinfo is None:
        raise DecodeError("invalid payload: $.imu.start needs a UTC offset (e.g. 2026-01-01T10:00:00Z)")
    accel_t_ms = _offsets(len(window.accel_g), window.t_ms, window.rate_hz, "t_ms")
    gyro = window.gyro_dps or []
    gyro_t_ms: tuple[float, ...] = ()
    if gyro:
        if window.gyro_t_ms is None and len(gyro) == len(window.accel_g) and window.t_ms is not None:
            gyro_t_ms = accel_t_ms  # sampled with the accelerometer
        else:
            gyro_t_ms = _offsets(len(gyro), window.gyro_t_ms, window.rate_hz, "gyro_t_ms")
    return model.ImuWindow(
        window.start.astimezone(UTC), accel_t_ms, tuple(window.accel_g), gyro_t_ms, tuple(gyro)
    )


def _message(unique_id: str, up: UpV1, imu: model.ImuWindow | None) -> DeviceMessage:
    p = up.position
    extras: dict[str, str | int | float | bool] = {}
    if p is not None:
        extras["position_source"] = p.source
    if imu is not None:
        extras["imu_samples"] = len(imu.accel_g)
    return DeviceMessage(
        unique_id=unique_id, protocol=SPEC.name,
        time=up.time.astimezone(UTC) if up.time else None,
        latitude=p.lat if p else None, longitude=p.lon if p else None, valid=p.valid if p else None,
        speed_kmh=p.speed_kmh if p else None, course_deg=p.course_deg if p else None,
        altitude_m=p.altitude_m if p else None, accuracy_m=p.accuracy_m if p else None,
        satellites=p.satellites if p else None,
        battery_pct=up.battery_pct, charging=up.charging, steps=up.steps, heart_rate_bpm=up.heart_rate_bpm,
        spo2_pct=up.spo2_pct, temperature_c=up.temperature_c, systolic_mmhg=up.systolic_mmhg,
        diastolic_mmhg=up.diastolic_mmhg, alarms=frozenset(up.alarms),
        cells=tuple(CellTower(c.mcc, c.mnc, c.lac, c.cid, c.signal) for c in up.cells),
        wifi=tuple(WifiAccessPoint(w.mac, w.signal_dbm, w.ssid) for w in up.wifi),
        extras=extras, imu=imu,
    )  # fmt: skip


_COMMAND_FIELDS: dict[CommandKind, tuple[str, ...]] = {
    CommandKind.LOCATE: (),
    CommandKind.SET_INTERVAL: ("interval_s",),
    CommandKind.SET_SOS_NUMBERS: ("phone_numbers",),
    CommandKind.REMOVAL_ALARM: ("enabled",),
    CommandKind.SET_TIMEZONE: ("utc_offset_min",),
}


def encode_command(command: DeviceCommand, command_id: str, now: datetime) -> bytes:
    """The JSON published on the device's down topic: ``{"v": 1, "id", "command", "sent_at", …params}``."""
    body: dict[str, object] = {"v": 1, "id": command_id, "command": command.kind.value, "sent_at": now}
    for name in _COMMAND_FIELDS[command.kind]:
        value = getattr(command, name)
        body[name] = list(value) if isinstance(value, tuple) else value
    return msgspec.json.encode(body)
