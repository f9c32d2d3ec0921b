"""The data frames of the watch protocol: locations (with cells, Wi-Fi and the status word) and vitals.

Framing, dispatch, keep-alives, media and commands live in ``watch.py``. A handler gets the device id,
the type as the watch spelled it and the raw bytes after ``TYPE,`` (still escaped), and returns the
messages plus the reply content (``None`` for no reply). Text bodies must be UTF-8.

Spec source: Traccar's ``WatchProtocolDecoder.java`` (Apache-2.0) and its tests, summarised in section 4.1
of ``shared/protocols/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from geosentinel.model import Alarm, CellTower, DeviceMessage, ExtraValue, WifiAccessPoint
from geosentinel.protocols.base import DecodeError

PROTOCOL = "watch"

Output = tuple[tuple[DeviceMessage, ...], str | None]
Handler = Callable[[str, str, bytes], Output]

NOTHING: Output = ((), None)
_UNSET = (0, 0, 0)
_DATE_CACHE = _STATUS_CACHE = 4096
_NO_ALARMS: frozenset[Alarm] = frozenset()
_GENERAL = frozenset({Alarm.GENERAL})

# Integer parts are capped so that float() stays finite and int() stays far from its digit limit. "(X|)"
# instead of "(X)?" and possessive decimals (a comma always follows: giving digits back cannot help) match
# the same fields a third faster; an absent field reads "" instead of None, which the handler treats alike.
_UNUM = r"(\d{1,10}(?:\.\d*+)?+|)"
_POSITION = (
    r"(\d{6}),(\d{6}),([AV]),"
    r" *(-?\d{1,3}(?:\.\d*+)?+),([NS]?),"
    r" *(-?\d{1,3}(?:\.\d*+)?+),([EW]?),"
    rf"{_UNUM},{_UNUM},(-?\d{{1,10}}(?:\.\d*+)?+|),"
    r"(\d{0,10}),(\d{0,10}),(\d{0,10}),(\d{0,10}),(\d{0,10}),"
    r"([0-9A-Fa-f]{1,8})(?:,(.*))?"
)
_POSITION_RE = re.compile(_POSITION, re.DOTALL)
# ASCII-only \d matches ASCII text exactly as Unicode \d does, and 15% faster: used for ASCII bodies (all
# but a few), while the Unicode pattern keeps accepting the digits other scripts write.
_ASCII_POSITION_RE = re.compile(_POSITION, re.DOTALL | re.ASCII)
_VITAL_RE = re.compile(r"\d{1,4}(?:\.\d+)?")
_TEMPERATURE_RE = re.compile(r"-?\d{1,3}(?:\.\d+)?")
_HEX_RE = re.compile(r"[0-9A-Fa-f]{1,16}")
_HEX_LETTER_RE = re.compile(r"[A-Fa-f]")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_ACCURACY_RE = re.compile(r"\d{1,6}(?:\.\d+)?")
# The usual network tail, ASCII-decimal cells and no Wi-Fi ("1,0,208,1,3000,12345,-80,0"): count, TA, MCC,
# MNC, the first LAC,CID,signal, any more triples, an empty or zero Wi-Fi count. The fields split one way
# only (a multiple of three after MNC, then at most one), so the count is checked against the triples.
_DECIMAL_CELLS_RE = re.compile(
    r"([1-9]),[^,]*,([0-9]*),([0-9]*),([0-9]+),([0-9]+),(-?[0-9]*)((?:,[0-9]+,[0-9]+,-?[0-9]*)*)(?:,0?)?"
)
_BAD_ESCAPE_RE = re.compile(rb"\x7d(?:[^\x01-\x05]|$)")
_ESCAPES = ((b"}\x02", b"["), (b"}\x03", b"]"), (b"}\x04", b","), (b"}\x05", b"*"), (b"}\x01", b"}"))
_TEXT_ESCAPES = tuple((old.decode(), new.decode()) for old, new in _ESCAPES)

# Terminal-status bits (high word = alarms, low word = states) as Traccar maps them; all set bits count,
# not only the first, since one frame can carry SOS and a fall at once.
_STATUS_ALARMS = (
    (0, Alarm.LOW_BATTERY),
    (1, Alarm.GEOFENCE_EXIT),
    (2, Alarm.GEOFENCE_ENTER),
    (14, Alarm.POWER_CUT),
    (16, Alarm.SOS),
    (17, Alarm.LOW_BATTERY),
    (18, Alarm.GEOFENCE_EXIT),
    (19, Alarm.GEOFENCE_ENTER),
    (20, Alarm.REMOVED),
    (21, Alarm.FALL),
    (22, Alarm.FALL),
)
_ALARM_MASK = sum(1 << bit for bit, _ in _STATUS_ALARMS)
_MOTION_BIT = 1 << 4
_alarm_cache: dict[int, frozenset[Alarm]] = {0: _NO_ALARMS}  # at most 2**11 keys (masked status)


def status_alarms(status: int) -> frozenset[Alarm]:
    """The alarms a terminal-status word raises."""
    key = status & _ALARM_MASK
    found = _alarm_cache.get(key)
    if found is None:
        found = frozenset(alarm for bit, alarm in _STATUS_ALARMS if key >> bit & 1)
        _alarm_cache[key] = found
    return found


_statuses: dict[str, tuple[frozenset[Alarm], bool]] = {}  # status word -> (alarms, motion); cleared when full


def _status(word: str) -> tuple[frozenset[Alarm], bool]:
    """A status word's alarms and whether it says "moving", cached: a watch sends a handful of words."""
    if len(_statuses) > _STATUS_CACHE:
        _statuses.clear()
    status = int(word, 16)
    return _statuses.setdefault(word, (status_alarms(status), bool(status & _MOTION_BIT)))


