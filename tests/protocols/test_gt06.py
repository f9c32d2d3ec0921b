"""GT06 / Concox decoder: captured and constructed frames, framing, invariants, fuzzing and commands."""

from __future__ import annotations

import json
import math
import random
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.model import Alarm, DeviceMessage
from geosentinel.protocols import gt06_packets, stream_codec
from geosentinel.protocols.base import (
    CommandKind,
    DecodeError,
    DecodeResult,
    DeviceCommand,
    FrameTooLarge,
    Session,
    UnsupportedCommand,
    message_to_json,
)
from geosentinel.protocols.codec import crc_itu
from geosentinel.protocols.gt06 import (
    DEFAULT_MAX_FRAME,
    SPEC,
    Gt06Framer,
    decode,
    encode_command,
    server_command,
)
from geosentinel.protocols.gt06 import _ack as ack
from geosentinel.protocols.gt06_packets import ModelProfile
from geosentinel.testing import same

CASES_PATH = Path(__file__).parent / "cases" / "gt06.json"
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text(encoding="utf-8"))
GOOD = [case for case in CASES if case["expect"] is not None]
GOOD_FRAMES = [bytes.fromhex(case["frame"]) for case in GOOD]
SAMPLE_IDS = {"G01", "G04", "G07", "G10", "G13", "G16", "G19", "G22", "G25", "G28", "G31", "G34"}
NOW = datetime(2024, 6, 15, 13, 45, 12, tzinfo=UTC)
UID = "868120145233604"
LOGGED_IN = Session(unique_id=UID)
FUZZ = settings(max_examples=300, deadline=None)
FLOAT_FIELDS = ("latitude", "longitude", "speed_kmh", "course_deg", "battery_pct")


def check_invariants(message: DeviceMessage) -> None:
    """What every decoded message must satisfy, whatever the input."""
    assert message.protocol == "gt06"
    assert message.unique_id
    assert (message.latitude is None) == (message.longitude is None)
    if message.latitude is not None and message.longitude is not None:
        assert -90 <= message.latitude <= 90
        assert -180 <= message.longitude <= 180
        assert message.valid is not None
    if message.time is not None:
        assert message.time.tzinfo is UTC
        assert message.time_is_local
    for name in FLOAT_FIELDS:
        value = getattr(message, name)
        assert value is None or (isinstance(value, float) and math.isfinite(value)), name
    assert message.speed_kmh is None or message.speed_kmh >= 0
    assert message.course_deg is None or 0 <= message.course_deg < 1024
    assert message.battery_pct is None or 0 <= message.battery_pct <= 100
    for cell in message.cells:
        assert 0 <= cell.mcc < 0x8000
        assert cell.lac or cell.cid
    for key, value in message.extras.items():
        assert isinstance(key, str)
        assert isinstance(value, str | int | float | bool)
        assert not isinstance(value, float) or math.isfinite(value)


def check_result(result: DecodeResult) -> None:
    assert result.device_id
    for message in result.messages:
        check_invariants(message)
        assert message.unique_id == result.device_id


def decode_checked(frame: bytes, session: Session = LOGGED_IN) -> DecodeResult | None:
    """Decode; only DecodeError may escape, and whatever comes back satisfies the invariants."""
    try:
        result = decode(frame, session, NOW)
    except DecodeError as exc:
        assert str(exc)
        return None
    check_result(result)
    return result


def session_of(raw: dict[str, Any]) -> Session:
    return Session(unique_id=raw.get("unique_id"), model=raw.get("model"))


def frame_of(ptype: int, content: bytes, serial: int = 1, *, long: bool = False) -> bytes:
    """A well-formed frame, CRC from the shared reference implementation."""
    size = 1 + len(content) + 4
    length = size.to_bytes(2, "big") if long else bytes((size,))
    core = length + bytes((ptype,)) + content + serial.to_bytes(2, "big")
    return (b"\x79\x79" if long else b"\x78\x78") + core + crc_itu(core).to_bytes(2, "big") + b"\r\n"


