"""Domain objects shared by every layer: what a device said, what the platform concluded.

Frozen value objects only; pydantic lives at the edges (API, settings). Every datetime is tz-aware UTC.
Units are part of field names (``speed_kmh``, ``battery_pct``) so nobody has to guess.

The objects built once per device message (:class:`DeviceMessage`, :class:`Reading`, :class:`Event`) are
``msgspec.Struct``s: a frozen dataclass with two dozen fields costs about 9 µs to build (one
``object.__setattr__`` per field), a frozen Struct about 1 µs. They hold only immutable values, so they
can never be part of a reference cycle: ``gc=False`` keeps them out of the cyclic garbage collector, whose
full passes over tens of thousands of queued messages otherwise dominate a loaded service.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import msgspec

ExtraValue = str | int | float | bool


class Region(enum.StrEnum):
    """Where an organisation's data lives."""

    EU = "eu"
    CN = "cn"


class Locale(enum.StrEnum):
    FR = "fr"
    EN = "en"
    ZH = "zh"


class Role(enum.StrEnum):
    ADMIN = "admin"
    CAREGIVER = "caregiver"
    FAMILY = "family"


class Alarm(enum.StrEnum):
    """Alarms a device can raise by itself (names follow the protocols' common meaning)."""

    SOS = "sos"
    FALL = "fall"
    REMOVED = "removed"
    LOW_BATTERY = "low_battery"
    POWER_CUT = "power_cut"
    POWER_OFF = "power_off"
    GEOFENCE_ENTER = "geofence_enter"
    GEOFENCE_EXIT = "geofence_exit"
    VIBRATION = "vibration"
    OVERSPEED = "overspeed"
    TAMPERING = "tampering"
    GENERAL = "general"
    CANCEL = "cancel"  # the wearer cancelled an alarm on the device (JSON v1 devices; see alerts.lifecycle)


class EventKind(enum.StrEnum):
    """What the platform detected; an event may open an alert of the same kind."""

    SOS = "sos"
    FALL = "fall"
    REMOVED = "removed"
    LOW_BATTERY = "low_battery"
    POWER_OFF = "power_off"
    GEOFENCE_EXIT = "geofence_exit"  # left a safe zone
    GEOFENCE_ENTER = "geofence_enter"  # entered a danger zone
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    TEMPERATURE = "temperature"
    INACTIVITY = "inactivity"
    OFFLINE = "offline"
    BACK_ONLINE = "back_online"  # closes the device's open offline alert
    FALL_REJECTED = "fall_rejected"  # the fall classifier found no fall in a device's motion window
    CANCELLED = "cancelled"  # the wearer cancelled an alarm on the device (closes a fall in its grace period)


class AlertStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class CellTower(msgspec.Struct, frozen=True, gc=False):
    """A mobile cell the device heard (for network positioning when there is no GPS fix)."""

    mcc: int
    mnc: int
    lac: int
    cid: int
    signal: int | None = None


class WifiAccessPoint(msgspec.Struct, frozen=True, gc=False):
    """A Wi-Fi access point the device heard; ``signal_dbm`` is the RSSI."""

    mac: str
    signal_dbm: int | None = None
    ssid: str | None = None


class ImuWindow(msgspec.Struct, frozen=True, gc=False):
    """Motion around a suspected fall, as the device recorded it: accelerometer in g (gravity included),
    optionally gyroscope in degrees per second, each sample with its offset from ``start`` in milliseconds.

    Devices sample at 20-50 Hz with jitter and gaps, so samples carry their own times; the fall classifier
    resamples them. The gyroscope has its own times (its stream need not line up with the accelerometer's).
    """

    start: datetime
    accel_t_ms: tuple[float, ...]
    accel_g: tuple[tuple[float, float, float], ...]
    gyro_t_ms: tuple[float, ...] = ()
    gyro_dps: tuple[tuple[float, float, float], ...] = ()