# Non-negative integers as watches write them (no leading zero) and cell signals, looked up rather than
# parsed: int() on a short string costs 200 ns, a dict lookup 40 ns, and a location frame holds ten of them.
_SMALL_INTS: dict[str, int] = {str(n): n for n in range(-999, 10_000)}
_TWO_DIGITS: dict[str, int] = {f"{n:02d}": n for n in range(100)}  # HH, MM, SS of an ASCII clock


def small_int(digits: str) -> int:
    """An ASCII integer already checked by a pattern (a table lookup for the usual small ones)."""
    value = _SMALL_INTS.get(digits)
    return int(digits) if value is None else value


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("content is not UTF-8 text") from None


def _unescape_text(value: str) -> str:
    if "}" in value:
        for old, new in _TEXT_ESCAPES:
            value = value.replace(old, new)
    return value


def unescape_media(data: bytes) -> bytes:
    """Undo the ``7D 0x`` escapes of a binary payload; a ``7D`` not followed by 01-05 is an error."""
    if b"}" not in data:
        return data
    if _BAD_ESCAPE_RE.search(data):
        raise DecodeError("invalid 7D escape in binary payload")
    for old, new in _ESCAPES:
        data = data.replace(old, new)
    return data


def fields(body: bytes) -> list[str]:
    """Comma-separated text fields, trailing empties kept."""
    text = _text(body)
    return text.split(",") if text else []


def message(
    uid: str,
    mtype: str,
    *,
    battery_pct: float | None = None,
    steps: int | None = None,
    heart_rate_bpm: float | None = None,
    spo2_pct: float | None = None,
    temperature_c: float | None = None,
    systolic_mmhg: float | None = None,
    diastolic_mmhg: float | None = None,
    alarms: frozenset[Alarm] = _NO_ALARMS,
    extras: Mapping[str, ExtraValue] | None = None,
) -> DeviceMessage:
    """A message without a fix (time = receive time): heartbeat counters, vitals, media, acks."""
    return DeviceMessage(  # positional: see base.MESSAGE_FIELDS
        uid, PROTOCOL, None, False,  # unique_id, protocol, time, time_is_local
        None, None, None, None, None, None, None, None, None,  # latitude .. satellites: no fix
        battery_pct, None, steps,  # battery_pct, charging, steps
        heart_rate_bpm, spo2_pct, temperature_c, systolic_mmhg, diastolic_mmhg,
        alarms, (), (),  # alarms, cells, wifi
        {"type": mtype, **extras} if extras else {"type": mtype},
    )  # fmt: skip