PARIS_GPS = bytes((24, 6, 15, 13, 45, 10, 0xC9)) + struct.pack(">IIBH", 87941880, 4233960, 4, 0x145A)
LBS = bytes.fromhex("00d0011a2b00c0ff")


def status_frame(info: int = 0, level: int = 6, alarm_code: int = 0) -> bytes:
    return frame_of(0x16, PARIS_GPS + b"\x09" + LBS + bytes((info, level, 4, alarm_code, 2)))


# ---------------------------------------------------------------------------------------------------------
# Captured and constructed frames


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    frame = bytes.fromhex(case["frame"])
    session = session_of(case["session"])
    now = datetime.fromisoformat(case["now"])
    if case["expect"] is None:
        with pytest.raises(DecodeError) as info:
            decode(frame, session, now)
        assert case["error"] in str(info.value)
        return
    expect = case["expect"]
    result = decode(frame, session, now)
    check_result(result)
    assert result.device_id == expect["device_id"]
    assert result.reply.hex() == expect["reply"]
    if expect["session"] is None:
        assert result.session is None
    else:
        assert result.session == session_of(expect["session"])
    assert len(result.messages) == len(expect["messages"])
    for message, expected in zip(result.messages, expect["messages"], strict=True):
        actual = message_to_json(message)
        for key, value in expected.items():
            assert same(actual[key], value), f"{key}: {actual[key]!r} != {value!r}"


def test_cases_file_covers_the_samples_and_the_packet_types() -> None:
    ids = {case["id"] for case in CASES}
    assert ids >= SAMPLE_IDS
    assert len(ids) == len(CASES)
    types = {bytes.fromhex(case["frame"])[3] for case in CASES if case["frame"].startswith("7878")}
    types |= {bytes.fromhex(case["frame"])[4] for case in CASES if case["frame"].startswith("7979")}
    wanted = {0x01, 0x10, 0x12, 0x13, 0x16, 0x69, 0x19, 0x22, 0x23, 0x26, 0x27, 0x2C}
    assert types >= wanted | {0x8A, 0x94, 0x95, 0xA0, 0x15}
    assert sum(case["expect"] is None for case in CASES) >= 8


def test_spec_and_registry() -> None:
    assert (SPEC.name, SPEC.transport, SPEC.default_port, SPEC.binary) == ("gt06", "tcp", 5023, True)
    codec = stream_codec("gt06")
    assert codec.spec is SPEC
    assert codec.decode is decode
    assert codec.encode_command is encode_command
    assert isinstance(codec.framer(), Gt06Framer)


def test_login_keeps_the_model_and_declares_the_imei() -> None:
    login = bytes.fromhex("78780D01086471700328358100093F040D0A")
    result = decode(login, Session(model="GT06N"), NOW)
    assert result.session == Session(unique_id="864717003283581", model="GT06N")
    assert result.device_id == "864717003283581"
    assert result.messages == ()
    assert result.reply == bytes.fromhex("78780501000955940d0a")


def test_frames_before_login_are_refused() -> None:
    for frame in (status_frame(), frame_of(0x8A, b""), bytes.fromhex(wifi_case()["frame"])):
        with pytest.raises(DecodeError, match="login first"):
            decode(frame, Session(), NOW)


def wifi_case() -> dict[str, Any]:
    return next(case for case in CASES if case["id"] == "C22")


def test_time_request_reply_follows_now() -> None:
    result = decode(frame_of(0x8A, b"", 7), LOGGED_IN, datetime(2031, 12, 31, 23, 59, 58, tzinfo=UTC))
    reply = result.reply
    assert reply[:4] == bytes.fromhex("78780b8a")
    assert reply[4:10] == bytes((31, 12, 31, 23, 59, 58))
    assert reply[10:12] == b"\x00\x00"
    assert crc_itu(reply[2:12]).to_bytes(2, "big") == reply[12:14]
    assert reply[14:] == b"\r\n"


