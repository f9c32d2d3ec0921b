"""How a simulated bracelet says a :class:`~geosentinel.sim.bracelet.Report` in each device protocol.

One small "speaker" per protocol. Pure: no socket, no wall clock (the report carries its own time, a
frame that needs a serial number gets it from the caller). The frames are the ones real devices send, so
each decodes with the service's own decoder (``geosentinel.protocols.*``); ``tests/sim/test_speakers.py``
proves it field by field.

Every TCP frame comes with the key of the reply that acknowledges it (``Frame.ack``), or ``None`` when the
device expects no reply (the watch's ``UD_LTE``); :meth:`TcpSpeaker.reply_key` computes the same key from
a reply the service sent, so the link can match replies to frames without knowing the protocol.

What each protocol can carry (see ``docs/simulator.md``):

========  ==========================================  ==================================================
protocol  position report                             battery
========  ==========================================  ==================================================
osmand    ``GET /?id=…&lat=…`` (``&alarm=sos``)        every report (0.1 %)
watch     ``UD_LTE`` (``AL_LTE`` + status bit 16)     every report, and the ``LK`` heartbeat (whole %)
gt06      0x12 GPS+LBS (0x16 + alarm byte 1 for SOS)  0x13 heartbeat and 0x16 (whole %; < 7 % reads 0)
h02       ``V1`` (status ``FFFFFBFD`` for SOS)         ``HTBT`` heartbeat only (whole %)
mqtt      JSON v1 on ``geosentinel/<org>/<id>/up``    every report (0.1 %)
========  ==========================================  ==================================================

Alarms, vitals, steps and cell-tower (``source="cell"``) positions:

========  ==========================  ==========================  ========================================
protocol  alarms                      vitals and steps            cell-tower position
========  ==========================  ==========================  ========================================
osmand    ``alarm=sos|fall|removed``  ``heartrate``, ``spo2``,    a plain fix: its large ``accuracy`` says
                                      ``temperature``, ``steps``  what it is
watch     status bits 16, 21, 20      steps (in ``UD_LTE``)       ``V`` (no GPS fix), 0 satellites, with
                                                                  its ``accuracy``
gt06      alarm byte 0x01, 0x23,      none                        "positioned" flag cleared, 0 satellites
          0x18
h02       SOS only                    none                        ``V`` (no GPS fix)
mqtt      ``alarms``                  all four fields             ``"source": "cell"``
========  ==========================  ==========================  ========================================

The watch's vitals frames (``PULSE``, ``OXYGEN``, ``TEMP``) carry no time, so the service stamps them with
their arrival: wrong for a fleet replaying the past faster than real time. They are not sent; nor is a
fall or removal over H02, whose status word has no bit for either (the report goes out without it).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from geosentinel.protocols import gt06 as gt06_protocol
from geosentinel.protocols import h02 as h02_protocol
from geosentinel.protocols import watch as watch_protocol
from geosentinel.protocols.base import Framer
from geosentinel.protocols.codec import crc_itu
from geosentinel.protocols.gt06 import Gt06Framer
from geosentinel.protocols.h02 import H02Framer
from geosentinel.protocols.mqtt import TOPIC_PREFIX
from geosentinel.protocols.watch import WatchFramer
from geosentinel.sim.bracelet import Report
from geosentinel.sim.motion import fall_window

KMH_PER_KNOT = 1.852
SOS = "sos"
FALL = "fall"
REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes to write, and the key of the reply that acknowledges them (``None``: no reply expected)."""

    data: bytes
    ack: str | None


class TcpSpeaker(Protocol):
    """One TCP device protocol, as the device speaks it."""

    @property
    def name(self) -> str: ...

    @property
    def default_port(self) -> int: ...

    def check_id(self, unique_id: str) -> None:
        """Raise ``ValueError`` when the protocol cannot carry this device id."""

    def framer(self) -> Framer:
        """A framer for what the service sends back (replies and commands)."""

    def login(self, unique_id: str, serial: int) -> Frame | None:
        """The first frame of a connection, which must be acknowledged before anything else; or None."""

    def heartbeat(self, unique_id: str, battery_pct: float, serial: int) -> Frame:
        """The keep-alive, sent first on every connection and then every few (simulated) minutes."""

    def report(self, report: Report, serial: int) -> Frame:
        """A position report (an alarm frame when ``report.alarm`` is set)."""

    def reply_key(self, unique_id: str, reply: bytes) -> str | None:
        """The ``Frame.ack`` this reply acknowledges, or None for anything else (e.g. a command)."""