def _vital(name: str, value: str) -> float:
    if not _VITAL_RE.fullmatch(value):
        raise DecodeError(f"invalid {name} {value[:20]!r}")
    return float(value)


_dates: dict[str, tuple[int, int, int] | None] = {}  # DDMMYY -> (year, month, day); cleared when it grows


def _date(text: str) -> tuple[int, int, int] | None:
    try:
        day = datetime(2000 + int(text[4:]), int(text[2:4]), int(text[:2]), tzinfo=UTC)
    except ValueError:
        return None
    return day.year, day.month, day.day


def _day(date: str) -> tuple[int, int, int] | None:
    """(year, month, day) of DDMMYY, cached: a watch writes one date all day (None: impossible date)."""
    ymd = _dates.get(date, _UNSET)
    if ymd is _UNSET:
        if len(_dates) > _DATE_CACHE:
            _dates.clear()
        ymd = _dates[date] = _date(date)
    return ymd


def _fix_time(date: str, clock: str) -> datetime | None:
    """DDMMYY HHMMSS as written; an impossible date (000000 before the watch synced) gives no time."""
    ymd = _day(date)
    if ymd is None:
        return None
    hours, rest = divmod(int(clock), 10000)
    minutes, seconds = divmod(rest, 100)
    try:
        return datetime(ymd[0], ymd[1], ymd[2], hours, minutes, seconds, 0, UTC)
    except ValueError:
        return None


def _coordinate(value: str, hemisphere: str, negative: str, limit: float, name: str) -> float:
    number = float(value)
    if hemisphere == negative:
        # Some firmware pre-signs the value and still writes the hemisphere: never flip it back.
        number = -abs(number)
    if not -limit <= number <= limit:
        raise DecodeError(f"{name} {value!r} out of range")
    return number


# ---------------------------------------------------------------------------------------------------------
# Network tail: cells, TA, MCC, MNC, {LAC, CID, signal} x n, Wi-Fi count, {SSID, MAC, dBm} x m [, accuracy]


_NO_NETWORK: tuple[tuple[CellTower, ...], tuple[WifiAccessPoint, ...], float | None] = ((), (), None)


class _Truncated(Exception):
    """The network tail ends early or holds a malformed value: what was read so far is kept."""


def _level(value: str) -> int | None:
    """A signal level (may be negative for Wi-Fi dBm); empty or malformed means unknown."""
    if value.isdigit() or (value[:1] == "-" and value[1:].isdigit()):
        return int(value)
    return None


def _decimal_cells(tail: str) -> tuple[CellTower, ...] | None:
    """The cells of a usual tail (_DECIMAL_CELLS_RE) as _cells reads them; None for any other tail.

    Skips _cells' per-field checks, which took a sixth of the time of a whole location frame."""
    match = _DECIMAL_CELLS_RE.fullmatch(tail)
    if match is None:
        return None
    count, mcc_s, mnc_s, lac, cid, signal, more = match.groups()
    numbers = more[1:].split(",") if more else []  # the triples after the first (LTE: one cell only)
    if len(numbers) != 3 * (int(count) - 1):
        return None
    mcc, mnc = int(mcc_s or 0), int(mnc_s or 0)
    # A signal is "", "-" (both unknown) or an integer.
    level = int(signal) if signal not in ("", "-") else None
    first = CellTower(mcc=mcc, mnc=mnc, lac=int(lac), cid=int(cid), signal=level)
    if not numbers:
        return (first,)
    cells = [first]
    for i in range(0, len(numbers), 3):
        signal = numbers[i + 2]
        level = int(signal) if signal not in ("", "-") else None
        cells.append(CellTower(mcc=mcc, mnc=mnc, lac=int(numbers[i]), cid=int(numbers[i + 1]), signal=level))
    return tuple(cells)