@pytest.mark.parametrize(
    ("code", "alarm", "name"),
    [
        (0x01, Alarm.SOS, None),
        (0x02, Alarm.POWER_CUT, None),
        (0x03, Alarm.VIBRATION, None),
        (0x04, Alarm.GEOFENCE_ENTER, None),
        (0x05, Alarm.GEOFENCE_EXIT, None),
        (0x06, Alarm.OVERSPEED, None),
        (0x09, Alarm.VIBRATION, None),
        (0x0C, Alarm.TAMPERING, None),
        (0x0E, Alarm.LOW_BATTERY, None),
        (0x0F, Alarm.LOW_BATTERY, None),
        (0x11, Alarm.POWER_OFF, None),
        (0x13, Alarm.TAMPERING, None),
        (0x18, Alarm.REMOVED, None),
        (0x19, Alarm.LOW_BATTERY, None),
        (0x23, Alarm.FALL, None),
        (0x25, Alarm.TAMPERING, None),
        (0x32, Alarm.TAMPERING, None),
        (0x14, None, "door"),
        (0x1A, None, "hardBraking"),
        (0x2B, None, "hardCornering"),
        (0x29, None, "hardAcceleration"),
        (0x2C, None, "accident"),
        (0x30, None, "jamming"),
        (0xC9, None, "idle"),
        (0x77, None, None),
    ],
)
def test_alarm_byte(code: int, alarm: Alarm | None, name: str | None) -> None:
    (message,) = decode(status_frame(alarm_code=code), LOGGED_IN, NOW).messages
    assert message.alarms == (frozenset({alarm}) if alarm else frozenset())
    assert message.extras["alarm_code"] == code
    assert message.extras.get("alarm") == name


@pytest.mark.parametrize(
    ("bits", "alarm"),
    [(1, Alarm.VIBRATION), (2, Alarm.POWER_CUT), (3, Alarm.LOW_BATTERY), (4, Alarm.SOS), (7, Alarm.REMOVED)],
)
def test_info_byte_alarm_bits(bits: int, alarm: Alarm) -> None:
    (message,) = decode(status_frame(info=bits << 3), LOGGED_IN, NOW).messages
    assert message.alarms == frozenset({alarm})


def test_info_byte_geofence_bits_are_an_extra_not_an_alarm() -> None:
    (message,) = decode(status_frame(info=6 << 3), LOGGED_IN, NOW).messages
    assert message.alarms == frozenset()
    assert message.extras["geofence_alarm"] is True


@pytest.mark.parametrize(
    ("level", "percent"),
    [(0, 0.0), (1, 17.0), (2, 33.0), (3, 50.0), (4, 67.0), (5, 83.0), (6, 100.0), (7, 7.0), (100, 100.0)],
)
def test_battery_levels(level: int, percent: float) -> None:
    (message,) = decode(status_frame(level=level), LOGGED_IN, NOW).messages
    assert message.battery_pct == percent


def test_battery_beyond_100_is_unknown() -> None:
    (message,) = decode(status_frame(level=101), LOGGED_IN, NOW).messages
    assert message.battery_pct is None


def test_model_alarm_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = ModelProfile("TEST", alarm_overrides={0x18: Alarm.FALL, 0x01: None, 0x77: "custom"})
    monkeypatch.setitem(gt06_packets.MODELS, "TEST", profile)
    session = Session(unique_id=UID, model="test")
    decoded = {
        code: decode(status_frame(alarm_code=code), session, NOW).messages[0] for code in (1, 0x18, 0x77)
    }
    assert decoded[0x18].alarms == frozenset({Alarm.FALL})
    assert decoded[0x01].alarms == frozenset()
    assert decoded[0x77].extras["alarm"] == "custom"


