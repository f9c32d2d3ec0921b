"""GT06 / Concox packet bodies: one handler per protocol number, the alarm tables and the model variants.

``gt06.py`` cuts and checks the frame and owns replies; this module turns a packet body (the bytes between
the protocol number and the serial number) into a :class:`~geosentinel.model.DeviceMessage`. Layouts follow
Traccar's ``Gt06ProtocolDecoder.java`` (section 4.2 of ``shared/protocols/README.md``). Handlers index the
body directly: a body shorter than its layout raises ``IndexError``/``struct.error``, which the caller turns
into a :class:`DecodeError`; ``int.from_bytes`` on a short slice does not raise, so those reads check first.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from geosentinel.model import Alarm, CellTower, DeviceMessage, ExtraValue, WifiAccessPoint
from geosentinel.protocols.base import DecodeError

PROTOCOL = "gt06"
GPS_SIZE = 18
WIFI_TYPES = frozenset({0x17, 0x69})  # the 0x7878 "length" byte is the access-point count

Extras = dict[str, ExtraValue]
Alarms = frozenset[Alarm]
_NO_ALARMS: Alarms = frozenset()

# YY MM DD hh mm ss, info/satellites, lat, lon, speed km/h, course+flags
_GPS = struct.Struct(">BBBBBBBIIBH")
_GPS_LBS = struct.Struct(">BBBBBBBIIBHHBHBH")  # GPS block then a short LBS block with a 1-byte MNC
_DATE = struct.Struct(">BBBBBB")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
# LBS block: MCC (bit 15 set: 2-byte MNC), MNC, LAC, cell id; 3-byte CIDs read as high byte + low word.
_LBS_SHORT = struct.Struct(">HBHBH")
_LBS_SHORT_MNC2 = struct.Struct(">HHHBH")
_LBS_LONG = struct.Struct(">HBIQ")  # 4G (0xA0): 4-byte LAC, 8-byte CID
_LBS_LONG_MNC2 = struct.Struct(">HHIQ")
_WIFI_CELL = struct.Struct(">HHB")
_MAX_LAT_RAW = 90 * 1_800_000
_MAX_LON_RAW = 180 * 1_800_000

# Terminal-information bits 3-5 (Traccar decodeStatus); 6 is a geofence alarm without a direction.
_INFO_ALARMS: tuple[Alarms, ...] = (
    _NO_ALARMS,
    frozenset({Alarm.VIBRATION}),
    frozenset({Alarm.POWER_CUT}),
    frozenset({Alarm.LOW_BATTERY}),
    frozenset({Alarm.SOS}),
    _NO_ALARMS,
    _NO_ALARMS,
    frozenset({Alarm.REMOVED}),
)
_INFO_GEOFENCE = 6
# What the terminal-information byte says, per value, in the order the extras list it (one update instead of
# four items and three bool() calls for every heartbeat).
_INFO_EXTRAS: tuple[Mapping[str, ExtraValue], ...] = tuple(
    {"status": v, "armed": bool(v & 0x01), "ignition": bool(v & 0x02), "blocked": bool(v & 0x80)}
    for v in range(256)
)

# Alarm byte of the status block (Traccar decodeAlarm, default model). Codes for vehicle events that a
# bracelet platform has no use for keep their Traccar name in extras["alarm"] instead of an Alarm.
STANDARD_ALARM_CODES: Mapping[int, Alarm | str] = {
    0x01: Alarm.SOS,
    0x02: Alarm.POWER_CUT,
    0x03: Alarm.VIBRATION,
    0x04: Alarm.GEOFENCE_ENTER,
    0x05: Alarm.GEOFENCE_EXIT,
    0x06: Alarm.OVERSPEED,
    0x09: Alarm.VIBRATION,
    0x0C: Alarm.TAMPERING,
    0x0E: Alarm.LOW_BATTERY,
    0x0F: Alarm.LOW_BATTERY,
    0x11: Alarm.POWER_OFF,
    0x13: Alarm.TAMPERING,
    0x14: "door",
    0x18: Alarm.REMOVED,
    0x19: Alarm.LOW_BATTERY,
    0x1A: "hardBraking",
    0x1B: "hardCornering",
    0x23: Alarm.FALL,
    0x25: Alarm.TAMPERING,
    0x26: "hardAcceleration",
    0x27: "hardBraking",
    0x28: "hardBraking",
    0x29: "hardAcceleration",
    0x2A: "hardCornering",
    0x2B: "hardCornering",
    0x2C: "accident",
    0x2E: "hardCornering",
    0x30: "jamming",
    0x32: Alarm.TAMPERING,
    0x33: "lock",
    0x34: "unlock",
    0x53: "fuelLeak",
    0x5B: "temperature",
    0x5C: "temperature",
    0xC9: "idle",
    0xF0: "hardAcceleration",
    0xF1: "hardBraking",
    0xF2: "accident",
}

# Alarm type byte of the 0x95 alarm packet (a different numbering from the status block's).
_ALARM_95: Mapping[int, Alarm | str] = {
    0x80: Alarm.VIBRATION,
    0x87: Alarm.OVERSPEED,
    0x90: "hardAcceleration",
    0x91: "hardBraking",
    0x92: "hardCornering",
    0x93: "accident",
}


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How one device model departs from the standard GT06 layout (``Session.model`` selects it).

    ``lbs_length_prefix``: the 0x16 packet's LBS block starts with its own length byte (VXT01 omits it).
    ``status_alarm_byte``: the status block's 4th byte is an alarm code (VXT01 uses it for something else).
    ``alarm_overrides``: alarm-byte codes whose meaning differs on this model (``None`` removes a code).
    """

    name: str
    lbs_length_prefix: bool = True
    status_alarm_byte: bool = True
    alarm_overrides: Mapping[int, Alarm | str | None] = field(default_factory=dict)
    alarm_table: Mapping[int, tuple[Alarms, str | None]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        merged: dict[int, Alarm | str | None] = {**STANDARD_ALARM_CODES, **self.alarm_overrides}
        table = {code: _alarm_entry(meaning) for code, meaning in merged.items() if meaning is not None}
        object.__setattr__(self, "alarm_table", table)


def _alarm_entry(meaning: Alarm | str) -> tuple[Alarms, str | None]:
    if isinstance(meaning, Alarm):
        return frozenset({meaning}), None
    return _NO_ALARMS, meaning


STANDARD = ModelProfile("standard")
MODELS: Mapping[str, ModelProfile] = {
    "VXT01": ModelProfile("VXT01", lbs_length_prefix=False, status_alarm_byte=False),
}


def profile_for(model: str | None) -> ModelProfile:
    """The layout profile of a device model (case-insensitive); unknown or no model means standard."""
    if model is None:
        return STANDARD
    return MODELS.get(model) or MODELS.get(model.strip().upper(), STANDARD)


# Voltage level 0-6 is a scale (x 100/6 %); 7-100 are already percentages; anything else is unknown.
_BATTERY: tuple[float | None, ...] = tuple(
    float(round(v * 100 / 6)) if v <= 6 else float(v) if v <= 100 else None for v in range(256)
)

Handler = Callable[[bytes, int, str, ModelProfile, Extras], DeviceMessage | None]


# ---------------------------------------------------------------------------------------------------------
# Blocks shared by several packets


def _time(yy: int, mo: int, dd: int, hh: int, mi: int, ss: int) -> datetime | None:
    """The device's binary date-time as written (UTC or local: the pipeline corrects); None if invalid."""
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=UTC)
    except ValueError:
        return None


