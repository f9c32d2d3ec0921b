"""OsmAnd / Traccar Client decoder: captured and constructed requests, invariants, and fuzzing."""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.model import DeviceMessage
from geosentinel.protocols.base import DecodeError, DecodeResult, message_to_json
from geosentinel.protocols.osmand import SPEC, HttpRequest, decode, decode_text
from geosentinel.testing import same

CASES_PATH = Path(__file__).parent / "cases" / "osmand.json"
CASES: list[dict[str, Any]] = json.loads(CASES_PATH.read_text(encoding="utf-8"))

FLOAT_FIELDS = (
    "latitude",
    "longitude",
    "speed_kmh",
    "course_deg",
    "altitude_m",
    "accuracy_m",
    "hdop",
    "battery_pct",
    "heart_rate_bpm",
    "spo2_pct",
    "temperature_c",
)
NON_NEGATIVE_FIELDS = ("speed_kmh", "course_deg", "accuracy_m", "hdop", "heart_rate_bpm", "steps")
FUZZ = settings(max_examples=200)


def check_invariants(message: DeviceMessage) -> None:
    """What every decoded message must satisfy, whatever the input."""
    assert message.protocol == "osmand"
    assert isinstance(message.unique_id, str)
    assert message.unique_id
    assert message.unique_id == message.unique_id.strip()
    assert (message.latitude is None) == (message.longitude is None)
    if message.latitude is not None and message.longitude is not None:
        assert -90 <= message.latitude <= 90
        assert -180 <= message.longitude <= 180
        assert message.valid is not None
    if message.time is not None:
        assert message.time.tzinfo is UTC
    for name in FLOAT_FIELDS:
        value = getattr(message, name)
        assert value is None or (isinstance(value, float) and math.isfinite(value)), name
    for name in NON_NEGATIVE_FIELDS:
        value = getattr(message, name)
        assert value is None or value >= 0, name
    for name in ("battery_pct", "spo2_pct"):
        value = getattr(message, name)
        assert value is None or 0 <= value <= 100, name
    for key, value in message.extras.items():
        assert isinstance(key, str)
        assert isinstance(value, str | int | float | bool)
        assert not isinstance(value, float) or math.isfinite(value)


def decode_checked(request: HttpRequest) -> DecodeResult | None:
    """Decode; only DecodeError may escape the decoder, and whatever it returns satisfies the invariants."""
    try:
        result = decode(request)
    except DecodeError as exc:
        assert str(exc)
        return None
    check_result(result)
    return result


def check_result(result: DecodeResult) -> None:
    assert result.messages
    assert result.reply == b""
    assert result.unknown_device_status in (400, 404)
    for message in result.messages:
        check_invariants(message)


def request_of(raw: dict[str, str]) -> HttpRequest:
    return HttpRequest(
        method=raw["method"],
        query=raw["query"],
        content_type=raw["content_type"],
        body=raw["body"].encode("utf-8"),
    )


# ---------------------------------------------------------------------------------------------------------
# Captured and constructed frames


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    request = request_of(case["request"])
    if case["expect"] is None:
        with pytest.raises(DecodeError) as info:
            decode(request)
        assert case["error"] in str(info.value)
        return
    result = decode(request)
    check_result(result)
    assert result.unknown_device_status == case["unknown_device_status"]
    assert len(result.messages) == len(case["expect"])
    for message, expected in zip(result.messages, case["expect"], strict=True):
        actual = message_to_json(message)
        for key, value in expected.items():
            if key == "time" and value is not None:
                assert message.time == datetime.fromisoformat(value), key
            else:
                assert same(actual[key], value), f"{key}: {actual[key]!r} != {value!r}"


def test_cases_file_covers_the_brief() -> None:
    ids = {case["id"] for case in CASES}
    assert {"O01", "O04", "O07", "O10", "O13"} <= ids
    assert sum(case["expect"] is not None for case in CASES) >= 13
    assert sum(case["expect"] is None for case in CASES) >= 8


def test_spec() -> None:
    assert (SPEC.name, SPEC.transport, SPEC.default_port) == ("osmand", "http", 5055)


# ---------------------------------------------------------------------------------------------------------
# decode_text (the CLI helper)


@pytest.mark.parametrize(
    "text",
    [
        "id=7&lat=1.5&lon=2.5",
        "?id=7&lat=1.5&lon=2.5",
        "/?id=7&lat=1.5&lon=2.5",
        "GET /?id=7&lat=1.5&lon=2.5 HTTP/1.1",
        "http://example.org:5055/?id=7&lat=1.5&lon=2.5",
        '  {"device_id": "7", "location": {"coords": {"latitude": 1.5, "longitude": 2.5}}}  ',
        '[{"device_id": "7", "location": {"coords": {"latitude": 1.5, "longitude": 2.5}}}]',
    ],
)
def test_decode_text_forms(text: str) -> None:
    result = decode_text(text)
    (message,) = result.messages
    assert (message.unique_id, message.latitude, message.longitude) == ("7", 1.5, 2.5)
    assert result.unknown_device_status == (404 if text.strip()[0] in "{[" else 400)