def test_unknown_model_uses_the_standard_layout() -> None:
    assert gt06_packets.profile_for("no-such-model") is gt06_packets.STANDARD
    assert gt06_packets.profile_for(None) is gt06_packets.STANDARD
    assert gt06_packets.profile_for(" vxt01 ").name == "VXT01"


@given(ptype=st.integers(0, 255), serial=st.binary(min_size=2, max_size=2))
def test_ack_crc_tables_give_the_crc(ptype: int, serial: bytes) -> None:
    body = bytes((0x05, ptype)) + serial
    assert ack(0x78, ptype, serial) == b"\x78\x78" + body + crc_itu(body).to_bytes(2, "big") + b"\r\n"


def gps_lbs_outcome(read: Any, body: bytes) -> tuple[DeviceMessage | str, list[tuple[str, Any]]]:
    extras: gt06_packets.Extras = {"serial": 7}
    try:
        return read(body, UID, extras), list(extras.items())
    except (DecodeError, IndexError, struct.error, ValueError, OverflowError) as exc:
        return f"{type(exc).__name__}: {exc}", list(extras.items())


@FUZZ
@given(
    gps=st.binary(min_size=18, max_size=18) | st.sampled_from([PARIS_GPS, bytes(18)]),
    lbs=st.binary(min_size=8, max_size=8).map(lambda b: bytes((b[0] & 0x7F,)) + b[1:]) | st.just(LBS),
    mileage=st.sampled_from([b"", b"\x00\x01\x02\x03", b"\xff" * 4]),
)
def test_usual_gps_lbs_reads_as_the_general_path(gps: bytes, lbs: bytes, mileage: bytes) -> None:
    body = gps + lbs + mileage
    usual = gps_lbs_outcome(lambda b, u, e: gt06_packets.gps_lbs(b, 0x12, u, gt06_packets.STANDARD, e), body)
    assert repr(usual) == repr(gps_lbs_outcome(gt06_packets.gps_lbs_general, body))


def test_bad_crc_is_flagged_not_refused() -> None:
    frame = bytearray(status_frame())
    frame[-3] ^= 0xFF
    (message,) = decode(bytes(frame), LOGGED_IN, NOW).messages
    assert message.extras["crc_ok"] is False
    (message,) = decode(status_frame(), LOGGED_IN, NOW).messages
    assert "crc_ok" not in message.extras


# ---------------------------------------------------------------------------------------------------------
# Framer


def test_framer_all_frames_in_one_read() -> None:
    framer = Gt06Framer()
    assert framer.feed(b"".join(GOOD_FRAMES)) == GOOD_FRAMES
    assert framer.skipped == 0


def test_framer_byte_by_byte() -> None:
    framer = Gt06Framer()
    out: list[bytes] = []
    for byte in b"".join(GOOD_FRAMES):
        out += framer.feed(bytes((byte,)))
    assert out == GOOD_FRAMES
    assert framer.skipped == 0


def test_framer_random_split_points() -> None:
    stream = b"".join(GOOD_FRAMES)
    rng = random.Random(1)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), 20))
        framer = Gt06Framer()
        out: list[bytes] = []
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            out += framer.feed(stream[start:end])
        assert out == GOOD_FRAMES


def test_framer_skips_garbage_between_frames() -> None:
    garbage = [b"GET / HTTP/1.1\r\n\r\n", b"\x78", b"\x78\x78\x00", b"\x79\x79\x00\x05\x13", b"\r\n\x00\xff"]
    stream = b"".join(g + f for g, f in zip(garbage * 20, GOOD_FRAMES, strict=False))
    framer = Gt06Framer()
    assert framer.feed(stream) == GOOD_FRAMES[: len(garbage) * 20]
    assert framer.skipped == sum(len(g) for g in (garbage * 20)[: len(GOOD_FRAMES)])


def test_framer_false_start_waiting_for_bytes_does_not_hold_a_good_frame() -> None:
    framer = Gt06Framer()
    good = status_frame()
    # "79 79 0F FF" declares a 4,101-byte frame: the good frame after it proves it was garbage.
    assert framer.feed(b"\x79\x79\x0f\x00" + b"junk" + good) == [good]
    assert framer.skipped == 8


