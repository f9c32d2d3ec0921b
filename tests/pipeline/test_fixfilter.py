"""The bad-fix filter: every rejection reason, its boundaries, and the distance it relies on."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from geosentinel.geodesy import EARTH_RADIUS_M, distance_m
from geosentinel.model import DeviceMessage
from geosentinel.pipeline.fixfilter import FixLimits, LastFix, Rejection, check_fix, check_time

RECEIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LIMITS = FixLimits()  # 10 min future, 365 days age, 400 km/h, 1000 m
US = timedelta(microseconds=1)

VIEUX_PORT = (43.2951, 5.3744)  # Marseille
ROTONDE = (43.5263, 5.4454)  # Aix-en-Provence
# Haversine Vieux-Port -> Rotonde is 26 340.3 m: at 400 km/h (111.11 m/s) that takes 237.06 s.
JUMP_SECONDS_ALLOWED = 238
JUMP_SECONDS_TOO_FAST = 237
# One degree of latitude on the filter's sphere (R = 6 371 008.8 m) is 111 195.08 m.
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180


def msg(lat: float | None = 43.3, lon: float | None = 5.4, valid: bool | None = True) -> DeviceMessage:
    return DeviceMessage("860000000000001", "osmand", latitude=lat, longitude=lon, valid=valid)


def at(seconds: float) -> datetime:
    return RECEIVED + timedelta(seconds=seconds)


# -- distance ----------


def test_constants_are_the_documented_defaults() -> None:
    assert LIMITS == FixLimits(timedelta(minutes=10), timedelta(days=365), 400.0, 1000.0)
    assert EARTH_RADIUS_M == 6_371_008.8


# Geodesic (WGS84 ellipsoid, Vincenty inverse) references, computed independently of the code under test.
@pytest.mark.parametrize(
    ("a", "b", "geodesic_m"),
    [
        pytest.param(VIEUX_PORT, ROTONDE, 26_322.4, id="marseille-aix"),
        pytest.param((48.8566, 2.3522), (51.5074, -0.1278), 343_923.1, id="paris-london"),
        pytest.param((31.2304, 121.4737), (39.9042, 116.4074), 1_065_846.5, id="shanghai-beijing"),
        pytest.param((0.0, 0.0), (0.0, 1.0), 111_319.5, id="one-degree-of-equator"),
        pytest.param((48.8584, 2.2945), (48.8606, 2.3376), 3_172.0, id="eiffel-tower-louvre"),
    ],
)
def test_distance_matches_the_geodesic_within_half_a_percent(
    a: tuple[float, float], b: tuple[float, float], geodesic_m: float
) -> None:
    assert distance_m(*a, *b) == pytest.approx(geodesic_m, rel=0.005)
    assert distance_m(*b, *a) == pytest.approx(distance_m(*a, *b), rel=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "expected_m"),
    [
        pytest.param((43.3, 5.4), (43.3, 5.4), 0.0, id="same-point"),
        pytest.param((10.0, 20.0), (11.0, 20.0), M_PER_DEG, id="one-degree-of-meridian"),
        pytest.param((-0.5, 0.0), (0.5, 0.0), M_PER_DEG, id="meridian-across-equator"),
        pytest.param((0.0, 179.5), (0.0, -179.5), M_PER_DEG, id="across-antimeridian"),
        pytest.param((0.0, 0.0), (0.0, 180.0), math.pi * EARTH_RADIUS_M, id="antipodes"),
        pytest.param((90.0, 0.0), (-90.0, 0.0), math.pi * EARTH_RADIUS_M, id="pole-to-pole"),
    ],
)
def test_distance_on_the_sphere(a: tuple[float, float], b: tuple[float, float], expected_m: float) -> None:
    assert distance_m(*a, *b) == pytest.approx(expected_m, rel=1e-9, abs=1e-6)


def test_reference_jump_distance_is_pinned() -> None:
    # The jump boundaries below rely on this distance.
    assert distance_m(*VIEUX_PORT, *ROTONDE) == pytest.approx(26_340.3, abs=0.1)


# -- time ----------


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        pytest.param(RECEIVED, None, id="now"),
        pytest.param(RECEIVED + timedelta(minutes=10), None, id="exactly-max-future"),
        pytest.param(RECEIVED + timedelta(minutes=10) + US, Rejection.FUTURE, id="just-past-max-future"),
        pytest.param(RECEIVED + timedelta(days=3), Rejection.FUTURE, id="days-ahead"),
        pytest.param(RECEIVED - timedelta(days=365), None, id="exactly-max-age"),
        pytest.param(RECEIVED - timedelta(days=365) - US, Rejection.TOO_OLD, id="just-past-max-age"),
        pytest.param(datetime(2000, 1, 1, tzinfo=UTC), Rejection.TOO_OLD, id="gps-week-rollover-era"),
    ],
)
def test_check_time(time: datetime, expected: Rejection | None) -> None:
    assert check_time(time, RECEIVED, LIMITS) is expected


def test_check_time_uses_the_given_limits() -> None:
    tight = FixLimits(max_future=timedelta(seconds=5), max_age=timedelta(hours=1))
    assert check_time(at(5), RECEIVED, tight) is None
    assert check_time(at(6), RECEIVED, tight) is Rejection.FUTURE
    assert check_time(at(-3600), RECEIVED, tight) is None
    assert check_time(at(-3601), RECEIVED, tight) is Rejection.TOO_OLD


# -- single-message reasons ----------


@pytest.mark.parametrize(
    ("message", "time", "expected"),
    [
        pytest.param(msg(), RECEIVED, None, id="good-fix"),
        pytest.param(msg(valid=None), RECEIVED, None, id="valid-unknown-counts-as-valid"),
        pytest.param(msg(valid=False), RECEIVED, Rejection.INVALID, id="invalid"),
        pytest.param(msg(0.0, 0.0), RECEIVED, Rejection.NULL_ISLAND, id="null-island"),
        pytest.param(msg(-0.0, 0.0), RECEIVED, Rejection.NULL_ISLAND, id="null-island-negative-zero"),
        pytest.param(
            msg(0.0, 0.0, valid=None), RECEIVED, Rejection.NULL_ISLAND, id="null-island-valid-unknown"
        ),
        pytest.param(msg(0.0, 5.3744), RECEIVED, None, id="on-equator-only"),
        pytest.param(msg(43.2951, 0.0), RECEIVED, None, id="on-greenwich-only"),
        pytest.param(msg(0.00001, 0.0), RECEIVED, None, id="one-metre-off-null-island"),
        pytest.param(msg(), at(601), Rejection.FUTURE, id="future"),
        pytest.param(msg(), at(600), None, id="exactly-max-future"),
        pytest.param(msg(), RECEIVED - timedelta(days=366), Rejection.TOO_OLD, id="too-old"),
        pytest.param(msg(), RECEIVED - timedelta(days=365), None, id="exactly-max-age"),
        # Order of the checks: the device's own verdict, then (0, 0), then the clock.
        pytest.param(msg(0.0, 0.0, valid=False), at(3600), Rejection.INVALID, id="invalid-beats-null-island"),
        pytest.param(msg(0.0, 0.0), at(3600), Rejection.NULL_ISLAND, id="null-island-beats-future"),
        pytest.param(msg(valid=False), at(3600), Rejection.INVALID, id="invalid-beats-future"),
    ],
)
def test_single_message_reasons(message: DeviceMessage, time: datetime, expected: Rejection | None) -> None:
    assert check_fix(message, time, RECEIVED, None, LIMITS) is expected


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(msg(None, None, valid=False), id="no-position-invalid"),
        pytest.param(msg(43.3, None), id="latitude-only"),
        pytest.param(msg(None, 5.4), id="longitude-only"),
        pytest.param(msg(None, None), id="no-position"),
    ],
)
def test_message_without_a_fix_is_never_rejected(message: DeviceMessage) -> None:
    far_away = LastFix(RECEIVED, -33.87, 151.21)  # Sydney, 1 s ago
    for time in (RECEIVED, at(86_400), RECEIVED - timedelta(days=3650)):
        assert check_fix(message, time, RECEIVED, None, LIMITS) is None
        assert check_fix(message, time, RECEIVED, far_away, LIMITS) is None


def test_rejection_values_are_the_stored_strings() -> None:
    assert {r.name: r.value for r in Rejection} == {
        "INVALID": "invalid_fix",
        "NULL_ISLAND": "null_island",
        "FUTURE": "time_future",
        "TOO_OLD": "time_too_old",
        "IMPOSSIBLE_JUMP": "impossible_jump",
    }


# -- impossible jump ----------


def north_of(origin: tuple[float, float], metres: float) -> tuple[float, float]:
    return origin[0] + metres / M_PER_DEG, origin[1]


@pytest.mark.parametrize(
    ("last_offset_s", "expected"),
    [
        pytest.param(-JUMP_SECONDS_ALLOWED, None, id="just-under-400kmh"),
        pytest.param(-JUMP_SECONDS_TOO_FAST, Rejection.IMPOSSIBLE_JUMP, id="just-over-400kmh"),
        pytest.param(-3600, None, id="an-hour-later"),
        pytest.param(-60, Rejection.IMPOSSIBLE_JUMP, id="a-minute-later"),
        pytest.param(0, Rejection.IMPOSSIBLE_JUMP, id="same-time"),
        # Previous fix newer than this one (late message, or a device clock that went back): |dt| counts.
        pytest.param(JUMP_SECONDS_ALLOWED, None, id="out-of-order-just-under-400kmh"),
        pytest.param(JUMP_SECONDS_TOO_FAST, Rejection.IMPOSSIBLE_JUMP, id="out-of-order-just-over-400kmh"),
        pytest.param(3600, None, id="out-of-order-an-hour-apart"),
    ],
)
def test_jump_speed_boundary(last_offset_s: int, expected: Rejection | None) -> None:
    # Past fix times so the time check never interferes: this fix is 30 min old, the previous one +/- dt.
    time = at(-1800)
    last = LastFix(time + timedelta(seconds=last_offset_s), *VIEUX_PORT)
    assert check_fix(msg(*ROTONDE), time, RECEIVED, last, LIMITS) is expected


@pytest.mark.parametrize(
    ("metres", "dt_s", "expected"),
    [
        pytest.param(999.0, 0, None, id="999m-same-instant"),
        pytest.param(999.0, 1, None, id="999m-in-1s"),
        pytest.param(500.0, -1, None, id="500m-1s-out-of-order"),
        pytest.param(1001.0, 1, Rejection.IMPOSSIBLE_JUMP, id="1001m-in-1s"),
        pytest.param(1001.0, 0, Rejection.IMPOSSIBLE_JUMP, id="1001m-same-instant"),
        pytest.param(1001.0, 9, Rejection.IMPOSSIBLE_JUMP, id="1001m-in-9s-400.4kmh"),
        pytest.param(1001.0, 10, None, id="1001m-in-10s-360kmh"),
    ],
)
def test_short_jumps_are_never_impossible(metres: float, dt_s: int, expected: Rejection | None) -> None:
    time = at(-60)
    last = LastFix(time - timedelta(seconds=dt_s), *VIEUX_PORT)
    assert check_fix(msg(*north_of(VIEUX_PORT, metres)), time, RECEIVED, last, LIMITS) is expected


@pytest.mark.parametrize(
    ("metres", "expected"),
    [
        # With min_jump_m = 0 the time floor of 1 s shows: 110 m "in no time" is 396 km/h, 112 m is 403 km/h.
        pytest.param(110.0, None, id="under-400kmh-over-the-1s-floor"),
        pytest.param(112.0, Rejection.IMPOSSIBLE_JUMP, id="over-400kmh-over-the-1s-floor"),
    ],
)
def test_time_between_fixes_is_at_least_one_second(metres: float, expected: Rejection | None) -> None:
    limits = FixLimits(min_jump_m=0.0)
    last = LastFix(RECEIVED, *VIEUX_PORT)
    assert check_fix(msg(*north_of(VIEUX_PORT, metres)), RECEIVED, RECEIVED, last, limits) is expected


def test_min_jump_is_exclusive() -> None:
    target = north_of(VIEUX_PORT, 1500.0)
    metres = distance_m(*VIEUX_PORT, *target)
    assert metres == pytest.approx(1500.0, abs=1e-6)
    last = LastFix(RECEIVED, *VIEUX_PORT)
    exactly = FixLimits(min_jump_m=metres)
    assert check_fix(msg(*target), RECEIVED, RECEIVED, last, exactly) is None
    just_under = FixLimits(min_jump_m=metres - 0.01)
    assert check_fix(msg(*target), RECEIVED, RECEIVED, last, just_under) is Rejection.IMPOSSIBLE_JUMP


def test_jump_uses_the_given_speed_limit() -> None:
    # 26 340 m in 237 s is 400.1 km/h: impossible at 400 km/h, fine at 401 km/h.
    time = at(-600)
    last = LastFix(time - timedelta(seconds=JUMP_SECONDS_TOO_FAST), *VIEUX_PORT)
    assert check_fix(msg(*ROTONDE), time, RECEIVED, last, FixLimits(max_speed_kmh=401.0)) is None


def test_bad_time_is_reported_before_the_jump() -> None:
    last = LastFix(RECEIVED, *VIEUX_PORT)
    assert check_fix(msg(*ROTONDE), at(601), RECEIVED, last, LIMITS) is Rejection.FUTURE
    old = RECEIVED - timedelta(days=400)
    assert check_fix(msg(*ROTONDE), old, RECEIVED, last, LIMITS) is Rejection.TOO_OLD
