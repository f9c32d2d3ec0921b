"""Senior smartwatch text protocol ("3G", "SG", "CS", "ZJ" watches), TCP, default port 5093.

Who sends it: the many white-label GPS watches for children and elderly people built on the same Chinese
firmware (SeTracker, "3G watch", Q50/Q90/D99 families, 4G LTE watches), whatever their brand.

Spec source: Traccar's ``WatchFrameDecoder.java``, ``WatchProtocolDecoder.java`` and
``WatchProtocolEncoder.java`` (Apache-2.0) with their tests, summarised in section 4.1 of the shared
protocol notes (``shared/protocols/README.md``).

A frame is ``[MM*ID*LLLL*CONTENT]``, or ``[MM*ID*NNNN*LLLL*CONTENT]`` with a sequence index (ZJ firmware):
``MM`` the vendor code, ``ID`` the device id (10 digits or an IMEI), ``LLLL`` the content length in hex,
which real watches often get wrong, so frames are cut at the closing bracket and the length is never
trusted. Binary payloads escape ``} [ ] , *`` as ``7D 01``..``7D 05``, so a raw ``]`` always ends a frame.

Every frame names its device, so no login is needed; the vendor code (and whether the watch uses the
index form) is remembered in :attr:`Session.dialect` as ``"3G"`` or ``"ZJ/indexed"`` for commands.
This module holds the framing, the dispatch table, keep-alives, media and commands; locations and vitals
are parsed in :mod:`geosentinel.protocols.watch_content`. The frames of a usual day (UD/AL locations with
at most one cell, LK keep-alives) are checked by one pattern and read by a shorter path (``COMMON_RE``),
which gives exactly what the general path gives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime

from geosentinel.model import Alarm, DeviceMessage, ExtraValue
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
from geosentinel.protocols.watch_content import (
    NOTHING,
    PROTOCOL,
    Handler,
    Output,
    alarm,
    blood_pressure,
    body_temperature,
    common_position,
    heart,
    location,
    message,
    oxygen,
    small_int,
    temperature,
    unescape_media,
)

SPEC = ProtocolSpec(
    name="watch",
    transport="tcp",
    default_port=5093,
    description=(
        "Senior and children's GPS smartwatches (3G/SG/CS/ZJ text protocol): "
        "positions, SOS/fall/removal alarms, heart rate, blood pressure, SpO2, temperature"
    ),
    binary=False,
)

# Voice (AMR) and camera (JPEG) frames are the large ones; JXTK exists to keep voice chunks small.
MAX_FRAME = 256 * 1024
DEFAULT_VENDOR = "CS"
INDEXED_SUFFIX = "/indexed"
# Traccar's encoder puts this fixed index in commands to watches that use the index form.
COMMAND_INDEX = "0001"

_OPEN, _CLOSE = b"[", b"]"
_VENDOR_RE = re.compile(rb"[0-9A-Za-z]{2}")
_ID_RE = re.compile(rb"[0-9A-Za-z]{1,32}")
_HEX4_RE = re.compile(rb"[0-9A-Fa-f]{4}")
# "[" MM "*" ID "*" [NNNN "*"] LLLL "*" TYPE, then "," or "]": the index is only taken when another
# 4-hex-digit field follows it, so a plain frame's length field is never mistaken for an index.
# Matched on the head of the frame decoded as Latin-1 (one character a byte, so positions are the same,
# and the pattern only admits ASCII): the fields come out as text with one decoding instead of four.
_HEADER_RE = re.compile(
    r"\[([0-9A-Za-z]{2})\*([0-9A-Za-z]{1,32})\*(?:([0-9A-Fa-f]{4})\*)?[0-9A-Fa-f]{4}\*"
    r"([0-9A-Za-z_]{1,24})(?=[,\]])"
)
_HEADER_MAX = 72  # the longest header the pattern admits (ZJ form, 32-char id, 24-char type) and "," or "]"
# LK,steps,rolls,battery[:extra][,...]: steps and battery must be counters, rolls is kept only if it is one.
_LINK_RE = re.compile(r"(\d{1,10}),(?:(\d{1,10})|[^,]*),(\d{1,10})(?::[^,]*)?(?:,.*)?", re.DOTALL)
_JPEG_START = b"\xff\xd8"
_MODEL_RE = re.compile(r"([0-9A-Za-z]{2})(/indexed)?")
_PHONE_RE = re.compile(r"\+?\d{3,20}")
_MAX_SOS_NUMBERS = 3
_MAX_INTERVAL_S = 86_400
_QUARTERS = {0: "", 15: ".25", 30: ".5", 45: ".75"}
_MIN_OFFSET_MIN, _MAX_OFFSET_MIN = -12 * 60, 14 * 60
# The frames most of a day's traffic is made of, checked whole by one pattern without groups (capturing
# groups cost more than the matching itself): a location (UD/AL family, the exact types HANDLERS sends to
# location/alarm) whose fields have _POSITION's shapes and whose network tail is absent, zeros or one
# decimal cell (numbers of at most 18 digits: int() stays fast and far from its limit); or an LK keep-alive
# with three counters. Fields are then cut with str.split. Any other frame, or one of these with a value out
# of range, takes the general path, which decodes all the same (tests hold the two paths to it).
# Possessive repeats (fields end at a comma: giving characters back never helps) match a third faster.
_UNUM_FAST = r"(?:[0-9]{1,10}+(?:\.[0-9]*+)?)?"
COMMON_RE = re.compile(
    r"\[[0-9A-Za-z]{2}\*[0-9A-Za-z]{1,32}+\*(?:[0-9A-Fa-f]{4}\*)?[0-9A-Fa-f]{4}\*"
    r"(?:(?:UD(?:_LTE|_WCDMA|2|3)?|AL(?:_LTE|CUSTOMER1)?|WT),"
    r"[0-9]{6},[0-9]{6},[AV],"
    r" *+-?[0-9]{1,3}+(?:\.[0-9]*+)?,[NS]?,"
    r" *+-?[0-9]{1,3}+(?:\.[0-9]*+)?,[EW]?,"
    rf"{_UNUM_FAST},{_UNUM_FAST},(?:-?[0-9]{{1,10}}+(?:\.[0-9]*+)?)?,"
    r"[0-9]{0,10}+,[0-9]{0,10}+,[0-9]{0,10}+,[0-9]{0,10}+,[0-9]{0,10}+,[0-9A-Fa-f]{1,8}+"
    r"(?:,(?:1,[^,]*+,[0-9]{0,18}+,[0-9]{0,18}+,[0-9]{1,18}+,[0-9]{1,18}+,-?[0-9]{0,18}+(?:,0?)?|[0,]*+))?"
    r"|LK,[0-9]{1,10}+,[0-9]{1,10}+,[0-9]{1,3}+)\]"
)
_LK_REPLY = b"0002*LK]"
_AL_REPLY = b"0002*AL]"
_NO_ALARMS: frozenset[Alarm] = frozenset()

# The length fields of replies and commands (all short), formatted once: formatting "04x" costs half as
# much as building the rest of an LK or AL reply.
_LENGTH_FIELDS = tuple(f"{size:04x}" for size in range(256))


class WatchFramer:
    """Cuts the byte stream at brackets: ``[`` opens a frame, the first ``]`` closes it.

    A ``[`` before the closing bracket means the frame in progress was cut short (a watch that rebooted
    mid-frame): it is dropped and the new ``[`` starts over, so garbage never swallows a good frame.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.skipped = 0
        # The unfinished frame at the end of the previous reads: it starts with its "[" and holds no other
        # bracket, so only new data is ever searched (a large frame in small pieces is scanned once).
        self._buffer = bytearray()
        self._oversize = False

    def feed(self, data: bytes) -> list[bytes]:
        if self._oversize:
            self._oversize = False
            self.skipped += len(data)
            raise FrameTooLarge(f"watch frame exceeds {self.max_frame} bytes")
        if type(data) is not bytes:  # frames are cut from data: they must be bytes whatever the caller sent
            data = bytes(data)
        if not self._buffer and data[:1] == _OPEN and data[-1:] == _CLOSE and len(data) <= self.max_frame:
            # The usual read, whole frames back to back ("[...][...]"): one split instead of two searches
            # a frame. As many "[" and "]" as pieces proves that no piece holds a bracket of its own.
            pieces = data[1:-1].split(b"][")
            if data.count(_OPEN) == len(pieces) == data.count(_CLOSE):
                return [data] if len(pieces) == 1 else [b"[" + piece + b"]" for piece in pieces]
        frames: list[bytes] = []
        start = self._finish(data, frames) if self._buffer else 0
        if start < 0:  # the frame in progress goes on
            if len(self._buffer) <= self.max_frame:
                return frames
            start, oversize = len(data), True
        else:
            start, oversize = self._cut(data, start, frames)
        rest = len(data) - start
        if oversize or rest > self.max_frame:
            self.skipped += len(self._buffer) + rest
            self._buffer.clear()
            if not frames:
                raise FrameTooLarge(f"watch frame exceeds {self.max_frame} bytes")
            self._oversize = True  # after handing out the good frames before it
            return frames
        if rest:
            self._buffer += data[start:]
        return frames

    def _finish(self, data: bytes, frames: list[bytes]) -> int:
        """Continue the frame in progress: where the cutting of ``data`` resumes, or -1 if it goes on."""
        buffer = self._buffer
        end = data.find(_CLOSE)
        restart = data.rfind(_OPEN, 0, len(data) if end < 0 else end)
        if restart >= 0:  # a new "[" before its end: the frame in progress was cut short
            self.skipped += len(buffer) + restart
            buffer.clear()
            return restart
        if end < 0 or len(buffer) + end + 1 > self.max_frame:
            buffer += data  # still unfinished, or too large (then all of data is dropped with it)
            return -1
        buffer += data[: end + 1]
        frames.append(bytes(buffer))
        buffer.clear()
        return end + 1

    def _cut(self, data: bytes, pos: int, frames: list[bytes]) -> tuple[int, bool]:
        """Append the whole frames of ``data[pos:]``: (start of what is left, frame too large).

        Each "]" ends a stretch of bytes; its frame starts at the stretch's last "[" (anything before was
        garbage or a frame cut short), and a stretch without "[" is garbage. Two C-level searches a frame.
        """
        find, rfind, limit = data.find, data.rfind, self.max_frame
        while (end := find(_CLOSE, pos)) >= 0:
            start = rfind(_OPEN, pos, end)
            if start < 0:
                self.skipped += end + 1 - pos
            else:
                if start != pos:
                    self.skipped += start - pos
                if end + 1 - start > limit:
                    return start, True
                frames.append(data[start : end + 1])
            pos = end + 1
        start = rfind(_OPEN, pos)
        if start < 0:
            start = len(data)
        self.skipped += start - pos
        return start, False


# ---------------------------------------------------------------------------------------------------------
# Keep-alives, media and acknowledgements (locations and vitals: watch_content)


def _link(uid: str, mtype: str, body: bytes) -> Output:
    # LK is the keep-alive: always answered, even when its optional counters are unreadable.
    try:
        match = _LINK_RE.fullmatch(body.decode("utf-8"))
    except UnicodeDecodeError:
        return (), "LK"
    if match is None:
        return (), "LK"
    steps, rolls, battery = match.groups()
    level = int(battery)
    if level > 100:
        return (), "LK"
    extras: dict[str, ExtraValue] = {} if rolls is None else {"rolls": int(rolls)}
    return (message(uid, mtype, battery_pct=float(level), steps=int(steps), extras=extras),), "LK"


def _init(uid: str, mtype: str, body: bytes) -> Output:
    return (), "INIT,1"


def _echo(uid: str, mtype: str, body: bytes) -> Output:
    return (), mtype


def _media(kind: str, size: int, **extras: ExtraValue) -> dict[str, ExtraValue]:
    return {"media": kind, "media_bytes": size, **extras}


def _voice(uid: str, mtype: str, body: bytes) -> Output:
    audio = unescape_media(body)
    if len(audio) <= 1:
        # "TK,1" / "TK,0" is the watch acknowledging a voice message we sent: not to be answered.
        return NOTHING
    record = message(uid, mtype, extras=_media("audio", len(audio)))
    return (record,), "TK,1" if mtype.upper() == "TK" else None


def _voice_chunk(uid: str, mtype: str, body: bytes) -> Output:
    parts = body.split(b",", 3)
    if len(parts) < 4:
        raise DecodeError("JXTK needs name, part, parts and data")
    try:
        current, total = int(parts[1].decode("ascii")), int(parts[2].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DecodeError("JXTK part numbers are not integers") from None
    audio = unescape_media(parts[3])
    if current < total:
        return (), "JXTKR,1"
    extras = _media("audio", len(audio), media_parts=total)
    return (message(uid, mtype, extras=extras),), "JXTKR,1"


def _image(uid: str, mtype: str, body: bytes) -> Output:
    data = unescape_media(body)
    start = data.find(_JPEG_START)
    size = len(data) - start if start >= 0 else 0
    return (message(uid, mtype, extras=_media("image", size)),), None


def _command_ack(uid: str, mtype: str, body: bytes) -> Output:
    # The watch echoes a command's type when it applied it; firmware that ignores SOS-number or
    # removal-alarm settings exists, so the acknowledgement is worth keeping.
    return (message(uid, mtype, extras={"ack": mtype}),), None


def _ignore(uid: str, mtype: str, body: bytes) -> Output:
    return NOTHING


HANDLERS: Mapping[str, Handler] = {
    "INIT": _init,
    "LK": _link,
    "UD": location,
    "UD2": location,
    "UD3": location,
    "UD_LTE": location,
    "UD_WCDMA": location,
    "WT": location,
    "AL": alarm,
    "AL_LTE": alarm,
    "ALCUSTOMER1": alarm,
    "TKQ": _echo,
    "TKQ2": _echo,
    "PULSE": heart,
    "HEART": heart,
    "BLOOD": blood_pressure,
    "BPHRT": blood_pressure,
    "OXYGEN": oxygen,
    "TEMP": temperature,
    "BTEMP2": body_temperature,
    "TK": _voice,
    "TK2": _voice,
    "JXTK": _voice_chunk,
    "IMG": _image,
    **dict.fromkeys(
        ("CR", "UPLOAD", "SOS", "SOS1", "SOS2", "SOS3", "REMOVE", "LZ", "RESET", "POWEROFF", "FLOWER"),
        _command_ack,
    ),
}


def handler_for(mtype: str) -> Handler:
    """The handler of a type (case-insensitive; unknown ``UD_*``/``AL_*`` variants read as their family)."""
    handler = HANDLERS.get(mtype)
    if handler is not None:
        return handler
    upper = mtype.upper()
    handler = HANDLERS.get(upper)
    if handler is not None:
        return handler
    if upper.startswith("UD_"):
        return location
    if upper.startswith("AL_"):
        return alarm
    return _ignore


def decode(frame: bytes, session: Session, now: datetime) -> DecodeResult:
    """Decode one bracketed frame. Raises :class:`DecodeError` for anything malformed."""
    if frame.isascii():
        text = frame.decode("ascii")
        if COMMON_RE.fullmatch(text) is not None:
            result = _decode_common(frame, text, session)
            if result is not None:
                return result
    return decode_general(frame, session)


def decode_general(frame: bytes, session: Session) -> DecodeResult:
    """What :func:`decode` does with any frame; the common ones give the same result through a faster path."""
    match = _HEADER_RE.match(frame[:_HEADER_MAX].decode("latin-1"))
    if match is None or frame[-1] != 0x5D:
        raise _header_error(frame)
    end = match.end()
    if frame[end] == 0x2C:  # ","
        body = frame[end + 1 : -1]
    elif end == len(frame) - 1:
        body = b""
    else:
        raise DecodeError("watch frame has data after its closing bracket")
    mm, uid, index, mtype = match.groups()
    messages, answer = (HANDLERS.get(mtype) or handler_for(mtype))(uid, mtype, body)
    reply = b"" if answer is None else _frame(mm, uid, index, answer)
    model = mm if index is None else mm + INDEXED_SUFFIX
    changed = session.unique_id != uid or session.dialect != model
    return DecodeResult(
        messages=messages,
        reply=reply,
        # Positional (unique_id, model, dialect): keywords make this dataclass cost half as much again.
        session=Session(uid, session.model, model) if changed else None,
        device_id=uid,
    )


def _decode_common(frame: bytes, text: str, session: Session) -> DecodeResult | None:
    """A frame COMMON_RE matched, as the general path decodes it; None to leave it to that path."""
    values = text[1:-1].split(",")
    head = values[0]
    parts = head.split("*")  # MM, ID, [index,] length, type
    uid, mtype = parts[1], parts[-1]
    found: DeviceMessage | None
    if mtype == "LK":
        level = small_int(values[3])
        if level > 100:  # no message, only the reply: rare enough for the general path
            return None
        extras: dict[str, ExtraValue] = {"type": "LK", "rolls": small_int(values[2])}
        found = DeviceMessage(  # positional, as watch_content.message() builds it
            uid, PROTOCOL, None, False,  # unique_id, protocol, time, time_is_local
            None, None, None, None, None, None, None, None, None,  # latitude .. satellites: no fix
            float(level), None, small_int(values[1]),  # battery_pct, charging, steps
            None, None, None, None, None,  # vitals
            _NO_ALARMS, (), (), extras,  # alarms, cells, wifi, extras
        )  # fmt: skip
        tail = _LK_REPLY
    else:
        found = common_position(uid, mtype, values)
        if found is None:
            return None
        tail = _AL_REPLY if mtype[0] == "A" else b""
    # The reply repeats the header up to the length field ("[MM*ID*[index*]"): a slice of the frame.
    reply = frame[: len(head) - len(mtype) - 4] + tail if tail else b""
    model = parts[0] if len(parts) == 4 else parts[0] + INDEXED_SUFFIX
    changed = session.unique_id != uid or session.dialect != model
    # Positional (messages, reply, unknown_device_status, session, device_id): keywords cost more.
    return DecodeResult(
        (found,), reply, UNKNOWN_DEVICE_STATUS, Session(uid, session.model, model) if changed else None, uid
    )


def _header_error(frame: bytes) -> DecodeError:
    """Say which part of a frame that failed the header pattern is wrong."""
    if len(frame) < 2 or frame[0] != 0x5B or frame[-1] != 0x5D:
        return DecodeError("not a watch frame: expected [MM*ID*LEN*CONTENT]")
    parts = frame[1:-1].split(b"*", 4)
    if len(parts) < 4:
        return DecodeError("incomplete watch header: expected MM*ID*LEN*CONTENT")
    if not _VENDOR_RE.fullmatch(parts[0]):
        return DecodeError("watch vendor code is not 2 letters or digits")
    if not _ID_RE.fullmatch(parts[1]):
        return DecodeError("watch device id is not 1-32 letters or digits")
    if not _HEX4_RE.fullmatch(parts[2]):
        return DecodeError("watch length field is not 4 hex digits")
    return DecodeError("watch message type missing or malformed")


def _frame(vendor: str, uid: str, index: str | None, content: str) -> bytes:
    # Lower-case hex length, as Traccar writes it and the watches it serves accept.
    size = len(content)
    length = _LENGTH_FIELDS[size] if size < len(_LENGTH_FIELDS) else f"{size:04x}"
    if index is None:
        return f"[{vendor}*{uid}*{length}*{content}]".encode("ascii")
    return f"[{vendor}*{uid}*{index}*{length}*{content}]".encode("ascii")


# ---------------------------------------------------------------------------------------------------------
# Commands


def encode_command(command: DeviceCommand, session: Session, now: datetime) -> bytes:
    """The frame(s) for ``command``, with the vendor code the watch itself uses (``CS`` if unknown)."""
    uid = session.unique_id
    if not uid or not _ID_RE.fullmatch(uid.encode("utf-8", "replace")):
        raise UnsupportedCommand("the watch's device id is not known")
    builder = _COMMANDS.get(command.kind)
    if builder is None:
        raise UnsupportedCommand(f"watch protocol has no {command.kind.value} command")
    vendor, indexed = _vendor_of(session.dialect)
    index = COMMAND_INDEX if indexed else None
    return b"".join(_frame(vendor, uid, index, content) for content in builder(command))


def _vendor_of(dialect: str | None) -> tuple[str, bool]:
    match = _MODEL_RE.fullmatch(dialect or "")
    if match is None:
        return DEFAULT_VENDOR, False
    return match.group(1), match.group(2) is not None


def _locate(command: DeviceCommand) -> list[str]:
    return ["CR"]


def _interval(command: DeviceCommand) -> list[str]:
    seconds = command.interval_s
    if type(seconds) is not int or not 1 <= seconds <= _MAX_INTERVAL_S:
        raise UnsupportedCommand(f"interval_s must be 1..{_MAX_INTERVAL_S} seconds")
    return [f"UPLOAD,{seconds}"]


def _sos_numbers(command: DeviceCommand) -> list[str]:
    numbers = command.phone_numbers
    if not numbers or len(numbers) > _MAX_SOS_NUMBERS:
        raise UnsupportedCommand(f"watches take 1 to {_MAX_SOS_NUMBERS} SOS numbers")
    for number in numbers:
        if number and not _PHONE_RE.fullmatch(number):
            raise UnsupportedCommand(f"invalid phone number {number[:24]!r}")
    # One SOSn frame per slot, as Traccar sends them; unused slots are cleared so that a number removed
    # on the platform stops being called by the watch.
    padded = (*numbers, *("",) * (_MAX_SOS_NUMBERS - len(numbers)))
    return [f"SOS{slot},{number}" for slot, number in enumerate(padded, start=1)]


def _removal_alarm(command: DeviceCommand) -> list[str]:
    if command.enabled is None:
        raise UnsupportedCommand("removal_alarm needs enabled")
    return [f"REMOVE,{1 if command.enabled else 0}"]


def timezone_text(offset_min: int) -> str:
    """UTC offset as the watch's ``LZ`` wants it: signed hours, quarter hours as decimals (+1, +5.5, -3.5)."""
    hours, minutes = divmod(abs(offset_min), 60)
    if minutes not in _QUARTERS or not _MIN_OFFSET_MIN <= offset_min <= _MAX_OFFSET_MIN:
        raise UnsupportedCommand(f"UTC offset {offset_min} min is not a quarter hour within -12h..+14h")
    return f"{'-' if offset_min < 0 else '+'}{hours}{_QUARTERS[minutes]}"


def _timezone(command: DeviceCommand) -> list[str]:
    if command.utc_offset_min is None:
        raise UnsupportedCommand("set_timezone needs utc_offset_min")
    # The language field is left empty, as Traccar does, so the watch keeps its current language.
    return [f"LZ,,{timezone_text(command.utc_offset_min)}"]


_COMMANDS: Mapping[CommandKind, Callable[[DeviceCommand], list[str]]] = {
    CommandKind.LOCATE: _locate,
    CommandKind.SET_INTERVAL: _interval,
    CommandKind.SET_SOS_NUMBERS: _sos_numbers,
    CommandKind.REMOVAL_ALARM: _removal_alarm,
    CommandKind.SET_TIMEZONE: _timezone,
}
