"""H02 at the byte level: cutting a connection's stream into frames, and decoding binary ``$`` frames.

Also the facts both H02 forms share (status word, fix time), so that :mod:`.h02` (text frames and the
public entry points) builds on this module and not the other way round.

Spec source: Traccar's ``H02FrameDecoder`` and ``H02ProtocolDecoder.decodeBinary`` (Apache-2.0), summarised
in section 4.4 of ``shared/protocols/README.md``. Binary layout after the ``$`` marker, BCD unless noted
(byte offsets for a 10-digit id; a 42-byte frame carries a 15-digit IMEI in 8 bytes, shifting the rest by 3)::

    1  id (5 bytes, 10 digits)       6  hhmmss          9  ddmmyy       12 latitude DDMMmmmm
    16 battery (binary, see below)   17 longitude DDDMMmmmm + flags nibble (bit1 valid, bit2 N, bit3 E)
    22 speed (3 digits, knots) + course (3 digits)                      25 status (uint32, active-low)

What follows the status (3 more bytes in a 32-byte frame, 16 or 19 in the 45/48-byte forms: alarm flag,
mileage, MCC/MNC/LAC/CID) is not decoded: Traccar ignores it and no documented layout was found.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from geosentinel.model import Alarm, DeviceMessage, ExtraValue
from geosentinel.protocols.base import DecodeError, DecodeResult, FrameTooLarge

PROTOCOL = "h02"
KNOTS_TO_KMH = 1.852
LONG_ID_LENGTH = 42  # Traccar: only a 42-byte frame carries a 15-digit IMEI

# ---------------------------------------------------------------------------------------------------------
# Framing (both forms)

BINARY_LENGTHS = (32, 42, 45, 48)
_PEEK = 6  # '$' and the 5 id bytes of the frame that follows: proof of where a binary frame ends
_TEXT_HEAD = re.compile(rb"\*[A-Za-z]{2},")
_MARKER = re.compile(rb"[*$]")
# A whole text frame as _text_cut finds it: a text head, no other marker, the first '#'.
_TEXT_FRAME = re.compile(rb"\*[A-Za-z]{2},[^*$#]*+#")
# What the framer found at a marker: a frame ending at the index, garbage up to the index, or too little data.
_FRAME, _SKIP, _WAIT = 0, 1, 2
_Cut = tuple[int, int]


class H02Framer:
    """Cuts an H02 connection's bytes into text frames (``*`` … ``#``) and binary frames (``$``, fixed size).

    A binary frame has no terminator and no length field, and devices use 32, 42, 45 or 48 bytes. The
    length is, in order of trust: the one given here (Traccar's ``h02.messageLength``); the one after which
    the same device's next frame starts; the one learned earlier on this connection; or, for the first
    frame, the size of a read that holds exactly one frame (Traccar's rule: devices write one frame per
    segment). Until one of these is known the framer waits, keeping at most 54 bytes.
    """

    def __init__(self, max_frame: int = 1024, binary_length: int | None = None) -> None:
        if max_frame < BINARY_LENGTHS[-1] + _PEEK:
            raise ValueError(f"max_frame must be at least {BINARY_LENGTHS[-1] + _PEEK}")
        if binary_length is not None and binary_length not in BINARY_LENGTHS:
            raise ValueError(f"binary_length must be one of {BINARY_LENGTHS}")
        self.max_frame = max_frame
        self.skipped = 0
        self._buffer = b""
        self._fixed = binary_length
        self._learned: int | None = None
        self._error: FrameTooLarge | None = None

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        read_start = len(self._buffer)
        buf = self._buffer + data if self._buffer else bytes(data)
        if not read_start:
            # The usual read, whole text frames back to back: one pass cuts them all, as the loop below would
            # (the frames tile the read only if nothing between them was garbage or binary).
            frames: list[bytes] = _TEXT_FRAME.findall(buf)
            if sum(map(len, frames)) == len(buf):
                self._buffer = b""
                return frames
        frames = []
        pos = 0
        while pos < len(buf):
            marker = _MARKER.search(buf, pos)
            start = len(buf) if marker is None else marker.start()
            self._skip(buf, pos, start)
            pos = start
            if marker is None:
                break
            if buf[pos] == 0x2A:
                kind, end = self._text_cut(buf, pos)
            else:
                kind, end = self._binary_cut(buf, pos, read_start)
            if kind == _WAIT:
                break
            if kind == _FRAME:
                frames.append(buf[pos:end])
            else:
                self._skip(buf, pos, end)
            pos = end
        self._buffer = buf[pos:]
        if len(self._buffer) > self.max_frame:
            size, self._buffer = len(self._buffer), b""
            error = FrameTooLarge(f"H02 frame longer than {self.max_frame} bytes ({size} without its '#')")
            if not frames:
                raise error
            self._error = error  # hand over the frames completed by this read first
        return frames

    def _skip(self, buf: bytes, start: int, end: int) -> None:
        """Count dropped bytes, except line breaks: some devices end every frame with CR LF."""
        if end > start:
            dropped = buf[start:end]
            self.skipped += len(dropped) - dropped.count(b"\r") - dropped.count(b"\n")

    def _text_cut(self, buf: bytes, pos: int) -> _Cut:
        if len(buf) - pos < 4:
            return _WAIT, pos
        if _TEXT_HEAD.match(buf, pos) is None:
            return _SKIP, pos + 1
        hash_at = buf.find(b"#", pos + 4)
        # A marker before the '#' starts another frame: what precedes it was a fragment. (So a '$' or '*'
        # inside an SMS text would cut it; no such frame is known, and garbage must not swallow frames.)
        marker = _MARKER.search(buf, pos + 1, len(buf) if hash_at < 0 else hash_at)
        if marker is not None:
            return _SKIP, marker.start()
        return (_WAIT, pos) if hash_at < 0 else (_FRAME, hash_at + 1)

    def _binary_cut(self, buf: bytes, pos: int, read_start: int) -> _Cut:
        # Id, time, date and latitude are BCD (a 15-digit IMEI has one free pad nibble): a '$' followed
        # by anything else starts no frame.
        head = buf[pos + 1 : pos + 16].hex()
        id_digits, rest = head[:15], head[16:]
        if (id_digits and not id_digits.isdigit()) or (rest and not rest.isdigit()):
            return _SKIP, pos + 1
        length = self._binary_length(buf, pos, len(buf) - pos, read_start)
        return (_WAIT, pos) if length is None else (_FRAME, pos + length)

    def _binary_length(self, buf: bytes, pos: int, avail: int, read_start: int) -> int | None:
        if self._fixed is not None:
            return self._fixed if avail >= self._fixed else None
        for length in BINARY_LENGTHS:
            if avail < length + _PEEK:
                break
            if _followed_by_same_device(buf, pos, length):
                self._learned = length
                return length
        else:
            return self._learned or BINARY_LENGTHS[0]  # nothing recognisable follows: Traccar's default
        # `length` is the shortest candidate not yet ruled out by what follows it.
        if self._learned is not None and self._learned >= length:
            return self._learned if avail >= self._learned else None
        if pos >= read_start and avail in BINARY_LENGTHS and avail >= length:
            self._learned = avail
            return avail
        return None


def _followed_by_same_device(buf: bytes, pos: int, length: int) -> bool:
    after = pos + length
    if buf[after] == 0x24:
        return buf[after + 1 : after + 6] == buf[pos + 1 : pos + 6]
    return _TEXT_HEAD.match(buf, after) is not None


# ---------------------------------------------------------------------------------------------------------
# Shared facts and binary frames

# Status word bits are active-low: a cleared bit raises the alarm.
_ALARM_BITS = (
    (1 << 0, Alarm.VIBRATION),
    (1 << 1, Alarm.SOS),
    (1 << 18, Alarm.SOS),
    (1 << 2, Alarm.OVERSPEED),
    (1 << 19, Alarm.POWER_CUT),
)
_ALARM_MASK = sum(bit for bit, _ in _ALARM_BITS)
_IGNITION_BIT = 1 << 10
NO_ALARMS: frozenset[Alarm] = frozenset()
StatusFacts = tuple[str, bool, frozenset[Alarm]]
_STATUS = re.compile(r"[0-9A-Fa-f]{8}")
_STATUS_CACHE: dict[str, StatusFacts] = {}
_STATUS_CACHE_SIZE = 1024

_SHORT_HEAD = 12  # hex digits before the time: '$' and a 10-digit id
_LONG_HEAD = 18  # '$' and 8 id bytes (15 digits and a pad nibble)
_BODY_NIBBLES = 46  # time .. status, in hex digits


def status_of(status: int) -> StatusFacts:
    """(the word as 8 upper-case hex digits, ignition, alarms) of a status word.

    Traccar keeps only the first alarm found (vibration before SOS); a bracelet may well be shaken while
    its SOS button is held, so every alarm whose bit is cleared is reported.
    """
    ignition = bool(status & _IGNITION_BIT)
    if status & _ALARM_MASK == _ALARM_MASK:
        return f"{status:08X}", ignition, NO_ALARMS
    alarms = frozenset(alarm for bit, alarm in _ALARM_BITS if not status & bit)
    return f"{status:08X}", ignition, alarms


def status_word(word: str) -> StatusFacts | None:
    """The facts of a status word, or ``None`` if ``word`` is not 8 hex digits.

    Memoised: a device repeats the same few words, and this halves the cost of a V1 frame's status.
    """
    facts = _STATUS_CACHE.get(word)
    if facts is None and _STATUS.fullmatch(word) is not None:
        if len(_STATUS_CACHE) >= _STATUS_CACHE_SIZE:
            _STATUS_CACHE.clear()
        facts = _STATUS_CACHE[word] = status_of(int(word, 16))
    return facts


def fix_time(ddmmyy: str, hhmmss: str) -> datetime | None:
    """The device's ``DDMMYY`` + ``HHMMSS`` as a UTC-tagged datetime; ``None`` when either is empty.

    Out-of-range minutes or seconds (a real NBR frame says ``160169``) roll over as in Traccar's lenient
    calendar rather than losing the message.
    """
    if not ddmmyy or not hhmmss or ddmmyy == "000000":
        return None
    both = ddmmyy + hhmmss
    if not (len(ddmmyy) == len(hhmmss) == 6 and both.isdigit() and both.isascii()):
        raise DecodeError(f"invalid date/time {ddmmyy[:8]!r} {hhmmss[:8]!r}")
    date, clock = int(ddmmyy), int(hhmmss)
    day, month, year = date // 10000, date // 100 % 100, 2000 + date % 100
    hour, minute, second = clock // 10000, clock // 100 % 100, clock % 100
    try:
        return datetime(year, month, day, hour, minute, second, 0, UTC)
    except ValueError:
        pass
    try:
        midnight = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        raise DecodeError(f"invalid date {ddmmyy!r}") from None
    if hour > 23:
        raise DecodeError(f"invalid time {hhmmss!r}")
    return midnight + timedelta(hours=hour, minutes=minute, seconds=second)


def battery_byte(value: int, extras: dict[str, ExtraValue]) -> float | None:
    """Battery percent from the binary battery byte (Traccar's mapping); ``None`` when absent.

    0xF1-0xF6 is a 1-6 level on an unknown scale: Traccar reports it as 1-6 %, which would raise false
    low-battery alerts, so it goes to ``extras["battery_level"]`` instead.
    """
    if value == 0:
        return None
    if value <= 3:
        return float((value - 1) * 10)
    if value <= 6:
        return float((value - 1) * 20)
    if value <= 100:
        return float(value)
    if 0xF1 <= value <= 0xF6:
        extras["battery_level"] = value - 0xF0
    return None


def decode_binary(frame: bytes) -> DecodeResult:
    """Decode one ``$`` frame (32, 42, 45 or 48 bytes; only the first 29 or 32 carry decoded fields)."""
    head = _LONG_HEAD if len(frame) == LONG_ID_LENGTH else _SHORT_HEAD
    if len(frame) * 2 < head + _BODY_NIBBLES:
        raise DecodeError(f"binary frame too short ({len(frame)} bytes)")
    text = frame.hex()
    device_id = text[2:17] if head == _LONG_HEAD else text[2:12]
    bcd = text[head : head + 20] + text[head + 22 : head + 31] + text[head + 32 : head + 38]
    if not (device_id.isdigit() and bcd.isdigit()):
        raise DecodeError("binary frame has non-BCD digits in its id, time or position")
    time = fix_time(text[head + 6 : head + 12], text[head : head + 6])
    flags = int(text[head + 31], 16)
    latitude: float | None = _binary_coordinate(text[head + 12 : head + 20], 2, flags & 0x04, 90.0)
    longitude: float | None = _binary_coordinate(text[head + 22 : head + 31], 3, flags & 0x08, 180.0)
    extras: dict[str, ExtraValue] = {}
    battery = battery_byte(frame[head // 2 + 10], extras)
    extras["status"], extras["ignition"], alarms = status_of(int(text[head + 38 : head + 46], 16))
    valid = bool(flags & 0x02)
    if latitude == 0.0 and longitude == 0.0:
        latitude = longitude = None
        valid = False
    message = DeviceMessage(
        unique_id=device_id,
        protocol=PROTOCOL,
        time=time,
        time_is_local=time is not None,
        latitude=latitude,
        longitude=longitude,
        valid=valid,
        speed_kmh=round(int(text[head + 32 : head + 35]) * KNOTS_TO_KMH, 3),
        course_deg=float(int(text[head + 35 : head + 38])),
        battery_pct=battery,
        alarms=alarms,
        extras=extras,
    )
    return DecodeResult(messages=(message,), device_id=device_id)


def _binary_coordinate(digits: str, degree_digits: int, positive: int, limit: float) -> float:
    """``D..DMMmmmm`` (minutes with 4 implied decimals) to signed degrees."""
    value = int(digits[:degree_digits]) + int(digits[degree_digits:]) / 600_000
    if value > limit:
        raise DecodeError(f"binary coordinate {digits} out of range")
    return round(value if positive else -value, 6)
