"""Command dispatch helpers: the time-zone offset follows daylight saving time at send time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from geosentinel.commands import utc_offset_minutes, with_offset
from geosentinel.protocols.base import CommandKind, DeviceCommand


@pytest.mark.parametrize(
    ("zone", "at", "minutes"),
    [
        ("Europe/Paris", datetime(2026, 3, 29, 0, 59, tzinfo=UTC), 60),  # one minute before the change
        ("Europe/Paris", datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 120),
        ("Europe/Paris", datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 60),
        ("Asia/Shanghai", datetime(2026, 7, 1, tzinfo=UTC), 480),
        ("Asia/Kolkata", datetime(2026, 7, 1, tzinfo=UTC), 330),
        ("America/St_Johns", datetime(2026, 1, 1, tzinfo=UTC), -210),
    ],
)
def test_offset_of_a_zone_at_an_instant(zone: str, at: datetime, minutes: int) -> None:
    assert utc_offset_minutes(zone, at) == minutes


def test_set_timezone_gets_the_offset_at_send_time_unless_given() -> None:
    summer = datetime(2026, 7, 1, tzinfo=UTC)
    command = with_offset(DeviceCommand(CommandKind.SET_TIMEZONE), "Europe/Paris", summer)
    assert command.utc_offset_min == 120
    explicit = DeviceCommand(CommandKind.SET_TIMEZONE, utc_offset_min=-300)
    assert with_offset(explicit, "Europe/Paris", summer).utc_offset_min == -300
    locate = DeviceCommand(CommandKind.LOCATE)
    assert with_offset(locate, "Europe/Paris", summer) is locate