def _cells(values: list[str]) -> tuple[tuple[CellTower, ...], int]:
    count = int(values[0]) if values[0].isdigit() else -1
    if count <= 0:
        if count < 0:
            raise _Truncated
        # Traccar reads no TA/MCC/MNC after a zero count; the Wi-Fi count follows directly.
        return (), 1
    end = 4 + 3 * count
    if end > len(values):
        raise _Truncated
    mcc_s, mnc_s = values[2], values[3]
    if not ((mcc_s.isdigit() or not mcc_s) and (mnc_s.isdigit() or not mnc_s)):
        raise _Truncated
    mcc, mnc = int(mcc_s or 0), int(mnc_s or 0)
    triples = values[4:end]
    # LTE firmware writes LAC/CID in hex: one hex letter anywhere means the whole list is hex.
    hexadecimal = _HEX_LETTER_RE.search(",".join(triples)) is not None
    cells = []
    for i in range(0, len(triples), 3):
        lac, cid = triples[i], triples[i + 1]
        if hexadecimal:
            if not (_HEX_RE.fullmatch(lac) and _HEX_RE.fullmatch(cid)):
                raise _Truncated
            lac_n, cid_n = int(lac, 16), int(cid, 16)
        elif lac.isdigit() and cid.isdigit():
            lac_n, cid_n = int(lac), int(cid)
        else:
            raise _Truncated
        cells.append(CellTower(mcc=mcc, mnc=mnc, lac=lac_n, cid=cid_n, signal=_level(triples[i + 2])))
    return tuple(cells), end


def _wifi(values: list[str], index: int) -> tuple[tuple[WifiAccessPoint, ...], int]:
    if index >= len(values):
        return (), index
    count_s = values[index]
    if not count_s:
        return (), index + 1
    if not count_s.isdigit():
        raise _Truncated
    index += 1
    end = index + 3 * int(count_s)
    if end > len(values):
        raise _Truncated
    found = []
    for i in range(index, end, 3):
        mac = values[i + 1]
        if len(mac) == 17 and _MAC_RE.fullmatch(mac):  # placeholders such as "0" mean "no access point"
            ssid = values[i]
            if "}" in ssid:
                ssid = _unescape_text(ssid)
            found.append(
                WifiAccessPoint(mac=mac.lower(), signal_dbm=_level(values[i + 2]), ssid=ssid or None)
            )
    return tuple(found), end


def _network(
    tail: str, extras: dict[str, ExtraValue]
) -> tuple[tuple[CellTower, ...], tuple[WifiAccessPoint, ...], float | None]:
    if not tail.strip("0,"):
        # No cell, no Wi-Fi ("0,0,0" and the like): the common indoor-less case skips the parsing.
        return _NO_NETWORK
    cells: tuple[CellTower, ...] = ()
    wifi: tuple[WifiAccessPoint, ...] = ()
    try:
        usual = _decimal_cells(tail)
        if usual is not None:
            return usual, wifi, None
        values = tail.split(",")
        cells, index = _cells(values)
        wifi, index = _wifi(values, index)
    except (_Truncated, ValueError):  # ValueError: a non-ASCII digit that str.isdigit() let through
        extras["network_truncated"] = True
        return cells, wifi, None
    accuracy = None
    if index == len(values) - 1 and _ACCURACY_RE.fullmatch(values[index]):
        accuracy = float(values[index]) or None
    return cells, wifi, accuracy


# ---------------------------------------------------------------------------------------------------------
# Handlers


def _fix_and_status(
    lat: float, lon: float, fix: str, word: str, alarm_frame: bool
) -> tuple[float | None, float | None, bool, frozenset[Alarm], bool]:
    """(latitude, longitude, valid, alarms, motion) of a location frame (both location readers)."""
    if lat == 0.0 and lon == 0.0:  # indoors: the watch has no fix and says so with 0,0
        latitude: float | None = None
        longitude: float | None = None
        valid = False
    else:
        latitude, longitude, valid = lat, lon, fix == "A"
    alarms, motion = _statuses.get(word) or _status(word)
    if alarm_frame and not alarms:
        alarms = _GENERAL
    return latitude, longitude, valid, alarms, motion