def test_framer_keeps_every_frame_of_a_big_read_with_many_gaps() -> None:
    # 20,000 frames each behind a garbage gap in one 1 MB read (a rescan per gap would take minutes: the
    # suite's timeout catches that; the framer's speed is measured by `make bench`, the TCP load).
    frame = GOOD_FRAMES[5]
    stream = (b"\x00\x01\x02" + frame) * 20_000
    framer = Gt06Framer()
    assert framer.feed(stream) == [frame] * 20_000
    assert framer.skipped == 60_000


def test_framer_finds_a_minimal_frame_swallowed_by_garbage() -> None:
    good = frame_of(0x8A, b"")  # the shortest frame there is
    swallower = b"\x78\x78" + bytes((len(good) + 4 - 5,)) + b"\x10"
    assert Gt06Framer().feed(swallower + good) == [good]


def test_framer_prefers_the_inner_frame_with_a_good_crc() -> None:
    good = status_frame()
    swallower = b"\x78\x78" + bytes((len(good) + 8 - 5,)) + b"\x00" * 6
    assert Gt06Framer().feed(swallower + good) == [good]
    # an outer frame whose own CRC is good keeps its (unlikely) inner start marker
    outer = frame_of(0x94, b"\x04" + good, long=True)
    assert Gt06Framer().feed(outer) == [outer]


def test_framer_cuts_wifi_frames_by_their_counts() -> None:
    wifi = bytes.fromhex(wifi_case()["frame"])
    framer = Gt06Framer()
    out: list[bytes] = []
    for byte in wifi + GOOD_FRAMES[1] + wifi:
        out += framer.feed(bytes((byte,)))
    assert out == [wifi, GOOD_FRAMES[1], wifi]


def test_framer_status_length_quirk() -> None:
    quirk = bytes.fromhex(next(case for case in CASES if case["id"] == "C04")["frame"])
    assert Gt06Framer().feed(quirk + quirk) == [quirk, quirk]


def test_framer_oversize_frame() -> None:
    framer = Gt06Framer(max_frame=100)
    with pytest.raises(FrameTooLarge):
        framer.feed(b"\x79\x79\x00\xc8\x94" + bytes(50))
    # the framer forgot the oversize start and still works
    assert framer.feed(GOOD_FRAMES[0]) == [GOOD_FRAMES[0]]
    big = frame_of(0x94, bytes(200), long=True)
    assert Gt06Framer(max_frame=len(big)).feed(big) == [big]
    with pytest.raises(FrameTooLarge):
        Gt06Framer(max_frame=len(big) - 1).feed(big)


def test_framer_rejects_a_tiny_limit() -> None:
    with pytest.raises(ValueError, match="max_frame"):
        Gt06Framer(max_frame=10)


def test_framer_buffer_stays_bounded_on_10_mb_of_garbage() -> None:
    rng = random.Random(7)
    framer = Gt06Framer()
    chunk = rng.randbytes(1 << 16)
    fed = 0
    while fed < 10 * 1024 * 1024:
        try:
            framer.feed(chunk)
        except FrameTooLarge:
            pass  # a random "79 79" declaring a huge length: the gateway would hang up
        assert len(framer._buf) < DEFAULT_MAX_FRAME
        fed += len(chunk)
    framer.feed(b"\x00" * 8)
    assert framer.feed(GOOD_FRAMES[2]) == [GOOD_FRAMES[2]]


def test_framer_without_start_keeps_at_most_one_byte() -> None:
    framer = Gt06Framer()
    framer.feed(b"\x00" * 1000 + b"\x78")
    assert len(framer._buf) == 1
    assert framer.skipped == 1000
    assert framer.feed(GOOD_FRAMES[0][1:]) == [GOOD_FRAMES[0]]


