"""The GeoSentinel JSON v1 MQTT payload: exact decoding, clear errors, fuzzing, commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.model import Alarm, CellTower, ImuWindow, WifiAccessPoint
from geosentinel.protocols.base import CommandKind, DecodeError, DeviceCommand
from geosentinel.protocols.mqtt import decode, down_topic, encode_command, parse_topic

TOPIC = "geosentinel/org-1/dev-1/up"


def test_a_full_payload_decodes_to_every_field() -> None:
    payload = {
        "v": 1,
        "time": "2026-03-29T00:59:30+01:00",
        "position": {"lat": 43.2965, "lon": 5.3698, "accuracy_m": 12, "altitude_m": 40.5, "speed_kmh": 3.2,
                     "course_deg": 90, "satellites": 7, "source": "gps"},
        "battery_pct": 64, "charging": False, "steps": 1520, "heart_rate_bpm": 72, "spo2_pct": 97,
        "temperature_c": 36.6, "systolic_mmhg": 128, "diastolic_mmhg": 82, "alarms": ["sos", "fall"],
        "cells": [{"mcc": 208, "mnc": 1, "lac": 3000, "cid": 12345, "signal": -80}],
        "wifi": [{"mac": "68:77:24:1b:e7:a7", "signal_dbm": -59}],
        "imu": {"start": "2026-03-29T00:59:27Z", "rate_hz": 25, "accel_g": [[0, 0, 1], [0.1, 0.2, 2.9]]},
    }  # fmt: skip
    result = decode(TOPIC, json.dumps(payload).encode())
    (m,) = result.messages
    assert result.device_id == "dev-1"
    assert m.unique_id == "dev-1" and m.protocol == "mqtt"
    assert m.time == datetime(2026, 3, 28, 23, 59, 30, tzinfo=UTC) and not m.time_is_local
    assert (m.latitude, m.longitude, m.valid) == (43.2965, 5.3698, True)
    assert (m.accuracy_m, m.altitude_m, m.speed_kmh, m.course_deg, m.satellites) == (12, 40.5, 3.2, 90, 7)
    assert (m.battery_pct, m.charging, m.steps) == (64, False, 1520)
    assert (m.heart_rate_bpm, m.spo2_pct, m.temperature_c) == (72, 97, 36.6)
    assert (m.systolic_mmhg, m.diastolic_mmhg) == (128, 82)
    assert m.alarms == {Alarm.SOS, Alarm.FALL}
    assert m.cells == (CellTower(208, 1, 3000, 12345, -80),)
    assert m.wifi == (WifiAccessPoint("68:77:24:1b:e7:a7", -59),)
    assert m.extras == {"position_source": "gps", "imu_samples": 2}
    assert m.imu == ImuWindow(
        datetime(2026, 3, 29, 0, 59, 27, tzinfo=UTC), (0.0, 40.0), ((0, 0, 1), (0.1, 0.2, 2.9))
    )


def test_imu_samples_may_carry_their_own_times_and_the_gyroscope_its_own() -> None:
    imu = {"start": "2026-03-29T02:59:27+02:00", "t_ms": [0, 48, 103], "accel_g": [[0, 0, 1]] * 3,
           "gyro_dps": [[1, 2, 3], [4, 5, 6]], "gyro_t_ms": [10, 60]}  # fmt: skip
    (m,) = decode(TOPIC, json.dumps({"v": 1, "alarms": ["fall"], "imu": imu}).encode()).messages
    assert m.imu is not None
    assert m.imu.start == datetime(2026, 3, 29, 0, 59, 27, tzinfo=UTC)
    assert m.imu.accel_t_ms == (0, 48, 103) and m.imu.gyro_t_ms == (10, 60)
    assert m.imu.gyro_dps == ((1, 2, 3), (4, 5, 6))
    # A gyroscope sampled with the accelerometer shares its times.
    imu = {
        "start": "2026-03-29T00:59:27Z",
        "t_ms": [0, 50],
        "accel_g": [[0, 0, 1]] * 2,
        "gyro_dps": [[0, 0, 0]] * 2,
    }
    (m,) = decode(TOPIC, json.dumps({"v": 1, "imu": imu}).encode()).messages
    assert m.imu is not None and m.imu.gyro_t_ms == (0, 50)


@pytest.mark.parametrize(
    ("imu", "error"),
    [
        ({"start": "2026-03-29T00:59:27Z", "accel_g": [[0, 0, 1]]}, "needs rate_hz or t_ms"),
        ({"start": "2026-03-29T00:59:27Z", "t_ms": [0, 1], "accel_g": [[0, 0, 1]]}, "2 times for 1 samples"),
        ({"start": "2026-03-29T00:59:27Z", "t_ms": [0], "accel_g": [[0, 0, 1]], "gyro_dps": [[0, 0, 0]] * 2},
         "needs rate_hz or gyro_t_ms"),
        ({"start": "2026-03-29T00:59:27", "rate_hz": 25, "accel_g": [[0, 0, 1]]}, "UTC offset"),
        ({"start": "2026-03-29T00:59:27Z", "rate_hz": 25, "accel_g": []}, "`$.imu.accel_g`"),
        ({"start": "2026-03-29T00:59:27Z", "rate_hz": 25, "accel_g": [[0, 1]]}, "`$.imu.accel_g[0]`"),
    ],
)  # fmt: skip
def test_inconsistent_imu_windows_get_a_precise_error(imu: dict[str, object], error: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(TOPIC, json.dumps({"v": 1, "imu": imu}).encode())
    assert error in str(caught.value)


def test_a_heartbeat_needs_only_the_version() -> None:
    (m,) = decode(TOPIC, b'{"v": 1, "battery_pct": 12}').messages
    assert m.latitude is None and m.time is None and m.battery_pct == 12


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"[]", "Expected `object`"),
        (b'{"v": 2}', "`$.v`"),
        (b'{"v": 1, "position": {"lat": 91, "lon": 0}}', "`$.position.lat`"),
        (b'{"v": 1, "position": {"lat": "north", "lon": 0}}', "`$.position.lat`"),
        (b'{"v": 1, "battery_pct": 150}', "`$.battery_pct`"),
        (b'{"v": 1, "alarms": ["meteor"]}', "`$.alarms[0]`"),
        (b'{"v": 1, "surprise": true}', "unknown field `surprise`"),
        (b'{"v": 1, "time": "2026-01-01T10:00:00"}', "UTC offset"),
        (b'{"v": 1, "position": {"lat": NaN, "lon": 0}}', "not JSON"),
    ],
)
def test_malformed_payloads_get_a_precise_error(payload: bytes, error: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(TOPIC, payload)
    assert error in str(caught.value)


@pytest.mark.parametrize(
    "topic", ["geosentinel/org/dev/down", "geosentinel/org/up", "other/org/dev/up", "geosentinel//dev/up"]
)
def test_only_up_topics_are_accepted(topic: str) -> None:
    with pytest.raises(DecodeError, match="is not geosentinel"):
        parse_topic(topic)


def test_topics_round_trip() -> None:
    assert parse_topic(TOPIC) == ("org-1", "dev-1")
    assert down_topic("org-1", "dev-1") == "geosentinel/org-1/dev-1/down"


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_errors(payload: bytes) -> None:
    try:
        decode(TOPIC, payload)
    except DecodeError:
        pass


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["v", "time", "position", "battery_pct", "alarms", "imu", "cells"]), JSONISH
    )
)
def test_arbitrary_json_objects_raise_only_decode_errors(body: dict[str, object]) -> None:
    try:
        decode(TOPIC, json.dumps(body).encode())
    except DecodeError:
        pass


def test_commands_are_versioned_json() -> None:
    now = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    tz = encode_command(DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=120), "c1", now)
    expected = {"v": 1, "id": "c1", "command": "set_timezone", "sent_at": "2026-07-01T08:00:00Z"}
    assert json.loads(tz) == {**expected, "utc_offset_min": 120}
    sos = encode_command(
        DeviceCommand(CommandKind.SET_SOS_NUMBERS, phone_numbers=("+33600000001",)), "c2", now
    )
    assert json.loads(sos)["phone_numbers"] == ["+33600000001"]


def test_the_documented_up_payloads_decode() -> None:
    """Docs as tests: every up payload example in docs/protocols/mqtt.md is valid."""
    doc = (Path(__file__).parents[2] / "docs" / "protocols" / "mqtt.md").read_text()
    examples = [block.removeprefix("json\n") for block in doc.split("```")[1::2] if block.startswith("json")]
    ups = [json.loads(example) for example in examples if '"v": 1' in example and '"command"' not in example]
    assert len(ups) >= 2
    for up in ups:
        (m,) = decode(TOPIC, json.dumps(up).encode()).messages
        assert m.imu is None or len(m.imu.accel_g) == len(m.imu.accel_t_ms) == len(up["imu"]["accel_g"])
