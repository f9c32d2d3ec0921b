"""The pipeline's commits through a writer process (``serve --writer-process``), on SQLite and PostgreSQL:
batches cross the socket unchanged, a device is acknowledged only once the child committed, a failed batch
fails alone, a dead child fails what it held and is replaced, and stopping commits what the child holds."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from geosentinel.model import (
    Alarm,
    AlertStatus,
    CellTower,
    Device,
    DeviceMessage,
    Event,
    EventKind,
    ImuWindow,
    Locale,
    Reading,
    Region,
    WifiAccessPoint,
)
from geosentinel.pipeline.runner import Outcome, Pipeline
from geosentinel.pipeline.writer_process import Batches, WriterProcess
from geosentinel.store import Scope, Store, StoreError, open_store
from geosentinel.store.base import DeviceState, IngestBatch
from geosentinel.store.ingest import ingest_rows
from geosentinel.testing import FakeClock, until

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def test_a_batch_s_rows_cross_the_socket_unchanged() -> None:
    device = Device("d-1", "o-1", "w-1", "861", "watch", "S8", "Asia/Shanghai", 60.0)
    message = DeviceMessage(
        "861", "watch", T0, time_is_local=True, latitude=43.5, longitude=5.4, valid=True, speed_kmh=3.5,
        course_deg=180.0, altitude_m=120.0, accuracy_m=8.0, hdop=0.9, satellites=7, battery_pct=55.0,
        charging=False, steps=1200, heart_rate_bpm=72.0, spo2_pct=97.0, temperature_c=36.6,
        systolic_mmhg=120.0, diastolic_mmhg=80.0, alarms=frozenset({Alarm.SOS, Alarm.FALL}),
        cells=(CellTower(460, 0, 9520, 3671),), wifi=(WifiAccessPoint("aa:bb:cc:dd:ee:ff", -60, "home"),),
        extras={"text": "x", "count": 3, "ratio": 0.5, "flag": True},
        imu=ImuWindow(T0, (0.0, 20.0), ((0.0, 0.0, 1.0), (2.5, -1.0, 0.3)), (0.0,), ((10.0, 0.0, -5.0),)),
    )  # fmt: skip
    later = T0 + timedelta(seconds=2)
    batch = IngestBatch(
        [Reading(device, message, T0, later), Reading(device, message, T0, later, rejected="speed")],
        [Event("o-1", "w-1", "d-1", EventKind.SOS, T0, later, 43.5, 5.4, {"score": 0.97, "source": "x"})],
        [DeviceState("d-1", later, T0, 43.5, 5.4, 55.0, '{"offline": {"last": 1}}')],
        frozenset({EventKind.SOS, EventKind.FALL}),
    )
    rows = ingest_rows(batch)
    wire = msgspec.msgpack.encode(Batches([(7, rows)]))
    (number, decoded), *_ = msgspec.msgpack.decode(wire, type=Batches).batches
    assert (number, decoded) == (7, rows)
    # Each value keeps its type (True is not 1 to PostgreSQL, 55.0 is not 55 to a REAL column's readers).
    for sent, received in [
        *zip(rows.readings, decoded.readings, strict=True),
        *zip(rows.states, decoded.states, strict=True),
    ]:
        assert [type(v) for v in received] == [type(v) for v in sent]


@dataclass
class Setup:
    store: Store
    scope: Scope
    clock: FakeClock
    writer: WriterProcess
    pipeline: Pipeline
    devices: list[Device]


@pytest.fixture
async def setup(db_url: str) -> AsyncIterator[Setup]:
    store = await asyncio.to_thread(open_store, db_url)
    org = store.create_org("Org", Region.EU, "Europe/Paris", Locale.FR)
    devices = []
    for n in range(2):
        wearer = store.create_wearer(org.id, f"W{n}")
        devices.append(
            store.create_device(org.id, wearer.id, f"86200000000000{n}", "osmand", None, None, 30.0)
        )
    clock = FakeClock(T0)
    writer = WriterProcess(db_url)
    await writer.start()
    pipeline = Pipeline(store, clock, sweep_interval_s=1e9, commit=writer.ingest)
    await pipeline.prepare()
    pipeline.start()
    try:
        yield Setup(store, Scope(org.id), clock, writer, pipeline, devices)
    finally:
        await pipeline.stop()
        await writer.stop()
        await asyncio.to_thread(store.close)


def _fix(device: Device, clock: FakeClock, **fields: object) -> DeviceMessage:
    return DeviceMessage(device.unique_id, "osmand", clock.now(), latitude=43.3, longitude=5.37, valid=True,
                         **fields)  # type: ignore[arg-type]  # fmt: skip


async def test_readings_and_alerts_are_committed_by_the_child(setup: Setup) -> None:
    s = setup
    device = s.devices[0]
    assert device.wearer_id is not None
    assert await s.pipeline.offer([_fix(device, s.clock, battery_pct=80.0)]) is Outcome.STORED
    s.clock.advance(timedelta(seconds=30))
    assert await s.pipeline.offer([_fix(device, s.clock, alarms=frozenset({Alarm.SOS}))]) is Outcome.STORED
    # Read back through the core's own store: the child wrote to the same database.
    assert [p.time for p in s.store.positions(s.scope, device.wearer_id)] == [T0 + timedelta(seconds=30), T0]
    alerts = s.store.alerts(s.scope, status=AlertStatus.OPEN)
    assert [(a.kind, a.wearer_id) for a in alerts] == [(EventKind.SOS, device.wearer_id)]
    assert s.writer.pid is not None and s.writer.pid != os.getpid() and s.writer.restarts == 0


async def test_a_failed_batch_fails_alone(setup: Setup) -> None:
    """A device erased behind the pipeline's back (the CLI, another process): its batch is refused by the
    database in the child, reported as failed, and the next batch of another wearer commits."""
    s = setup
    gone, kept = s.devices
    assert gone.wearer_id is not None and kept.wearer_id is not None
    assert await s.pipeline.offer([_fix(gone, s.clock)]) is Outcome.STORED
    assert await asyncio.to_thread(s.store.erase_wearer, s.scope, gone.wearer_id, "cli:a", T0) is not None
    assert await s.pipeline.offer([_fix(gone, s.clock)]) is Outcome.FAILED
    assert await s.pipeline.offer([_fix(kept, s.clock)]) is Outcome.STORED
    assert s.store.count_readings(kept.id) == 1
    assert s.writer.restarts == 0


async def test_a_dead_child_fails_what_it_held_and_is_replaced(setup: Setup) -> None:
    s = setup
    device = s.devices[0]
    assert await s.pipeline.offer([_fix(device, s.clock)]) is Outcome.STORED
    first = s.writer.pid
    assert first is not None
    os.kill(first, signal.SIGSTOP)  # holds the next batch without committing it
    try:
        s.clock.advance(timedelta(seconds=30))
        held = asyncio.ensure_future(s.pipeline.offer([_fix(device, s.clock)]))
        await asyncio.sleep(0.3)
        assert not held.done()
    finally:
        os.kill(first, signal.SIGKILL)
    assert await held is Outcome.FAILED  # never acknowledged: the device sends it again
    s.clock.advance(timedelta(seconds=30))
    retried = Outcome.FAILED
    for _ in range(100):  # until the new child is up
        retried = await s.pipeline.offer([_fix(device, s.clock)])
        if retried is Outcome.STORED:
            break
        await asyncio.sleep(0.1)
    assert retried is Outcome.STORED
    assert s.writer.restarts == 1 and s.writer.pid not in (None, first)
    assert s.store.count_readings(device.id) == 2


async def test_stopping_commits_what_the_child_holds(db_url: str) -> None:
    store = await asyncio.to_thread(open_store, db_url)
    org = store.create_org("Org", Region.EU, "Europe/Paris", Locale.FR)
    wearer = store.create_wearer(org.id, "W")
    device = store.create_device(org.id, wearer.id, "862000000000009", "osmand", None, None, 30.0)
    writer = WriterProcess(db_url)
    await writer.start()
    try:
        batches = [
            IngestBatch([Reading(device, _fix(device, FakeClock(T0 + timedelta(seconds=i))), T0, T0)])
            for i in range(50)
        ]
        commits = [asyncio.ensure_future(writer.ingest(b)) for b in batches]
        await asyncio.sleep(0)  # the frame leaves; stop at once
        await writer.stop()
        assert [c.exception() for c in commits] == [None] * 50
        assert store.count_readings(device.id) == 50
        with pytest.raises(StoreError, match="not running"):
            await writer.ingest(batches[0])
    finally:
        await writer.stop()
        await asyncio.to_thread(store.close)


async def test_a_child_that_cannot_start_fails_the_start() -> None:
    writer = WriterProcess("nosuchdb://nowhere")
    with pytest.raises(StoreError, match="could not start"):
        await writer.start()


async def test_the_child_ignores_the_signals_that_stop_the_core(setup: Setup) -> None:
    """Ctrl-C reaches the whole process group: the child must stay until the core has committed its last
    batches through it and closed the socket (tests/e2e/test_writer_process.py: it then exits)."""
    s = setup
    pid = s.writer.pid
    assert pid is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        os.kill(pid, signum)
    await asyncio.sleep(0.3)
    assert await s.pipeline.offer([_fix(s.devices[0], s.clock)]) is Outcome.STORED
    assert s.writer.pid == pid and s.writer.restarts == 0


async def test_the_child_exits_when_its_socket_closes(setup: Setup) -> None:
    """As when the core is killed: the child sees the end of its socket and exits (and the core, here
    alive, starts another)."""
    s = setup
    first = s.writer.pid
    assert first is not None and s.writer._stream is not None
    s.writer._stream.transport.abort()
    await until(lambda: not _alive(first), what="the first child's exit")
    await until(lambda: s.writer.restarts == 1 and s.writer._out is not None, 60, "a new child")
    assert await s.pipeline.offer([_fix(s.devices[0], s.clock)]) is Outcome.STORED


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
