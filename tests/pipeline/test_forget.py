"""An erased wearer's devices are forgotten by the pipeline: their messages (even one already queued) are an
unknown device's, and nothing remembered about them is written again (no offline alert from the sweep)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from geosentinel.model import Device, DeviceMessage, Locale, Region
from geosentinel.pipeline import runner
from geosentinel.pipeline.runner import Outcome, Pipeline
from geosentinel.store import Scope, Store, open_store
from geosentinel.testing import FakeClock

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@dataclass
class Setup:
    store: Store
    scope: Scope
    clock: FakeClock
    pipeline: Pipeline
    gone: Device
    kept: Device


def _fix(device: Device, clock: FakeClock) -> DeviceMessage:
    return DeviceMessage(device.unique_id, "osmand", clock.now(), latitude=43.3, longitude=5.37, valid=True)


@pytest.fixture
async def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Setup]:
    monkeypatch.setattr(runner, "PROFILE_REFRESH_S", 0.05)  # wearers' settings looked at every 50 ms
    store = open_store(f"sqlite:///{tmp_path / 'gs.db'}")
    org = store.create_org("Org", Region.EU, "Europe/Paris", Locale.FR)
    devices = []
    for n, name in enumerate(("Gone", "Kept"), 1):
        wearer = store.create_wearer(org.id, name)
        devices.append(
            store.create_device(org.id, wearer.id, f"86100000000000{n}", "osmand", None, None, 30.0)
        )
    clock = FakeClock(T0)
    pipeline = Pipeline(store, clock, sweep_interval_s=1e9, refresh_interval_s=0.01)
    await pipeline.prepare()
    pipeline.start()
    try:
        for device in devices:
            assert await pipeline.offer([_fix(device, clock)]) is Outcome.STORED
        yield Setup(store, Scope(org.id), clock, pipeline, devices[0], devices[1])
    finally:
        await pipeline.stop()
        store.close()


async def _nothing_of_the_gone_wearer_after_a_silence(s: Setup) -> None:
    assert await s.pipeline.offer([_fix(s.kept, s.clock)]) is Outcome.STORED
    s.clock.advance(timedelta(minutes=10))
    await s.pipeline.sweep_now()  # the kept device is offline; the gone one is not swept at all
    assert s.store.count_readings(s.gone.id) == 0
    assert {e.wearer_id for e in s.store.events(s.scope)} == {s.kept.wearer_id}
    assert s.store.device_state(s.gone.id) is None


async def test_forgotten_before_the_erasure_even_what_was_queued(setup: Setup) -> None:
    s = setup
    outcomes: list[Outcome] = []
    s.pipeline.enqueue([_fix(s.gone, s.clock)], outcomes.append)  # queued, not yet processed
    assert s.gone.wearer_id is not None
    await s.pipeline.forget_wearer(s.gone.wearer_id, [s.gone])
    assert await asyncio.to_thread(s.store.erase_wearer, s.scope, s.gone.wearer_id, "user:a", T0) is not None
    for _ in range(200):
        if outcomes:
            break
        await asyncio.sleep(0.01)
    assert outcomes == [Outcome.UNKNOWN_DEVICE]
    assert await s.pipeline.offer([_fix(s.gone, s.clock)]) is Outcome.UNKNOWN_DEVICE
    await _nothing_of_the_gone_wearer_after_a_silence(s)


async def test_an_erasure_behind_its_back_is_noticed(setup: Setup) -> None:
    """The CLI erases in another process: the pipeline notices when it next looks at wearers' settings."""
    s = setup
    assert s.gone.wearer_id is not None
    assert await asyncio.to_thread(s.store.erase_wearer, s.scope, s.gone.wearer_id, "cli:a", T0) is not None
    for _ in range(300):
        # Until noticed, the device's messages fail to commit (the database has no such device any more).
        outcome = await s.pipeline.offer([_fix(s.gone, s.clock)])
        if outcome is Outcome.UNKNOWN_DEVICE:
            break
        assert outcome is Outcome.FAILED
        await asyncio.sleep(0.01)
    assert outcome is Outcome.UNKNOWN_DEVICE
    await _nothing_of_the_gone_wearer_after_a_silence(s)
