"""Watch (3G/SG/CS/ZJ) protocol: captured and constructed frames, framing, invariants, fuzzing, commands."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
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
from geosentinel.protocols.replay import replay
from geosentinel.protocols.watch import (
    COMMON_RE,
    MAX_FRAME,
    SPEC,
    WatchFramer,
    decode,
    decode_general,
    encode_command,
    timezone_text,
)
from geosentinel.testing import same

CASES_PATH = Path(__file__).parent / "cases" / "watch.json"
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text(encoding="utf-8"))
SAMPLE_IDS = {f"W{n:02d}" for n in range(1, 47, 3)}  # every watch sample of shared/protocols/samples.json
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

FLOAT_FIELDS = (
    "latitude",
    "longitude",
    "speed_kmh",
    "course_deg",
    "altitude_m",
    "accuracy_m",
    "battery_pct",
    "heart_rate_bpm",
    "spo2_pct",
    "temperature_c",
    "systolic_mmhg",
    "diastolic_mmhg",
)
NON_NEGATIVE_FIELDS = ("speed_kmh", "course_deg", "accuracy_m", "heart_rate_bpm", "steps", "satellites")
FUZZ = settings(max_examples=300, deadline=None)


def frame_of(case: dict[str, Any]) -> bytes:
    if "frame_hex" in case:
        return bytes.fromhex(case["frame_hex"])
    return str(case["frame"]).encode("ascii")


GOOD_FRAMES = [frame_of(case) for case in CASES if case["expect"] is not None]


def check_invariants(message: DeviceMessage) -> None:
    """What every decoded message must satisfy, whatever the input."""
    assert message.protocol == "watch"
    assert message.unique_id
    assert message.unique_id.isascii()
    assert message.unique_id.isalnum()
    assert (message.latitude is None) == (message.longitude is None)
    if message.latitude is not None and message.longitude is not None:
        assert -90 <= message.latitude <= 90
        assert -180 <= message.longitude <= 180
        assert (message.latitude, message.longitude) != (0.0, 0.0)
        assert message.valid is not None
    if message.time is not None:
        assert message.time.tzinfo is UTC
        assert message.time_is_local
    for name in FLOAT_FIELDS:
        value = getattr(message, name)
        assert value is None or (isinstance(value, float) and math.isfinite(value)), name
    for name in NON_NEGATIVE_FIELDS:
        value = getattr(message, name)
        assert value is None or value >= 0, name
    for name in ("battery_pct", "spo2_pct"):
        value = getattr(message, name)
        assert value is None or 0 <= value <= 100, name
    assert all(isinstance(alarm, Alarm) for alarm in message.alarms)
    for cell in message.cells:
        assert min(cell.mcc, cell.mnc, cell.lac, cell.cid) >= 0
    for ap in message.wifi:
        assert len(ap.mac) == 17 and ap.mac == ap.mac.lower()
    assert message.extras["type"]
    for key, value in message.extras.items():
        assert isinstance(key, str)
        assert isinstance(value, str | int | float | bool)
        assert not isinstance(value, float) or math.isfinite(value)


def check_result(result: DecodeResult) -> None:
    assert result.device_id
    for message in result.messages:
        check_invariants(message)
        assert message.unique_id == result.device_id
    if result.reply:
        assert result.reply.startswith(b"[") and result.reply.endswith(b"]")
        assert f"*{result.device_id}*".encode() in result.reply


def decode_checked(frame: bytes, session: Session | None = None) -> DecodeResult | None:
    """Decode; only DecodeError may escape the decoder, and whatever it returns satisfies the invariants."""
    try:
        result = decode(frame, session or Session(), NOW)
    except DecodeError as exc:
        assert str(exc)
        return None
    check_result(result)
    return result


# ---------------------------------------------------------------------------------------------------------
# Captured and constructed frames


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    frame = frame_of(case)
    session = Session(**case["session"])
    now = datetime.fromisoformat(case["now"])
    if case["expect"] is None:
        with pytest.raises(DecodeError) as info:
            decode(frame, session, now)
        assert case["error"] in str(info.value)
        return
    result = decode(frame, session, now)
    check_result(result)
    assert result.reply == case["reply"].encode("latin-1")
    assert result.device_id == case["device_id"]
    expected_session = case["new_session"]
    assert result.session == (None if expected_session is None else Session(**expected_session))
    assert len(result.messages) == len(case["expect"])
    for message, expected in zip(result.messages, case["expect"], strict=True):
        actual = message_to_json(message)
        actual.pop("protocol")
        assert actual.keys() == expected.keys()
        for key, value in expected.items():
            assert same(actual[key], value), f"{key}: {actual[key]!r} != {value!r}"


def test_cases_file_covers_every_sample_and_the_brief() -> None:
    ids = {case["id"] for case in CASES}
    assert ids >= SAMPLE_IDS
    assert len(ids) == len(CASES)
    types = {str(case.get("frame", "")).split("*")[-1].split(",")[0].rstrip("]") for case in CASES}
    brief = {"INIT", "LK", "UD", "UD2", "UD3", "UD_LTE", "UD_WCDMA", "WT", "AL", "AL_LTE", "ALCUSTOMER1"}
    assert brief | {"TKQ", "TKQ2", "PULSE", "heart", "BLOOD", "bphrt", "TEMP", "btemp2", "oxygen"} <= types
    assert sum(case["expect"] is None for case in CASES) >= 10


def test_spec() -> None:
    assert (SPEC.name, SPEC.transport, SPEC.default_port, SPEC.binary) == ("watch", "tcp", 5093, False)


def test_registry_finds_the_codec() -> None:
    codec = stream_codec("watch")
    assert codec.spec is SPEC
    assert isinstance(codec.framer(), WatchFramer)
    assert codec.decode is decode
    assert codec.encode_command is encode_command


def test_replay_keeps_the_session_between_frames() -> None:
    rows = replay("watch", [b"[3G*4700186508*000B*LK,0,10,100]", b"[3G*4700186508*0007*heart,71]"], NOW)
    assert [row["device_id"] for row in rows] == ["4700186508", "4700186508"]
    assert rows[0]["reply"] == "[3G*4700186508*0002*LK]"
    assert rows[1]["heart_rate_bpm"] == 71.0


def test_same_session_is_not_returned_again() -> None:
    frame = b"[ZJ*014111001350304*0035*000d*LK,250,0,88]"
    first = decode(frame, Session(), NOW)
    assert first.session == Session("014111001350304", dialect="ZJ/indexed")
    assert decode(frame, first.session, NOW).session is None
    # Another device on the same connection (a relay) switches the session.
    other = decode(b"[3G*1111111111*0002*LK]", first.session, NOW)
    assert other.session == Session("1111111111", dialect="3G")
    assert other.device_id == "1111111111"


def test_alarm_word_raises_every_set_alarm() -> None:
    frame = b"[3G*1234567890*0058*UD,010324,120000,A,1.5,N,2.5,E,0,0,0,5,50,60,0,0,007F4007,0,0,0]"
    (message,) = decode(frame, Session(), NOW).messages
    assert message.alarms == {
        Alarm.LOW_BATTERY,
        Alarm.GEOFENCE_EXIT,
        Alarm.GEOFENCE_ENTER,
        Alarm.POWER_CUT,
        Alarm.SOS,
        Alarm.REMOVED,
        Alarm.FALL,
    }


def test_location_without_alarm_bits_has_no_alarm_but_al_is_general() -> None:
    body = b"010324,120000,A,1.5,N,2.5,E,0,0,0,5,50,60,0,0,00000008,0,0,0]"
    (ud,) = decode(b"[3G*1234567890*0058*UD," + body, Session(), NOW).messages
    (al,) = decode(b"[3G*1234567890*0058*AL," + body, Session(), NOW).messages
    assert ud.alarms == frozenset()
    assert al.alarms == {Alarm.GENERAL}


def test_battery_above_100_is_unknown() -> None:
    frame = b"[3G*1234567890*0058*UD,010324,120000,A,1.5,N,2.5,E,0,0,0,5,50,160,0,0,00000000,0,0,0]"
    (message,) = decode(frame, Session(), NOW).messages
    assert message.battery_pct is None


def test_decimal_cell_list_with_hex_looking_digits_stays_decimal() -> None:
    frame = b"[3G*1234567890*0058*UD,010324,120000,A,1.5,N,2.5,E,0,0,0,5,50,60,0,0,0,1,1,208,1,1000,2000,-70]"
    (message,) = decode(frame, Session(), NOW).messages
    (cell,) = message.cells
    assert (cell.lac, cell.cid, cell.signal) == (1000, 2000, -70)


# ---------------------------------------------------------------------------------------------------------
# Framer


def feed_all(framer: WatchFramer, chunks: list[bytes]) -> list[bytes]:
    frames: list[bytes] = []
    for chunk in chunks:
        frames.extend(framer.feed(chunk))
    return frames


def test_framer_one_read_with_every_frame() -> None:
    framer = WatchFramer()
    assert framer.feed(b"".join(GOOD_FRAMES)) == GOOD_FRAMES
    assert framer.skipped == 0


def test_framer_byte_by_byte() -> None:
    stream = b"".join(GOOD_FRAMES)
    framer = WatchFramer()
    assert feed_all(framer, [stream[i : i + 1] for i in range(len(stream))]) == GOOD_FRAMES
    assert framer.skipped == 0


def test_framer_random_split_points() -> None:
    stream = b"".join(GOOD_FRAMES)
    rng = random.Random(5093)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), 12))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert feed_all(WatchFramer(), chunks) == GOOD_FRAMES


def test_framer_skips_garbage_between_frames() -> None:
    a, b = b"[3G*8800000015*0003*TKQ]", b"[SG*9081000548*0009*LK,0,100]"
    framer = WatchFramer()
    assert framer.feed(b"\r\nHELLO" + a + b"]]\x00\xff" + b + b"tail") == [a, b]
    assert framer.skipped == len(b"\r\nHELLO") + len(b"]]\x00\xff") + len(b"tail")


def test_framer_restarts_on_an_unclosed_frame() -> None:
    good = b"[3G*8800000015*0003*TKQ]"
    framer = WatchFramer()
    assert framer.feed(b"[3G*88000") == []
    assert framer.feed(b"00015*0002*L" + good) == [good]
    assert framer.skipped == len(b"[3G*8800000015*0002*L")


def test_framer_oversize_frame() -> None:
    framer = WatchFramer(max_frame=64)
    with pytest.raises(FrameTooLarge):
        framer.feed(b"[" + b"x" * 64)
    with pytest.raises(FrameTooLarge):
        WatchFramer(max_frame=64).feed(b"[" + b"x" * 70 + b"]")
    # An unfinished frame of exactly max_frame bytes is kept.
    assert WatchFramer(max_frame=64).feed(b"[" + b"x" * 63) == []


def test_framer_hands_out_good_frames_before_an_oversize_one() -> None:
    good = b"[3G*8800000015*0003*TKQ]"
    framer = WatchFramer(max_frame=64)
    assert framer.feed(good + b"[" + b"x" * 100) == [good]
    with pytest.raises(FrameTooLarge):
        framer.feed(b"")
    assert framer.feed(good) == [good]


def test_framer_garbage_keeps_the_buffer_bounded() -> None:
    framer = WatchFramer()
    block = bytes(range(256)).replace(b"[", b"").replace(b"]", b"") * 4096
    sent = 0
    while sent < 10 * 1024 * 1024:
        assert framer.feed(block) == []
        sent += len(block)
        assert len(framer._buffer) == 0
    assert framer.skipped == sent


def test_framer_brackets_only_garbage_stays_bounded_and_linear() -> None:
    framer = WatchFramer()
    for _ in range(160):  # 10 MB of "[[[[...": each "[" restarts, only the last one is kept
        assert framer.feed(b"[" * 65536) == []
        assert len(framer._buffer) == 1
    good = b"[3G*8800000015*0003*TKQ]"
    assert framer.feed(good) == [good]


def test_framer_large_frame_in_small_pieces() -> None:
    payload = b"[3G*8800000015*0000*img," + b"\xff" * (MAX_FRAME - 100) + b"]"
    framer = WatchFramer()
    frames = feed_all(framer, [payload[i : i + 512] for i in range(0, len(payload), 512)])
    assert frames == [payload]


def test_framer_completes_a_frame_and_cuts_the_rest_of_the_same_read() -> None:
    a, b = b"[3G*8800000015*0003*TKQ]", b"[SG*9081000548*0009*LK,0,100]"
    framer = WatchFramer()
    assert framer.feed(b"xx" + a[:10]) == []
    assert framer.feed(a[10:] + b"]junk" + b + b"[3G*1") == [a, b]
    assert framer._buffer == b"[3G*1"
    assert framer.skipped == len(b"xx") + len(b"]junk")


def test_framer_cuts_bytes_frames_from_any_buffer() -> None:
    good = b"[3G*8800000015*0003*TKQ]"
    for data in (bytearray(good + good), memoryview(good + good)):
        frames = WatchFramer().feed(data)  # type: ignore[arg-type]
        assert frames == [good, good]
        assert all(type(frame) is bytes for frame in frames)


def test_framer_oversize_frame_completed_in_a_later_read_drops_that_read() -> None:
    good = b"[3G*8800000015*0003*TKQ]"
    framer = WatchFramer(max_frame=64)
    assert framer.feed(b"[" + b"x" * 40) == []
    with pytest.raises(FrameTooLarge):
        framer.feed(b"x" * 40 + b"]" + good)
    assert framer.skipped == 41 + 41 + len(good)
    assert framer.feed(good) == [good]


@FUZZ
@given(chunks=st.lists(st.binary(max_size=200), max_size=20), max_frame=st.integers(1, 300))
def test_framer_never_raises_anything_but_frame_too_large(chunks: list[bytes], max_frame: int) -> None:
    framer = WatchFramer(max_frame=max_frame)
    total = 0
    for chunk in chunks:
        total += len(chunk)
        try:
            frames = framer.feed(chunk)
        except FrameTooLarge:
            continue
        for frame in frames:
            assert frame.startswith(b"[") and frame.endswith(b"]")
            assert len(frame) <= max_frame
        assert len(framer._buffer) <= max_frame
    assert framer.skipped <= total


@FUZZ
@given(
    before=st.binary(max_size=300),
    after=st.binary(max_size=300),
    frame=st.sampled_from(GOOD_FRAMES),
    split=st.integers(0, 10_000),
)
def test_framer_never_loses_a_good_frame_in_garbage(
    before: bytes, after: bytes, frame: bytes, split: int
) -> None:
    stream = before + frame + after
    cut = split % (len(stream) + 1)
    frames = feed_all(WatchFramer(), [stream[:cut], stream[cut:]])
    assert frame in frames


# ---------------------------------------------------------------------------------------------------------
# Fast paths read what the general ones read


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", None),
        (b",1,2,3", (1, 3.0, {"type": "LK", "rolls": 2})),
        (b",1,x,3", (1, 3.0, {"type": "LK"})),
        (b",1,,50", (1, 50.0, {"type": "LK"})),
        (b",1,2", None),
        (b",1,2,3:4,5", (1, 3.0, {"type": "LK", "rolls": 2})),
        (b",1,2,50,xx", (1, 50.0, {"type": "LK", "rolls": 2})),
        (b",12345678901,0,50", None),
        (b",1,2,101", None),
        (b",1,2,100", (1, 100.0, {"type": "LK", "rolls": 2})),
        (b",,2,50", None),
        (b",1,2,50\n", None),
        (b",\xff\xfe", None),
        (",\u0661,\u0662,\u0663".encode(), (1, 3.0, {"type": "LK", "rolls": 2})),  # Arabic-Indic digits
    ],
)
def test_link_counters(body: bytes, expected: tuple[int, float, dict[str, Any]] | None) -> None:
    result = decode(b"[3G*1234567890*0000*LK" + body + b"]", Session(), NOW)
    assert result.reply == b"[3G*1234567890*0002*LK]"
    if expected is None:
        assert result.messages == ()
        return
    (message,) = result.messages
    assert (message.steps, message.battery_pct, dict(message.extras)) == expected


POSITION = "010324,120000,A,45.5,N,7.5,E,1.0,2,3,4,50,60,7,8,00000000"


@pytest.mark.parametrize(
    ("tail", "cells", "extras"),
    [
        ("1,0,208,1,100,200,-50,0", [(208, 1, 100, 200, -50)], {}),
        ("01,0,208,1,100,200,-50,0", [(208, 1, 100, 200, -50)], {}),
        ("2,0,208,1,100,200,-50,101,201,,0", [(208, 1, 100, 200, -50), (208, 1, 101, 201, None)], {}),
        ("1,0,208,1,100,200,-,", [(208, 1, 100, 200, None)], {}),
        ("1,0,,,100,200,5", [(0, 0, 100, 200, 5)], {}),
        ("1,0,208,1,100,200,-50,0,25", [(208, 1, 100, 200, -50)], {}),
        ("2,0,208,1,100,200,-50", [], {"network_truncated": True}),
        ("3,0,208,1,100,200,-50,0", [], {"network_truncated": True}),
        ("1,0,208,1," + "9" * 5000 + ",200,-50", [], {"network_truncated": True}),  # past int()'s limit
    ],
)
def test_cell_tails(tail: str, cells: list[tuple[int, ...]], extras: dict[str, Any]) -> None:
    (message,) = decode(f"[3G*1234567890*0000*UD,{POSITION},{tail}]".encode(), Session(), NOW).messages
    assert [(c.mcc, c.mnc, c.lac, c.cid, c.signal) for c in message.cells] == cells
    assert message.wifi == ()
    assert message.accuracy_m == (25.0 if tail.endswith(",25") else None)
    assert dict(message.extras) == {"type": "UD", "status": "00000000", "rssi": 50, "rolls": 8, **extras}


@FUZZ
@given(
    cells=st.lists(
        st.tuples(
            st.integers(0, 99_999), st.integers(0, 2**28), st.sampled_from(["", "-", "-80", "7", "-0", "00"])
        ),
        min_size=1,
        max_size=9,
    ),
    mcc=st.sampled_from(["", "0", "208", "460"]),
    after=st.sampled_from(["", ",", ",0", ",0,25", ",1,ssid,aa:bb:cc:dd:ee:ff,-60"]),
)
def test_decimal_cell_lists_read_alike_on_both_paths(
    cells: list[tuple[int, int, str]], mcc: str, after: str
) -> None:
    # A zero-padded cell count ("01") is only read by the general path, which must agree with the usual one.
    triples = ",".join(f"{lac},{cid},{signal}" for lac, cid, signal in cells)
    tails = [f"{count},0,{mcc},1,{triples}{after}" for count in (len(cells), f"0{len(cells)}")]
    usual, general = (
        decode(f"[3G*1234567890*0000*UD,{POSITION},{tail}]".encode(), Session(), NOW).messages
        for tail in tails
    )
    assert usual == general
    assert len(usual[0].cells) == len(cells)


def test_position_digits_of_other_scripts_still_read() -> None:
    body = "010324,120000,A,45.5,N,7.5,E,1.0,2,3,\u0664,50,\u0666\u0660,7,8,00000010"  # satellites, battery
    (message,) = decode(f"[3G*1234567890*0000*UD,{body}]".encode(), Session(), NOW).messages
    assert (message.satellites, message.battery_pct) == (4, 60.0)
    extras = {"type": "UD", "status": "00000010", "rssi": 50, "rolls": 8, "motion": True}
    assert dict(message.extras) == extras


def test_longest_header() -> None:
    uid, mtype = "7" * 32, "T" * 24
    result = decode(f"[ZJ*{uid}*0001*0035*{mtype},1]".encode(), Session(), NOW)
    assert result.device_id == uid
    assert result.session == Session(uid, dialect="ZJ/indexed")
    with pytest.raises(DecodeError):
        decode(f"[ZJ*{uid}*0001*0035*{mtype}T]".encode(), Session(), NOW)
    with pytest.raises(DecodeError):
        decode(f"[ZJ*{uid}7*0035*LK]".encode(), Session(), NOW)


# ---------------------------------------------------------------------------------------------------------
# Decoder robustness


@FUZZ
@given(data=st.binary(max_size=300))
def test_decode_arbitrary_bytes(data: bytes) -> None:
    decode_checked(data)
    decode_checked(b"[" + data + b"]")
    decode_checked(b"[3G*1234567890*0010*" + data + b"]")


@FUZZ
@given(
    frame=st.sampled_from(GOOD_FRAMES),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 2)), max_size=6),
)
def test_decode_mutated_real_frames(frame: bytes, edits: list[tuple[int, int, int]]) -> None:
    data = bytearray(frame)
    for position, value, kind in edits:
        index = position % (len(data) + 1)
        if kind == 0 and index < len(data):
            data[index] = value
        elif kind == 1:
            data.insert(index, value)
        elif index < len(data):
            del data[index]
    decode_checked(bytes(data))


FIELD_TEXT = st.sampled_from(
    ["", "0", "-1", "00", "1.5", "-0.0", "ff", "1F40", "nan", "inf", "1e9", "9" * 30, "A", "V", "N", "S",
     "E", "W", "}", "}\x04", "\u00b2", "é", "00:11:22:33:44:55", "  7", "+5", "1_0"]
)  # fmt: skip


@FUZZ
@given(
    mtype=st.sampled_from(["UD", "UD2", "AL", "AL_LTE", "LK", "heart", "bphrt", "oxygen", "TEMP", "btemp2"]),
    index=st.integers(0, 40),
    fields=st.lists(FIELD_TEXT, max_size=8),
)
def test_decode_mutated_fields(mtype: str, index: int, fields: list[str]) -> None:
    base = (
        "010324,120000,A,45.5,N,7.5,E,1.0,2,3,4,50,60,7,8,00010000,"
        "1,1,208,1,100,200,50,1,x,aa:bb:cc:dd:ee:ff,-60,9"
    )
    values = base.split(",")
    cut = index % (len(values) + 1)
    values[cut : cut + len(fields)] = fields
    frame = f"[3G*1234567890*0000*{mtype},{','.join(values)}]".encode()
    result = decode_checked(frame)
    if result is not None and mtype.startswith("AL"):
        assert result.reply == b"[3G*1234567890*0002*AL]"


def outcome(decoder: Any, frame: bytes, session: Session) -> DecodeResult | str:
    try:
        result: DecodeResult = decoder(frame, session)
    except DecodeError as exc:
        return f"DecodeError: {exc}"
    return result


# Values at the edges of what the common path (watch.COMMON_RE) admits, and just beyond them.
COMMON_FIELD_TEXT = st.sampled_from(
    ["", "0", "00", "1", "-1", "-", "09", "100", "101", "0.", "1.5", "-0.0", "90", "90.0", "90.000001", "-90",
     "180", "180.5", "-180", " 45.5", "  -7.25", "123", "1234", "9" * 10, "9" * 11, "9" * 18, "9" * 19,
     "9" * 5000, "000000", "010100", "290223", "290224", "310424", "320126", "235959", "240000", "126060",
     "A", "V", "B", "N", "S", "E", "W", "", "ff", "FFFFFFFF", "00010000", "00200010", "123456789", "x", "1e5",
     "inf", "+5", "1_0", "\u0664", "}", "0,0", "1,0,208,1,3000,12345,-80", "2,0,208,1,1,2,3,4,5,6"]
)  # fmt: skip
COMMON_BASES = (
    "UD_LTE,271126,120000,A,43.529742,N,5.447427,E,0.5,0.0,120.0,9,100,86,1520,0,00000000,1,0,208,1,3000,12345,-80,0",
    "AL,010324,120000,V,45.5,S,7.5,W,1.0,2,3,4,50,60,7,8,00010000,1,1,208,1,100,200,50",
    "UD,010324,120000,A,45.5,N,7.5,E,,,,,,,,,0",
    "WT,010324,120000,A,0,N,0,E,1.0,2,3,4,50,60,7,8,00200000,0,0,0",
    "LK,1520,0,86",
)


@FUZZ
@given(
    base=st.sampled_from(COMMON_BASES),
    index=st.integers(0, 30),
    values=st.lists(COMMON_FIELD_TEXT, max_size=3),
    indexed=st.booleans(),
    session=st.sampled_from([Session(), Session("1234567890", None, "3G"), Session("1234567890", "x", "3G")]),
)
def test_common_frames_decode_as_the_general_path_does(
    base: str, index: int, values: list[str], indexed: bool, session: Session
) -> None:
    """The fast path for the usual UD/AL/LK frames gives exactly what the general path gives (or leaves the
    frame to it): same message fields in the same order, same reply, same session, same error."""
    fields = base.split(",")
    cut = 1 + index % len(fields)
    fields[cut : cut + len(values)] = values
    frame = f"[3G*1234567890*{'0007*' if indexed else ''}0000*{','.join(fields)}]".encode()
    fast, general = (
        outcome(lambda f, s: decode(f, s, NOW), frame, session),
        outcome(decode_general, frame, session),
    )
    assert repr(fast) == repr(general)
    if isinstance(fast, DecodeResult) and isinstance(general, DecodeResult):  # extras in the same order too
        for mine, theirs in zip(fast.messages, general.messages, strict=True):
            assert list(mine.extras.items()) == list(theirs.extras.items())


def test_common_frames_take_the_fast_path() -> None:
    for base in COMMON_BASES:
        frame = f"[3G*1234567890*0000*{base}]"
        assert COMMON_RE.fullmatch(frame), base
        assert decode(frame.encode(), Session(), NOW) == decode_general(frame.encode(), Session())


LATITUDES = st.floats(min_value=-90, max_value=90).map(lambda v: round(v, 6))
LONGITUDES = st.floats(min_value=-180, max_value=180).map(lambda v: round(v, 6))


@FUZZ
@given(
    lat=LATITUDES,
    lon=LONGITUDES,
    time=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
    speed=st.floats(min_value=0, max_value=500).map(lambda v: round(v, 2)),
    status=st.integers(0, 0xFFFFFFFF),
    signed=st.booleans(),
)
def test_round_trip_position(
    lat: float, lon: float, time: datetime, speed: float, status: int, signed: bool
) -> None:
    def coordinate(value: float, positive: str, negative: str) -> str:
        if signed:
            return f"{value:.6f},{positive}"
        return f"{abs(value):.6f},{negative if value < 0 else positive}"

    body = (
        f"{time:%d%m%y},{time:%H%M%S},A,{coordinate(lat, 'N', 'S')},{coordinate(lon, 'E', 'W')},"
        f"{speed},0,0,5,50,60,0,0,{status:08X},0,0,0"
    )
    (message,) = decode(f"[3G*1234567890*0000*UD,{body}]".encode(), Session(), NOW).messages
    check_invariants(message)
    if lat == 0 and lon == 0:
        assert message.latitude is None and not message.valid
    else:
        assert (message.latitude, message.longitude) == (lat, lon)
        assert message.valid
    assert message.time == time.replace(microsecond=0)
    assert message.speed_kmh == speed
    assert (Alarm.SOS in message.alarms) == bool(status >> 16 & 1)


# ---------------------------------------------------------------------------------------------------------
# Commands

WATCH = Session(unique_id="123456789012345", dialect="3G")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (DeviceCommand(CommandKind.LOCATE), b"[3G*123456789012345*0002*CR]"),
        (DeviceCommand(CommandKind.SET_INTERVAL, interval_s=300), b"[3G*123456789012345*000a*UPLOAD,300]"),
        (DeviceCommand(CommandKind.REMOVAL_ALARM, enabled=True), b"[3G*123456789012345*0008*REMOVE,1]"),
        (DeviceCommand(CommandKind.REMOVAL_ALARM, enabled=False), b"[3G*123456789012345*0008*REMOVE,0]"),
        (DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=60), b"[3G*123456789012345*0006*LZ,,+1]"),
        (DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=-210), b"[3G*123456789012345*0008*LZ,,-3.5]"),
        (
            DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("+33612345678", "0611223344", "112")),
            b"[3G*123456789012345*0011*SOS1,+33612345678]"
            b"[3G*123456789012345*000f*SOS2,0611223344]"
            b"[3G*123456789012345*0008*SOS3,112]",
        ),
        (
            DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("0611223344",)),
            b"[3G*123456789012345*000f*SOS1,0611223344]"
            b"[3G*123456789012345*0005*SOS2,]"
            b"[3G*123456789012345*0005*SOS3,]",
        ),
    ],
)
def test_encode_command(command: DeviceCommand, expected: bytes) -> None:
    assert encode_command(command, WATCH, NOW) == expected


def test_command_uses_the_watch_vendor_and_index_form() -> None:
    locate = DeviceCommand(CommandKind.LOCATE)
    assert encode_command(locate, Session("9081000548", dialect="SG"), NOW) == b"[SG*9081000548*0002*CR]"
    assert encode_command(locate, Session("9081000548"), NOW) == b"[CS*9081000548*0002*CR]"
    assert (
        encode_command(locate, Session("9081000548", dialect="other model"), NOW)
        == b"[CS*9081000548*0002*CR]"
    )
    zj = Session("014111001350304", dialect="ZJ/indexed")
    assert encode_command(locate, zj, NOW) == b"[ZJ*014111001350304*0001*0002*CR]"


def test_command_frames_are_watch_frames() -> None:
    command = DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("0611223344", "112"))
    frames = WatchFramer().feed(encode_command(command, WATCH, NOW))
    assert len(frames) == 3
    for frame in frames:
        header, _, content = frame[1:-1].rpartition(b"*")
        assert int(header.rsplit(b"*", 1)[1], 16) == len(content)
        # The watch's echo of a command is recorded as an acknowledgement.
        (ack,) = decode(frame, WATCH, NOW).messages
        assert ack.extras["ack"] == content.split(b",")[0].decode()


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "+0"), (60, "+1"), (120, "+2"), (330, "+5.5"), (345, "+5.75"), (-210, "-3.5"), (-570, "-9.5"),
     (840, "+14"), (-720, "-12"), (-45, "-0.75")],
)  # fmt: skip
def test_timezone_text(minutes: int, text: str) -> None:
    assert timezone_text(minutes) == text


@pytest.mark.parametrize(
    ("command", "session", "message"),
    [
        (DeviceCommand(CommandKind.LOCATE), Session(), "device id is not known"),
        (DeviceCommand(CommandKind.SET_INTERVAL), WATCH, "interval_s"),
        (DeviceCommand(CommandKind.SET_INTERVAL, interval_s=0), WATCH, "interval_s"),
        (DeviceCommand(CommandKind.SET_INTERVAL, interval_s=True), WATCH, "interval_s"),
        (DeviceCommand(CommandKind.REMOVAL_ALARM), WATCH, "enabled"),
        (DeviceCommand(CommandKind.SET_TIMEZONE), WATCH, "utc_offset_min"),
        (DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=20), WATCH, "quarter hour"),
        (DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=15 * 60), WATCH, "quarter hour"),
        (DeviceCommand(CommandKind.SET_SOS_NUMBERS), WATCH, "1 to 3"),
        (DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("1", "2", "3", "4")), WATCH, "1 to 3"),
        (DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("061]*[",)), WATCH, "invalid phone"),
    ],
)
def test_encode_command_rejects(command: DeviceCommand, session: Session, message: str) -> None:
    with pytest.raises(UnsupportedCommand, match=message):
        encode_command(command, session, NOW)
