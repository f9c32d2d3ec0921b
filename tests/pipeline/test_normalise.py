"""Device time to UTC: receive-time fallback and the per-device IANA time-zone correction (with DST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from geosentinel.model import Device, DeviceMessage
from geosentinel.pipeline.normalise import message_time

RECEIVED = datetime(2026, 7, 1, 9, 30, 15, tzinfo=UTC)


def device(zone: str | None) -> Device:
    return Device("dev-1", "org-1", "wearer-1", "860000000000001", "osmand", timezone=zone)


def wall(text: str) -> datetime:
    """A wall-clock time as decoders hand it over: the digits the device sent, tagged UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("zone", [None, "Europe/Paris", "Asia/Shanghai"])
@pytest.mark.parametrize("is_local", [False, True])
def test_no_time_gives_the_receive_time(zone: str | None, is_local: bool) -> None:
    message = DeviceMessage("860000000000001", "osmand", time_is_local=is_local)
    assert message_time(message, device(zone), RECEIVED) == RECEIVED


@pytest.mark.parametrize("is_local", [False, True])
def test_device_without_zone_keeps_the_time(is_local: bool) -> None:
    sent = utc("2026-01-15T12:00:00")
    message = DeviceMessage("860000000000001", "osmand", time=sent, time_is_local=is_local)
    result = message_time(message, device(None), RECEIVED)
    assert result == sent
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("zone", "local", "expected_utc"),
    [
        pytest.param("UTC", "2026-01-15T12:00:00", "2026-01-15T12:00:00", id="utc-zone"),
        pytest.param("Etc/UTC", "2026-07-15T12:00:00", "2026-07-15T12:00:00", id="etc-utc-zone"),
        # Europe/Paris: CET (+1) in winter, CEST (+2) in summer.
        pytest.param("Europe/Paris", "2026-01-15T12:00:00", "2026-01-15T11:00:00", id="paris-winter"),
        pytest.param("Europe/Paris", "2026-07-15T12:00:00", "2026-07-15T10:00:00", id="paris-summer"),
        pytest.param("Europe/Paris", "2026-01-01T00:30:00", "2025-12-31T23:30:00", id="paris-new-year"),
        # Spring forward, Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        pytest.param(
            "Europe/Paris", "2026-03-28T12:00:00", "2026-03-28T11:00:00", id="paris-day-before-spring"
        ),
        pytest.param(
            "Europe/Paris", "2026-03-29T01:59:59", "2026-03-29T00:59:59", id="paris-last-cet-second"
        ),
        pytest.param(
            "Europe/Paris", "2026-03-29T03:00:00", "2026-03-29T01:00:00", id="paris-first-cest-second"
        ),
        pytest.param("Europe/Paris", "2026-03-29T12:00:00", "2026-03-29T10:00:00", id="paris-spring-noon"),
        # 02:30 does not exist that night: read with the offset in force before the change (+1).
        pytest.param("Europe/Paris", "2026-03-29T02:30:00", "2026-03-29T01:30:00", id="paris-spring-gap"),
        # Fall back, Sunday 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00 UTC).
        pytest.param(
            "Europe/Paris", "2026-10-24T12:00:00", "2026-10-24T10:00:00", id="paris-day-before-fall"
        ),
        pytest.param("Europe/Paris", "2026-10-25T01:59:59", "2026-10-24T23:59:59", id="paris-before-fold"),
        pytest.param("Europe/Paris", "2026-10-25T03:00:00", "2026-10-25T02:00:00", id="paris-after-fold"),
        pytest.param("Europe/Paris", "2026-10-25T12:00:00", "2026-10-25T11:00:00", id="paris-fall-noon"),
        # 02:30 happens twice that night: read as the first one (still CEST, +2).
        pytest.param("Europe/Paris", "2026-10-25T02:30:00", "2026-10-25T00:30:00", id="paris-fall-fold"),
        # Asia/Shanghai: +8 all year, no DST.
        pytest.param("Asia/Shanghai", "2026-01-15T12:00:00", "2026-01-15T04:00:00", id="shanghai-winter"),
        pytest.param("Asia/Shanghai", "2026-07-15T12:00:00", "2026-07-15T04:00:00", id="shanghai-summer"),
        pytest.param(
            "Asia/Shanghai", "2026-03-29T02:30:00", "2026-03-28T18:30:00", id="shanghai-paris-gap-night"
        ),
        pytest.param(
            "Asia/Shanghai", "2026-10-25T02:30:00", "2026-10-24T18:30:00", id="shanghai-paris-fold-night"
        ),
        pytest.param("Asia/Shanghai", "2026-01-01T07:59:59", "2025-12-31T23:59:59", id="shanghai-new-year"),
    ],
)
@pytest.mark.parametrize("is_local", [True, False])
def test_device_zone_is_applied_to_wall_time(
    zone: str, local: str, expected_utc: str, is_local: bool
) -> None:
    # A device configured with a zone has every time read as wall time there, flagged local or not.
    message = DeviceMessage("860000000000001", "osmand", time=wall(local), time_is_local=is_local)
    result = message_time(message, device(zone), RECEIVED)
    assert result == utc(expected_utc)
    assert result.tzinfo is UTC


def test_device_zone_ignores_the_offset_the_device_claims() -> None:
    # Cheap trackers claim an offset that is not their wall clock's: only the configured zone counts.
    claimed = datetime(2026, 7, 15, 12, 0, tzinfo=timezone(timedelta(hours=8)))
    message = DeviceMessage("860000000000001", "osmand", time=claimed)
    assert message_time(message, device("Europe/Paris"), RECEIVED) == utc("2026-07-15T10:00:00")


def test_microseconds_survive_the_correction() -> None:
    message = DeviceMessage("860000000000001", "osmand", time=wall("2026-07-15T12:00:00.123456"))
    assert message_time(message, device("Europe/Paris"), RECEIVED) == utc("2026-07-15T10:00:00.123456")