# -- shared helpers ------------------------------------------------------------------------------------


def whole_percent(battery_pct: float) -> int:
    """The battery as devices that send whole percents do: floored, so 14.9 % reads 14 (below 15)."""
    return min(100, max(0, math.floor(battery_pct)))


def course(bearing_deg: float, ndigits: int = 1) -> float:
    """The bearing rounded to ``ndigits`` decimals, in [0, 360): 359.96° is 0.0°, never 360.0°."""
    return round(bearing_deg % 360.0, ndigits) % 360.0


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("report times must be tz-aware")
    return t.astimezone(UTC)


def _satellites(report: Report) -> int:
    """A plausible satellite count for the fix quality (the model has none): outdoors 9, indoors 5, and
    none for a cell-tower position."""
    if report.source == "cell":
        return 0
    return 9 if report.accuracy_m <= 10.0 else 5


def _is_gps(report: Report) -> bool:
    return report.source != "cell"


# -- watch (3G / SG / CS / ZJ text protocol) ------------------------------------------------------------

WATCH_VENDOR = "3G"
WATCH_SOS_STATUS = 0x0001_0000  # terminal status bit 16
WATCH_ALARM_STATUS = {SOS: WATCH_SOS_STATUS, FALL: 0x0020_0000, REMOVED: 0x0010_0000}  # bits 16, 21, 20
_WATCH_RSSI = 80  # GSM signal, 0-100


def watch_frame(unique_id: str, content: str) -> bytes:
    """``[3G*ID*LLLL*CONTENT]`` with the content length in hex, as the watches write it."""
    data = content.encode("ascii")
    return b"[%s*%s*%04X*%s]" % (WATCH_VENDOR.encode(), unique_id.encode("ascii"), len(data), data)


def watch_link(unique_id: str, battery_pct: float) -> bytes:
    """The ``LK`` keep-alive with its ``steps,rolls,battery`` counters (the model has no pedometer: 0)."""
    return watch_frame(unique_id, f"LK,0,0,{whole_percent(battery_pct)}")


def watch_location(report: Report) -> bytes:
    """``UD_LTE`` for a fix, ``AL_LTE`` with the alarm's status bit for an SOS, a fall or a removal.

    Fields: date, time (UTC), A (V for a cell-tower position), lat, N/S, lon, E/W, speed km/h, course,
    altitude, satellites, GSM signal, battery %, steps, rolls, status word, then no cell (0), no Wi-Fi (0)
    and the accuracy in metres.
    """
    t = _utc(report.time)
    status = WATCH_ALARM_STATUS.get(report.alarm or "", 0)
    kind = "AL_LTE" if status else "UD_LTE"
    content = ",".join(
        (
            kind,
            f"{t:%d%m%y}",
            f"{t:%H%M%S}",
            "A" if _is_gps(report) else "V",
            f"{abs(report.latitude):.6f}",
            "N" if report.latitude >= 0 else "S",
            f"{abs(report.longitude):.6f}",
            "E" if report.longitude >= 0 else "W",
            f"{report.speed_knots * KMH_PER_KNOT:.2f}",
            f"{course(report.bearing_deg):.1f}",
            f"{report.altitude_m:.1f}",
            str(_satellites(report)),
            str(_WATCH_RSSI),
            str(whole_percent(report.battery_pct)),
            str(report.steps or 0),
            "0",
            f"{status:08X}",
            "0",
            "0",
            f"{report.accuracy_m:.1f}",
        )
    )
    return watch_frame(report.unique_id, content)


def _watch_reply_key(unique_id: str, reply: bytes) -> str | None:
    parts = reply[1:-1].decode("ascii", "replace").split("*", 4)
    if len(parts) < 4 or parts[1] != unique_id:
        return None
    return parts[-1].split(",", 1)[0].upper()


class WatchSpeaker:
    """Watches need no login: every frame names the device. ``UD_LTE`` gets no reply, ``LK``/``AL`` do."""

    name = "watch"
    default_port = watch_protocol.SPEC.default_port

    def check_id(self, unique_id: str) -> None:
        if not (1 <= len(unique_id) <= 32 and unique_id.isascii() and unique_id.isalnum()):
            raise ValueError(f"watch ids are 1-32 letters or digits, got {unique_id!r}")

    def framer(self) -> Framer:
        return WatchFramer(max_frame=4096)

    def login(self, unique_id: str, serial: int) -> Frame | None:
        return None

    def heartbeat(self, unique_id: str, battery_pct: float, serial: int) -> Frame:
        return Frame(watch_link(unique_id, battery_pct), "LK")

    def report(self, report: Report, serial: int) -> Frame:
        return Frame(watch_location(report), "AL" if report.alarm in WATCH_ALARM_STATUS else None)

    def reply_key(self, unique_id: str, reply: bytes) -> str | None:
        return _watch_reply_key(unique_id, reply)


