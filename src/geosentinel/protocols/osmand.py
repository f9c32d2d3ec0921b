"""OsmAnd / Traccar Client protocol: positions over plain HTTP, default port 5055.

Who sends it: the Traccar Client apps for Android and iOS, the OsmAnd app's "online tracking", and apps
built on Transistorsoft background-geolocation (the JSON form, which newer Traccar Client versions use too),
plus many small trackers and scripts that reuse the same URL format.

Spec source: Traccar's ``OsmAndProtocolDecoder.java`` and its tests (Apache-2.0), summarised in section 4.3
of the shared protocol notes (``shared/protocols/README.md``), and ``ProtocolFormatter.kt`` of
``traccar/traccar-client-android`` for what the Android client actually sends.

Three request forms are accepted:

* query form: ``GET /?id=...&lat=...`` (or ``POST`` with the same parameters in the URL);
* form body: ``POST`` with ``application/x-www-form-urlencoded`` (URL parameters are merged in first);
* JSON: ``POST`` with ``application/json``; ``location`` may be a list (batch sync, one message each).

Units on the wire: query ``speed`` is knots, JSON ``coords.speed`` is m/s, JSON ``battery.level`` is 0..1.
Negative values of quantities that cannot be negative (speed, course, accuracy, hdop, battery, steps, heart
rate, SpO2) mean "unknown" and decode to ``None``. An empty query value is treated as absent.

The decoder is pure (no I/O, no clock). The reply is always an empty HTTP 200 body; for an unregistered
device the transport answers 400 (query/form) or 404 (JSON), as ``DecodeResult.unknown_device_status`` says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import orjson

from geosentinel.model import Alarm, DeviceMessage, ExtraValue
from geosentinel.protocols.base import DecodeError, DecodeResult, ProtocolSpec

SPEC = ProtocolSpec(
    name="osmand",
    transport="http",
    default_port=5055,
    description=(
        "OsmAnd / Traccar Client (Android, iOS) and Transistorsoft background-geolocation apps: "
        "positions as an HTTP query string, a form body or JSON"
    ),
)

QUERY_UNKNOWN_DEVICE_STATUS = 400
JSON_UNKNOWN_DEVICE_STATUS = 404
KNOTS_TO_KMH = 1.852
MPS_TO_KMH = 3.6

_PROTOCOL = "osmand"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch values above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is March 1973.
_MS_THRESHOLD = 100_000_000_000
_MAX_EPOCH_DIGITS = 20
_SHOW_MAX = 40
_FORM_TYPE = "application/x-www-form-urlencoded"
_UTF8_CHARSETS = frozenset({"utf-8", "utf8"})
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT"})

_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH_RE = re.compile(r"\d+(?:\.\d+)?")
_ISO_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
)
# A '+' in an unencoded query-string offset arrives as a space: "2016-01-27T18:55:47 02:00".
_SPACED_OFFSET_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T[\d:.,]+) (\d{2}(?::?\d{2})?)")
_FORM_BODY_RE = re.compile(rb"[\x21-\x7e]*=[\x21-\x7e]*")

_ALARMS: Mapping[str, Alarm] = {
    "sos": Alarm.SOS,
    "fall": Alarm.FALL,
    "falldown": Alarm.FALL,
    "removing": Alarm.REMOVED,
    "removed": Alarm.REMOVED,
    "lowbattery": Alarm.LOW_BATTERY,
    "poweroff": Alarm.POWER_OFF,
    "powercut": Alarm.POWER_CUT,
}


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """The parts of an HTTP request the decoder needs. ``query`` is the raw query string without '?'."""

    method: str
    query: str
    content_type: str
    body: bytes


@dataclass(slots=True)
class _Draft:
    """A message being assembled field by field; ``build`` checks it and freezes it."""

    unique_id: str | None = None
    time: datetime | None = None
    time_is_local: bool = False
    latitude: float | None = None
    longitude: float | None = None
    valid: bool | None = None
    speed_kmh: float | None = None
    course_deg: float | None = None
    altitude_m: float | None = None
    accuracy_m: float | None = None
    hdop: float | None = None
    battery_pct: float | None = None
    charging: bool | None = None
    steps: int | None = None
    heart_rate_bpm: float | None = None
    spo2_pct: float | None = None
    temperature_c: float | None = None
    alarms: set[Alarm] = field(default_factory=set)
    unknown_alarms: list[str] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    wifis: list[str] = field(default_factory=list)
    extras: dict[str, ExtraValue] = field(default_factory=dict)

    def build(self, unique_id: str) -> DeviceMessage:
        if (self.latitude is None) != (self.longitude is None):
            given, missing = (
                ("latitude", "longitude") if self.longitude is None else ("longitude", "latitude")
            )
            raise DecodeError(f"{given} given without {missing}")
        has_fix = self.latitude is not None
        extras = self.extras  # the draft is discarded after build(): no copy needed
        if self.cells or self.wifis or self.unknown_alarms:
            for key, values in (("cell", self.cells), ("wifi", self.wifis), ("alarm", self.unknown_alarms)):
                if values:
                    extras[key] = ";".join(values)
        return DeviceMessage(
            unique_id=unique_id,
            protocol=_PROTOCOL,
            time=self.time,
            time_is_local=self.time_is_local,
            latitude=self.latitude,
            longitude=self.longitude,
            valid=self.valid if self.valid is not None or not has_fix else True,
            speed_kmh=self.speed_kmh,
            course_deg=self.course_deg,
            altitude_m=self.altitude_m,
            accuracy_m=self.accuracy_m,
            hdop=self.hdop,
            battery_pct=self.battery_pct,
            charging=self.charging,
            steps=self.steps,
            heart_rate_bpm=self.heart_rate_bpm,
            spo2_pct=self.spo2_pct,
            temperature_c=self.temperature_c,
            alarms=frozenset(self.alarms),
            extras=extras,
        )


# A field parser: (draft, wire key, value) -> None. Query values are str; JSON values are any JSON value.
_Handler = Callable[[_Draft, str, object], None]


# ---------------------------------------------------------------------------------------------------------
# Public entry points


def decode(request: HttpRequest) -> DecodeResult:
    """Decode one OsmAnd / Traccar Client HTTP request. Raises :class:`DecodeError` for any bad input."""
    method = request.method.strip().upper()
    query = request.query.removeprefix("?")
    if method in ("GET", "HEAD"):
        return _decode_pairs(_parse_pairs(query, "query string"))
    if method not in ("POST", "PUT"):
        raise DecodeError(f"unsupported HTTP method {_show(request.method)}")
    media_type, charset = _parse_content_type(request.content_type)
    body = request.body
    if not body.strip():
        # Traccar Client for Android POSTs its parameters in the URL with an empty body.
        return _decode_pairs(_parse_pairs(query, "query string"))
    if _is_json_type(media_type) or (not media_type and body.lstrip()[:1] in (b"{", b"[")):
        if charset is not None and charset not in _UTF8_CHARSETS:
            raise DecodeError(f"unsupported charset {_show(charset)} for a JSON body (expected utf-8)")
        return _decode_json(body)
    if media_type == _FORM_TYPE or (not media_type and _FORM_BODY_RE.fullmatch(body.strip())):
        return _decode_pairs(_parse_pairs(query, "query string") + _parse_pairs(body.strip(), "form body"))
    if not media_type:
        raise DecodeError("request body without a content type is neither a form nor JSON")
    raise DecodeError(f"unsupported content type {_show(media_type)}")


def decode_text(text: str) -> DecodeResult:
    """Decode what a person pastes on the command line.

    ``text`` is a JSON body (starts with ``{`` or ``[``), or a query string, optionally starting with ``?``
    or ``/?``, or a request line such as ``GET /?id=1&lat=... HTTP/1.1``, or a full URL.
    """
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        body = stripped.encode("utf-8", "surrogatepass")
        return decode(HttpRequest(method="POST", query="", content_type="application/json", body=body))
    return decode(HttpRequest(method="GET", query=_query_from_text(stripped), content_type="", body=b""))


def _query_from_text(text: str) -> str:
    parts = text.split()
    if len(parts) >= 2 and parts[0].upper() in _HTTP_METHODS:
        text = parts[1]
    if "://" in text or text.startswith("/"):
        _, _, text = text.partition("?")
    return text.removeprefix("?").partition("#")[0]


# ---------------------------------------------------------------------------------------------------------
# Request plumbing


def _parse_content_type(content_type: str) -> tuple[str, str | None]:
    """(lower-case media type, lower-case charset or None)."""
    media_type, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media_type.strip().lower(), charset


def _is_json_type(media_type: str) -> bool:
    return media_type in ("application/json", "text/json") or media_type.endswith("+json")


def _parse_pairs(data: str | bytes, where: str) -> list[tuple[str, str]]:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        text.encode("utf-8")  # rejects lone surrogates smuggled into a str
        if "%" not in text and "+" not in text:
            # The common case (Traccar Client sends plain numbers): nothing to unescape, and splitting
            # ourselves gives exactly what parse_qsl would, several times faster on the hot path.
            return [
                (key, value) for key, _, value in (part.partition("=") for part in text.split("&") if part)
            ]
        # Blank values are kept; percent-escapes that are not UTF-8 fail instead of becoming U+FFFD.
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except ValueError:  # UnicodeDecodeError / UnicodeEncodeError
        raise DecodeError(f"{where} is not valid UTF-8") from None


def _decode_pairs(pairs: list[tuple[str, str]]) -> DecodeResult:
    """The query/form form: parameters in order; for a repeated single-valued key the last one wins."""
    draft = _Draft()
    for key, value in pairs:
        handler = _QUERY_FIELDS.get(key)
        if handler is None:
            if key:
                draft.extras[key] = value
        elif value.strip():
            handler(draft, key, value)
    if draft.unique_id is None:
        raise DecodeError("missing device id ('id' or 'deviceid')")
    message = draft.build(draft.unique_id)
    return DecodeResult(messages=(message,), reply=b"", unknown_device_status=QUERY_UNKNOWN_DEVICE_STATUS)


# ---------------------------------------------------------------------------------------------------------
# Value parsers (shared by the query and JSON forms)


def _show(value: object) -> str:
    """A short, safe rendering of a wire value for error messages (never a huge or recursive repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    try:
        text = value if isinstance(value, str) else str(value)
    except ValueError:  # an int too long to print
        return "a huge number"
    if len(text) > _SHOW_MAX:
        text = text[:_SHOW_MAX] + "..."
    return f"'{text}'"


def _to_float(name: str, value: object) -> float:
    """A finite number from query text, a JSON number, or a JSON string holding a number."""
    if isinstance(value, str):
        text = value.strip()
        if not _NUMBER_RE.fullmatch(text):
            raise DecodeError(f"invalid {name} {_show(value)}")
        number = float(text)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            raise DecodeError(f"{name} {_show(value)} is too large") from None
    else:
        raise DecodeError(f"invalid {name} {_show(value)}: expected a number")
    if not math.isfinite(number):
        raise DecodeError(f"{name} {_show(value)} is not a finite number")
    return number


def _measure(name: str, value: object, factor: float = 1.0, signed: bool = False) -> float | None:
    """A number converted by ``factor``; ``None`` if negative and the quantity cannot be negative."""
    number = _to_float(name, value)
    if factor != 1.0:
        number *= factor
        if not math.isfinite(number):
            raise DecodeError(f"{name} {_show(value)} is out of range")
        number = round(number, 6)
    if number < 0 and not signed:
        return None
    return number


def _percent(name: str, value: object, factor: float = 1.0) -> float | None:
    """A 0..100 percentage (``factor`` 100 for a 0..1 fraction); negative means unknown."""
    number = _measure(name, value, factor)
    if number is not None and number > 100:
        raise DecodeError(f"{name} {_show(value)} out of range [0, {100 / factor:g}]")
    return number


def _coordinate(name: str, value: object, limit: int) -> float:
    number = _to_float(name, value)
    if not -limit <= number <= limit:
        raise DecodeError(f"{name} {number} out of range [-{limit}, {limit}]")
    return number


def _to_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    raise DecodeError(f"invalid {name} {_show(value)}: expected true or false")


def _to_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"invalid {name} {_show(value)}: expected a string")
    return value


def _parse_time(value: object) -> tuple[datetime, bool]:
    """(UTC time, is_local). Unix s or ms, ISO-8601 with a zone, or a zone-less local time."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch_time(value), False
    if not isinstance(value, str):
        raise DecodeError(f"invalid timestamp {_show(value)}: expected a string or a number")
    text = value.strip().upper()
    if _EPOCH_RE.fullmatch(text):
        return _epoch_time(text), False
    text = _SPACED_OFFSET_RE.sub(r"\1+\2", text)
    if not _ISO_RE.fullmatch(text):
        raise DecodeError(f"invalid timestamp {_show(value)}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DecodeError(f"invalid timestamp {_show(value)}: {exc}") from None
    if parsed.tzinfo is None:
        # No zone on the wire: the device's local time, carried as a UTC-tagged naive value.
        return parsed.replace(tzinfo=UTC), True
    try:
        return parsed.astimezone(UTC), False
    except OverflowError:
        raise DecodeError(f"timestamp {_show(value)} out of range") from None


def _epoch_time(value: int | float | str) -> datetime:
    try:
        if isinstance(value, str) and len(value) > _MAX_EPOCH_DIGITS:
            raise OverflowError
        number: int | float = int(value) if isinstance(value, str) and "." not in value else float(value)
        if number < 0 or not math.isfinite(number):
            raise OverflowError
        if number > _MS_THRESHOLD:
            return _EPOCH + timedelta(milliseconds=number)
        return _EPOCH + timedelta(seconds=number)
    except (OverflowError, ValueError):
        raise DecodeError(f"timestamp {_show(value)} out of range") from None


# ---------------------------------------------------------------------------------------------------------
# Field handlers


def _number_field(attr: str, factor: float = 1.0, signed: bool = False, label: str = "") -> _Handler:
    if factor == 1.0:

        def handle_plain(draft: _Draft, key: str, value: object) -> None:
            # _measure() without a conversion, inlined: most query fields take this path.
            number = _to_float(label or key, value)
            setattr(draft, attr, None if number < 0 and not signed else number)

        return handle_plain

    def handle(draft: _Draft, key: str, value: object) -> None:
        setattr(draft, attr, _measure(label or key, value, factor, signed))

    return handle


def _percent_field(attr: str, factor: float = 1.0, label: str = "") -> _Handler:
    def handle(draft: _Draft, key: str, value: object) -> None:
        setattr(draft, attr, _percent(label or key, value, factor))

    return handle


def _bool_field(attr: str) -> _Handler:
    def handle(draft: _Draft, key: str, value: object) -> None:
        setattr(draft, attr, _to_bool(key, value))

    return handle


def _extra_field(name: str, convert: Callable[[str, object], ExtraValue]) -> _Handler:
    def handle(draft: _Draft, key: str, value: object) -> None:
        draft.extras[name] = convert(key, value)

    return handle


def _list_field(attr: str) -> _Handler:
    def handle(draft: _Draft, key: str, value: object) -> None:
        getattr(draft, attr).append(_to_text(key, value))

    return handle


def _set_id(draft: _Draft, key: str, value: object) -> None:
    draft.unique_id = _to_text(key, value).strip() or draft.unique_id


def _set_time(draft: _Draft, key: str, value: object) -> None:
    draft.time, draft.time_is_local = _parse_time(value)


def _set_latitude(draft: _Draft, key: str, value: object) -> None:
    draft.latitude = _coordinate("latitude", value, 90)


def _set_longitude(draft: _Draft, key: str, value: object) -> None:
    draft.longitude = _coordinate("longitude", value, 180)


def _set_location(draft: _Draft, key: str, value: object) -> None:
    parts = _to_text(key, value).split(",")
    if len(parts) != 2:
        raise DecodeError(f"invalid location {_show(value)}: expected 'lat,lon'")
    draft.latitude = _coordinate("latitude", parts[0], 90)
    draft.longitude = _coordinate("longitude", parts[1], 180)


def _set_steps(draft: _Draft, key: str, value: object) -> None:
    number = _measure(key, value)
    if number is not None and not number.is_integer():
        raise DecodeError(f"invalid {key} {_show(value)}: expected a whole number")
    draft.steps = None if number is None else int(number)


def _add_alarms(draft: _Draft, key: str, value: object) -> None:
    """``alarm``: a name, a comma-separated list of names, or (JSON) a list of names."""
    names = value if isinstance(value, list) else [value]
    for name in names:
        for part in _to_text(key, name).split(","):
            raw = part.strip()
            alarm = _ALARMS.get(raw.lower().replace("_", ""))
            if alarm is not None:
                draft.alarms.add(alarm)
            elif raw:
                draft.alarms.add(Alarm.GENERAL)
                draft.unknown_alarms.append(raw)


_QUERY_FIELDS: Mapping[str, _Handler] = {
    "id": _set_id,
    "deviceid": _set_id,
    "timestamp": _set_time,
    "lat": _set_latitude,
    "lon": _set_longitude,
    "location": _set_location,
    "speed": _number_field("speed_kmh", factor=KNOTS_TO_KMH),
    "bearing": _number_field("course_deg"),
    "heading": _number_field("course_deg"),
    "altitude": _number_field("altitude_m", signed=True),
    "accuracy": _number_field("accuracy_m"),
    "hdop": _number_field("hdop"),
    "batt": _percent_field("battery_pct", label="battery"),
    "charge": _bool_field("charging"),
    "valid": _bool_field("valid"),
    "alarm": _add_alarms,
    "cell": _list_field("cells"),
    "wifi": _list_field("wifis"),
    "heartrate": _number_field("heart_rate_bpm"),
    "heart_rate": _number_field("heart_rate_bpm"),
    "steps": _set_steps,
    "spo2": _percent_field("spo2_pct"),
    "temperature": _number_field("temperature_c", signed=True),
    "temp": _number_field("temperature_c", signed=True),
}

_JSON_LOCATION_FIELDS: Mapping[str, _Handler] = {
    "timestamp": _set_time,
    "is_moving": _extra_field("motion", _to_bool),
    "odometer": _extra_field("odometer_m", _to_float),
    "event": _extra_field("event", _to_text),
    "mock": _extra_field("mock", _to_bool),
    "alarm": _add_alarms,
}

_JSON_COORDS_FIELDS: Mapping[str, _Handler] = {
    "latitude": _set_latitude,
    "longitude": _set_longitude,
    "speed": _number_field("speed_kmh", factor=MPS_TO_KMH),
    "heading": _number_field("course_deg"),
    "accuracy": _number_field("accuracy_m"),
    "altitude": _number_field("altitude_m", signed=True),
}

_JSON_BATTERY_FIELDS: Mapping[str, _Handler] = {
    "level": _percent_field("battery_pct", factor=100.0, label="battery level"),
    "is_charging": _bool_field("charging"),
}

_JSON_ACTIVITY_FIELDS: Mapping[str, _Handler] = {
    "type": _extra_field("activity", _to_text),
}


# ---------------------------------------------------------------------------------------------------------
# JSON form


def _decode_json(body: bytes) -> DecodeResult:
    try:
        root = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON body: {exc}") from None
    roots = root if isinstance(root, list) else [root]
    if not roots:
        raise DecodeError("JSON body is an empty list")
    messages = [message for item in roots for message in _decode_json_root(item)]
    return DecodeResult(messages=tuple(messages), reply=b"", unknown_device_status=JSON_UNKNOWN_DEVICE_STATUS)


def _decode_json_root(root: object) -> list[DeviceMessage]:
    if not isinstance(root, dict):
        raise DecodeError(f"JSON body must be an object, got {_json_kind(root)}")
    unique_id = _json_device_id(root)
    location = root.get("location")
    if location is None:
        locations: list[object] = [{}]  # no position: a heartbeat (maybe carrying an alarm)
    elif isinstance(location, dict):
        locations = [location]
    elif isinstance(location, list) and location:
        locations = location
    else:
        raise DecodeError(
            f"'location' must be an object or a non-empty list of objects, got {_show(location)}"
        )
    return [_decode_json_location(unique_id, item, root.get("alarm")) for item in locations]


def _json_device_id(root: dict[str, object]) -> str:
    value = root.get("device_id")
    if value is None:
        value = root.get("id")
    if value is None:
        raise DecodeError("missing device id ('device_id' or 'id')")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DecodeError(f"invalid device id {_show(value)}: expected a string")
    unique_id = str(value).strip()
    if not unique_id:
        raise DecodeError("missing device id ('device_id' or 'id')")
    return unique_id


def _decode_json_location(unique_id: str, location: object, root_alarm: object) -> DeviceMessage:
    draft = _Draft()
    location = _json_object("location", location)
    _apply(draft, location, _JSON_LOCATION_FIELDS)
    _apply(draft, _json_object("location.coords", location.get("coords")), _JSON_COORDS_FIELDS)
    _apply(draft, _json_object("location.battery", location.get("battery")), _JSON_BATTERY_FIELDS)
    _apply(draft, _json_object("location.activity", location.get("activity")), _JSON_ACTIVITY_FIELDS)
    extras = _json_object("location.extras", location.get("extras"))
    for key, value in extras.items():
        if key == "alarm" and value is not None:
            _add_alarms(draft, key, value)
        elif isinstance(value, str | int | float) and key not in draft.extras:
            draft.extras[key] = value  # scalar app extras, never overriding a decoded field
    if root_alarm is not None:
        _add_alarms(draft, "alarm", root_alarm)
    return draft.build(unique_id)


def _json_object(name: str, value: object) -> dict[str, object]:
    """A JSON object, ``{}`` for a missing/null member, DecodeError for anything else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(f"'{name}' must be an object, got {_json_kind(value)}")
    return value


def _json_kind(value: object) -> str:
    return "a list" if isinstance(value, list) else _show(value)


def _apply(draft: _Draft, obj: Mapping[str, object], handlers: Mapping[str, _Handler]) -> None:
    for key, handler in handlers.items():
        value = obj.get(key)
        if value is not None:
            handler(draft, key, value)
