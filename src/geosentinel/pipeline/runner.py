"""The ingest pipeline: per-device ordered processing, detectors, group commit, then acknowledgement.

Messages are routed to a partition by a stable hash of the wearer (falling back to the device), so all
messages of one wearer are processed in order by one worker, and the same routing can later spread the
partitions over several processes. A worker takes everything queued on its partition, runs the stages,
commits the result in one store transaction and only then resolves the transports' futures: a device is
acknowledged only for what is durably stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Protocol

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


class Outcome(IntEnum):
    """What became of a device's messages; the transport turns it into the protocol's reply."""

    STORED = 0
    UNKNOWN_DEVICE = 1
    FAILED = 2


class Submitter(Protocol):
    """Where transports hand decoded messages: the pipeline itself, or a link to the core process."""

    async def offer(self, messages: Sequence[DeviceMessage]) -> Outcome: ...


@dataclass(slots=True)
class _Item:
    device: Device
    message: DeviceMessage
    received_at: datetime
    future: asyncio.Future[None]


class Pipeline:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        partitions: int = 4,
        limits: FixLimits | None = None,
        max_batch: int = 2000,
        queue_size: int = 20_000,
        max_in_flight: int = 8,
    ) -> None:
        self.store = store
        self.clock = clock
        self.directory = DeviceDirectory(store)
        self._limits = limits or FixLimits()
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
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
        loop = asyncio.get_running_loop()
        items = []
        for message in messages:
            device = await self.directory.lookup(message.unique_id, received_at)
            if device is None:
                raise UnknownDevice(message.unique_id)
            items.append(_Item(device, message, received_at, loop.create_future()))
        for item in items:
            await self._queues[self._partition(item.device)].put(item)
        if len(items) == 1:
            await items[0].future  # the common case: no gather() machinery per request
        else:
            await asyncio.gather(*(item.future for item in items))

    async def offer(self, messages: Sequence[DeviceMessage]) -> Outcome:
        """:meth:`submit`, with the result as an :class:`Outcome` instead of exceptions."""
        try:
            await self.submit(messages)
        except UnknownDevice as exc:
            log.debug("unknown device %s", exc)  # debug: strangers must not be able to flood the log
            return Outcome.UNKNOWN_DEVICE
        except Exception:
            log.exception("could not store %d messages", len(messages))
            return Outcome.FAILED
        return Outcome.STORED

    def _partition(self, device: Device) -> int:
        key = device.wearer_id or device.id
        return zlib.crc32(key.encode()) % len(self._queues)

    async def _work(self, queue: asyncio.Queue[_Item]) -> None:
        # Commits are not awaited here: while the store commits one batch, the next is processed and
        # queued behind it (the writer then commits everything queued at once). Batches of a partition
        # reach the writer in order, and each item is answered only when its own batch is committed.
        in_flight = asyncio.Semaphore(self._max_in_flight)
        while True:
            items = [await queue.get()]
            while len(items) < self._max_batch and not queue.empty():
                items.append(queue.get_nowait())
            await in_flight.acquire()
            try:
                commit = await self._process(items)
            except Exception as exc:
                in_flight.release()
                log.exception("pipeline batch of %d messages failed", len(items))
                _settle(items, exc)
                continue
            commit.add_done_callback(functools.partial(self._committed, items=items, in_flight=in_flight))

    async def _process(self, items: list[_Item]) -> asyncio.Future[None]:
        await self._states.load([i.device.id for i in items])
        result = process([(i.device, i.message, i.received_at) for i in items], self._states, self._limits)
        # Optimistic: the next batch of these devices builds on this state before it is committed; if the
        # commit fails, the state is dropped and reloaded from the store (see _committed).
        self._states.apply(result.states)
        batch = IngestBatch(result.readings, result.events, result.states, alert_kinds=OPENS_ALERT)
        return asyncio.ensure_future(self.store.ingest(batch))

    def _committed(
        self, done: asyncio.Future[None], items: list[_Item], in_flight: asyncio.Semaphore
    ) -> None:
        in_flight.release()
        exc = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if exc is not None:
            log.error("commit of %d messages failed", len(items), exc_info=exc)
            self._states.forget([i.device.id for i in items])
        _settle(items, exc)


def _settle(items: list[_Item], exc: BaseException | None) -> None:
    for item in items:
        if item.future.done():
            continue
        if exc is None:
            item.future.set_result(None)
        else:
            item.future.set_exception(exc)
