"""The ingest pipeline: per-device ordered processing, detectors, group commit, then acknowledgement.

Messages are routed to a partition by a stable hash of the wearer (falling back to the device), so all
messages of one wearer are processed in order by one worker, and the same routing can later spread the
partitions over several processes. A worker takes everything queued on its partition, runs the stages,
commits the result in one store transaction and only then reports each request's outcome to its
transport: a device is acknowledged only for what is durably stored.

When a wearer is erased, the pipeline forgets their devices first (:meth:`Pipeline.forget_wearer`): from
then on their messages are unknown devices', and nothing remembered about them is written again.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfoNotFoundError

from geosentinel import metrics
from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.clock import Clock
from geosentinel.detect.base import WearerProfile, profile_from_settings
from geosentinel.detect.falls import FallScorer
from geosentinel.detect.fences import FenceIndex
from geosentinel.model import Device, DeviceMessage
from geosentinel.pipeline.directory import MISS, DeviceDirectory, Miss
from geosentinel.pipeline.fixfilter import FixLimits
from geosentinel.pipeline.stages import Context, DeviceStates, StageResult, process, sweep
from geosentinel.store import Store
from geosentinel.store.base import IngestBatch

log = logging.getLogger(__name__)

PROFILE_REFRESH_S = 30.0  # how soon a wearer's new thresholds apply


class Outcome(IntEnum):
    """What became of a device's messages; the transport turns it into the protocol's reply."""

    STORED = 0
    UNKNOWN_DEVICE = 1
    FAILED = 2
    BUSY = 3  # the pipeline is saturated: refused at once so the device retries, rather than queued


OnDone = Callable[[Outcome], None]


class Submitter(Protocol):
    """Where transports hand decoded messages: the pipeline itself, or a link to the core process.

    ``enqueue`` reports through a callback (no coroutine or future per request on the hot path);
    ``may_refuse``: answer BUSY at once when full (request/response transports) rather than queue.
    """

    def enqueue(
        self, messages: Sequence[DeviceMessage], on_done: OnDone, may_refuse: bool = True
    ) -> None: ...


class _Ticket:
    """A request of several messages: reports one outcome once all are committed (or one failed).

    A request of one message (nearly all) needs none: its callback is queued with the message itself.
    """

    __slots__ = ("_on_done", "_remaining")

    def __init__(self, count: int, on_done: OnDone) -> None:
        self._remaining = count
        self._on_done: OnDone | None = on_done

    def __call__(self, outcome: Outcome) -> None:
        if self._on_done is None:
            return
        self._remaining -= 1
        if outcome is not Outcome.STORED or self._remaining == 0:
            on_done, self._on_done = self._on_done, None
            on_done(outcome)


# What a partition queues per message: plain tuples (a slotted dataclass costs ~0.4 µs more to build, a
# measurable share at tens of thousands of messages per second): (device, message, received at, callback).
_Item = tuple[Device, DeviceMessage, datetime, OnDone]


class Pipeline:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        partitions: int = 4,
        limits: FixLimits | None = None,
        max_batch: int = 2000,
        queue_size: int = 4_000,
        max_in_flight: int = 8,
        sweep_interval_s: float = 5.0,
        refresh_interval_s: float = 2.0,
        fall_scorer: FallScorer | None = None,
        commit: Callable[[IngestBatch], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        # Where batches are committed: the store's own writer, or a writer process (writer_process.py).
        self._commit = commit or store.ingest
        self.clock = clock
        self.directory = DeviceDirectory(store)
        self._limits = limits or FixLimits()
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        # Unbounded queues; admission is checked against queue_size in _route (a full queue answers BUSY).
        self._queues: list[asyncio.Queue[_Item]] = [asyncio.Queue() for _ in range(partitions)]
        self._queue_size = queue_size
        self._lookups: set[asyncio.Task[None]] = set()
        self._states = DeviceStates(store)
        self._tasks: list[asyncio.Task[None]] = []
        self.context = Context(fall_scorer=fall_scorer)
        # Called after a commit that holds alert-opening events (the alert dispatcher's wake-up).
        self.on_alerting: Callable[[], None] | None = None
        # Called with what a commit stored, once it succeeded (the live streams' announcer; no I/O).
        self.on_committed: Callable[[StageResult], None] | None = None
        self._devices: dict[str, Device] = {}  # by id: every device seen, for the sweep
        self._partitions: dict[str, int] = {}  # by wearer (or device) id
        self._sweep_interval_s = sweep_interval_s
        self._refresh_interval_s = refresh_interval_s
        self._fences_revision: tuple[int, int] | None = None
        self._listening_since: datetime | None = None
        self._commits: set[asyncio.Future[None]] = set()  # store writes not yet done (see forget_wearer)
        # Erased wearers (ids are never reused): a message of a device still known as theirs is unknown.
        self._erased_wearers: set[str] = set()

    async def prepare(self) -> None:
        """Load what detection needs before the first message: fences, and every known device's state
        and profile (so a device that went silent before a restart is still swept)."""
        self._listening_since = self.clock.now()
        await self.refresh_fences()
        known = await asyncio.to_thread(self.store.devices_with_state)
        self._states.preload(state for _, state in known)
        self._devices.update((device.id, device) for device, _ in known)
        await self._load_profiles({d.wearer_id for d, _ in known if d.wearer_id is not None})

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(q), name=f"pipeline-{i}") for i, q in enumerate(self._queues)
        ]
        self._tasks.append(asyncio.create_task(self._sweep_forever(), name="pipeline-sweep"))
        self._tasks.append(asyncio.create_task(self._refresh_forever(), name="pipeline-refresh"))

    async def refresh_fences(self) -> None:
        """Rebuild the geofence index when fences changed in the store (API, CLI)."""
        revision = await asyncio.to_thread(self.store.geofences_revision)
        if revision == self._fences_revision:
            return
        fences = await asyncio.to_thread(self.store.all_geofences)
        index = await asyncio.to_thread(FenceIndex, fences)
        for fence_id, reason in index.rejected:
            log.error("geofence %s cannot be evaluated and is ignored: %s", fence_id, reason)
        self.context.fences = index
        self._fences_revision = revision

    async def _refresh_forever(self) -> None:
        profiles_every = max(1, round(PROFILE_REFRESH_S / self._refresh_interval_s))
        for round_number in itertools.count(1):
            await asyncio.sleep(self._refresh_interval_s)
            try:
                await self.refresh_fences()
                if round_number % profiles_every == 0:  # thresholds changed through the API or the CLI
                    await self._load_profiles(self.context.profiles.wearer_ids())
            except Exception:
                log.exception("refreshing geofences or detection settings failed")

    async def forget_wearer(self, wearer_id: str, devices: Sequence[Device]) -> None:
        """Forget an erased wearer's devices; call it before the store erases them.

        Their messages are unknown devices' from now on (even those already queued), their detector state
        and the wearer's profile are dropped, and this returns once every store write that may still hold
        their data is done: what it wrote is erased with the rest, and nothing of theirs is written after.
        """
        self.directory.forget(devices)
        self._forget({wearer_id}, {d.id for d in devices})
        pending = list(self._commits)
        if pending:
            await asyncio.wait(pending)

    def _forget(self, wearer_ids: Collection[str], device_ids: Collection[str] = ()) -> None:
        """Drop what is remembered about these erased wearers and devices (the devices the pipeline knows as
        the wearers' included): detector state, profiles, partitions."""
        self._erased_wearers.update(wearer_ids)
        gone = {i for i, d in self._devices.items() if d.id in device_ids or d.wearer_id in wearer_ids}
        for device_id in gone:
            device = self._devices.pop(device_id)
            self.directory.drop(device.unique_id)  # looked up afresh: the store has no such device now
            self._partitions.pop(device_id, None)
        self._states.forget([*gone, *device_ids])
        self.context.profiles.forget(wearer_ids)
        for wearer_id in wearer_ids:
            self._partitions.pop(wearer_id, None)

    def _track(self, commit: asyncio.Future[None]) -> None:
        self._commits.add(commit)
        commit.add_done_callback(self._commits.discard)

    async def _load_profiles(self, wearer_ids: set[str]) -> None:
        if not wearer_ids:
            return
        found = await asyncio.to_thread(self.store.detection_settings, sorted(wearer_ids))
        vanished = wearer_ids - found.keys()
        if vanished:  # erased behind the API's back (the CLI): forget them as the API would have
            log.info("%d wearers no longer exist: forgetting their devices", len(vanished))
            self._forget(vanished)
        profiles: dict[str, WearerProfile] = {}
        for wearer_id, (timezone, settings) in found.items():
            try:
                profiles[wearer_id] = profile_from_settings(timezone, settings)
            except (ValueError, TypeError, KeyError, ZoneInfoNotFoundError):
                # Detection must go on for this wearer whatever is stored: the defaults, not nothing.
                log.exception("bad detection settings for wearer %s: using the defaults", wearer_id)
                try:
                    profiles[wearer_id] = profile_from_settings(timezone, {})
                except (ValueError, ZoneInfoNotFoundError):
                    profiles[wearer_id] = WearerProfile()
        self.context.profiles.update(profiles)

    async def sweep_now(self) -> None:
        """Run the time-driven detectors (offline, inactivity) once and commit what they found.

        Skipped while the pipeline is behind: then the stream transports have stopped reading and
        devices only *look* silent (their frames wait in socket buffers). Declaring thousands of them
        offline would add an alert storm to an overload (seen in the 10,000-watch load run).
        """
        if self.behind():
            log.warning(
                "pipeline behind (%d queued): offline and inactivity sweep skipped", self.queue_depth()
            )
            return
        now = self.clock.now()
        result = sweep(now, self._devices, self._states, self.context.profiles, self._listening_since)
        if not result.events and not result.memories:
            return
        self._states.apply(result.memories)
        batch = IngestBatch((), result.events, result.states, alert_kinds=OPENS_ALERT)
        commit = asyncio.ensure_future(self._commit(batch))
        self._track(commit)
        try:
            await commit
        except Exception:
            log.exception("committing the sweep's findings failed")
            self._states.forget(list(result.memories))
            return
        self._announce(result)
        if self.on_alerting is not None and any(e.kind in OPENS_ALERT for e in result.events):
            self.on_alerting()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                await self.sweep_now()
            except Exception:
                log.exception("sweep failed")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def queue_depth(self) -> int:
        return sum(q.qsize() for q in self._queues)

    def behind(self) -> bool:
        """Whether a partition's queue is half full: devices may look silent only because of us."""
        return any(q.qsize() >= self._queue_size // 2 for q in self._queues)

    def saturated(self) -> bool:
        """Whether a partition's queue is full: stream transports stop reading until it is not."""
        return any(q.qsize() >= self._queue_size for q in self._queues)

    def enqueue(self, messages: Sequence[DeviceMessage], on_done: OnDone, may_refuse: bool = True) -> None:
        """Queue messages for processing; ``on_done`` gets the outcome once they are committed.

        The hot path is synchronous (no coroutine or future per message): devices come from the
        directory's cache; a cache miss waits for the directory's batched lookup (a callback for one
        message, a task for several).
        """
        received_at = self.clock.now()
        if len(messages) == 1:  # nearly every request: no intermediate lists
            message = messages[0]
            device = self.directory.cached(message.unique_id, received_at)
            if device is MISS:
                # No task per request (ten thousand watches connecting at once all miss): a callback on
                # the directory's batched lookup; callbacks run in the order requests came.
                self.directory.want(message.unique_id, received_at).add_done_callback(
                    functools.partial(self._looked_up, message, received_at, on_done, may_refuse)
                )
            elif device is None:
                on_done(Outcome.UNKNOWN_DEVICE)
            else:
                queue = self._queues[self._partition(device)]
                if may_refuse and queue.qsize() >= self._queue_size:
                    on_done(Outcome.BUSY)  # see _route
                else:
                    queue.put_nowait((device, message, received_at, on_done))
            return
        devices = [self.directory.cached(m.unique_id, received_at) for m in messages]
        if MISS in devices:
            self._spawn(self._look_up_then_enqueue(messages, received_at, on_done, may_refuse))
        else:
            self._route(messages, devices, received_at, on_done, may_refuse)

    def recognise(self, unique_id: str, on_done: OnDone) -> None:
        """Tell whether ``unique_id`` is a registered device (for frames that carry no message, e.g. a login).

        ``on_done`` gets STORED for a known device (nothing needed storing), UNKNOWN_DEVICE otherwise.
        """
        now = self.clock.now()
        device = self.directory.cached(unique_id, now)
        if device is MISS:
            self.directory.want(unique_id, now).add_done_callback(functools.partial(_recognised, on_done))
        else:
            on_done(Outcome.STORED if device is not None else Outcome.UNKNOWN_DEVICE)

    def _looked_up(
        self,
        message: DeviceMessage,
        received_at: datetime,
        on_done: OnDone,
        may_refuse: bool,
        lookup: asyncio.Future[Device | None],
    ) -> None:
        device = _found(lookup)
        if device is MISS:
            on_done(Outcome.FAILED)
        else:
            self._route((message,), (device,), received_at, on_done, may_refuse)

    def _spawn(self, lookup: Coroutine[Any, Any, None]) -> None:
        # Held in a set: the event loop keeps only weak references to tasks.
        task = asyncio.create_task(lookup)
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def offer(self, messages: Sequence[DeviceMessage]) -> Outcome:
        """:meth:`enqueue`, awaited."""
        outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.enqueue(messages, outcome.set_result)
        return await outcome

    async def _look_up_then_enqueue(
        self, messages: Sequence[DeviceMessage], received_at: datetime, on_done: OnDone, may_refuse: bool
    ) -> None:
        try:
            devices = [await self.directory.lookup(m.unique_id, received_at) for m in messages]
        except Exception:
            log.exception("device lookup failed")
            on_done(Outcome.FAILED)
            return
        self._route(messages, devices, received_at, on_done, may_refuse)

    def _route(
        self,
        messages: Sequence[DeviceMessage],
        devices: Sequence[Device | object | None],
        received_at: datetime,
        on_done: OnDone,
        may_refuse: bool,
    ) -> None:
        known = [d for d in devices if isinstance(d, Device)]
        if len(known) != len(messages) or not messages:
            log.debug("unknown device among %s", [m.unique_id for m in messages])
            on_done(Outcome.UNKNOWN_DEVICE if messages else Outcome.STORED)
            return
        queues = [self._queues[self._partition(d)] for d in known]
        # Request/response transports (HTTP) are refused at once when full, so the device retries later;
        # stream transports (TCP, MQTT) keep what they already read and stop reading (see saturated()).
        if may_refuse and any(q.qsize() >= self._queue_size for q in queues):
            on_done(Outcome.BUSY)
            return
        ticket = _Ticket(len(messages), on_done) if len(messages) > 1 else on_done
        for queue, device, message in zip(queues, known, messages, strict=True):
            queue.put_nowait((device, message, received_at, ticket))

    def _partition(self, device: Device) -> int:
        key = device.wearer_id or device.id
        partition = self._partitions.get(key)
        if partition is None:  # a stable hash, computed once per wearer
            partition = self._partitions[key] = zlib.crc32(key.encode()) % len(self._queues)
        return partition

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
        """Run the stages over ``items`` and start their commit. Items of devices forgotten meanwhile are
        answered as unknown and removed from ``items`` (in place: the caller settles what is left)."""
        self._drop_forgotten(items)
        devices = self._devices
        for device, _message, _received_at, _on_done in items:
            devices[device.id] = device
        await self._states.load([i[0].id for i in items])
        profiles = self.context.profiles
        unknown = {w for i in items if (w := i[0].wearer_id) is not None and not profiles.known(w)}
        await self._load_profiles(unknown)
        # Again after the awaits: a wearer erased meanwhile must not get a single row written again.
        self._drop_forgotten(items)
        if not items:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        started = time.perf_counter()
        result = process([i[:3] for i in items], self._states, self._limits, self.context)
        metrics.DETECT_SECONDS.observe(time.perf_counter() - started)
        # Optimistic: the next batch of these devices builds on this state before it is committed; if the
        # commit fails, the state is dropped and reloaded from the store (see _committed).
        self._states.apply(result.memories)
        batch = IngestBatch(result.readings, result.events, result.states, alert_kinds=OPENS_ALERT)
        commit = asyncio.ensure_future(self._commit(batch))
        self._track(commit)
        if self.on_alerting is not None and any(e.kind in OPENS_ALERT for e in result.events):
            commit.add_done_callback(self._alerting_committed)
        if self.on_committed is not None:
            commit.add_done_callback(functools.partial(self._announce, result))
        return commit

    def _announce(self, result: StageResult, done: asyncio.Future[None] | None = None) -> None:
        if done is not None and (done.cancelled() or done.exception() is not None):
            return  # never announce what was not stored
        if self.on_committed is not None:
            try:
                self.on_committed(result)
            except Exception:  # the live streams must never cost a batch its acknowledgement
                log.exception("announcing a commit to the live streams failed")

    def _drop_forgotten(self, items: list[_Item]) -> None:
        """Answer items of erased wearers' devices as unknown, and take them out of ``items``."""
        erased, directory = self._erased_wearers, self.directory
        if not erased:  # the hot path: no wearer erased since the start
            return
        kept: list[_Item] = []
        for item in items:
            device = item[0]
            if device.wearer_id in erased or directory.erased(device.id):
                item[3](Outcome.UNKNOWN_DEVICE)
            else:
                kept.append(item)
        items[:] = kept

    def _alerting_committed(self, done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is None and self.on_alerting is not None:
            self.on_alerting()

    def _committed(
        self, done: asyncio.Future[None], items: list[_Item], in_flight: asyncio.Semaphore
    ) -> None:
        in_flight.release()
        exc = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if exc is not None:
            log.error("commit of %d messages failed", len(items), exc_info=exc)
            self._states.forget([i[0].id for i in items])
        _settle(items, exc)


def _found(lookup: asyncio.Future[Device | None]) -> Device | Miss | None:
    """A finished directory lookup's device, or MISS if it failed (logged)."""
    if lookup.cancelled():
        return MISS
    exc = lookup.exception()
    if exc is not None:
        log.error("device lookup failed", exc_info=exc)
        return MISS
    return lookup.result()


def _recognised(on_done: OnDone, lookup: asyncio.Future[Device | None]) -> None:
    device = _found(lookup)
    if device is MISS:
        on_done(Outcome.FAILED)
    else:
        on_done(Outcome.UNKNOWN_DEVICE if device is None else Outcome.STORED)


def _settle(items: list[_Item], exc: BaseException | None) -> None:
    outcome = Outcome.STORED if exc is None else Outcome.FAILED
    for item in items:
        item[3](outcome)