def test_decode_text_rejects_garbage() -> None:
    with pytest.raises(DecodeError, match="missing device id"):
        decode_text("hello world")


def test_unsupported_method() -> None:
    with pytest.raises(DecodeError, match="unsupported HTTP method 'DELETE'"):
        decode(HttpRequest(method="DELETE", query="id=1", content_type="", body=b""))


def test_json_unsupported_charset() -> None:
    request = HttpRequest("POST", "", "application/json; charset=latin-1", b'{"device_id": "1"}')
    with pytest.raises(DecodeError, match="unsupported charset 'latin-1'"):
        decode(request)


def test_repeated_key_last_wins_and_empty_value_is_absent() -> None:
    (message,) = decode_text("id=1&lat=1&lon=2&lat=3&speed=&batt=").messages
    assert (message.latitude, message.speed_kmh, message.battery_pct) == (3.0, None, None)


def test_plus_in_unencoded_offset() -> None:
    (message,) = decode_text("id=1&timestamp=2016-01-27T18:55:47+02:00").messages
    assert message.time == datetime(2016, 1, 27, 16, 55, 47, tzinfo=UTC)
    assert not message.time_is_local


# ---------------------------------------------------------------------------------------------------------
# Property tests: never anything but DecodeError, and decoded messages always satisfy the invariants

CONTENT_TYPES = st.sampled_from(
    [
        "",
        "application/json",
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded",
        "text/plain",
        "text/xml",
        "multipart/form-data; boundary=x",
    ]
) | st.text(max_size=30)
METHODS = st.sampled_from(["GET", "POST", "post", "PUT", "HEAD", "DELETE", ""])
QUERY_KEYS = [
    "id",
    "deviceid",
    "timestamp",
    "lat",
    "lon",
    "location",
    "speed",
    "bearing",
    "heading",
    "altitude",
    "accuracy",
    "hdop",
    "batt",
    "charge",
    "valid",
    "alarm",
    "cell",
    "wifi",
    "heartrate",
    "heart_rate",
    "steps",
    "spo2",
    "temperature",
    "temp",
    "mock",
]
INTERESTING_VALUES = st.sampled_from(
    [
        "",
        "1",
        "-1",
        "0",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "1e308",
        "true",
        "false",
        "sos",
        "fallDown,x",
        "1,2",
        "1,2,3",
        "91",
        "-180.0",
        "2024-06-15 13:45:12",
        "2024-06-15T13:45:12Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-05:00",
        "99999999999999999999",
        "253402300800000",
        "1718459112.5",
    ]
)
QUERY_VALUES = (
    INTERESTING_VALUES
    | st.text(max_size=20)
    | st.floats().map(repr)
    | st.integers().map(str)
    | st.datetimes().map(datetime.isoformat)
)
QUERY_STRINGS = st.lists(
    st.tuples(st.sampled_from(QUERY_KEYS) | st.text(max_size=8), QUERY_VALUES), max_size=8
).map(urlencode)

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | INTERESTING_VALUES
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)
JSON_PATHS = st.sampled_from(
    [
        (),
        ("device_id",),
        ("id",),
        ("alarm",),
        ("location",),
        ("location", "timestamp"),
        ("location", "alarm"),
        ("location", "is_moving"),
        ("location", "odometer"),
        ("location", "event"),
        ("location", "mock"),
        ("location", "coords"),
        ("location", "coords", "latitude"),
        ("location", "coords", "longitude"),
        ("location", "coords", "speed"),
        ("location", "coords", "heading"),
        ("location", "coords", "accuracy"),
        ("location", "coords", "altitude"),
        ("location", "battery"),
        ("location", "battery", "level"),
        ("location", "battery", "is_charging"),
        ("location", "activity"),
        ("location", "activity", "type"),
        ("location", "extras"),
        ("location", "extras", "alarm"),
    ]
)
JSON_TEMPLATE: dict[str, Any] = {
    "device_id": "fuzz-1",
    "location": {
        "timestamp": "2024-06-15T13:45:12Z",
        "is_moving": True,
        "odometer": 12.5,
        "event": "motionchange",
        "coords": {"latitude": 1.5, "longitude": 2.5, "speed": 3.0, "heading": 90, "accuracy": 5},
        "battery": {"level": 0.5, "is_charging": False},
        "activity": {"type": "walking"},
        "extras": {"alarm": "sos"},
    },
}