GARBAGE = st.lists(
    st.binary(max_size=12)
    | st.sampled_from([b"\x78\x78", b"\x79\x79", b"\x78\x78\xff", b"\x79\x79\xff\xff", b"\r\n", b"\x78"]),
    max_size=6,
).map(b"".join)


@FUZZ
@given(chunks=st.lists(st.binary(max_size=64) | GARBAGE, max_size=20))
def test_fuzz_framer_raises_only_frame_too_large(chunks: list[bytes]) -> None:
    framer = Gt06Framer(max_frame=256)
    for chunk in chunks:
        try:
            frames = framer.feed(chunk)
        except FrameTooLarge:
            continue
        for frame in frames:
            assert len(frame) <= 256
            decode_checked(frame)
        assert len(framer._buf) < 256


@FUZZ
@given(
    before=GARBAGE,
    after=GARBAGE,
    index=st.integers(min_value=0, max_value=len(GOOD_FRAMES) - 1),
    step=st.integers(min_value=1, max_value=50),
)
def test_fuzz_good_frame_survives_surrounding_garbage(
    before: bytes, after: bytes, index: int, step: int
) -> None:
    good = GOOD_FRAMES[index]
    stream = before + good + after
    framer = Gt06Framer(max_frame=1 << 17)  # no 0x7979 length can be "too large"
    out: list[bytes] = []
    for at in range(0, len(stream), step):
        out += framer.feed(stream[at : at + step])
    if good[3] in gt06_packets.WIFI_TYPES or crc_itu(good[2:-4]) != int.from_bytes(good[-4:-2], "big"):
        # Without a valid CRC, garbage "78 78 LL" whose length ends exactly on this frame's trailer is
        # as well-formed as the frame itself: it may be swallowed, but only that way.
        assert good in out or any(frame.endswith(good) for frame in out)
    else:
        assert good in out


# ---------------------------------------------------------------------------------------------------------
# Decoder robustness


@FUZZ
@given(st.binary(max_size=80))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    decode_checked(data)
    decode_checked(data, Session())


@FUZZ
@given(
    content=st.binary(max_size=60),
    ptype=st.sampled_from([*range(0x10, 0x2F), 0x01, 0x8A, 0x94, 0x95, 0xA0, 0xA1]),
    long=st.booleans(),
)
def test_fuzz_well_framed_bodies(content: bytes, ptype: int, long: bool) -> None:
    decode_checked(frame_of(ptype, content, long=long))


@FUZZ
@given(
    index=st.integers(min_value=0, max_value=len(GOOD_FRAMES) - 1),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(min_value=0, max_value=6),
)
def test_fuzz_mutated_real_frames(index: int, edits: list[tuple[int, int]], cut: int) -> None:
    frame = bytearray(GOOD_FRAMES[index])
    for at, value in edits:
        frame[at % len(frame)] = value
    decode_checked(bytes(frame))
    body = bytes(frame[2 : len(frame) - 4 - cut])  # re-framed with a consistent length and CRC
    if len(body) > 1:
        decode_checked(frame_of(body[1], body[2:] if frame[0] == 0x78 else body[3:]))


@FUZZ
@given(
    mcc=st.integers(0, 0xFFFF),
    lac=st.integers(0, 0xFFFF),
    lat=st.integers(0, 2**32 - 1),
    lon=st.integers(0, 2**32 - 1),
    flags=st.integers(0, 0xFFFF),
    date=st.binary(min_size=6, max_size=6),
)
def test_fuzz_gps_lbs_fields(mcc: int, lac: int, lat: int, lon: int, flags: int, date: bytes) -> None:
    gps = date + b"\xc9" + struct.pack(">IIBH", lat, lon, 10, flags)
    lbs = struct.pack(">HBH", mcc, 1, lac) + b"\x00\x00\x01"
    result = decode_checked(
        frame_of(0x12, gps + lbs) if mcc < 0x8000 else frame_of(0x12, gps + lbs + b"\x00")
    )
    if lat <= 90 * 1_800_000 and lon <= 180 * 1_800_000:
        assert result is not None


