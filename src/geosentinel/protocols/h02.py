"""H02 protocol: text ``*HQ,…#`` and binary ``$`` frames over TCP, default port 5013.

Who sends it: Sinotrack ST-90x and the many cheap trackers and bracelets built on the same firmware
(maker code ``HQ``; some send ``TH`` or a lowercase ``hq``).

Spec source: Traccar's ``H02ProtocolDecoder``, ``H02FrameDecoder`` and ``H02ProtocolEncoder`` (Apache-2.0),
summarised in section 4.4 of ``shared/protocols/README.md``, and the captured frames of Traccar's tests.

Text frames are ``*<maker>,<id>,<type>,<fields…>#``; the type picks a handler in ``_TEXT_TYPES`` (every other
``V…`` type is a position in the V1 layout). The framer (:class:`H02Framer`) and binary ``$`` frames live in
:mod:`.h02_binary`. Times on the wire are the device's clock (often local time), so they are returned with
``time_is_local=True``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from geosentinel.model import Alarm, CellTower, DeviceMessage, ExtraValue
from geosentinel.protocols.base import (
    UNKNOWN_DEVICE_STATUS,
    CommandKind,
    DecodeError,
    DecodeResult,
    DeviceCommand,
    ProtocolSpec,
    Session,
    UnsupportedCommand,
)
from geosentinel.protocols.codec import degrees_minutes
from geosentinel.protocols.h02_binary import (
    KNOTS_TO_KMH,
    NO_ALARMS,
    PROTOCOL,
    H02Framer,
    decode_binary,
    fix_time,
    status_word,
)

__all__ = ["SPEC", "H02Framer", "decode", "encode_command"]

SPEC = ProtocolSpec(
    name=PROTOCOL,
    transport="tcp",
    default_port=5013,
    description=(
        "H02 (Sinotrack and compatible trackers and bracelets): text *HQ,…# frames and fixed-length binary "
        "$ frames"
    ),
    binary=False,
)

# ---------------------------------------------------------------------------------------------------------
# Decoding

_Handler = Callable[[list[str], str, datetime], DecodeResult]

_VALIDITY: Mapping[str, bool] = {"A": True, "B": True, "V": False, "": False}
_LATITUDE_SIGN: Mapping[str, float] = {"N": 1.0, "S": -1.0}
_LONGITUDE_SIGN: Mapping[str, float] = {"E": 1.0, "W": -1.0}
_MAX_DIGITS = 18
_HEX = re.compile(r"[0-9A-Fa-f]{1,16}")
# The rarer coordinate forms: -D-M.MMMM (degrees, minutes) and DDMMmmmm (minutes with 4 implied decimals).
_COORDINATE = re.compile(r"-(\d{1,3})-(\d\d?\.\d{1,9})|(\d{3,5})(\d{4})", re.ASCII)
_ODOMETER = re.compile(
    r"(\d{1,12}),(-?\d{1,6}),(\d{1,9}\.\d{1,6}),(-?\d{1,6}),([0-9A-Fa-f]{1,8}),([0-9A-Fa-f]{1,8})", re.ASCII
)
_SHOW_MAX = 24


def decode(frame: bytes, session: Session, now: datetime) -> DecodeResult:
    """Decode one whole H02 frame. Raises :class:`DecodeError` for anything malformed."""
    try:
        first = frame[0] if frame else 0
        if first == 0x2A:  # '*'
            return _decode_text(frame, session, now)
        if first == 0x24:  # '$'
            return decode_binary(frame)
    except DecodeError:
        raise
    except (ValueError, IndexError, OverflowError) as exc:  # a safety net: handlers validate first
        raise DecodeError(f"malformed H02 frame: {exc}") from None
    raise DecodeError("not an H02 frame: expected '*' or '$' first")


def _decode_text(frame: bytes, session: Session, now: datetime) -> DecodeResult:
    if frame[-1] != 0x23:  # '#'
        raise DecodeError("H02 text frame does not end with '#'")
    fields = frame[1:-1].decode("latin-1").split(",")
    if len(fields) < 3:
        raise DecodeError("H02 text frame without a message type")
    device_id = fields[1]
    if not device_id:
        if session.unique_id is None:
            raise DecodeError("H02 text frame without a device id")
        device_id = session.unique_id
    elif not (len(device_id) <= 20 and device_id.isascii() and device_id.isdigit()):
        raise DecodeError(f"invalid device id {_show(device_id)}")
    kind = fields[2]
    handler = _TEXT_TYPES.get(kind) or (_position if kind[:1] == "V" else None)
    if handler is None:
        raise DecodeError(f"unsupported H02 message type {_show(kind)}")
    return handler(fields, device_id, now)


def _show(text: str) -> str:
    return repr(text if len(text) <= _SHOW_MAX else text[:_SHOW_MAX] + "...")


def _time_reply(device_id: str, kind: str, now: datetime) -> bytes:
    """``*HQ,<id>,V4,<kind>,<yyyyMMddHHmmss UTC>#`` (Traccar always answers with maker code ``HQ``)."""
    if now.tzinfo is not UTC:
        now = now.astimezone(UTC)
    stamp = (now.year, now.month, now.day, now.hour, now.minute, now.second)
    return b"*HQ,%s,V4,%s,%04d%02d%02d%02d%02d%02d#" % (device_id.encode(), kind.encode(), *stamp)