GpsFix = tuple[datetime | None, float | None, float | None, bool, float, float, int]


def _gps_time(
    yy: int,
    mo: int,
    dd: int,
    hh: int,
    mi: int,
    ss: int,
    lat_raw: int,
    lon_raw: int,
    flags: int,
    extras: Extras,
) -> datetime | None:
    """The checks and the time of a GPS block (both GPS readers): coordinates in range, the ignition flag
    when the block carries one, the fix time (``None`` when the date is impossible)."""
    if lat_raw > _MAX_LAT_RAW or lon_raw > _MAX_LON_RAW:
        raise DecodeError(f"GPS coordinates out of range ({lat_raw}, {lon_raw})")
    if flags & 0x4000:
        extras["ignition"] = bool(flags & 0x8000)
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss, 0, UTC)
    except ValueError:
        return None


def _gps(body: bytes, off: int, extras: Extras) -> GpsFix:
    """(time, lat, lon, valid, speed km/h, course, satellites) of an 18-byte GPS block."""
    yy, mo, dd, hh, mi, ss, info, lat_raw, lon_raw, speed, flags = _GPS.unpack_from(body, off)
    time = _gps_time(yy, mo, dd, hh, mi, ss, lat_raw, lon_raw, flags, extras)
    if lat_raw == 0 and lon_raw == 0:
        return time, None, None, False, float(speed), float(flags & 0x3FF), info & 0x0F
    latitude = lat_raw / 1_800_000.0 if flags & 0x400 else -lat_raw / 1_800_000.0
    longitude = -lon_raw / 1_800_000.0 if flags & 0x800 else lon_raw / 1_800_000.0
    return time, latitude, longitude, bool(flags & 0x1000), float(speed), float(flags & 0x3FF), info & 0x0F