# -- GT06 (Concox binary protocol) ---------------------------------------------------------------------

GT06_LOGIN = 0x01
GT06_GPS_LBS = 0x12
GT06_STATUS = 0x13
GT06_ALARM = 0x16
GT06_SOS_CODE = 0x01
GT06_ALARM_CODES = {SOS: GT06_SOS_CODE, FALL: 0x23, REMOVED: 0x18}
_GT06_GPS = struct.Struct(">BBBBBBBIIBH")  # YY MM DD hh mm ss, info, lat, lon, speed km/h, course+flags
_GT06_LBS = struct.Struct(">HBHBH")  # MCC, MNC, LAC, cell id (3 bytes)
_GT06_INFO = 0x40  # terminal information: GPS tracking on, not charging, no alarm
_GT06_INFO_SOS = 0x40 | 0x04 << 3  # ... with "SOS" in bits 3-5
# The terminal information of an alarm packet: bits 3-5 have SOS and removal, not a fall (byte only).
_GT06_ALARM_INFO = {SOS: _GT06_INFO_SOS, FALL: _GT06_INFO, REMOVED: 0x40 | 0x07 << 3}
_GT06_GSM = 4  # signal strength 0-4
_GT06_LANGUAGE = 0x02  # English


def gt06_packet(ptype: int, content: bytes, serial: int) -> bytes:
    """``78 78 LL <type> <content> <serial> <crc> 0D 0A``; the CRC-ITU covers length to serial."""
    body = bytes((len(content) + 5, ptype)) + content + (serial & 0xFFFF).to_bytes(2, "big")
    return b"\x78\x78" + body + crc_itu(body).to_bytes(2, "big") + b"\r\n"


def gt06_login(imei: str, serial: int) -> bytes:
    """0x01 login: the IMEI in 8 bytes of BCD, with a leading 0 nibble."""
    return gt06_packet(GT06_LOGIN, bytes.fromhex(imei.rjust(16, "0")), serial)


def gt06_battery(battery_pct: float) -> int:
    """The voltage-level byte as a percentage (7-100). 0-6 would read as a 0-6 level, so below 7 % the
    byte is 0 ("no power"), which reads as 0 %."""
    percent = whole_percent(battery_pct)
    return percent if percent >= 7 else 0


def _gt06_gps(report: Report) -> bytes:
    t = _utc(report.time)
    lat_raw = round(abs(report.latitude) * 1_800_000)
    lon_raw = round(abs(report.longitude) * 1_800_000)
    flags = int(course(report.bearing_deg, 0))  # course in whole degrees
    if _is_gps(report):
        flags |= 0x1000  # positioned (a cell-tower position is not a GPS fix)
    if report.latitude >= 0:
        flags |= 0x0400  # north
    if report.longitude < 0:
        flags |= 0x0800  # west
    speed = min(255, round(report.speed_knots * KMH_PER_KNOT))
    info = 0xC0 | _satellites(report)  # GPS block length 12, satellites
    return _GT06_GPS.pack(
        t.year - 2000, t.month, t.day, t.hour, t.minute, t.second, info, lat_raw, lon_raw, speed, flags
    )


# France / Orange, no serving cell: LAC and cell id 0 decode as "no cell", rather than made-up towers.
_GT06_NO_CELL = _GT06_LBS.pack(208, 1, 0, 0, 0)


def gt06_status(battery_pct: float, serial: int) -> bytes:
    """0x13 heartbeat: terminal info, voltage level (as %), GSM signal, alarm 0, language."""
    content = bytes((_GT06_INFO, gt06_battery(battery_pct), _GT06_GSM, 0, _GT06_LANGUAGE))
    return gt06_packet(GT06_STATUS, content, serial)


