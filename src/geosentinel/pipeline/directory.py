"""Device lookup for the transports: unique id → registered device, cached.

Lookups are batched: every id missing from the cache while a query runs joins the next query, so ten
thousand watches connecting at once cost a few dozen ``IN (…)`` queries, not ten thousand. Entries are
refreshed in the background when they are due (the stale answer is used meanwhile, for up to
``max_stale``), so a busy gateway never stalls on its own cache expiring. Unknown ids are cached
negatively for a short while, so a misconfigured or hostile sender hammering the gateway costs a
dictionary lookup, not a query per frame.

Devices of an erased wearer are forgotten at once (:meth:`DeviceDirectory.forget`): their unique ids are
unknown from then on, even to a lookup that was already under way when the erasure began.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from datetime import datetime, timedelta

from geosentinel.model import Device
from geosentinel.store import Store

MAX_BATCH = 500


class Miss(enum.Enum):
    MISS = "miss"


MISS = Miss.MISS


class DeviceDirectory:
    def __init__(
        self,
        store: Store,
        ttl: timedelta = timedelta(seconds=30),
        negative_ttl: timedelta = timedelta(seconds=2),
        max_stale: timedelta = timedelta(minutes=5),
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_stale = max_stale
        # unique id → (device or None, refresh due, unusable after)
        self._cache: dict[str, tuple[Device | None, datetime, datetime]] = {}
        self._wanted: dict[str, asyncio.Future[Device | None]] = {}
        self._fetcher: asyncio.Task[None] | None = None
        # Ids of devices whose wearer was erased: ids are never reused, so this only grows with erasures.
        self._erased: set[str] = set()

    def cached(self, unique_id: str, now: datetime) -> Device | Miss | None:
        """The cached answer, or :data:`MISS` when only the store can tell (no I/O here)."""
        cached = self._cache.get(unique_id)
        if cached is None:
            return MISS
        device, due, expires = cached
        if now >= expires:
            return MISS
        if now >= due and device is not None:
            self.want(unique_id, now)  # refresh in the background; the stale answer serves meanwhile
        elif now >= due:
            return MISS
        return device

    def forget(self, devices: Iterable[Device]) -> None:
        """Treat these devices as unknown from now on (their wearer is being erased)."""
        for device in devices:
            self._erased.add(device.id)
            self._cache.pop(device.unique_id, None)

    def erased(self, device_id: str) -> bool:
        """Whether the device was forgotten (a message already routed to it must not be stored)."""
        return device_id in self._erased

    def drop(self, unique_id: str) -> None:
        """Forget the cached answer for ``unique_id``: the next lookup asks the store."""
        self._cache.pop(unique_id, None)

    async def lookup(self, unique_id: str, now: datetime) -> Device | None:
        """The device registered under ``unique_id`` and linked to a wearer, or ``None``."""
        cached = self.cached(unique_id, now)
        if cached is not MISS:
            return cached
        return await self.want(unique_id, now)

    def want(self, unique_id: str, now: datetime) -> asyncio.Future[Device | None]:
        """The pending answer for ``unique_id``, fetched with the other ids wanted meanwhile."""
        future = self._wanted.get(unique_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            # A background refresh has nobody awaiting it: mark its error as seen (the stale answer stays).
            future.add_done_callback(_retrieve)
            self._wanted[unique_id] = future
        if self._fetcher is None or self._fetcher.done():
            self._fetcher = asyncio.create_task(self._fetch_wanted(now))
        return future

    async def _fetch_wanted(self, now: datetime) -> None:
        while self._wanted:
            batch = dict(list(self._wanted.items())[:MAX_BATCH])
            for unique_id in batch:
                del self._wanted[unique_id]
            try:
                found = await asyncio.to_thread(self._store.devices_by_unique_ids, list(batch))
            except Exception as exc:
                for future in batch.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for unique_id, future in batch.items():
                device = found.get(unique_id)
                if device is not None and (device.wearer_id is None or device.id in self._erased):
                    # A device in stock belongs to nobody: nothing to attach its data to. An erased one
                    # may still be found by a query that ran before the erasure committed.
                    device = None
                due = now + (self._ttl if device else self._negative_ttl)
                self._cache[unique_id] = (device, due, due + (self._max_stale if device else timedelta(0)))
                if not future.done():
                    future.set_result(device)


def _retrieve(future: asyncio.Future[Device | None]) -> None:
    if not future.cancelled():
        future.exception()