def _lbs(body: bytes, off: int, long: bool = False) -> tuple[tuple[CellTower, ...], int]:
    """The serving cell of an LBS block and the offset after it; no cell when LAC and CID are both 0."""
    mnc2 = body[off] & 0x80
    if long:
        layout = _LBS_LONG_MNC2 if mnc2 else _LBS_LONG
        mcc, mnc, lac, cid = layout.unpack_from(body, off)
    else:
        layout = _LBS_SHORT_MNC2 if mnc2 else _LBS_SHORT
        mcc, mnc, lac, cid_high, cid_low = layout.unpack_from(body, off)
        cid = cid_high << 16 | cid_low
    end = off + layout.size
    if lac == 0 and cid == 0:
        return (), end
    return (CellTower(mcc & 0x7FFF, mnc, lac, cid),), end  # positional: keywords cost a third more


def _alarm_code(code: int, profile: ModelProfile, extras: Extras) -> Alarms:
    if code == 0 or not profile.status_alarm_byte:
        return _NO_ALARMS
    extras["alarm_code"] = code
    entry = profile.alarm_table.get(code)
    if entry is None:
        return _NO_ALARMS
    alarms, name = entry
    if name is not None:
        extras["alarm"] = name
    return alarms


def _status(
    body: bytes, off: int, profile: ModelProfile, extras: Extras
) -> tuple[float | None, bool, Alarms]:
    """(battery %, charging, alarms) of a status block: info, voltage level, GSM, [alarm, [language]]."""
    info = body[off]
    level = body[off + 1]
    extras["rssi"] = body[off + 2]
    extras.update(_INFO_EXTRAS[info])  # status, armed, ignition, blocked
    bits = (info >> 3) & 0x07
    alarms = _INFO_ALARMS[bits]
    if bits == _INFO_GEOFENCE:
        extras["geofence_alarm"] = True
    if off + 3 < len(body) and body[off + 3]:  # 0: no alarm (most heartbeats)
        coded = _alarm_code(body[off + 3], profile, extras)
        if coded:
            alarms = alarms | coded
    if off + 4 < len(body):
        extras["language"] = body[off + 4]
    return _BATTERY[level], bool(info & 0x04), alarms


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise DecodeError(f"truncated {what} packet ({len(body)} bytes, needs {size})")


def _u32(body: bytes, off: int) -> int:
    value: int = _U32.unpack_from(body, off)[0]
    return value


def _fix_message(
    uid: str,
    gps: GpsFix,
    extras: Extras,
    cells: tuple[CellTower, ...] = (),
    battery: float | None = None,
    charging: bool | None = None,
    alarms: Alarms = _NO_ALARMS,
) -> DeviceMessage:
    time, latitude, longitude, valid, speed, course, satellites = gps
    return DeviceMessage(  # positional: see base.MESSAGE_FIELDS
        uid, PROTOCOL, time, time is not None,  # unique_id, protocol, time, time_is_local
        latitude, longitude, valid, speed, course,  # .. course_deg
        None, None, None, satellites,  # altitude_m, accuracy_m, hdop, satellites
        battery, charging, None,  # battery_pct, charging, steps
        None, None, None, None, None,  # heart_rate_bpm, spo2_pct, temperature_c, systolic/diastolic_mmhg
        alarms, cells, (), extras,  # alarms, cells, wifi, extras
    )  # fmt: skip


