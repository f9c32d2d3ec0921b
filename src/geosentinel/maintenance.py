"""The service's housekeeping: each organisation's retention applied once a day (store/retention.py)."""

from __future__ import annotations

import asyncio
import logging

from geosentinel.clock import Clock
from geosentinel.store import Store

log = logging.getLogger(__name__)
PURGE_EVERY_S = 24 * 3600.0
FIRST_PURGE_AFTER_S = 600.0  # not in the middle of the start-up's catching up


async def purge_daily(store: Store, clock: Clock) -> None:
    await asyncio.sleep(FIRST_PURGE_AFTER_S)
    while True:
        try:
            deleted = await asyncio.to_thread(store.purge_expired, clock.now())
            if any(deleted.values()):
                log.info("retention: deleted %s", ", ".join(f"{t} {n}" for t, n in sorted(deleted.items())))
        except Exception:
            log.exception("the retention purge failed; trying again tomorrow")
        await asyncio.sleep(PURGE_EVERY_S)