class DeviceMessage(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One normalised message from a device, as a protocol decoder produces it.

    ``array_like``: encoded as an array of its fields in order, not a map of names. Messages cross the
    link from the gateway workers to the core by the thousand per second; as arrays they are a third of
    the bytes and decode in three quarters of the time. Both ends are always the same code.

    ``time`` is the fix/measurement time in UTC, or ``None`` when the device sent none (the pipeline then
    uses the time the message was received). ``time_is_local`` marks times that the protocol states in the
    device's local time (no zone on the wire); the pipeline applies the device's time-zone correction.
    """

    unique_id: str
    protocol: str
    time: datetime | None = None
    time_is_local: bool = False
    latitude: float | None = None
    longitude: float | None = None
    valid: bool | None = None
    speed_kmh: float | None = None
    course_deg: float | None = None
    altitude_m: float | None = None
    accuracy_m: float | None = None
    hdop: float | None = None
    satellites: int | None = None
    battery_pct: float | None = None
    charging: bool | None = None
    steps: int | None = None
    heart_rate_bpm: float | None = None
    spo2_pct: float | None = None
    temperature_c: float | None = None
    systolic_mmhg: float | None = None
    diastolic_mmhg: float | None = None
    alarms: frozenset[Alarm] = frozenset()
    cells: tuple[CellTower, ...] = ()
    wifi: tuple[WifiAccessPoint, ...] = ()
    extras: Mapping[str, ExtraValue] = msgspec.field(default_factory=dict)
    imu: ImuWindow | None = None  # sent with (or instead of) a fall alarm, for the server to confirm

    @property
    def has_fix(self) -> bool:
        return self.latitude is not None and self.longitude is not None


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    name: str
    region: Region
    timezone: str
    locale: Locale


@dataclass(frozen=True, slots=True)
class User:
    id: str
    org_id: str
    email: str
    role: Role
    display_name: str


@dataclass(frozen=True, slots=True)
class Wearer:
    id: str
    org_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Device:
    """A bracelet known to the platform. ``timezone`` corrects devices that send local times."""

    id: str
    org_id: str
    wearer_id: str | None
    unique_id: str
    protocol: str
    model: str | None = None
    timezone: str | None = None
    expected_interval_s: float | None = None  # None: learned from the device's rhythm


class Reading(msgspec.Struct, frozen=True, gc=False):
    """A device message after normalisation and checking, ready to be stored.

    ``time`` is always set (device time corrected to UTC, or receive time). ``rejected`` holds the reason
    the position failed the bad-fix filter; such a reading is kept (its battery, alarms and vitals still
    count) but its position is never used as the wearer's location.
    """

    device: Device
    message: DeviceMessage
    time: datetime
    received_at: datetime
    rejected: str | None = None

    @property
    def position_ok(self) -> bool:
        # has_fix, inlined: every detector asks, several times per reading.
        m = self.message
        return self.rejected is None and m.latitude is not None and m.longitude is not None


class Event(msgspec.Struct, frozen=True, gc=False):
    """Something the detectors concluded about a wearer at a time."""

    org_id: str
    wearer_id: str | None
    device_id: str
    kind: EventKind
    time: datetime
    received_at: datetime
    latitude: float | None = None
    longitude: float | None = None
    details: Mapping[str, ExtraValue] = msgspec.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    org_id: str
    wearer_id: str
    kind: EventKind
    status: AlertStatus
    opened_at: datetime
    last_event_at: datetime
    event_count: int
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """Someone an alert may reach: a caregiver, a relative, an on-call line. ``urls`` are Apprise URLs,
    tried in order until one takes the message; they carry credentials (never shown unredacted)."""

    id: str
    org_id: str
    name: str
    locale: Locale
    timezone: str
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """One line of an alert's audit trail. ``actor``: ``user:<id>``, ``contact:<id>`` (through an
    acknowledgement link) or ``system``."""

    alert_id: str
    at: datetime
    action: str
    from_status: AlertStatus | None
    to_status: AlertStatus
    actor: str
    outcome: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """A message to one contact about an alert, and how its delivery went."""

    id: str
    alert_id: str
    contact_id: str
    round: int
    step: int
    status: str  # pending, retrying, delivered, failed
    tries: int
    created_at: datetime
    next_try_at: datetime | None
    handed_at: datetime | None
    delivered_at: datetime | None
    channel: int | None
    last_error: str | None
