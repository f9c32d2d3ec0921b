"""What the live streams are told after a commit: the newest fix per device, device status changes, and the
alerts the store opened or changed (read back after the commit), never anything a failed commit held."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from geosentinel.alerts.feed import AlertFeed, AlertQuery
from geosentinel.live import Hub, LiveEvent, Subscription
from geosentinel.model import (
    Alarm,
    Device,
    DeviceMessage,
    Event,
    EventKind,
    Locale,
    Region,
)
from geosentinel.pipeline.announcer import Announcer, alert_queries, fixes
from geosentinel.pipeline.fixfilter import FixLimits
from geosentinel.pipeline.runner import Outcome, Pipeline
from geosentinel.pipeline.stages import DeviceStates, StageResult, process
from geosentinel.store import Scope, Store, open_store
from geosentinel.store.base import DeviceState, IngestBatch
from geosentinel.testing import FakeClock

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DEVICE = Device("dev-1", "org-1", "wearer-1", "860000000000001", "osmand")
OTHER = Device("dev-2", "org-1", "wearer-2", "860000000000002", "osmand")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fix(
    device: Device, time: datetime, lat: float, battery: float | None = None, **extra: Any
) -> DeviceMessage:
    return DeviceMessage(device.unique_id, "osmand", time=time, latitude=lat, longitude=5.37, valid=True,
                         battery_pct=battery, **extra)  # fmt: skip


def run(items: list[tuple[Device, DeviceMessage, datetime]], *known: DeviceState) -> StageResult:
    cache = DeviceStates(cast(Store, None))
    cache.preload(known)
    return process(items, cache, FixLimits())


def test_only_the_fix_that_became_each_devices_position_is_announced() -> None:
    result = run([
        (DEVICE, fix(DEVICE, at(-30), 43.30), T0),  # buffered fixes uploaded at once: only the newest
        (DEVICE, fix(DEVICE, at(-10), 43.31, battery=50.0), T0),
        (DEVICE, fix(DEVICE, at(-20), 43.32), T0),  # late: stored, but the wearer is not there now
        (OTHER, fix(OTHER, at(-50), 43.40), T0),  # older than what the device had: not announced
    ], DeviceState(OTHER.id, at(-60), at(-40), 43.41, 5.37, 77.0))  # fmt: skip
    announced = fixes(result.readings, result.memories)
    assert [(r.device.id, r.message.latitude, battery) for r, battery in announced] == [
        (DEVICE.id, 43.31, 50.0)
    ]
    newer = run(
        [(OTHER, fix(OTHER, at(-5), 43.42), T0)], DeviceState(OTHER.id, at(-60), at(-40), 43.41, 5.37, 77.0)
    )
    assert [(r.message.latitude, b) for r, b in fixes(newer.readings, newer.memories)] == [(43.42, 77.0)]
    without_fix = run(
        [(DEVICE, DeviceMessage(DEVICE.unique_id, "osmand", time=at(-1), battery_pct=20.0), T0)]
    )
    assert fixes(without_fix.readings, without_fix.memories) == []


def test_alert_queries_name_the_alert_each_event_may_have_opened_or_closed() -> None:
    def event(kind: EventKind, time: datetime, wearer: str | None = "wearer-1") -> Event:
        return Event("org-1", wearer, "dev-1", kind, time, time)

    queries = alert_queries([
        event(EventKind.SOS, at(0)), event(EventKind.SOS, at(5)), event(EventKind.BACK_ONLINE, at(6)),
        event(EventKind.CANCELLED, at(7)), event(EventKind.FALL_REJECTED, at(8)),
        event(EventKind.SOS, at(9), None),  # about no wearer: no alert
    ])  # fmt: skip
    assert queries == {
        ("org-1", "wearer-1", EventKind.SOS): AlertQuery({at(0), at(5)}, False),
        ("org-1", "wearer-1", EventKind.OFFLINE): AlertQuery(set(), True),
        ("org-1", "wearer-1", EventKind.FALL): AlertQuery(set(), True),
    }


class _NoStore:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"nothing may be read while nobody follows the organisation (store.{name})")


def test_nothing_is_built_or_read_while_nobody_follows_the_organisation() -> None:
    hub = Hub()
    hub.subscribe(Scope("another-org"))
    announcer = Announcer(hub, AlertFeed(hub, cast(Store, _NoStore())))
    result = run([(DEVICE, fix(DEVICE, at(0), 43.3, alarms=frozenset({Alarm.SOS})), T0)])
    assert [e.kind for e in result.events] == [EventKind.SOS]
    announcer.committed(result)  # no task started, no store read, no event
    ready = hub.subscribe(Scope("org-1"))._queue.get_nowait()
    assert ready is not None and (ready.name, ready.seq) == ("ready", 0)  # no event was numbered


async def _events(subscription: Subscription, count: int) -> list[LiveEvent]:
    out = []
    async with asyncio.timeout(5):
        while len(out) < count:
            event = await subscription.next()
            assert event is not None
            out.append(event)
    return out


def _data(events: list[LiveEvent]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, json.loads(e.data)) for e in events]


@pytest.mark.anyio
async def test_a_pipeline_announces_what_it_committed(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gs.db'}")
    org = store.create_org("Org", Region.EU, "Europe/Paris", Locale.FR)
    wearer = store.create_wearer(org.id, "Jeanne")
    device = store.create_device(org.id, wearer.id, "861000000000001", "osmand", expected_interval_s=30.0)
    clock = FakeClock(T0)
    pipeline = Pipeline(store, clock, sweep_interval_s=1e9, refresh_interval_s=1e9)
    hub = Hub()
    feed = AlertFeed(hub, store)
    pipeline.on_committed = Announcer(hub, feed).committed
    followed = hub.subscribe(Scope(org.id))
    await pipeline.prepare()
    pipeline.start()
    try:
        assert [e.name for e in await _events(followed, 1)] == ["ready"]
        sos = DeviceMessage("861000000000001", "osmand", time=T0, latitude=43.3, longitude=5.37, valid=True,
                            accuracy_m=8.0, battery_pct=64.0, alarms=frozenset({Alarm.SOS}))  # fmt: skip
        assert await pipeline.offer([sos]) is Outcome.STORED
        position, alert = _data(await _events(followed, 2))
        assert position == ("position", {
            "wearer_id": wearer.id, "device_id": device.id, "time": "2026-03-10T12:00:00Z", "latitude": 43.3,
            "longitude": 5.37, "accuracy_m": 8.0, "battery_pct": 64.0,
        })  # fmt: skip
        [stored] = store.alerts(Scope(org.id))
        assert alert == ("alert", {
            "id": stored.id, "wearer_id": wearer.id, "kind": "sos", "status": "open",
            "opened_at": "2026-03-10T12:00:00Z", "last_event_at": "2026-03-10T12:00:00Z", "event_count": 1,
            "latitude": 43.3, "longitude": 5.37, "change": "opened",
        })  # fmt: skip
        clock.advance(timedelta(seconds=60))  # silent for twice its interval
        await pipeline.sweep_now()
        offline = _data(await _events(followed, 2))
        assert offline[0] == ("device", {"device_id": device.id, "wearer_id": wearer.id, "status": "offline",
                                         "time": "2026-03-10T12:01:00Z", "battery_pct": None})  # fmt: skip
        assert (offline[1][1]["kind"], offline[1][1]["change"]) == ("offline", "opened")
        clock.advance(timedelta(seconds=5))
        back = DeviceMessage("861000000000001", "osmand", time=clock.now(), latitude=43.31, longitude=5.37,
                             valid=True)  # fmt: skip
        assert await pipeline.offer([back]) is Outcome.STORED
        names = _data(await _events(followed, 3))
        assert [n for n, _ in names] == ["position", "device", "alert"]
        assert names[1][1]["status"] == "online"
        assert (names[2][1]["kind"], names[2][1]["status"], names[2][1]["change"]) == (
            "offline",
            "resolved",
            "resolved",
        )
    finally:
        await pipeline.stop()
        await feed.close()
        store.close()


class _FailingStore:
    """A store whose commits fail (the disk is full): everything else is the real one."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def ingest(self, batch: IngestBatch) -> None:
        raise OSError("disk full")


@pytest.mark.anyio
async def test_nothing_is_announced_from_a_commit_that_failed(tmp_path: Path) -> None:
    real = open_store(f"sqlite:///{tmp_path / 'gs.db'}")
    org = real.create_org("Org", Region.EU, "Europe/Paris", Locale.FR)
    wearer = real.create_wearer(org.id, "Jeanne")
    real.create_device(org.id, wearer.id, "861000000000001", "osmand")
    store = cast(Store, _FailingStore(real))
    pipeline = Pipeline(store, FakeClock(T0), sweep_interval_s=1e9, refresh_interval_s=1e9)
    hub = Hub()
    announced: list[StageResult] = []
    pipeline.on_committed = announced.append
    hub.subscribe(Scope(org.id))
    await pipeline.prepare()
    pipeline.start()
    try:
        sos = DeviceMessage("861000000000001", "osmand", time=T0, latitude=43.3, longitude=5.37, valid=True,
                            alarms=frozenset({Alarm.SOS}))  # fmt: skip
        assert await pipeline.offer([sos]) is Outcome.FAILED
        await asyncio.sleep(0.05)
        assert announced == []
    finally:
        await pipeline.stop()
        real.close()
