"""Times given to the API: with their offset, and within the years the store can hold (a time far outside
them would overflow the microsecond integers the store keeps)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from geosentinel.api.errors import N_, ApiError

EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)


def check_times(**values: datetime | None) -> None:
    """Refuse (422) a time without its offset, or outside 1970-2200."""
    for name, value in values.items():
        if value is None:
            continue
        if value.tzinfo is None:
            raise ApiError(422, N_("'{name}' needs a time zone (e.g. 2026-05-01T08:00:00Z)"), name=name)
        if not EARLIEST <= value < LATEST:
            raise ApiError(422, N_("'{name}' must be between 1970 and 2200"), name=name)
