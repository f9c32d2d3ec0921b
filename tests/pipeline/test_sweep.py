"""The sweep of time-driven detectors: offline alerts through a real store, never from our own backlog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from geosentinel.model import AlertStatus, DeviceMessage, EventKind, Locale, Region
from geosentinel.pipeline.runner import Outcome, Pipeline
from geosentinel.store import Scope, open_store
from geosentinel.testing import FakeClock

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.mark.anyio
async def test_a_silent_device_is_swept_offline_but_not_while_the_pipeline_is_behind(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gs.db'}")
    org = store.create_org("Org", Region.EU, "Europe/Paris", Locale.FR)
    wearer = store.create_wearer(org.id, "Jeanne")
    store.create_device(org.id, wearer.id, "861000000000001", "osmand", expected_interval_s=30.0)
    clock = FakeClock(T0)
    pipeline = Pipeline(store, clock, sweep_interval_s=1e9, refresh_interval_s=1e9, queue_size=4)
    await pipeline.prepare()
    pipeline.start()
    try:
        message = DeviceMessage(
            "861000000000001", "osmand", time=T0, latitude=43.3, longitude=5.37, valid=True
        )
        assert await pipeline.offer([message]) is Outcome.STORED
        clock.advance(timedelta(seconds=40))  # within 1.5 x 30 s
        await pipeline.sweep_now()
        assert store.alerts(Scope(org.id)) == []
        clock.advance(timedelta(seconds=20))  # 60 s of silence
        pipeline.behind = lambda: True  # type: ignore[method-assign]  # frames would be waiting in our queues
        await pipeline.sweep_now()
        assert store.alerts(Scope(org.id)) == []
        del pipeline.behind
        await pipeline.sweep_now()
        alerts = store.alerts(Scope(org.id))
        assert [(a.kind, a.status) for a in alerts] == [(EventKind.OFFLINE, AlertStatus.OPEN)]
    finally:
        await pipeline.stop()
        store.close()