def gt06_location(report: Report, serial: int) -> bytes:
    """0x12 GPS + LBS for a fix; 0x16 GPS + LBS + status with the alarm byte (0x01 SOS, 0x23 fall,
    0x18 removal) for an alarm."""
    alarm = report.alarm or ""
    code = GT06_ALARM_CODES.get(alarm)
    if code is None:
        return gt06_packet(GT06_GPS_LBS, _gt06_gps(report) + _GT06_NO_CELL, serial)
    info = _GT06_ALARM_INFO[alarm]
    status = bytes((info, gt06_battery(report.battery_pct), _GT06_GSM, code, _GT06_LANGUAGE))
    lbs = bytes((1 + len(_GT06_NO_CELL),)) + _GT06_NO_CELL  # the length byte counts itself
    return gt06_packet(GT06_ALARM, _gt06_gps(report) + lbs + status, serial)


def gt06_ack_key(ptype: int, serial: int) -> str:
    return f"{ptype:02X}/{serial & 0xFFFF}"


class Gt06Speaker:
    """Login first (acked), then 0x13 heartbeats, 0x12 fixes and 0x16 alarms, each acked by its serial."""

    name = "gt06"
    default_port = gt06_protocol.SPEC.default_port

    def check_id(self, unique_id: str) -> None:
        if not (1 <= len(unique_id) <= 16 and unique_id.isascii() and unique_id.isdigit()):
            raise ValueError(f"GT06 ids are IMEIs (up to 16 digits), got {unique_id!r}")

    def framer(self) -> Framer:
        return Gt06Framer()

    def login(self, unique_id: str, serial: int) -> Frame | None:
        return Frame(gt06_login(unique_id, serial), gt06_ack_key(GT06_LOGIN, serial))

    def heartbeat(self, unique_id: str, battery_pct: float, serial: int) -> Frame:
        return Frame(gt06_status(battery_pct, serial), gt06_ack_key(GT06_STATUS, serial))

    def report(self, report: Report, serial: int) -> Frame:
        ptype = GT06_ALARM if report.alarm in GT06_ALARM_CODES else GT06_GPS_LBS
        return Frame(gt06_location(report, serial), gt06_ack_key(ptype, serial))

    def reply_key(self, unique_id: str, reply: bytes) -> str | None:
        # An ack is 78 78 05 <type> <serial:2> <crc:2> 0D 0A; commands (0x80) and the rest are not acks.
        if len(reply) != 10 or reply[:3] != b"\x78\x78\x05":
            return None
        return gt06_ack_key(reply[3], reply[4] << 8 | reply[5])


# -- H02 (Sinotrack text protocol) ---------------------------------------------------------------------

H02_NORMAL_STATUS = "FFFFFBFF"  # active-low: every alarm bit set means no alarm
H02_SOS_STATUS = "FFFFFBFD"  # bit 1 cleared: SOS


def degrees_minutes(value: float, degree_digits: int) -> str:
    """``DDMM.MMMM`` (``DDDMM.MMMM`` for 3 degree digits) of ``abs(value)``, minutes to 1e-4."""
    ten_thousandths = round(abs(value) * 600_000)  # in 1e-4 minutes, rounded once
    degrees, rest = divmod(ten_thousandths, 600_000)
    return f"{degrees:0{degree_digits}d}{rest // 10_000:02d}.{rest % 10_000:04d}"


def h02_location(report: Report) -> bytes:
    """``*HQ,<id>,V1,HHMMSS,A,DDMM.MMMM,N,DDDMM.MMMM,E,knots,course,DDMMYY,status#`` (time in UTC; V
    instead of A for a cell-tower position). Only an SOS has a status bit: a fall or removal is lost."""
    t = _utc(report.time)
    fields = (
        "*HQ",
        report.unique_id,
        "V1",
        f"{t:%H%M%S}",
        "A" if _is_gps(report) else "V",
        degrees_minutes(report.latitude, 2),
        "N" if report.latitude >= 0 else "S",
        degrees_minutes(report.longitude, 3),
        "E" if report.longitude >= 0 else "W",
        f"{report.speed_knots:06.2f}",
        f"{int(course(report.bearing_deg, 0)):03d}",
        f"{t:%d%m%y}",
        H02_SOS_STATUS if report.alarm == SOS else H02_NORMAL_STATUS,
    )
    return ",".join(fields).encode("ascii") + b"#"


def h02_heartbeat(unique_id: str, battery_pct: float) -> bytes:
    """``*HQ,<id>,HTBT,<battery %>#``, answered ``*HQ,<id>,HTBT#``."""
    return f"*HQ,{unique_id},HTBT,{whole_percent(battery_pct)}#".encode("ascii")


