"""H02 decoder: captured and constructed frames, framing, invariants, fuzzing and commands."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.model import Alarm, DeviceMessage
from geosentinel.protocols import stream_codec
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
from geosentinel.protocols.h02 import SPEC, H02Framer, decode, encode_command
from geosentinel.testing import same

CASES_PATH = Path(__file__).parent / "cases" / "h02.json"
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text(encoding="utf-8"))
GOOD = [case for case in CASES if case["expect"] is not None]
SAMPLE_IDS = {f"H{number:02d}" for number in range(1, 86, 3)}
NOW = datetime(2024, 6, 15, 13, 45, 12, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None)
FLOAT_FIELDS = (
    "latitude",
    "longitude",
    "speed_kmh",
    "course_deg",
    "altitude_m",
    "battery_pct",
    "temperature_c",
)


def frame_of(case: dict[str, Any]) -> bytes:
    return bytes.fromhex(case["hex"]) if "hex" in case else case["text"].encode("utf-8")


def session_of(case: dict[str, Any]) -> Session:
    return Session(**case["session"])


GOOD_FRAMES = [frame_of(case) for case in GOOD]
TEXT_FRAMES = [frame for frame in GOOD_FRAMES if frame.startswith(b"*") and b"*HQ,," not in frame]
BINARY_FRAMES = [frame for frame in GOOD_FRAMES if frame.startswith(b"$")]


def check_invariants(message: DeviceMessage) -> None:
    """What every decoded message must satisfy, whatever the input."""
    assert message.protocol == "h02"
    assert message.unique_id
    assert message.unique_id.isdigit()
    assert (message.latitude is None) == (message.longitude is None)
    if message.latitude is not None and message.longitude is not None:
        assert -90 <= message.latitude <= 90
        assert -180 <= message.longitude <= 180
        assert message.valid is not None
        assert (message.latitude, message.longitude) != (0.0, 0.0)
    if message.time is not None:
        assert message.time.tzinfo is UTC
        assert message.time_is_local
    for name in FLOAT_FIELDS:
        value = getattr(message, name)
        assert value is None or (isinstance(value, float) and math.isfinite(value)), name
    assert message.speed_kmh is None or message.speed_kmh >= 0
    assert message.course_deg is None or message.course_deg >= 0
    assert message.battery_pct is None or 0 <= message.battery_pct <= 100
    assert message.satellites is None or message.satellites >= 0
    assert message.steps is None or message.steps >= 0
    for cell in message.cells:
        assert min(cell.mcc, cell.mnc, cell.lac, cell.cid) >= 0
    for key, value in message.extras.items():
        assert isinstance(key, str)
        assert isinstance(value, str | int | float | bool)
        assert not isinstance(value, float) or math.isfinite(value)


def check_result(result: DecodeResult) -> None:
    assert result.device_id
    assert result.session is None  # H02 frames carry their id: nothing to remember
    for message in result.messages:
        check_invariants(message)
        assert message.unique_id == result.device_id


NO_SESSION = Session()


def decode_checked(frame: bytes, session: Session = NO_SESSION) -> DecodeResult | None:
    """Decode; only DecodeError may escape, and whatever comes out satisfies the invariants."""
    try:
        result = decode(frame, session, NOW)
    except DecodeError as exc:
        assert str(exc)
        return None
    check_result(result)
    return result


# ---------------------------------------------------------------------------------------------------------
# Captured and constructed frames


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    now = datetime.fromisoformat(case["now"])
    if case["expect"] is None:
        with pytest.raises(DecodeError) as info:
            decode(frame_of(case), session_of(case), now)
        assert case["error"] in str(info.value)
        return
    result = decode(frame_of(case), session_of(case), now)
    check_result(result)
    assert result.device_id == case["device_id"]
    assert result.reply == case["reply"].encode("latin-1")
    assert len(result.messages) == len(case["expect"])
    for message, expected in zip(result.messages, case["expect"], strict=True):
        actual = message_to_json(message)
        assert actual["protocol"] == "h02"
        for key, value in expected.items():
            assert same(actual[key], value), f"{key}: {actual[key]!r} != {value!r}"


def test_cases_cover_every_sample_and_the_brief() -> None:
    ids = {case["id"] for case in CASES}
    assert len(SAMPLE_IDS) == 29
    assert SAMPLE_IDS <= ids
    kinds = {case["expect"][0]["extras"].get("type") for case in GOOD if case["expect"]}
    assert {"V1", "V4", "V8", "V19", "VI1", "V3", "NBR", "LINK", "HTBT", "VP1", "SMS"} <= kinds
    assert {len(frame) for frame in BINARY_FRAMES} == {32, 42, 45, 48}
    assert sum(case["expect"] is None for case in CASES) >= 10


def test_spec_and_registry() -> None:
    assert (SPEC.name, SPEC.transport, SPEC.default_port, SPEC.binary) == ("h02", "tcp", 5013, False)
    codec = stream_codec("h02")
    assert codec.spec is SPEC
    assert isinstance(codec.framer(), H02Framer)
    assert codec.decode is decode
    assert codec.encode_command is encode_command


def test_v1_reply_is_utc_whatever_the_zone_of_now() -> None:
    frame = b"*HQ,1451316485,V1,121557,A,-23-3.3408,S,-48-2.8926,W,0.1,158,241115,FFFFFFFF#"
    paris = NOW.astimezone(timezone(timedelta(hours=2)))
    assert decode(frame, Session(), paris).reply == b"*HQ,1451316485,V4,V1,20240615134512#"


def test_status_alarms_are_active_low() -> None:
    def alarms(status: str) -> frozenset[Alarm]:
        frame = f"*HQ,1234567890,V1,120000,A,4851.1234,N,00217.6789,E,0,0,150624,{status}#".encode()
        (message,) = decode(frame, Session(), NOW).messages
        return message.alarms

    assert alarms("FFFFFFFF") == frozenset()
    assert alarms("FFFFFFFE") == {Alarm.VIBRATION}
    assert alarms("FFFFFFFD") == {Alarm.SOS}
    assert alarms("FFFBFFFF") == {Alarm.SOS}
    assert alarms("FFFFFFFB") == {Alarm.OVERSPEED}
    assert alarms("FFF7FFFF") == {Alarm.POWER_CUT}
    assert alarms("00000000") == {Alarm.VIBRATION, Alarm.SOS, Alarm.OVERSPEED, Alarm.POWER_CUT}


def test_v19_date_is_read_not_swallowed() -> None:
    """Traccar's optional battery group eats the V19 date; the fix time must come from the frame."""
    (case,) = [case for case in CASES if case["id"] == "H19"]
    (message,) = decode(frame_of(case), Session(), NOW).messages
    assert message.time == datetime(2017, 4, 20, 21, 44, 52, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------------
# Framing


def device_stream(frame: bytes, count: int = 3) -> list[bytes]:
    """``count`` frames of the one device that sent ``frame`` (a connection carries one device)."""
    return [frame] * count


def feed_all(framer: H02Framer, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


def random_chunks(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 40))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_framer_one_read_of_many_text_frames() -> None:
    framer = H02Framer()
    assert framer.feed(b"".join(TEXT_FRAMES)) == TEXT_FRAMES
    assert framer.skipped == 0


def test_framer_text_byte_by_byte() -> None:
    framer = H02Framer()
    data = b"".join(TEXT_FRAMES)
    assert feed_all(framer, [data[i : i + 1] for i in range(len(data))]) == TEXT_FRAMES
    assert framer.skipped == 0


@pytest.mark.parametrize("seed", range(10))
def test_framer_text_random_splits(seed: int) -> None:
    data = b"".join(TEXT_FRAMES)
    assert feed_all(H02Framer(), random_chunks(data, random.Random(seed))) == TEXT_FRAMES


@pytest.mark.parametrize("frame", BINARY_FRAMES, ids=lambda frame: f"{len(frame)}-{frame[1:6].hex()}")
def test_framer_binary_frame_in_one_read(frame: bytes) -> None:
    """Traccar's rule: a read holding exactly one binary frame gives its length."""
    assert H02Framer().feed(frame) == [frame]


@pytest.mark.parametrize("frame", BINARY_FRAMES, ids=lambda frame: f"{len(frame)}-{frame[1:6].hex()}")
def test_framer_binary_stream_byte_by_byte(frame: bytes) -> None:
    """Without read boundaries, the next frame of the same device shows where a frame ends; the last one
    uses the learned length."""
    frames = device_stream(frame)
    data = b"".join(frames)
    framer = H02Framer()
    assert feed_all(framer, [data[i : i + 1] for i in range(len(data))]) == frames
    assert framer.skipped == 0


@pytest.mark.parametrize("frame", BINARY_FRAMES, ids=lambda frame: f"{len(frame)}-{frame[1:6].hex()}")
@pytest.mark.parametrize("seed", range(5))
def test_framer_binary_and_text_random_splits(frame: bytes, seed: int) -> None:
    device_id = (frame[1:9].hex()[:15] if len(frame) == 42 else frame[1:6].hex()).encode()
    heartbeat = b"*HQ," + device_id + b",HTBT,80#"
    frames = [frame, heartbeat, frame, frame, heartbeat, frame]
    data = b"".join(frames)
    assert feed_all(H02Framer(), random_chunks(data, random.Random(seed))) == frames


def test_framer_binary_frames_in_one_read() -> None:
    for frame in BINARY_FRAMES:
        frames = device_stream(frame, 4)
        assert H02Framer().feed(b"".join(frames)) == frames


def test_framer_fixed_binary_length() -> None:
    frame = next(frame for frame in BINARY_FRAMES if len(frame) == 45)
    framer = H02Framer(binary_length=45)
    assert framer.feed(frame[:32]) == []
    assert framer.feed(frame[32:] + frame) == [frame, frame]


def test_framer_garbage_between_frames() -> None:
    garbage = [b"hello", b"\x00\xff\x01", b"#,,##", b"GET / HTTP/1.1"]
    data = b"".join(g + f for g, f in zip(garbage * len(TEXT_FRAMES), TEXT_FRAMES, strict=False))
    framer = H02Framer()
    assert framer.feed(data) == TEXT_FRAMES
    assert framer.skipped == len(data) - sum(map(len, TEXT_FRAMES))


def test_framer_line_breaks_are_not_garbage() -> None:
    framer = H02Framer()
    assert framer.feed(b"\r\n".join(TEXT_FRAMES) + b"\r\n") == TEXT_FRAMES
    assert framer.skipped == 0


def test_framer_drops_a_fragment_cut_by_a_new_frame() -> None:
    good = TEXT_FRAMES[0]
    framer = H02Framer()
    assert framer.feed(b"*HQ,123,V1,1200" + good + b"*hq,1," + good) == [good, good]
    assert framer.skipped == len(b"*HQ,123,V1,1200") + len(b"*hq,1,")


def test_framer_skips_markers_that_start_no_frame() -> None:
    good = TEXT_FRAMES[1]
    framer = H02Framer()
    assert framer.feed(b"*1x*" + b"$zz" + b"$\x12\xab" + good) == [good]
    assert framer.skipped == 4 + 3 + 3


def test_framer_oversize_text_frame() -> None:
    framer = H02Framer(max_frame=200)
    framer.feed(b"*HQ,1234567890,V1," + b"1" * 150)
    with pytest.raises(FrameTooLarge):
        framer.feed(b"1" * 100)


def test_framer_oversize_after_good_frames_hands_them_over_first() -> None:
    good = TEXT_FRAMES[0]
    framer = H02Framer(max_frame=200)
    assert framer.feed(good + b"*HQ,1," + b"x" * 300) == [good]
    with pytest.raises(FrameTooLarge):
        framer.feed(good)


def test_framer_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_frame"):
        H02Framer(max_frame=40)
    with pytest.raises(ValueError, match="binary_length"):
        H02Framer(binary_length=33)


def test_framer_ten_megabytes_of_garbage_keep_memory_bounded() -> None:
    rng = random.Random(7)
    framer = H02Framer()
    for _ in range(160):
        chunk = rng.randbytes(65536)
        try:
            framer.feed(chunk)
        except FrameTooLarge:
            framer = H02Framer()  # the transport closes such a connection
        assert len(framer._buffer) <= framer.max_frame
    clean = H02Framer()
    blob = bytes(range(256)).translate(None, b"*$\r\n") * 40_000
    for start in range(0, len(blob), 65536):
        assert clean.feed(blob[start : start + 65536]) == []
        assert clean._buffer == b""
    assert clean.skipped == len(blob) > 10_000_000
    assert clean.feed(TEXT_FRAMES[0]) == [TEXT_FRAMES[0]]


# ---------------------------------------------------------------------------------------------------------
# Fuzzing: the framer


@FUZZ
@given(chunks=st.lists(st.binary(max_size=300), max_size=30))
def test_fuzz_framer_raises_only_frame_too_large(chunks: list[bytes]) -> None:
    framer = H02Framer(max_frame=256)
    try:
        for chunk in chunks:
            for frame in framer.feed(chunk):
                assert frame[:1] in (b"*", b"$")
            assert len(framer._buffer) <= framer.max_frame
    except FrameTooLarge:
        pass


NO_DOLLAR = st.binary(max_size=300).map(lambda data: data.replace(b"$", b""))


@FUZZ
@given(
    frame=st.sampled_from(TEXT_FRAMES),
    before=NO_DOLLAR,
    after=st.binary(max_size=300),
    seed=st.integers(0, 2**32),
)
def test_fuzz_text_frame_survives_garbage(frame: bytes, before: bytes, after: bytes, seed: int) -> None:
    """A '$' in garbage followed by BCD-looking bytes is indistinguishable from a binary frame, so the
    garbage before the frame holds none."""
    data = before + frame + after
    out: list[bytes] = []
    framer = H02Framer()
    try:
        for chunk in random_chunks(data, random.Random(seed)):
            out.extend(framer.feed(chunk))
    except FrameTooLarge:
        pass
    assert frame in out


@FUZZ
@given(
    frame=st.sampled_from(BINARY_FRAMES),
    before=NO_DOLLAR,
    after=st.binary(max_size=300),
    seed=st.integers(0, 2**32),
)
def test_fuzz_binary_frame_survives_garbage(frame: bytes, before: bytes, after: bytes, seed: int) -> None:
    """With the device's frame length configured, as Traccar's ``h02.messageLength``."""
    data = before + frame + after
    out: list[bytes] = []
    framer = H02Framer(binary_length=len(frame))
    try:
        for chunk in random_chunks(data, random.Random(seed)):
            out.extend(framer.feed(chunk))
    except FrameTooLarge:
        pass
    assert frame in out


# ---------------------------------------------------------------------------------------------------------
# Fuzzing: the decoder


@FUZZ
@given(data=st.binary(max_size=120))
def test_fuzz_decode_arbitrary_bytes(data: bytes) -> None:
    decode_checked(data)
    decode_checked(b"*" + data + b"#")
    decode_checked(b"$" + data)


FIELD_VALUES = (
    st.text(max_size=12)
    | st.sampled_from(
        ["", "A", "V", "B", "N", "S", "E", "W", "-", ".", "0", "-1", "99", "FFFFFBFF", "²", "1e5", "inf"]
    )
    | st.integers(-(10**20), 10**20).map(str)
    | st.integers(1, 400).map(lambda width: "9" * width)
    | st.integers(1, 400).map(lambda width: "9" * width + ".5")
    | st.floats(allow_nan=True, allow_infinity=True).map(str)
)


@FUZZ
@given(frame=st.sampled_from(TEXT_FRAMES), index=st.integers(0, 40), value=FIELD_VALUES)
def test_fuzz_decode_mutated_text_fields(frame: bytes, index: int, value: str) -> None:
    fields = frame[1:-1].decode().split(",")
    fields[index % len(fields)] = value
    decode_checked(b"*" + ",".join(fields).encode("utf-8", "surrogatepass") + b"#")


@FUZZ
@given(
    frame=st.sampled_from(GOOD_FRAMES),
    position=st.integers(0, 200),
    byte=st.integers(0, 255),
    mode=st.sampled_from(["replace", "insert", "delete", "truncate"]),
)
def test_fuzz_decode_mutated_frames(frame: bytes, position: int, byte: int, mode: str) -> None:
    at = position % len(frame)
    mutated = {
        "replace": frame[:at] + bytes([byte]) + frame[at + 1 :],
        "insert": frame[:at] + bytes([byte]) + frame[at:],
        "delete": frame[:at] + frame[at + 1 :],
        "truncate": frame[:at],
    }[mode]
    decode_checked(mutated)
    decode_checked(mutated, Session(unique_id="1234567890"))


@FUZZ
@given(
    lat=st.floats(min_value=0, max_value=89.99),
    lon=st.floats(min_value=0, max_value=179.99),
    south=st.booleans(),
    west=st.booleans(),
    knots=st.integers(0, 999),
)
def test_round_trip_v1(lat: float, lon: float, south: bool, west: bool, knots: int) -> None:
    def dm(value: float, width: int) -> str:
        degrees = int(value)
        return f"{degrees:0{width}d}{(value - degrees) * 60:07.4f}"

    frame = (
        f"*HQ,1234567890,V1,235959,A,{dm(lat, 2)},{'S' if south else 'N'},{dm(lon, 3)},"
        f"{'W' if west else 'E'},{knots},0,311224,FFFFFFFF#"
    ).encode()
    result = decode_checked(frame)
    assert result is not None
    (message,) = result.messages
    if message.latitude is None or message.longitude is None:
        assert f"{lat:.6f}" == f"{lon:.6f}" == "0.000000"  # (0,0) is a no-fix
        return
    assert message.latitude == pytest.approx(-lat if south else lat, abs=2e-6)
    assert message.longitude == pytest.approx(-lon if west else lon, abs=2e-6)
    assert message.speed_kmh == pytest.approx(knots * 1.852, abs=1e-3)
    assert message.time == datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------------
# Commands

DEVICE = Session(unique_id="1234567890")


def test_set_interval() -> None:
    command = DeviceCommand(CommandKind.SET_INTERVAL, interval_s=30)
    assert encode_command(command, DEVICE, NOW) == b"*HQ,1234567890,S71,134512,22,30#"


def test_set_interval_alternative_model() -> None:
    command = DeviceCommand(CommandKind.SET_INTERVAL, interval_s=300)
    session = Session(unique_id="1234567890", model="alternative")
    assert encode_command(command, session, NOW) == b"*HQ,1234567890,D1,134512,300#"


def test_command_time_is_utc() -> None:
    command = DeviceCommand(CommandKind.SET_INTERVAL, interval_s=60)
    later = (NOW + timedelta(hours=10)).astimezone(timezone(timedelta(hours=-5)))
    assert encode_command(command, DEVICE, later) == b"*HQ,1234567890,S71,234512,22,60#"


@pytest.mark.parametrize("seconds", [None, 0, -5])
def test_set_interval_needs_seconds(seconds: int | None) -> None:
    with pytest.raises(UnsupportedCommand, match="interval_s"):
        encode_command(DeviceCommand(CommandKind.SET_INTERVAL, interval_s=seconds), DEVICE, NOW)


@pytest.mark.parametrize(
    "command",
    [
        DeviceCommand(CommandKind.LOCATE),
        DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("+33600000000",)),
        DeviceCommand(CommandKind.REMOVAL_ALARM, enabled=True),
        DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=120),
    ],
    ids=lambda command: command.kind.value,
)
def test_unsupported_commands(command: DeviceCommand) -> None:
    with pytest.raises(UnsupportedCommand, match="no known command"):
        encode_command(command, DEVICE, NOW)


@pytest.mark.parametrize("unique_id", [None, "", "12,34#"])
def test_command_needs_a_numeric_device_id(unique_id: str | None) -> None:
    command = DeviceCommand(CommandKind.SET_INTERVAL, interval_s=30)
    with pytest.raises(UnsupportedCommand, match="numeric id"):
        encode_command(command, Session(unique_id=unique_id), NOW)
