"""GT06 / Concox binary protocol over TCP, default port 5023.

Who sends it: Concox trackers and wearables (GT06, GT06N, GT02, GK310, GT300, AT4, JM-series) and the
countless clones that copied their protocol. Spec source: Traccar's ``Gt06ProtocolDecoder.java``,
``Gt06FrameDecoder.java`` and ``Gt06ProtocolEncoder.java`` (Apache-2.0), summarised in section 4.2 of
``shared/protocols/README.md``, and Concox's published GT06N protocol notes for the command texts.

A frame is ``78 78 LL <type> <content> <serial:2> <crc:2> 0D 0A`` (1-byte length) or ``79 79 LLLL ...``
(2-byte length); the length counts type + content + serial + CRC. The CRC (CRC-ITU / X-25, over length..
serial) is checked but not enforced: real devices send wrong ones, so a mismatch only sets
``extras["crc_ok"] = False``. Wi-Fi packets 0x17/0x69 are the exception: their length byte is the
access-point count and they carry neither serial nor CRC.

The first frame of a connection is the login (0x01, BCD IMEI); until then a frame has no device to belong
to and :func:`decode` raises ``DecodeError("login first")`` (the gateway counts and ignores it, as Traccar
does). Data packets are acknowledged by echoing their type and serial; packet bodies are decoded in
:mod:`geosentinel.protocols.gt06_packets`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from geosentinel.protocols import gt06_packets as packets
from geosentinel.protocols.base import (
    UNKNOWN_DEVICE_STATUS,
    CommandKind,
    DecodeError,
    DecodeResult,
    DeviceCommand,
    FrameTooLarge,
    ProtocolSpec,
    Session,
    UnsupportedCommand,
)
from geosentinel.protocols.codec import bcd_digits, crc_itu, crc_itu_is

SPEC = ProtocolSpec(
    name="gt06",
    transport="tcp",
    default_port=5023,
    description="GT06 / Concox binary protocol (GT06N, GK310, GT300, AT4 and clones)",
    binary=True,
)

# Bounds the unfinished frame a connection may hold: the largest Wi-Fi frame (255 access points and
# 255 cells) is 3,076 bytes; a 0x7979 frame declaring more is refused with FrameTooLarge.
DEFAULT_MAX_FRAME = 4096
_MIN_MAX_FRAME = 64
_HEAD_SHORT = b"\x78\x78"
_HEAD_LONG = b"\x79\x79"
_TRAILER = b"\r\n"
_LOGIN = 0x01
_STATUS = 0x13
_TIME_REQUEST = 0x8A
_SERVER_COMMAND = 0x80
# A 0x13 declaring 8 bytes that really has 10 (Traccar issue #1727).
_SHORT_STATUS_LENGTH = 8
# Later frames a framer checks while waiting on a doubtful start (see Gt06Framer._rescue).
_RESCUE_LIMIT = 16
# By (length byte << 8 | protocol number): 1 for a 0x7878 frame whose length byte is its real length (not
# a Wi-Fi count, not Traccar issue #1727's short 0x13) and big enough; such frames take the framer's
# inline path, which applies when any short frame fits the limit (length byte 255: 260 bytes).
_PLAIN_SHORT = bytes(
    length >= 5
    and ptype not in packets.WIFI_TYPES
    and not (ptype == _STATUS and length == _SHORT_STATUS_LENGTH)
    for length in range(256)
    for ptype in range(256)
)
_NO_PLAIN = bytes(256 * 256)
_INNER_HEAD = re.compile(rb"xx|yy")  # a start marker (78 78 or 79 79) inside a frame: see _inner_start
_SHORT_MAX = 255 + 5

# ---------------------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------------------
# Framing

_NEED_MORE = 0
_FALSE_START = -1
_OVERSIZE = -2


def _frame_end(buf: bytes | bytearray, i: int, n: int, max_frame: int) -> int:
    """End (exclusive) of the frame starting at ``i``, or _NEED_MORE / _FALSE_START / _OVERSIZE."""
    if n - i < 5:
        return _NEED_MORE
    if buf[i] == 0x78:
        length = buf[i + 2]
        ptype = buf[i + 3]
        if ptype in packets.WIFI_TYPES:
            return _wifi_end(buf, i, n, max_frame)
        if ptype == _STATUS and length == _SHORT_STATUS_LENGTH:
            length += 2
        total = length + 5
    else:
        length = buf[i + 2] << 8 | buf[i + 3]
        total = length + 6
    if length < 5:
        return _FALSE_START
    if total > max_frame:
        return _OVERSIZE
    end = i + total
    if end > n:
        return _NEED_MORE
    return end if buf[end - 2] == 0x0D and buf[end - 1] == 0x0A else _FALSE_START


def _wifi_end(buf: bytes | bytearray, i: int, n: int, max_frame: int) -> int:
    total = packets.wifi_frame_size(buf, i, n)
    if total == 0:
        return _NEED_MORE if n - i < max_frame else _OVERSIZE
    if total > max_frame:
        return _OVERSIZE
    end = i + total
    if end > n:
        return _NEED_MORE
    return end if buf[end - 2] == 0x0D and buf[end - 1] == 0x0A else _FALSE_START


def _find_head(buf: bytes | bytearray, pos: int, end: int) -> int:
    short = buf.find(_HEAD_SHORT, pos, end)
    long = buf.find(_HEAD_LONG, pos, end)
    if short < 0 or 0 <= long < short:
        return long
    return short


class _Heads:
    """The next start markers at or after a position, each ``find`` reused until passed (so a read
    holding many garbage gaps is scanned once, not once per gap)."""

    __slots__ = ("_long", "_short", "_work")

    def __init__(self, work: bytes | bytearray) -> None:
        self._work = work
        self._short = self._long = -2  # -2: not searched yet; -1: none left

    def next(self, pos: int) -> int:
        if self._short == -2 or 0 <= self._short < pos:
            self._short = self._work.find(_HEAD_SHORT, pos)
        if self._long == -2 or 0 <= self._long < pos:
            self._long = self._work.find(_HEAD_LONG, pos)
        short, long = self._short, self._long
        if short < 0 or 0 <= long < short:
            return long
        return short


def _crc_ok(buf: bytes | bytearray, start: int, end: int) -> bool:
    if buf[start] == 0x78 and buf[start + 3] in packets.WIFI_TYPES:
        return False  # no CRC: no evidence either way
    return crc_itu(buf[start + 2 : end - 4]) == (buf[end - 4] << 8 | buf[end - 3])


def _inner_start(buf: bytes | bytearray, start: int, end: int, max_frame: int) -> int:
    """A frame inside the cut one that is the real one: garbage "78 78 LL" whose length happens to end
    on a real frame's trailer swallows it. Only the CRC can tell; -1 (keep the outer frame) otherwise.
    Real frames rarely contain a start marker, so this is two ``find`` calls per frame.
    """
    at = _find_head(buf, start + 2, end - 8)
    for _ in range(_RESCUE_LIMIT):
        if at < 0:
            return -1
        inner_end = _frame_end(buf, at, end, max_frame)
        if inner_end > 0 and _crc_ok(buf, at, inner_end):
            return -1 if _crc_ok(buf, start, end) else at
        at = _find_head(buf, at + 1, end - 8)
    return -1


class Gt06Framer:
    """Cuts a GT06 byte stream into frames by their declared length, checking the ``0D 0A`` trailer.

    A start marker found in garbage declares a length that ends without a trailer: it is dropped one
    byte at a time until a real frame lines up. While such a doubtful start waits for bytes that may never
    come, a later complete frame proves it false, so no good frame is held hostage. Only a new read that
    contains a line feed can complete a frame, so only such reads look ahead (which keeps byte-by-byte
    feeding linear).
    """

    __slots__ = ("_buf", "max_frame", "skipped")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < _MIN_MAX_FRAME:
            raise ValueError(f"max_frame must be at least {_MIN_MAX_FRAME}")
        self.max_frame = max_frame
        self.skipped = 0
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        frames: list[bytes] = []
        if buf:  # cut from a bytes copy of what is pending (at most max_frame): frames are its slices
            buf += data
            del buf[: self._cut(bytes(buf), frames, b"\n" in data)]
            return frames
        work = data if type(data) is bytes else bytes(data)
        pos = self._cut(work, frames, b"\n" in data)
        if pos < len(work):
            buf += work[pos:]
        return frames

    def _cut(self, work: bytes, frames: list[bytes], rescue: bool) -> int:
        """Append the complete frames of ``work`` to ``frames``; the offset of what must be kept."""
        n = len(work)
        pos = 0
        max_frame = self.max_frame
        heads = None
        plain = _PLAIN_SHORT if max_frame >= _SHORT_MAX else _NO_PLAIN
        inner_head = _INNER_HEAD.search
        while pos < n:
            # The usual frame first, inline: 78 78, a plain length and type (_PLAIN_SHORT), 0D 0A where the
            # length says, no start marker inside (see _inner_start). Anything else takes the general steps.
            # Indexing and one search: bytes methods with bounds (find, startswith) cost twice as much here.
            end = pos + work[pos + 2] + 5 if n - pos >= 5 else n + 1
            if (
                end <= n
                and work[pos] == 0x78
                and work[pos + 1] == 0x78
                and work[end - 2] == 0x0D
                and work[end - 1] == 0x0A
                and plain[work[pos + 2] << 8 | work[pos + 3]]
                and inner_head(work, pos + 2, end - 8) is None
            ):
                frames.append(work[pos:end])
                pos = end
                continue
            if work.startswith((_HEAD_SHORT, _HEAD_LONG), pos):
                start = pos
            else:
                heads = heads or _Heads(work)
                start = heads.next(pos)
            if start < 0:
                keep = 1 if work[n - 1] in (0x78, 0x79) else 0
                self.skipped += n - keep - pos
                return n - keep
            self.skipped += start - pos
            pos = start
            end = _frame_end(work, pos, n, max_frame)
            if end > 0:
                inner = (
                    _inner_start(work, pos, end, max_frame)
                    if work.find(_HEAD_SHORT, pos + 2, end - 8) >= 0
                    or work.find(_HEAD_LONG, pos + 2, end - 8) >= 0
                    else -1
                )
                if inner > 0:
                    self.skipped += inner - pos
                    pos = inner
                    continue
                frames.append(work[pos:end])
                pos = end
            elif end == _NEED_MORE:
                later = self._rescue(work, pos, n) if rescue else -1
                if later < 0:
                    return pos
                self.skipped += later - pos
                pos = later
            elif end == _OVERSIZE:
                self._drop_all(work, pos)
                raise FrameTooLarge(f"GT06 frame larger than {max_frame} bytes")
            else:
                self.skipped += 1
                pos += 1
        return pos

    def _rescue(self, work: bytes | bytearray, pos: int, n: int) -> int:
        """Start of a later complete frame (the waiting start was garbage), or -1.

        "Complete" means a start marker whose declared length ends exactly on ``0D 0A``: inside a real
        frame's payload that takes four particular bytes at the right distance (about 1 in 4 billion),
        so it is strong evidence even without the CRC (which real devices get wrong).
        """
        at = pos + 1
        for _ in range(_RESCUE_LIMIT):
            at = _find_head(work, at, n)
            if at < 0:
                return -1
            if _frame_end(work, at, n, self.max_frame) > 0:
                return at
            at += 1
        return -1

    def _drop_all(self, work: bytes | bytearray, pos: int) -> None:
        """Forget everything after an oversize start, so the framer stays usable (and bounded)."""
        self.skipped += len(work) - pos
        self._buf = bytearray()


# ---------------------------------------------------------------------------------------------------------
# Decoding

_ACK = 1
_NO_REPLY = 0
_Entry = tuple[packets.Handler, int]

_HANDLERS: Mapping[int, _Entry] = {
    0x10: (packets.gps, _ACK),
    0x12: (packets.gps_lbs, _ACK),
    0x13: (packets.status, _ACK),
    0x15: (packets.text_reply, _NO_REPLY),
    0x16: (packets.gps_lbs_status, _ACK),
    0x19: (packets.lbs_status, _ACK),
    0x21: (packets.text_reply, _NO_REPLY),
    0x22: (packets.gps_lbs_acc, _ACK),
    0x23: (packets.heartbeat, _ACK),
    0x24: (packets.multi_lbs, _ACK),
    0x26: (packets.gps_lbs_status, _ACK),
    0x27: (packets.gps_lbs_status, _ACK),
    0x28: (packets.multi_lbs, _ACK),
    0x2C: (packets.multi_lbs, _ACK),
    0x2E: (packets.multi_lbs, _ACK),
    0x94: (packets.information, _NO_REPLY),
    0x95: (packets.alarm, _ACK),
    0xA0: (packets.gps_lbs_acc, _ACK),
    0xA1: (packets.multi_lbs, _ACK),
}
_NO_MESSAGES: tuple[()] = ()
_STANDARD = packets.STANDARD
_WIFI_TYPES = packets.WIFI_TYPES
_ACK_LONG = tuple(bytes((0x00, 0x05, t)) for t in range(256))
_ACK_SHORT_FRAME = struct.Struct(">HBB2sHH")  # 7878, 05, type, serial, crc, 0D0A
# Every data packet is acked, so the short ack's CRC (over 05, type, serial) comes from tables: a CRC over
# messages of one length is affine, crc(a ^ b ^ c) = crc(a) ^ crc(b) ^ crc(c) for three messages, so the
# CRCs of "05 type 00 00", "00 00 high 00" and "00 00 00 low" combine into it (a third of crc_itu's cost).
_ACK_CRC_TYPE = tuple(crc_itu(bytes((0x05, t, 0, 0))) for t in range(256))
_ACK_CRC_HIGH = tuple(crc_itu(bytes((0, 0, b, 0))) for b in range(256))
_ACK_CRC_LOW = tuple(crc_itu(bytes((0, 0, 0, b))) for b in range(256))
_ACK_LONG_FRAME = struct.Struct(">HHB2sHH")  # 7979, 0005, type, serial, crc, 0D0A

_DECODE_FAILURES = (IndexError, struct.error, ValueError, OverflowError)


def decode(frame: bytes, session: Session, now: datetime) -> DecodeResult:
    """Decode one whole frame (as :class:`Gt06Framer` cuts them). Raises :class:`DecodeError` if malformed."""
    n = len(frame)
    if n < 10 or frame[n - 2] != 0x0D or frame[n - 1] != 0x0A:
        raise DecodeError("not a GT06 frame (too short or no 0D 0A trailer)")
    head = frame[0]
    short = head == 0x78 and frame[1] == 0x78
    if short and frame[3] in _WIFI_TYPES:
        return _decode_wifi(frame, session)
    if short and frame[2] + 5 == n:  # the usual short frame, unwrapped inline
        ptype, body = frame[3], frame[4 : n - 6]
    else:
        head, ptype, body = _unwrap(frame, n)
    serial = frame[n - 6 : n - 4]
    extras: packets.Extras = {"serial": serial[0] << 8 | serial[1]}
    if not crc_itu_is(frame[2 : n - 4], frame[n - 4], frame[n - 3]):
        extras["crc_ok"] = False
    if ptype == _LOGIN:
        return _login(body, head, serial, session)
    uid = session.unique_id
    if uid is None:
        raise DecodeError("login first: the connection has not sent its GT06 login packet")
    entry = _HANDLERS.get(ptype)
    if entry is None:
        if ptype == _TIME_REQUEST:
            return DecodeResult(_NO_MESSAGES, _time_reply(now), UNKNOWN_DEVICE_STATUS, None, uid)
        # A packet we do not read: ack it, so the device does not resend it forever.
        return DecodeResult(_NO_MESSAGES, _ack(head, ptype, serial), UNKNOWN_DEVICE_STATUS, None, uid)
    handler, reply_kind = entry
    profile = _STANDARD if session.model is None else packets.profile_for(session.model)
    try:
        message = handler(body, ptype, uid, profile, extras)
    except DecodeError:
        raise
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"malformed GT06 packet 0x{ptype:02X} ({len(body)}-byte body)") from exc
    reply = _ack(head, ptype, serial) if reply_kind == _ACK else b""
    # Positional (messages, reply, unknown_device_status, session, device_id): keywords cost more.
    return DecodeResult(
        (message,) if message is not None else _NO_MESSAGES, reply, UNKNOWN_DEVICE_STATUS, None, uid
    )


def _unwrap(frame: bytes, n: int) -> tuple[int, int, bytes]:
    """(start byte, protocol number, body between protocol number and serial) of a checked frame."""
    head = frame[0]
    if head == 0x78 and frame[1] == 0x78:
        declared = frame[2] + 5
        ptype = frame[3]
        if declared != n and not (ptype == _STATUS and frame[2] == _SHORT_STATUS_LENGTH and n == 15):
            raise DecodeError(f"GT06 length byte says {declared} bytes, frame has {n}")
        return head, ptype, frame[4 : n - 6]
    if head == 0x79 and frame[1] == 0x79:
        declared = (frame[2] << 8 | frame[3]) + 6
        if declared != n:
            raise DecodeError(f"GT06 length says {declared} bytes, frame has {n}")
        return head, frame[4], frame[5 : n - 6]
    raise DecodeError("not a GT06 frame (no 7878 or 7979 start)")


def _logged_in(session: Session) -> str:
    if session.unique_id is None:
        raise DecodeError("login first: the connection has not sent its GT06 login packet")
    return session.unique_id


def _ack(head: int, ptype: int, serial: bytes) -> bytes:
    """``78 78 05 <type> <serial> <crc> 0D 0A`` (``79 79 00 05 ...`` for a 0x7979 frame)."""
    if head == 0x78:
        crc = _ACK_CRC_TYPE[ptype] ^ _ACK_CRC_HIGH[serial[0]] ^ _ACK_CRC_LOW[serial[1]]
        return _ACK_SHORT_FRAME.pack(0x7878, 0x05, ptype, serial, crc, 0x0D0A)
    crc = crc_itu(_ACK_LONG[ptype] + serial)
    return _ACK_LONG_FRAME.pack(0x7979, 0x0005, ptype, serial, crc, 0x0D0A)


def _login(body: bytes, head: int, serial: bytes, session: Session) -> DecodeResult:
    if len(body) < 8:
        raise DecodeError(f"GT06 login too short ({len(body)}-byte body, needs an 8-byte IMEI)")
    try:
        digits = bcd_digits(body[:8])
    except ValueError:
        raise DecodeError(f"GT06 login IMEI is not BCD: {body[:8].hex()}") from None
    imei = digits[1:] if digits[0] == "0" else digits
    return DecodeResult(
        messages=_NO_MESSAGES,
        reply=_ack(head, _LOGIN, serial),
        session=Session(unique_id=imei, model=session.model),
        device_id=imei,
    )


def _time_reply(now: datetime) -> bytes:
    """``78 78 0B 8A YY MM DD hh mm ss 00 00 <crc> 0D 0A``: the current UTC time."""
    t = now.astimezone(UTC)
    core = bytes((0x0B, _TIME_REQUEST, t.year % 100, t.month, t.day, t.hour, t.minute, t.second, 0, 0))
    return _HEAD_SHORT + core + crc_itu(core).to_bytes(2, "big") + _TRAILER


def _decode_wifi(frame: bytes, session: Session) -> DecodeResult:
    uid = _logged_in(session)
    n = len(frame)
    if n < 16 or packets.wifi_frame_size(frame, 0, n) != n:
        raise DecodeError(f"GT06 Wi-Fi frame of {n} bytes does not match its access-point and cell counts")
    try:
        message = packets.wifi(frame, uid, {})
    except _DECODE_FAILURES as exc:
        raise DecodeError("malformed GT06 Wi-Fi packet") from exc
    # Traccar echoes the packet's BCD time in a frame without serial or CRC.
    reply = b"\x78\x78\x00" + frame[3:10] + _TRAILER
    return DecodeResult(messages=(message,), reply=reply, device_id=uid)


# ---------------------------------------------------------------------------------------------------------
# Commands: 0x80 packet = command length, 4-byte server flag, ASCII text (GT06N online commands)

_PHONE_RE = re.compile(r"\+?\d{3,20}")
_MIN_INTERVAL_S = 5
_MAX_INTERVAL_S = 18000
_MAX_SOS_NUMBERS = 3
_MAX_OFFSET_MIN = 12 * 60


def _locate(command: DeviceCommand) -> str:
    return "DWXX#"


def _interval(command: DeviceCommand) -> str:
    seconds = command.interval_s
    if seconds is None or not _MIN_INTERVAL_S <= seconds <= _MAX_INTERVAL_S:
        raise UnsupportedCommand(
            f"GT06 reporting interval must be {_MIN_INTERVAL_S}-{_MAX_INTERVAL_S} s, got {seconds}"
        )
    return f"TIMER,{seconds}#"


def _sos_numbers(command: DeviceCommand) -> str:
    numbers = command.phone_numbers
    if not numbers:
        return "SOS,D,1,2,3#"
    if len(numbers) > _MAX_SOS_NUMBERS:
        raise UnsupportedCommand(f"GT06 devices hold {_MAX_SOS_NUMBERS} SOS numbers, got {len(numbers)}")
    for number in numbers:
        if number and not _PHONE_RE.fullmatch(number):
            raise UnsupportedCommand(f"invalid SOS phone number {number!r}")
    return "SOS,A," + ",".join(numbers) + "#"


def _timezone(command: DeviceCommand) -> str:
    offset = command.utc_offset_min
    if offset is None or abs(offset) > _MAX_OFFSET_MIN or offset % 15:
        raise UnsupportedCommand(f"GT06 time zones are whole quarter hours within ±12 h, got {offset} min")
    hours, minutes = divmod(abs(offset), 60)
    return f"GMT,{'W' if offset < 0 else 'E'},{hours},{minutes}#"


_COMMANDS: Mapping[CommandKind, Callable[[DeviceCommand], str]] = {
    CommandKind.LOCATE: _locate,
    CommandKind.SET_INTERVAL: _interval,
    CommandKind.SET_SOS_NUMBERS: _sos_numbers,
    CommandKind.SET_TIMEZONE: _timezone,
}


def encode_command(command: DeviceCommand, session: Session, now: datetime) -> bytes:
    """A 0x80 server-command frame; the server flag is ``now`` in Unix seconds, echoed in the 0x15 reply."""
    text_of = _COMMANDS.get(command.kind)
    if text_of is None:
        raise UnsupportedCommand(f"GT06 devices have no {command.kind.value} command")
    return server_command(text_of(command), int(now.timestamp()) & 0xFFFFFFFF)


def server_command(text: str, server_flag: int = 0, serial: int = 0) -> bytes:
    """The 0x80 frame carrying ``text`` (ASCII, as the devices expect)."""
    try:
        payload = text.encode("ascii")
    except UnicodeEncodeError:
        raise UnsupportedCommand(f"GT06 command text must be ASCII: {text!r}") from None
    if len(payload) > 240:
        raise UnsupportedCommand(f"GT06 command text too long ({len(payload)} bytes)")
    content = bytes((4 + len(payload),)) + server_flag.to_bytes(4, "big") + payload
    core = bytes((len(content) + 5, _SERVER_COMMAND)) + content + serial.to_bytes(2, "big")
    return _HEAD_SHORT + core + crc_itu(core).to_bytes(2, "big") + _TRAILER