class H02Speaker:
    """No login; ``HTBT`` heartbeats (battery) and ``V1`` fixes, both answered by the service."""

    name = "h02"
    default_port = h02_protocol.SPEC.default_port

    def check_id(self, unique_id: str) -> None:
        if not (1 <= len(unique_id) <= 20 and unique_id.isascii() and unique_id.isdigit()):
            raise ValueError(f"H02 ids are 1-20 digits, got {unique_id!r}")

    def framer(self) -> Framer:
        return H02Framer()

    def login(self, unique_id: str, serial: int) -> Frame | None:
        return None

    def heartbeat(self, unique_id: str, battery_pct: float, serial: int) -> Frame:
        return Frame(h02_heartbeat(unique_id, battery_pct), "HTBT")

    def report(self, report: Report, serial: int) -> Frame:
        return Frame(h02_location(report), "V1")

    def reply_key(self, unique_id: str, reply: bytes) -> str | None:
        # "*HQ,<id>,V4,V1,<yyyyMMddHHmmss>#" answers V1, "*HQ,<id>,HTBT#" answers HTBT.
        fields = reply.strip(b"*#").decode("ascii", "replace").split(",")
        if len(fields) < 3 or fields[1] != unique_id:
            return None
        if fields[2] == "V4" and len(fields) == 5 and len(fields[4]) == 14 and fields[4].isdigit():
            return fields[3]
        return "HTBT" if fields[2] == "HTBT" and len(fields) == 3 else None


TCP_SPEAKERS: dict[str, TcpSpeaker] = {s.name: s for s in (WatchSpeaker(), Gt06Speaker(), H02Speaker())}


# -- OsmAnd / Traccar Client (HTTP) --------------------------------------------------------------------


def osmand_query(report: Report) -> dict[str, str]:
    """The query parameters of the OsmAnd/Traccar Client request carrying ``report``."""
    params = {
        "id": report.unique_id,
        "timestamp": str(round(report.time.timestamp())),
        "lat": f"{report.latitude:.6f}",
        "lon": f"{report.longitude:.6f}",
        "speed": f"{report.speed_knots:.2f}",
        "bearing": f"{report.bearing_deg:.1f}",
        "altitude": f"{report.altitude_m:.1f}",
        "accuracy": f"{report.accuracy_m:.1f}",
        "batt": f"{report.battery_pct:.1f}",
    }
    if report.alarm:
        params["alarm"] = report.alarm  # sos, fall and removed are all names the decoder knows
    if report.heart_rate_bpm is not None:
        params["heartrate"] = f"{report.heart_rate_bpm:g}"
    if report.spo2_pct is not None:
        params["spo2"] = f"{report.spo2_pct:g}"
    if report.temperature_c is not None:
        params["temperature"] = f"{report.temperature_c:g}"
    if report.steps is not None:
        params["steps"] = str(report.steps)
    return params


# -- MQTT (GeoSentinel JSON v1) ------------------------------------------------------------------------


def mqtt_topic(org_id: str, unique_id: str) -> str:
    """``geosentinel/<org id>/<device unique id>/up``."""
    return f"{TOPIC_PREFIX}/{org_id}/{unique_id}/up"


def mqtt_payload(report: Report) -> bytes:
    """The JSON v1 up payload: time, position (``"source": "cell"`` for a cell-tower one), battery, the
    vitals and steps measured, and for an alarm ``"alarms": ["sos"]`` (or fall, removed); a fall comes with
    the recorded motion window of a real fall (:mod:`geosentinel.sim.motion`)."""
    position: dict[str, Any] = {
        "lat": report.latitude,
        "lon": report.longitude,
        "accuracy_m": report.accuracy_m,
        "altitude_m": report.altitude_m,
        "speed_kmh": round(report.speed_knots * KMH_PER_KNOT, 2),
        "course_deg": course(report.bearing_deg),
    }
    if _is_gps(report):
        position["satellites"] = _satellites(report)
    else:
        position["source"] = "cell"
    body: dict[str, Any] = {
        "v": 1,
        "time": _utc(report.time).isoformat().replace("+00:00", "Z"),
        "position": position,
        "battery_pct": report.battery_pct,
    }
    for key in ("steps", "heart_rate_bpm", "spo2_pct", "temperature_c"):
        value = getattr(report, key)
        if value is not None:
            body[key] = value
    if report.alarm:
        body["alarms"] = [report.alarm]
    if report.alarm == FALL:  # the bracelet sends the motion around the impact for the server to confirm
        body["imu"] = fall_window(report.unique_id, report.time).payload(report.time)
    return orjson.dumps(body)