def _decode_position(uid: str, mtype: str, body: bytes, alarm_frame: bool) -> DeviceMessage:
    text = _text(body)
    match = (_ASCII_POSITION_RE if text.isascii() else _POSITION_RE).fullmatch(text)
    if match is None:
        raise DecodeError(f"malformed {mtype} location")
    (date, clock, fix, lat_s, ns, lon_s, ew, speed, course, alt, sats, rssi, battery, steps, rolls, word,
     tail) = match.groups()  # fmt: skip
    lat = _coordinate(lat_s, ns, "S", 90.0, "latitude")
    lon = _coordinate(lon_s, ew, "W", 180.0, "longitude")
    latitude, longitude, valid, alarms, motion = _fix_and_status(lat, lon, fix, word, alarm_frame)
    extras = _status_extras(mtype, word, rssi, rolls, motion)
    cells, wifi, accuracy = _NO_NETWORK if tail is None else _network(tail, extras)
    return _location_message(
        uid, _fix_time(date, clock), latitude, longitude, valid, alarms,
        (speed, course, alt, sats, battery, steps), accuracy, cells, wifi, extras,
    )  # fmt: skip


def _status_extras(mtype: str, word: str, rssi: str, rolls: str, motion: bool) -> dict[str, ExtraValue]:
    """A location frame's extras before its network part (both location readers)."""
    extras: dict[str, ExtraValue] = {"type": mtype, "status": word}
    if rssi:
        extras["rssi"] = small_int(rssi)
    if rolls:
        extras["rolls"] = small_int(rolls)
    if motion:
        extras["motion"] = True
    return extras


def _location_message(
    uid: str,
    time: datetime | None,
    latitude: float | None,
    longitude: float | None,
    valid: bool,
    alarms: frozenset[Alarm],
    numbers: tuple[str, str, str, str, str, str],
    accuracy: float | None,
    cells: tuple[CellTower, ...],
    wifi: tuple[WifiAccessPoint, ...],
    extras: dict[str, ExtraValue],
) -> DeviceMessage:
    """A location frame's message (both location readers); ``numbers`` are its speed, course, altitude,
    satellites, battery and steps fields as sent (empty: unknown)."""
    speed, course, alt, sats, battery, steps = numbers
    level = float(battery) if battery else None
    return DeviceMessage(  # positional: see base.MESSAGE_FIELDS
        uid, PROTOCOL, time, time is not None,  # unique_id, protocol, time, time_is_local
        latitude, longitude, valid,
        float(speed) if speed else None, float(course) if course else None,  # speed_kmh, course_deg
        float(alt) if alt else None, accuracy, None,  # altitude_m, accuracy_m, hdop
        small_int(sats) if sats else None,  # satellites
        level if level is None or level <= 100.0 else None, None,  # battery_pct, charging
        small_int(steps) if steps else None,  # steps
        None, None, None, None, None,  # heart_rate_bpm, spo2_pct, temperature_c, systolic/diastolic_mmhg
        alarms, cells, wifi, extras,
    )  # fmt: skip