def with_value(path: tuple[str, ...], value: Any) -> Any:
    """The JSON template with ``value`` placed at ``path`` (the whole body for an empty path)."""
    if not path:
        return value
    body = copy.deepcopy(JSON_TEMPLATE)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@FUZZ
@given(
    method=METHODS, query=st.text(max_size=40) | QUERY_STRINGS, content_type=CONTENT_TYPES, body=st.binary()
)
def test_fuzz_raw_requests(method: str, query: str, content_type: str, body: bytes) -> None:
    decode_checked(HttpRequest(method=method, query=query, content_type=content_type, body=body))


@FUZZ
@given(query=QUERY_STRINGS, as_form_body=st.booleans())
def test_fuzz_query_values(query: str, as_form_body: bool) -> None:
    if as_form_body:
        request = HttpRequest("POST", "", "application/x-www-form-urlencoded", query.encode())
    else:
        request = HttpRequest("GET", query, "", b"")
    decode_checked(request)


@FUZZ
@given(path=JSON_PATHS, value=JSON_VALUES, batch=st.booleans())
def test_fuzz_json_values(path: tuple[str, ...], value: Any, batch: bool) -> None:
    body = with_value(path, value)
    if batch and isinstance(body, dict) and isinstance(body.get("location"), dict):
        body["location"] = [body["location"], JSON_TEMPLATE["location"]]
    request = HttpRequest("POST", "", "application/json", json.dumps(body).encode())
    decode_checked(request)


@FUZZ
@given(coords=st.dictionaries(st.sampled_from(["latitude", "longitude", "speed", "heading"]), JSON_SCALARS))
def test_fuzz_json_coords(coords: dict[str, Any]) -> None:
    body = with_value(("location", "coords"), coords)
    decode_checked(HttpRequest("POST", "", "application/json", json.dumps(body).encode()))


@FUZZ
@given(text=st.text(max_size=60) | QUERY_STRINGS | JSON_VALUES.map(json.dumps))
def test_fuzz_decode_text(text: str) -> None:
    try:
        result = decode_text(text)
    except DecodeError:
        return
    check_result(result)


# ---------------------------------------------------------------------------------------------------------
# Round trip: what a client puts in the query string is what comes out

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LATITUDES = st.floats(min_value=-90, max_value=90)
LONGITUDES = st.floats(min_value=-180, max_value=180)
KNOTS = st.floats(min_value=0, max_value=1000)


@FUZZ
@given(
    lat=LATITUDES,
    lon=LONGITUDES,
    knots=KNOTS,
    seconds=st.integers(min_value=0, max_value=99_999_999_999),
)
def test_round_trip_query_seconds(lat: float, lon: float, knots: float, seconds: int) -> None:
    query = urlencode(
        {"id": "rt", "lat": repr(lat), "lon": repr(lon), "speed": repr(knots), "timestamp": seconds}
    )
    (message,) = decode_text(query).messages
    check_invariants(message)
    assert (message.latitude, message.longitude) == (lat, lon)
    assert message.time == EPOCH + timedelta(seconds=seconds)
    assert message.speed_kmh == pytest.approx(knots * 1.852, abs=1e-6)


@FUZZ
@given(
    lat=LATITUDES,
    lon=LONGITUDES,
    millis=st.integers(min_value=100_000_000_001, max_value=253_402_300_799_999),
    form_body=st.booleans(),
)
def test_round_trip_query_millis(lat: float, lon: float, millis: int, form_body: bool) -> None:
    query = urlencode({"id": "rt", "location": f"{lat!r},{lon!r}", "timestamp": millis})
    if form_body:
        request = HttpRequest("POST", "", "application/x-www-form-urlencoded", query.encode())
    else:
        request = HttpRequest("GET", query, "", b"")
    (message,) = decode(request).messages
    assert (message.latitude, message.longitude) == (lat, lon)
    assert message.time == EPOCH + timedelta(milliseconds=millis)


@FUZZ
@given(
    lat=LATITUDES,
    lon=LONGITUDES,
    mps=st.floats(min_value=0, max_value=500),
    time=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
)
def test_round_trip_json(lat: float, lon: float, mps: float, time: datetime) -> None:
    body = {
        "device_id": "rt",
        "location": {
            "timestamp": time.isoformat(),
            "coords": {"latitude": lat, "longitude": lon, "speed": mps},
        },
    }
    result = decode(HttpRequest("POST", "", "application/json", json.dumps(body).encode()))
    (message,) = result.messages
    check_invariants(message)
    assert (message.latitude, message.longitude, message.time) == (lat, lon, time)
    assert message.speed_kmh == pytest.approx(mps * 3.6, abs=1e-6)