# ---------------------------------------------------------------------------------------------------------
# Field parsers


def _int(text: str, name: str) -> int:
    """A count or code: ASCII digits only."""
    if not (text.isdigit() and text.isascii() and len(text) <= _MAX_DIGITS):
        raise DecodeError(f"invalid {name} {_show(text)}")
    return int(text)


def _signed(text: str, name: str) -> int:
    """A cell signal: dBm (negative) or a raw level."""
    return -_int(text[1:], name) if text[:1] == "-" else _int(text, name)


def _hex(text: str, name: str) -> int:
    if _HEX.fullmatch(text) is None:
        raise DecodeError(f"invalid {name} {_show(text)}")
    return int(text, 16)


def _number(text: str, name: str) -> float:
    """A non-negative decimal number (``12``, ``0.54``, ``000.27``), short enough to stay finite."""
    if not (len(text) <= _MAX_DIGITS and text.replace(".", "", 1).isdigit() and text.isascii()):
        raise DecodeError(f"invalid {name} {_show(text)}")
    return float(text)


def _percent(text: str, extras: dict[str, ExtraValue]) -> float | None:
    value = _int(text, "battery")
    if 0 <= value <= 100:
        return float(value)
    extras["battery_raw"] = value
    return None


def _coordinate(text: str, hemisphere: str, signs: Mapping[str, float], limit: float) -> float:
    """Signed degrees; the hemisphere letter gives the sign (also for the ``-D-M.MMMM`` form)."""
    sign = signs.get(hemisphere)
    if sign is None:
        raise DecodeError(f"invalid hemisphere {_show(hemisphere)}")
    if len(text) <= _MAX_DIGITS and "." in text and text.replace(".", "", 1).isdigit() and text.isascii():
        # DDMM.MMMM, the usual form, inline: degrees_minutes() would cost a quarter of the frame's budget.
        number = float(text)
        degrees = number // 100
        value = degrees + (number - degrees * 100) / 60.0
    else:
        value = _rare_coordinate(text)
    if not value <= limit:
        raise DecodeError(f"coordinate {_show(text)} out of range")
    return round(sign * value, 6)


def _rare_coordinate(text: str) -> float:
    match = _COORDINATE.fullmatch(text)
    if match is None:
        raise DecodeError(f"invalid coordinate {_show(text)}")
    if match.group(1) is not None:
        minutes = match.group(2)
        return degrees_minutes(match.group(1) + (minutes if minutes[2] == "." else "0" + minutes))
    return degrees_minutes(f"{match.group(3)}.{match.group(4)}")


def _required_status(word: str, extras: dict[str, ExtraValue]) -> frozenset[Alarm]:
    facts = status_word(word)
    if facts is None:
        raise DecodeError(f"invalid status word {_show(word)}")
    extras["status"], extras["ignition"], alarms = facts
    return alarms


def _status(fields: list[str], at: int, extras: dict[str, ExtraValue]) -> tuple[frozenset[Alarm], int]:
    """The status word at ``at``, or after the 3 SIM fields of V19; returns (alarms, index after it)."""
    count = len(fields)
    facts = status_word(fields[at]) if at < count else None
    if facts is not None:
        extras["status"], extras["ignition"], alarms = facts
        return alarms, at + 1
    facts = status_word(fields[at + 3]) if at + 3 < count else None
    if facts is not None:
        extras["sim_info"] = ",".join(fields[at : at + 3])
        extras["status"], extras["ignition"], alarms = facts
        return alarms, at + 4
    return NO_ALARMS, at