def common_position(uid: str, mtype: str, values: list[str]) -> DeviceMessage | None:
    """The usual location frame, which ``watch.COMMON_RE`` has already checked whole, read field by field.

    ``values`` are the frame's comma-separated fields (``values[0]`` is the header and type): ASCII,
    every field the shape ``_POSITION`` wants, and a network tail that is absent, only zeros, or one
    decimal cell (what ``_decimal_cells`` reads). So this is ``_decode_position`` without its checks,
    giving the same message; ``None`` (out-of-range coordinates) sends the frame down the general path,
    which says why. Most of a location frame's time went into matching and checking, hence this path.
    """
    (date, clock, fix, lat_s, ns, lon_s, ew, speed, course, alt, sats, rssi, battery, steps, rolls,
     word) = values[1:17]  # fmt: skip
    lat = float(lat_s)
    if ns == "S":
        lat = -abs(lat)
    lon = float(lon_s)
    if ew == "W":
        lon = -abs(lon)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    # AL, AL_LTE, ALCUSTOMER1: an alarm frame always raises one.
    latitude, longitude, valid, alarms, motion = _fix_and_status(lat, lon, fix, word, mtype[0] == "A")
    extras = _status_extras(mtype, word, rssi, rolls, motion)
    cells: tuple[CellTower, ...] = ()
    if len(values) > 23 and values[17] == "1":  # count, TA, MCC, MNC, LAC, CID, signal [, Wi-Fi count]
        mcc, mnc, lac, cid, signal = values[19:24]
        cells = (
            CellTower(
                small_int(mcc) if mcc else 0,
                small_int(mnc) if mnc else 0,
                int(lac),
                int(cid),
                small_int(signal) if signal and signal != "-" else None,
            ),
        )
    time = None
    ymd = _dates.get(date) or _day(date)
    if ymd is not None:
        two = _TWO_DIGITS
        try:
            time = datetime(ymd[0], ymd[1], ymd[2], two[clock[:2]], two[clock[2:4]], two[clock[4:]], 0, UTC)
        except ValueError:
            pass
    return _location_message(
        uid, time, latitude, longitude, valid, alarms, (speed, course, alt, sats, battery, steps), None,
        cells, (), extras,
    )  # fmt: skip


def location(uid: str, mtype: str, body: bytes) -> Output:
    return (_decode_position(uid, mtype, body, alarm_frame=False),), None


def alarm(uid: str, mtype: str, body: bytes) -> Output:
    try:
        found = _decode_position(uid, mtype, body, alarm_frame=True)
    except DecodeError as exc:
        # The watch only sends AL when something happened: a body we cannot read still raises the
        # alarm (and gets its reply, else the watch resends it forever).
        found = message(uid, mtype, alarms=_GENERAL, extras={"malformed": str(exc)})
    return (found,), "AL"


def heart(uid: str, mtype: str, body: bytes) -> Output:
    values = fields(body)
    if not values or not values[0]:
        return NOTHING
    return (message(uid, mtype, heart_rate_bpm=_vital("heart rate", values[0])),), None


def blood_pressure(uid: str, mtype: str, body: bytes) -> Output:
    values = fields(body)
    if len(values) < 2:
        return NOTHING
    systolic = _vital("systolic pressure", values[0])
    diastolic = _vital("diastolic pressure", values[1])
    # bphrt adds the heart rate (and empty fields after it)
    rate = _vital("heart rate", values[2]) if len(values) > 2 and values[2] else None
    found = message(uid, mtype, systolic_mmhg=systolic, diastolic_mmhg=diastolic, heart_rate_bpm=rate)
    return (found,), None


def oxygen(uid: str, mtype: str, body: bytes) -> Output:
    values = fields(body)
    if len(values) < 2 or not values[1]:
        return NOTHING
    spo2 = _vital("SpO2", values[1])
    if spo2 > 100:
        raise DecodeError(f"SpO2 {values[1]!r} out of range")
    return (message(uid, mtype, spo2_pct=spo2),), None


def _temperature_value(value: str) -> float:
    if not _TEMPERATURE_RE.fullmatch(value):
        raise DecodeError(f"invalid temperature {value[:20]!r}")
    return float(value)


def temperature(uid: str, mtype: str, body: bytes) -> Output:
    values = fields(body)
    if not values or not values[0]:
        return NOTHING
    return (message(uid, mtype, temperature_c=_temperature_value(values[0])),), None


def body_temperature(uid: str, mtype: str, body: bytes) -> Output:
    values = fields(body)
    if len(values) < 2 or not values[1]:
        return NOTHING
    extras: dict[str, ExtraValue] = {"temperature_flag": values[0]}
    return (message(uid, mtype, temperature_c=_temperature_value(values[1]), extras=extras),), None
