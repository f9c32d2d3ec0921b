"""Device lookup for the transports: unique id → registered device, cached.

Unknown ids are cached negatively for a short while, so a misconfigured or hostile sender hammering the
gateway costs a dictionary lookup, not a database query per request.
"""

from __future__ import annotations

import asyncio
import enum
from datetime import datetime, timedelta

from geosentinel.model import Device
from geosentinel.store import Store


class Miss(enum.Enum):
    MISS = "miss"


MISS = Miss.MISS


class DeviceDirectory:
    def __init__(
        self,
        store: Store,
        ttl: timedelta = timedelta(seconds=30),
        negative_ttl: timedelta = timedelta(seconds=2),
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._cache: dict[str, tuple[Device | None, datetime]] = {}

    def cached(self, unique_id: str, now: datetime) -> Device | Miss | None:
        """The cached answer, or :data:`MISS` when only the store can tell (no I/O here)."""
        cached = self._cache.get(unique_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        return MISS

    async def lookup(self, unique_id: str, now: datetime) -> Device | None:
        """The device registered under ``unique_id`` and linked to a wearer, or ``None``."""
        cached = self._cache.get(unique_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        device = await asyncio.to_thread(self._store.device_by_unique_id, unique_id)
        if device is not None and device.wearer_id is None:
            device = None  # a device in stock belongs to nobody: nothing to attach its data to
        self._cache[unique_id] = (device, now + (self._ttl if device else self._negative_ttl))
        return device