def _tail(fields: list[str], at: int, extras: dict[str, ExtraValue]) -> tuple[float | None, float | None]:
    """What follows the status: ``odometer,temp,fuel,altitude,lac,cid`` or free I/O values.

    Returns (altitude m, temperature °C). Other values are kept, trimmed, as ``extras["io"]`` (Traccar's
    ``io1``…): the 4- and 5-value forms in real frames mix hex and decimal cell ids in no documented order,
    so they are not read as cells.
    """
    rest = fields[at:]
    if not rest:
        return None, None
    if len(rest) == 6:
        match = _ODOMETER.fullmatch(",".join(rest))
        if match is not None:
            extras["odometer"] = int(match.group(1))
            extras["fuel"] = float(match.group(3))
            extras["lac"] = int(match.group(5), 16)
            extras["cid"] = int(match.group(6), 16)
            return float(match.group(4)), float(match.group(2))
    io = ",".join(rest)
    extras["io"] = ",".join(map(str.strip, rest)) if " " in io else io
    return None, None


def _fix(fields: list[str], at: int, device_id: str, extras: dict[str, ExtraValue]) -> DeviceMessage:
    """The V1 layout from its time field at ``at``: ``HHMMSS,A,lat,N,lon,E,knots,course[,battery],DDMMYY``,
    then the status word and the optional tail."""
    count = len(fields)
    if count < at + 8:
        raise DecodeError("H02 position with fewer than 8 fields")
    clock, flag, lat, hemisphere, lon, meridian, knots, course = fields[at : at + 8]
    valid = _VALIDITY.get(flag)
    if valid is None:
        # VI1 puts a "coding scheme" digit where A/V would be; Traccar reads such fixes as valid.
        _int(flag, "validity flag")
        valid = True
    latitude: float | None = _coordinate(lat, hemisphere, _LATITUDE_SIGN, 90.0)
    longitude: float | None = _coordinate(lon, meridian, _LONGITUDE_SIGN, 180.0)
    speed = _number(knots.lstrip(" "), "speed")
    date_at = at + 8
    if date_at + 1 < count and 0 < len(fields[date_at]) < 6 and len(fields[date_at + 1]) == 6:
        extras["battery_raw"] = _int(fields[date_at], "battery")  # an undocumented small number
        date_at += 1
    time = fix_time(fields[date_at] if date_at < count else "", clock)
    alarms, tail_at = _status(fields, date_at + 1, extras)
    altitude, temperature = _tail(fields, tail_at, extras)
    if latitude == 0.0 and longitude == 0.0:
        latitude = longitude = None
        valid = False
    return DeviceMessage(  # positional: see base.MESSAGE_FIELDS
        device_id, PROTOCOL, time, time is not None,  # unique_id, protocol, time, time_is_local
        latitude, longitude, valid, round(speed * KNOTS_TO_KMH, 3),  # .. speed_kmh
        _number(course, "course") if course else None, altitude,  # course_deg, altitude_m
        None, None, None, None, None, None,  # accuracy_m, hdop, satellites, battery_pct, charging, steps
        None, None, temperature, None, None,  # heart_rate_bpm, spo2_pct, temperature_c, blood pressure
        alarms, (), (), extras,  # alarms, cells, wifi, extras
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Text message types


def _position(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    """V2, V5, V6, V8, V19, VI1 …: the V1 layout, no reply."""
    message = _fix(fields, 3, device_id, {"type": fields[2]})
    return DecodeResult(
        (message,), b"", UNKNOWN_DEVICE_STATUS, None, device_id
    )  # positional: keywords cost more


def _v1(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    message = _fix(fields, 3, device_id, {"type": "V1"})
    return DecodeResult((message,), _time_reply(device_id, "V1", now), UNKNOWN_DEVICE_STATUS, None, device_id)


def _command_reply(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    """``V4,<command>[,params…],<HHMMSS sent>`` then, mostly, a fix in the V1 layout."""
    for at in range(5, len(fields)):
        if fields[at] in ("A", "V", "B") and len(fields[at - 1]) == 6 and fields[at - 1].isdigit():
            extras: dict[str, ExtraValue] = {"type": "V4", "result": ",".join(fields[3 : at - 1])}
            return DecodeResult(messages=(_fix(fields, at - 1, device_id, extras),), device_id=device_id)
    message = DeviceMessage(
        unique_id=device_id, protocol=PROTOCOL, extras={"type": "V4", "result": ",".join(fields[3:])}
    )
    return DecodeResult(messages=(message,), device_id=device_id)


def _heartbeat(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    """``HTBT[,battery%]`` and ``V0``: echoed as ``*HQ,<id>,HTBT#``."""
    reply = b"*HQ,%s,HTBT#" % device_id.encode()
    if fields[2] != "HTBT" or len(fields) < 4 or not fields[3]:
        return DecodeResult((), reply, UNKNOWN_DEVICE_STATUS, None, device_id)
    extras: dict[str, ExtraValue] = {"type": "HTBT"}
    battery = _percent(fields[3], extras)
    message = DeviceMessage(  # positional: see base.MESSAGE_FIELDS
        device_id, PROTOCOL, None, False,  # unique_id, protocol, time, time_is_local
        None, None, None, None, None, None, None, None, None,  # latitude .. satellites: no fix
        battery, None, None,  # battery_pct, charging, steps
        None, None, None, None, None,  # heart_rate_bpm, spo2_pct, temperature_c, blood pressure
        NO_ALARMS, (), (), extras,  # alarms, cells, wifi, extras
    )  # fmt: skip
    return DecodeResult((message,), reply, UNKNOWN_DEVICE_STATUS, None, device_id)


def _link(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    """``LINK,HHMMSS,rssi,satellites,battery%,steps,turnovers,DDMMYY,status``."""
    if len(fields) < 11:
        raise DecodeError("LINK with fewer than 8 fields")
    extras: dict[str, ExtraValue] = {
        "type": "LINK",
        "rssi": _int(fields[4], "rssi"),
        "turnovers": _int(fields[8], "turnovers"),
    }
    alarms = _required_status(fields[10], extras)
    time = fix_time(fields[9], fields[3])
    message = DeviceMessage(
        unique_id=device_id,
        protocol=PROTOCOL,
        time=time,
        time_is_local=time is not None,
        satellites=_int(fields[5], "satellites"),
        battery_pct=_percent(fields[6], extras),
        steps=_int(fields[7], "steps"),
        alarms=alarms,
        extras=extras,
    )
    return DecodeResult(messages=(message,), device_id=device_id)


def _cell_message(
    device_id: str,
    time: datetime | None,
    cells: tuple[CellTower, ...],
    status: str,
    extras: dict[str, ExtraValue],
) -> DeviceMessage:
    return DeviceMessage(
        unique_id=device_id,
        protocol=PROTOCOL,
        time=time,
        time_is_local=time is not None,
        alarms=_required_status(status, extras),
        cells=cells,
        extras=extras,
    )


def _nbr(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    """``NBR,HHMMSS,MCC,MNC,delay,count,{LAC,CID,rssi}…,DDMMYY,status``: cells only, no GPS fix."""
    if len(fields) < 10 or (len(fields) - 10) % 3:
        raise DecodeError("NBR fields do not form LAC,CID,rssi triples")
    mcc, mnc = _int(fields[4], "MCC"), _int(fields[5], "MNC")
    cells = tuple(
        CellTower(
            mcc, mnc, _int(fields[at], "LAC"), _int(fields[at + 1], "CID"), _signed(fields[at + 2], "rssi")
        )
        for at in range(8, len(fields) - 2, 3)
    )
    time = fix_time(fields[-2], fields[3])
    message = _cell_message(device_id, time, cells, fields[-1], {"type": "NBR"})
    return DecodeResult(messages=(message,), reply=_time_reply(device_id, "NBR", now), device_id=device_id)


def _v3(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    """``V3,HHMMSS,MCCMNC,count,{LAC,CID,?,dBm}…,battery(hex),reboots,X,DDMMYY,status``."""
    count = _int(fields[5], "cell count") if len(fields) > 5 else -1
    if count < 0 or len(fields) != 11 + 4 * count or len(fields[4]) < 4:
        raise DecodeError("V3 fields do not match their cell count")
    mcc, mnc = _int(fields[4][:3], "MCC"), _int(fields[4][3:], "MNC")
    cells = tuple(
        CellTower(
            mcc, mnc, _int(fields[at], "LAC"), _int(fields[at + 1], "CID"), _signed(fields[at + 3], "dBm")
        )
        for at in range(6, 6 + 4 * count, 4)
    )
    end = 6 + 4 * count
    extras: dict[str, ExtraValue] = {"type": "V3", "battery_raw": _hex(fields[end], "battery")}
    time = fix_time(fields[end + 3], fields[3])
    message = _cell_message(device_id, time, cells, fields[end + 4], extras)
    return DecodeResult(messages=(message,), device_id=device_id)


def _vp1(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    """Lowercase ``*hq``: ``VP1,V,MCC,MNC,LAC,CID,rssi[YLAC,CID,rssi…]`` (cells joined by ``Y``) or
    ``VP1,A,lat,N,lon,E,knots,course,DDMMYY``."""
    if len(fields) < 7:
        raise DecodeError("VP1 with too few fields")
    if fields[3] == "V":
        mcc, mnc = _int(fields[4], "MCC"), _int(fields[5], "MNC")
        cells = []
        for chunk in ",".join(fields[6:]).split("Y"):
            values = chunk.split(",")
            if len(values) != 3:
                raise DecodeError(f"invalid VP1 cell {_show(chunk)}")
            lac, cid = _int(values[0], "LAC"), _int(values[1], "CID")
            cells.append(CellTower(mcc=mcc, mnc=mnc, lac=lac, cid=cid, signal=_signed(values[2], "rssi")))
        message = DeviceMessage(
            unique_id=device_id, protocol=PROTOCOL, cells=tuple(cells), extras={"type": "VP1"}
        )
        return DecodeResult(messages=(message,), device_id=device_id)
    if fields[3] not in ("A", "B") or len(fields) != 11:
        raise DecodeError("VP1 fix must be A|B,lat,N|S,lon,E|W,speed,course,DDMMYY")
    # The fix carries a date but no time of day: the pipeline stamps it with the receive time.
    day = fix_time(fields[10], "000000")
    latitude: float | None = _coordinate(fields[4], fields[5], _LATITUDE_SIGN, 90.0)
    longitude: float | None = _coordinate(fields[6], fields[7], _LONGITUDE_SIGN, 180.0)
    valid = latitude != 0.0 or longitude != 0.0
    if not valid:
        latitude = longitude = None
    message = DeviceMessage(
        unique_id=device_id,
        protocol=PROTOCOL,
        latitude=latitude,
        longitude=longitude,
        valid=valid,
        speed_kmh=round(_number(fields[8], "speed") * KNOTS_TO_KMH, 3),
        course_deg=_number(fields[9], "course"),
        extras={"type": "VP1", "date": "" if day is None else day.date().isoformat()},
    )
    return DecodeResult(messages=(message,), device_id=device_id)


def _sms(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    text = ",".join(fields[3:]).encode("latin-1").decode("utf-8", "replace")
    message = DeviceMessage(unique_id=device_id, protocol=PROTOCOL, extras={"type": "SMS", "sms": text})
    return DecodeResult(messages=(message,), device_id=device_id)


def _nothing(fields: list[str], device_id: str, now: datetime) -> DecodeResult:
    """``BASE``: recognised, nothing to store (Traccar returns no position either)."""
    return DecodeResult(messages=(), device_id=device_id)


_TEXT_TYPES: Mapping[str, _Handler] = {
    "V1": _v1,
    "V4": _command_reply,
    "V0": _heartbeat,
    "HTBT": _heartbeat,
    "LINK": _link,
    "NBR": _nbr,
    "V3": _v3,
    "VP1": _vp1,
    "SMS": _sms,
    "BASE": _nothing,
}


# ---------------------------------------------------------------------------------------------------------
# Commands

_Params = Callable[[DeviceCommand, Session], tuple[str, ...]]


def _interval(command: DeviceCommand, session: Session) -> tuple[str, ...]:
    """``S71,22,<s>`` (Traccar's default) or ``D1,<s>`` for devices set to model ``alternative``."""
    seconds = command.interval_s
    if seconds is None or seconds < 1:
        raise UnsupportedCommand("set_interval needs interval_s of at least 1 second")
    if session.model == "alternative":
        return ("D1", str(seconds))
    return ("S71", "22", str(seconds))


_COMMANDS: Mapping[CommandKind, _Params] = {CommandKind.SET_INTERVAL: _interval}


def encode_command(command: DeviceCommand, session: Session, now: datetime) -> bytes:
    """``*HQ,<id>,<CMD>,<HHMMSS>[,params]#``. Only the reporting interval has a known H02 command."""
    params_of = _COMMANDS.get(command.kind)
    if params_of is None:
        raise UnsupportedCommand(f"H02 has no known command for {command.kind.value}")
    device_id = session.unique_id
    if not device_id or not (device_id.isascii() and device_id.isdigit()):
        raise UnsupportedCommand("an H02 command needs the device's numeric id")
    name, *params = params_of(command, session)
    stamp = f"{now.astimezone(UTC):%H%M%S}"
    return ",".join(("*HQ", device_id, name, stamp, *params)).encode() + b"#"