# ---------------------------------------------------------------------------------------------------------
# Commands


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (DeviceCommand(CommandKind.LOCATE), "78780f8009666d9ae844575858230000400e0d0a"),
        (
            DeviceCommand(CommandKind.SET_INTERVAL, interval_s=60),
            "787813800d666d9ae854494d45522c3630230000b5cb0d0a",
        ),
        (
            DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("+33612345678", "0612345678")),
            "7878288022666d9ae8534f532c412c2b33333631323334353637382c303631323334353637382300009b350d0a",
        ),
        (
            DeviceCommand(CommandKind.SET_SOS_NUMBERS),
            "7878168010666d9ae8534f532c442c312c322c3323000086130d0a",
        ),
        (
            DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=120),
            "787814800e666d9ae8474d542c452c322c302300003e040d0a",
        ),
        (
            DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=-330),
            "787815800f666d9ae8474d542c572c352c3330230000255a0d0a",
        ),
    ],
)
def test_encode_command(command: DeviceCommand, expected: str) -> None:
    frame = encode_command(command, LOGGED_IN, NOW)
    assert frame.hex() == expected
    assert Gt06Framer().feed(frame) == [frame]
    assert crc_itu(frame[2:-4]) == int.from_bytes(frame[-4:-2], "big")


def test_encode_command_texts() -> None:
    def text(command: DeviceCommand) -> bytes:
        return encode_command(command, LOGGED_IN, NOW)[9:-6]

    assert text(DeviceCommand(CommandKind.LOCATE)) == b"DWXX#"
    assert text(DeviceCommand(CommandKind.SET_INTERVAL, interval_s=300)) == b"TIMER,300#"
    numbers = ("112", "", "+4915112345678")
    assert (
        text(DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=numbers))
        == b"SOS,A,112,,+4915112345678#"
    )
    assert text(DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=0)) == b"GMT,E,0,0#"
    assert text(DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=345)) == b"GMT,E,5,45#"


def test_server_command_matches_traccar() -> None:
    # Gt06ProtocolEncoderTest: engine stop as "Relay,1#" with server flag 0 and serial 0.
    assert server_command("Relay,1#").hex() == "787812800c0000000052656c61792c312300009dee0d0a"


@pytest.mark.parametrize(
    "command",
    [
        DeviceCommand(CommandKind.REMOVAL_ALARM, enabled=True),
        DeviceCommand(CommandKind.SET_INTERVAL),
        DeviceCommand(CommandKind.SET_INTERVAL, interval_s=4),
        DeviceCommand(CommandKind.SET_INTERVAL, interval_s=18001),
        DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("1", "2", "3", "4")),
        DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("123#,456",)),
        DeviceCommand(CommandKind.SET_TIMEZONE),
        DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=13 * 60),
        DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=10),
    ],
)
def test_unsupported_commands(command: DeviceCommand) -> None:
    with pytest.raises(UnsupportedCommand):
        encode_command(command, LOGGED_IN, NOW)


def test_server_command_refuses_non_ascii_and_long_text() -> None:
    with pytest.raises(UnsupportedCommand, match="ASCII"):
        server_command("Relé#")
    with pytest.raises(UnsupportedCommand, match="too long"):
        server_command("X" * 241)


def test_command_response_decodes_what_the_command_sent() -> None:
    command = encode_command(DeviceCommand(CommandKind.LOCATE), LOGGED_IN, NOW)
    flag = command[5:9]
    response = frame_of(0x15, bytes((4 + 11,)) + flag + b"DWXX=OK,Lat" + b"\x00\x02")
    result = decode(response, LOGGED_IN, NOW)
    assert result.reply == b""
    (message,) = result.messages
    assert message.extras["server_flag"] == int(NOW.timestamp())
    assert message.extras["result"] == "DWXX=OK,Lat"