def _plain_message(
    uid: str,
    extras: Extras,
    time: datetime | None = None,
    battery: float | None = None,
    charging: bool | None = None,
    alarms: Alarms = _NO_ALARMS,
    cells: tuple[CellTower, ...] = (),
    wifi: tuple[WifiAccessPoint, ...] = (),
) -> DeviceMessage:
    """A message without a GPS fix (heartbeat, LBS, Wi-Fi, information)."""
    return DeviceMessage(  # positional: see base.MESSAGE_FIELDS
        uid, PROTOCOL, time, time is not None,  # unique_id, protocol, time, time_is_local
        None, None, None, None, None, None, None, None, None,  # latitude .. satellites: no fix
        battery, charging, None,  # battery_pct, charging, steps
        None, None, None, None, None,  # heart_rate_bpm, spo2_pct, temperature_c, systolic/diastolic_mmhg
        alarms, cells, wifi, extras,  # alarms, cells, wifi, extras
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Packet handlers: (body, protocol number, device id, model profile, extras) -> message or None


def gps(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x10: GPS block only."""
    return _fix_message(uid, _gps(body, 0, extras), extras)


def gps_lbs(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x12: GPS + LBS [+ 4-byte mileage]."""
    size = len(body)
    if (size == _GPS_LBS.size or size == _GPS_LBS.size + 4) and body[GPS_SIZE] < 0x80:
        return _usual_gps_lbs(body, uid, extras)
    return gps_lbs_general(body, uid, extras)


def gps_lbs_general(body: bytes, uid: str, extras: Extras) -> DeviceMessage:
    """What :func:`gps_lbs` does with any body; the usual ones give the same result through a faster path."""
    fix = _gps(body, 0, extras)
    cells: tuple[CellTower, ...] = ()
    off = GPS_SIZE
    if len(body) > off:
        cells, off = _lbs(body, off)
    if len(body) - off == 4:
        extras["odometer_m"] = _u32(body, off)
    return _fix_message(uid, fix, extras, cells)


def _usual_gps_lbs(body: bytes, uid: str, extras: Extras) -> DeviceMessage:
    """The 0x12 body most trackers send (GPS block, LBS with a 1-byte MNC [, mileage]) in one unpack and
    one helper call: what _gps, _lbs and _fix_message make of it, faster."""
    (yy, mo, dd, hh, mi, ss, info, lat_raw, lon_raw, speed, flags, mcc, mnc, lac, cid_high,
     cid_low) = _GPS_LBS.unpack_from(body)  # fmt: skip
    time = _gps_time(yy, mo, dd, hh, mi, ss, lat_raw, lon_raw, flags, extras)
    latitude: float | None = None
    longitude: float | None = None
    valid = False
    if lat_raw or lon_raw:
        latitude = lat_raw / 1_800_000.0 if flags & 0x400 else -lat_raw / 1_800_000.0
        longitude = -lon_raw / 1_800_000.0 if flags & 0x800 else lon_raw / 1_800_000.0
        valid = bool(flags & 0x1000)
    cid = cid_high << 16 | cid_low
    cells = (CellTower(mcc, mnc, lac, cid),) if lac or cid else ()  # MCC < 0x8000: a 1-byte MNC
    if len(body) == _GPS_LBS.size + 4:
        extras["odometer_m"] = _u32(body, _GPS_LBS.size)
    return DeviceMessage(  # positional: see base.MESSAGE_FIELDS
        uid, PROTOCOL, time, time is not None,  # unique_id, protocol, time, time_is_local
        latitude, longitude, valid, float(speed), float(flags & 0x3FF),  # .. course_deg
        None, None, None, info & 0x0F,  # altitude_m, accuracy_m, hdop, satellites
        None, None, None,  # battery_pct, charging, steps
        None, None, None, None, None,  # heart_rate_bpm, spo2_pct, temperature_c, systolic/diastolic_mmhg
        _NO_ALARMS, cells, (), extras,  # alarms, cells, wifi, extras
    )  # fmt: skip


def gps_lbs_acc(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x22 / 0xA0 (4G LBS): GPS + LBS + ACC, upload mode, re-upload flag [+ 4-byte mileage]."""
    fix = _gps(body, 0, extras)
    cells: tuple[CellTower, ...] = ()
    off = GPS_SIZE
    if len(body) > off:
        cells, off = _lbs(body, off, long=ptype == 0xA0)
    if len(body) - off >= 3:
        extras["ignition"] = body[off] > 0
        extras["upload_mode"] = body[off + 1]
        extras["archive"] = body[off + 2] > 0
        off += 3
    if len(body) - off == 4:
        extras["odometer_m"] = _u32(body, off)
    return _fix_message(uid, fix, extras, cells)


def gps_lbs_status(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x16 / 0x26 / 0x27: GPS + length-prefixed LBS + status (+ fence number for 0x27)."""
    fix = _gps(body, 0, extras)
    off = GPS_SIZE
    cells: tuple[CellTower, ...] = ()
    if ptype != 0x16 or profile.lbs_length_prefix:
        length = body[off]  # counts itself; 0 means no LBS block
        if length:
            cells, end = _lbs(body, off + 1)
            off = max(end, off + length)
        else:
            off += 1
    else:
        cells, off = _lbs(body, off)
    _need(body, off + 5, "status")
    battery, charging, alarms = _status(body, off, profile, extras)
    if ptype == 0x27 and len(body) > off + 5:
        extras["fence"] = body[off + 5]
    return _fix_message(uid, fix, extras, cells, battery, charging, alarms)


def lbs_status(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x19: LBS + status, no GPS."""
    cells, off = _lbs(body, 0)
    _need(body, off + 5, "LBS status")
    battery, charging, alarms = _status(body, off, profile, extras)
    return _plain_message(uid, extras, battery=battery, charging=charging, alarms=alarms, cells=cells)


def status(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x13 heartbeat: info, voltage level, GSM [, alarm [, language]]."""
    _need(body, 3, "status")
    battery, charging, alarms = _status(body, 0, profile, extras)
    return _plain_message(uid, extras, None, battery, charging, alarms)  # time, battery, charging, alarms


def heartbeat(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x23 (GK310): info byte [, battery voltage x 0.01 V [, GSM signal]]."""
    info = body[0]
    extras["armed"] = bool(info & 0x01)
    extras["ignition"] = bool(info & 0x02)
    if len(body) >= 3:
        extras["battery_v"] = _U16.unpack_from(body, 1)[0] / 100
    if len(body) >= 4:
        extras["rssi"] = body[3]
    return _plain_message(uid, extras, charging=bool(info & 0x04))


def multi_lbs(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x28 / 0x2E / 0x24 / 0x2C (+ Wi-Fi) / 0xA1 (4G): time, up to 7 cells, [Wi-Fi access points]."""
    time = _time(*_DATE.unpack_from(body, 0))
    long = ptype == 0xA1
    off = 7 if long else 6  # 0xA1 has an information byte after the time
    mcc = _U16.unpack_from(body, off)[0]
    off += 2
    if mcc & 0x8000 or long:
        mnc = _U16.unpack_from(body, off)[0]
        off += 2
    else:
        mnc = body[off]
        off += 1
    step = 13 if long else 6
    _need(body, off + 7 * step + 1, "multi-LBS")
    cells = []
    for _ in range(7):
        lac, cid = (
            (_u32(body, off), int.from_bytes(body[off + 4 : off + 12]))
            if long
            else (_U16.unpack_from(body, off)[0], int.from_bytes(body[off + 2 : off + 5]))
        )
        if lac:
            cells.append(CellTower(mcc=mcc & 0x7FFF, mnc=mnc, lac=lac, cid=cid, signal=-body[off + step - 1]))
        off += step
    off += 1  # timing advance
    wifi: tuple[WifiAccessPoint, ...] = ()
    if ptype not in (0x24, 0xA1) and off < len(body):
        wifi, off = _access_points(body, off + 1, body[off])
    return _plain_message(uid, extras, time=time, cells=tuple(cells), wifi=wifi)


def _access_points(body: bytes, off: int, count: int) -> tuple[tuple[WifiAccessPoint, ...], int]:
    """``count`` x (6-byte MAC, signal byte = -dBm) from ``off``."""
    _need(body, off + 7 * count, "Wi-Fi")
    points = tuple(
        WifiAccessPoint(mac=body[at : at + 6].hex(":"), signal_dbm=-body[at + 6])
        for at in range(off, off + 7 * count, 7)
    )
    return points, off + 7 * count


def information(
    body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras
) -> DeviceMessage | None:
    """0x94: sub-type 0x00 external voltage, 0x04 status sync text, 0x05 door, 0x0A IMEI/IMSI/ICCID."""
    handler = _INFO_TYPES.get(body[0])
    if handler is None:
        return None
    extras["info_type"] = body[0]
    handler(body, extras)
    return _plain_message(uid, extras)


def _info_power(body: bytes, extras: Extras) -> None:
    extras["power_v"] = _U16.unpack_from(body, 1)[0] / 100


def _info_text(body: bytes, extras: Extras) -> None:
    extras["status_sync"] = body[1:].decode("ascii", "replace")


def _info_door(body: bytes, extras: Extras) -> None:
    extras["door"] = bool(body[1] & 0x01)


def _info_ids(body: bytes, extras: Extras) -> None:
    _need(body, 27, "ICCID information")
    imsi = body[9:17].hex().replace("f", "")
    extras["imsi"] = imsi[1:] if imsi.startswith("0") else imsi  # padded to 16 nibbles like the IMEI
    extras["iccid"] = body[17:27].hex().replace("f", "")


_INFO_TYPES: Mapping[int, Callable[[bytes, Extras], None]] = {
    0x00: _info_power,
    0x04: _info_text,
    0x05: _info_door,
    0x0A: _info_ids,
}


def alarm(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x95: [GPS block | time], alarm type [, 2-byte alarm value]."""
    extended = len(body) > GPS_SIZE
    if extended:
        fix = _gps(body, 0, extras)
        off = GPS_SIZE
    else:
        time = _time(*_DATE.unpack_from(body, 0))
        fix = (time, None, None, False, 0.0, 0.0, 0)
        off = 6
    code = body[off]
    extras["alarm_code"] = code
    if len(body) >= off + 3:
        extras["alarm_value"] = _U16.unpack_from(body, off + 1)[0]
    meaning = (Alarm.SOS if extended else Alarm.GENERAL) if code == 0x01 else _ALARM_95.get(code)
    if meaning is None:
        meaning = Alarm.GENERAL
    alarms = frozenset({meaning}) if isinstance(meaning, Alarm) else _NO_ALARMS
    if isinstance(meaning, str) and not isinstance(meaning, Alarm):
        extras["alarm"] = meaning
    if not extended:
        return _plain_message(uid, extras, time=fix[0], alarms=alarms)
    return _fix_message(uid, fix, extras, alarms=alarms)


def text_reply(body: bytes, ptype: int, uid: str, profile: ModelProfile, extras: Extras) -> DeviceMessage:
    """0x15 (0x7878) / 0x21 (0x7979): the device's answer to a 0x80 server command."""
    if ptype == 0x15:
        size = body[0]
        _need(body, 1 + size, "command response")
        flag, text = _u32(body, 1), body[5 : 1 + size].decode("utf-8", "replace")
    else:
        _need(body, 5, "command response")
        codec = "utf-16-be" if body[4] == 2 else "utf-8"
        flag, text = _u32(body, 0), body[5:].decode(codec, "replace")
    extras["server_flag"] = flag
    extras["result"] = text
    return _plain_message(uid, extras)


# ---------------------------------------------------------------------------------------------------------
# Wi-Fi packets 0x17 / 0x69: the count sits in the length byte, BCD time, no serial or CRC


def wifi_frame_size(frame: bytes | bytearray, start: int, available: int) -> int:
    """Total size of the Wi-Fi frame at ``start``, or 0 while the bytes giving it have not all arrived."""
    cell_count_at = start + 10 + 7 * frame[start + 2]
    if available <= cell_count_at:
        return 0
    return cell_count_at - start + 4 + 5 * frame[cell_count_at] + 2


def _bcd_time(raw: bytes) -> datetime | None:
    digits = [(b >> 4) * 10 + (b & 0x0F) for b in raw]
    if any((b >> 4) > 9 or (b & 0x0F) > 9 for b in raw):
        return None
    return _time(*digits)


def wifi(frame: bytes, uid: str, extras: Extras) -> DeviceMessage:
    """A whole 0x17/0x69 frame: BCD time, access points, then cells (MCC, MNC, n x LAC, CI, signal)."""
    count = frame[2]
    time = _bcd_time(frame[4:10])
    points, off = _access_points(frame, 10, count)
    cell_count = frame[off]
    mcc, mnc = _U16.unpack_from(frame, off + 1)[0], frame[off + 3]
    off += 4
    cells = []
    for _ in range(cell_count):
        lac, cid, signal = _WIFI_CELL.unpack_from(frame, off)
        if lac or cid:
            cells.append(CellTower(mcc=mcc & 0x7FFF, mnc=mnc, lac=lac, cid=cid, signal=-signal))
        off += 5
    return _plain_message(uid, extras, time=time, cells=tuple(cells), wifi=points)
