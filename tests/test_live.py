"""The live hub: who sees which event, bounded queues, slow subscribers dropped, replay after a reconnect."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from prometheus_client import REGISTRY

from geosentinel.live import Hub, LiveEvent, Subscription, alert_event, device_event, position_event
from geosentinel.model import Alert, AlertStatus, Device, DeviceMessage, Event, EventKind, Reading
from geosentinel.store import Scope

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ADMIN_A = Scope("org-a")
ADMIN_B = Scope("org-b")
FAMILY_A1 = Scope("org-a", frozenset({"w-a1"}))
NOBODYS = Scope("org-a", frozenset())  # a family member linked to nobody


def ev(org_id: str, wearer_id: str | None, n: int = 0, name: str = "position") -> LiveEvent:
    return LiveEvent(name, org_id, wearer_id, json.dumps({"n": n}))


def drain(subscription: Subscription) -> list[LiveEvent]:
    """What is queued now (no waiting)."""
    queue = subscription._queue
    out = []
    while not queue.empty():
        item = queue.get_nowait()
        assert item is not None
        out.append(item)
    return out


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_subscriber_gets_exactly_what_its_scope_allows() -> None:
    hub = Hub()
    scopes = {"admin_a": ADMIN_A, "admin_b": ADMIN_B, "family_a1": FAMILY_A1, "nobodys": NOBODYS}
    subs = {name: hub.subscribe(scope) for name, scope in scopes.items()}
    for sub in subs.values():
        assert [e.name for e in drain(sub)] == ["ready"]
    hub.publish(ev("org-a", "w-a1", 1))
    hub.publish(ev("org-a", "w-a2", 2))
    hub.publish(ev("org-a", None, 3))  # a device no wearer has
    hub.publish(ev("org-b", "w-b1", 4))
    seen = {name: [json.loads(e.data)["n"] for e in drain(sub)] for name, sub in subs.items()}
    assert seen == {"admin_a": [1, 2, 3], "admin_b": [4], "family_a1": [1], "nobodys": []}


def test_events_are_numbered_in_order_and_ids_carry_the_hub_epoch() -> None:
    hub = Hub(epoch="e1")
    sub = hub.subscribe(ADMIN_A)
    ready = drain(sub)[0]
    assert (ready.seq, hub.event_id(ready.seq)) == (0, "e1-0")
    assert json.loads(ready.data) == {"reason": "connected"}
    for n in range(3):
        hub.publish(ev("org-a", "w-a1", n))
    assert [hub.event_id(e.seq) for e in drain(sub)] == ["e1-1", "e1-2", "e1-3"]


def test_a_subscriber_that_does_not_keep_up_is_dropped_and_never_slows_the_others() -> None:
    hub = Hub(queue_size=4)
    slow = hub.subscribe(ADMIN_A)
    fast = hub.subscribe(ADMIN_A)
    dropped_before = sample("geosentinel_live_dropped_total")
    subscribers_before = sample("geosentinel_live_subscribers")
    got = drain(fast)
    for n in range(10):
        hub.publish(ev("org-a", "w-a1", n))  # never waits, whatever the subscribers do
        got += drain(fast)
    assert [json.loads(e.data)["n"] for e in got if e.name == "position"] == list(range(10))
    assert slow.dropped and slow.closed and not fast.dropped
    assert hub.subscribers() == 1
    assert sample("geosentinel_live_dropped_total") == dropped_before + 1
    assert sample("geosentinel_live_subscribers") == subscribers_before - 1
    hub.unsubscribe(fast)
    hub.unsubscribe(slow)  # twice is harmless: counted once
    assert sample("geosentinel_live_subscribers") == subscribers_before - 2


@pytest.mark.anyio
async def test_a_dropped_or_closed_subscription_ends_its_stream() -> None:
    hub = Hub(queue_size=2)
    slow = hub.subscribe(ADMIN_A)  # holds its ready event
    hub.publish(ev("org-a", "w-a1"))
    hub.publish(ev("org-a", "w-a1"))
    assert slow.dropped
    assert await slow.next() is None  # what was queued is not sent: the client replays it on reconnect
    waiting = hub.subscribe(ADMIN_B)
    assert (await waiting.next()) is not None  # its ready event
    hub.close()
    assert await waiting.next() is None
    assert hub.subscribers() == 0
    assert await hub.subscribe(ADMIN_A).next() is None  # a stopping service takes no new stream


def test_a_reconnecting_client_is_replayed_what_it_missed_that_it_may_see() -> None:
    hub = Hub(epoch="e1")
    family = hub.subscribe(FAMILY_A1)
    admin = hub.subscribe(ADMIN_A)  # the organisation is followed meanwhile
    hub.publish(ev("org-a", "w-a1", 1))
    last = hub.event_id(drain(family)[-1].seq)
    hub.unsubscribe(family)
    hub.publish(ev("org-a", "w-a1", 2))
    hub.publish(ev("org-a", "w-a2", 3))  # not theirs
    hub.publish(ev("org-b", "w-b1", 4))
    hub.publish(ev("org-a", "w-a1", 5))
    again = hub.subscribe(FAMILY_A1, last)
    assert [json.loads(e.data)["n"] for e in drain(again)] == [2, 5]
    hub.publish(ev("org-a", "w-a1", 6))
    assert [json.loads(e.data)["n"] for e in drain(again)] == [6]
    up_to_date = hub.subscribe(ADMIN_A, hub.event_id(6))
    assert drain(up_to_date) == []
    assert len(drain(admin)) == 6


@pytest.mark.parametrize(
    "last_event_id", ["e0-1", "e1-99", "nonsense", "e1-", "e1--1", "e1-²", "e1-" + "9" * 40]
)
def test_an_id_the_hub_did_not_give_gets_a_ready_event(last_event_id: str) -> None:
    hub = Hub(epoch="e1")
    hub.subscribe(ADMIN_A)
    hub.publish(ev("org-a", "w-a1"))
    events = drain(hub.subscribe(ADMIN_A, last_event_id))
    assert [(e.name, json.loads(e.data)) for e in events] == [("ready", {"reason": "not_replayable"})]
    assert events[0].seq == 1  # the client's next reconnect replays from here


def test_no_replay_over_events_left_unpublished_while_nobody_followed_the_organisation() -> None:
    hub = Hub(epoch="e1")
    sub = hub.subscribe(ADMIN_A)
    hub.publish(ev("org-a", "w-a1"))
    hub.unsubscribe(sub)
    assert not hub.wants("org-a")  # a publisher skips building an event: nobody could be replayed it
    assert [e.name for e in drain(hub.subscribe(ADMIN_A, "e1-1"))] == ["ready"]
    assert hub.wants("org-a")


def test_no_replay_over_events_left_unpublished_while_nobody_followed_anything() -> None:
    hub = Hub(epoch="e1")
    sub = hub.subscribe(ADMIN_B)
    hub.publish(ev("org-a", "w-a1"))
    assert not hub.idle()
    hub.unsubscribe(sub)
    assert hub.idle()
    assert [e.name for e in drain(hub.subscribe(ADMIN_A, "e1-1"))] == ["ready"]
    assert not hub.idle()


def test_no_replay_once_the_events_fell_out_of_the_window_or_would_overflow_the_queue() -> None:
    hub = Hub(queue_size=100, replay_size=5, epoch="e1")
    hub.subscribe(ADMIN_A)
    for n in range(8):
        hub.publish(ev("org-a", "w-a1", n))
    assert [e.name for e in drain(hub.subscribe(ADMIN_A, "e1-2"))] == ["ready"]  # 3 is gone
    assert [e.seq for e in drain(hub.subscribe(ADMIN_A, "e1-3"))] == [4, 5, 6, 7, 8]
    small = Hub(queue_size=8, epoch="e1")
    small.subscribe(ADMIN_A)
    for n in range(8):
        small.publish(ev("org-a", "w-a1", n))
    assert [e.name for e in drain(small.subscribe(ADMIN_A, "e1-1"))] == ["ready"]


def test_an_erased_wearer_is_not_replayed() -> None:
    hub = Hub(epoch="e1")
    hub.subscribe(ADMIN_A)
    for wearer in ("w-a1", "w-a2", "w-a1"):
        hub.publish(ev("org-a", wearer))
    hub.forget_wearer("w-a1")
    assert [(e.seq, e.wearer_id) for e in drain(hub.subscribe(ADMIN_A, "e1-0"))] == [(2, "w-a2")]


DEVICE = Device("dev-1", "org-a", "w-a1", "860000000000001", "osmand")


def test_a_position_event_carries_the_fix_as_the_rest_api_writes_it() -> None:
    message = DeviceMessage(DEVICE.unique_id, "osmand", time=T0, latitude=43.2951, longitude=5.3744,
                            accuracy_m=12.5, battery_pct=None)  # fmt: skip
    event = position_event(Reading(DEVICE, message, T0, T0 + timedelta(seconds=2)), 81.0)
    assert (event.name, event.org_id, event.wearer_id) == ("position", "org-a", "w-a1")
    assert json.loads(event.data) == {
        "wearer_id": "w-a1", "device_id": "dev-1", "time": "2026-03-10T12:00:00Z", "latitude": 43.2951,
        "longitude": 5.3744, "accuracy_m": 12.5, "battery_pct": 81.0,
    }  # fmt: skip


def test_device_events_tell_status_changes_only() -> None:
    def event(kind: EventKind, **details: float) -> Event:
        return Event("org-a", "w-a1", "dev-1", kind, T0, T0, details=details)

    low = device_event(event(EventKind.LOW_BATTERY, battery_pct=9, threshold_pct=15))
    assert low is not None and json.loads(low.data) == {
        "device_id": "dev-1", "wearer_id": "w-a1", "status": "low_battery", "time": "2026-03-10T12:00:00Z",
        "battery_pct": 9,
    }  # fmt: skip
    statuses = {k: device_event(event(k)) for k in (EventKind.OFFLINE, EventKind.BACK_ONLINE, EventKind.SOS)}
    assert {k: None if e is None else json.loads(e.data)["status"] for k, e in statuses.items()} == {
        EventKind.OFFLINE: "offline", EventKind.BACK_ONLINE: "online", EventKind.SOS: None,
    }  # fmt: skip


def test_an_alert_event_is_the_alert_as_it_now_is_and_what_changed() -> None:
    paris = datetime(2026, 3, 10, 13, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1)))  # written as UTC
    alert = Alert("al-1", "org-a", "w-a1", EventKind.SOS, AlertStatus.ACKNOWLEDGED, T0, paris, 2, 43.3, None)
    event = alert_event(alert, "acknowledged")
    assert (event.name, event.org_id, event.wearer_id) == ("alert", "org-a", "w-a1")
    assert json.loads(event.data) == {
        "id": "al-1", "wearer_id": "w-a1", "kind": "sos", "status": "acknowledged",
        "opened_at": "2026-03-10T12:00:00Z", "last_event_at": "2026-03-10T12:00:00.250000Z", "event_count": 2,
        "latitude": 43.3, "longitude": None, "change": "acknowledged",
    }  # fmt: skip
