"""The ingest pipeline: per-device ordered processing, detectors, group commit, then acknowledgement.

Messages are routed to a partition by a stable hash of the wearer (falling back to the device), so all
messages of one wearer are processed in order by one worker, and the same routing can later spread the
partitions over several processes. A worker takes everything queued on its partition, runs the stages,
commits the result in one store transaction and only then resolves the transports' futures: a device is
acknowledged only for what is durably stored.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.clock import Clock
from geosentinel.model import Device, DeviceMessage
from geosentinel.pipeline.directory import DeviceDirectory
from geosentinel.pipeline.fixfilter import FixLimits
from geosentinel.pipeline.stages import DeviceStates, process
from geosentinel.store import Store
from geosentinel.store.base import IngestBatch

log = logging.getLogger(__name__)


class UnknownDevice(LookupError):
    """The message names a device that is not registered (or not linked to a wearer)."""


@dataclass(slots=True)
class _Item:
    device: Device
    message: DeviceMessage
    received_at: datetime
    future: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Pipeline:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        partitions: int = 4,
        limits: FixLimits | None = None,
        max_batch: int = 2000,
        queue_size: int = 20_000,
    ) -> None:
        self.store = store
        self.clock = clock
        self.directory = DeviceDirectory(store)
        self._limits = limits or FixLimits()
        self._max_batch = max_batch
        self._queues: list[asyncio.Queue[_Item]] = [asyncio.Queue(queue_size) for _ in range(partitions)]
        self._states = DeviceStates(store)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(q), name=f"pipeline-{i}") for i, q in enumerate(self._queues)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def queue_depth(self) -> int:
        return sum(q.qsize() for q in self._queues)

    async def submit(self, messages: Sequence[DeviceMessage]) -> None:
        """Process messages and return once they are committed; raises :class:`UnknownDevice` first."""
        received_at = self.clock.now()
        items = []
        for message in messages:
            device = await self.directory.lookup(message.unique_id, received_at)
            if device is None:
                raise UnknownDevice(message.unique_id)
            items.append(_Item(device, message, received_at))
        for item in items:
            await self._queues[self._partition(item.device)].put(item)
        await asyncio.gather(*(item.future for item in items))

    def _partition(self, device: Device) -> int:
        key = device.wearer_id or device.id
        return zlib.crc32(key.encode()) % len(self._queues)

    async def _work(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            items = [await queue.get()]
            while len(items) < self._max_batch and not queue.empty():
                items.append(queue.get_nowait())
            await self._commit(items)

    async def _commit(self, items: list[_Item]) -> None:
        try:
            await self._states.load([i.device.id for i in items])
            result = process(
                [(i.device, i.message, i.received_at) for i in items],
                self._states,
                self._limits,
            )
            await self.store.ingest(
                IngestBatch(result.readings, result.events, result.states, alert_kinds=OPENS_ALERT)
            )
        except Exception as exc:
            log.exception("pipeline batch of %d messages failed", len(items))
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        self._states.apply(result.states)
        for item in items:
            if not item.future.done():
                item.future.set_result(None)
