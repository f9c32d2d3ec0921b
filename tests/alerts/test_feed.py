"""The alert feed on a real store: alerts read back after their changes, and the last event about an alert
always as stored, even when a person's change lands while a commit's alerts are being read."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.alerts.feed import AlertFeed, AlertQuery, change_of
from geosentinel.alerts.lifecycle import Action
from geosentinel.live import Hub, LiveEvent, Subscription
from geosentinel.model import Alert, AlertStatus, Event, EventKind, Locale, Region
from geosentinel.store import Scope, Store
from geosentinel.store.base import IngestBatch

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("status", "opened_at", "query", "change"),
    [
        (AlertStatus.OPEN, at(0), AlertQuery({at(0)}), "opened"),
        (AlertStatus.OPEN, at(-60), AlertQuery({at(0)}), "updated"),  # a repeat, or reopened by a new alarm
        (AlertStatus.ACKNOWLEDGED, at(0), AlertQuery({at(0)}), "updated"),
        (AlertStatus.RESOLVED, at(-60), AlertQuery(set(), True), "resolved"),  # back online, cancelled
        (AlertStatus.OPEN, at(-60), AlertQuery(set(), True), "updated"),  # a cancel that came too late
    ],
)
def test_change_of(status: AlertStatus, opened_at: datetime, query: AlertQuery, change: str) -> None:
    alert = Alert("al-1", "org-1", "wearer-1", EventKind.SOS, status, opened_at, opened_at, 1)
    assert change_of(alert, query) == change


def _sos(store: Store) -> tuple[str, str, Event]:
    org = store.create_org("Org", Region.EU, "Europe/Paris", Locale.FR)
    wearer = store.create_wearer(org.id, "Jeanne")
    device = store.create_device(org.id, wearer.id, "861000000000001", "osmand")
    sos = Event(org.id, wearer.id, device.id, EventKind.SOS, T0, T0, 43.3, 5.37)
    store.ingest_now(IngestBatch(events=[sos], alert_kinds=OPENS_ALERT))
    return org.id, wearer.id, sos


async def _alert_events(subscription: Subscription, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while len(out) < count:
            event = await subscription.next()
            assert event is not None
            if event.name == "alert":
                out.append(json.loads(event.data))
    return out


@pytest.mark.anyio
async def test_alerts_are_read_back_after_a_commit_and_after_a_persons_change(store: Store) -> None:
    org_id, wearer_id, sos = _sos(store)
    hub = Hub()
    feed = AlertFeed(hub, store)
    followed = hub.subscribe(Scope(org_id))
    try:
        feed.committed({(org_id, wearer_id, EventKind.SOS): AlertQuery({sos.time})})
        [opened] = await _alert_events(followed, 1)
        assert {k: opened[k] for k in ("wearer_id", "kind", "status", "change", "event_count")} == {
            "wearer_id": wearer_id, "kind": "sos", "status": "open", "change": "opened", "event_count": 1,
        }  # fmt: skip
        taken = store.change_alert(Scope(org_id), opened["id"], Action.ACKNOWLEDGE, "user:u", at(30))
        feed.changed(taken, Action.ACKNOWLEDGE)
        [acknowledged] = await _alert_events(followed, 1)
        assert (acknowledged["id"], acknowledged["status"], acknowledged["change"]) == (
            opened["id"], "acknowledged", "acknowledged",
        )  # fmt: skip
    finally:
        await feed.close()


class _SlowReads:
    """The real store, whose alert reads are held (after reading) until the test lets them answer."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.read = threading.Event()
        self.answer = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def alerts(self, scope: Scope, **query: Any) -> list[Alert]:
        found = self._store.alerts(scope, **query)
        self.read.set()
        assert self.answer.wait(5)
        return found


@pytest.mark.anyio
async def test_a_change_made_while_a_commits_alert_is_read_is_the_last_word(store: Store) -> None:
    org_id, wearer_id, sos = _sos(store)
    slow = _SlowReads(store)
    hub = Hub()
    feed = AlertFeed(hub, cast(Store, slow))
    followed = hub.subscribe(Scope(org_id))
    try:
        feed.committed({(org_id, wearer_id, EventKind.SOS): AlertQuery({sos.time})})
        assert await asyncio.to_thread(slow.read.wait, 5)  # read as open, not answered yet
        [alert] = store.alerts(Scope(org_id))
        taken = store.change_alert(Scope(org_id), alert.id, Action.ACKNOWLEDGE, "user:u", at(30))
        feed.changed(taken, Action.ACKNOWLEDGE)
        slow.answer.set()
        events = await _alert_events(followed, 2)
        # What was read before the change is sent, but the change's own read comes after it.
        assert [(e["status"], e["change"]) for e in events] == [
            ("open", "opened"),
            ("acknowledged", "acknowledged"),
        ]
    finally:
        slow.answer.set()
        await feed.close()


def test_nothing_is_read_while_nobody_follows_the_organisation() -> None:
    hub = Hub()
    feed = AlertFeed(hub, cast(Store, None))  # any read would fail
    alert = Alert("al-1", "org-1", "wearer-1", EventKind.SOS, AlertStatus.ACKNOWLEDGED, T0, T0, 1)
    feed.changed(alert, Action.ACKNOWLEDGE)  # no task: this test has no event loop to run one
    assert [e.name for e in _queued(hub.subscribe(Scope("org-1"), None))] == ["ready"]


def _queued(subscription: Subscription) -> list[LiveEvent]:
    out = []
    while not subscription._queue.empty():
        event = subscription._queue.get_nowait()
        assert event is not None
        out.append(event)
    return out
