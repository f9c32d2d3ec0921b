"""Every list of the store pages in its SQL (``limit``, ``offset``), in a stable order, on every backend;
without them, a list is whole (the callers that need everything)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from geosentinel.alerts.policy import Policy, Step
from geosentinel.model import DeviceMessage, Locale, Reading, Region, Role
from geosentinel.store import Scope, Store
from geosentinel.store.base import IngestBatch

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
POINT = {"type": "Point", "coordinates": [5.37, 43.3]}


def test_directory_lists_page_in_a_stable_order(store: Store) -> None:
    org_id = store.create_org("Org A", Region.EU, "Europe/Paris", Locale.FR).id
    other = store.create_org("Org B", Region.EU, "Europe/Paris", Locale.FR).id
    scope = Scope(org_id)
    wearers = [store.create_wearer(org_id, name) for name in ("Dora", "Alice", "Cleo", "Bea")]
    store.create_wearer(other, "Anna")
    by_name = sorted(wearers, key=lambda w: w.name)
    assert store.wearers(scope) == by_name
    assert store.wearers(scope, limit=2) == by_name[:2]
    assert store.wearers(scope, limit=2, offset=2) == by_name[2:]
    assert store.wearers(scope, limit=10, offset=4) == []

    devices = [store.create_device(org_id, w.id, f"uid-{i}", "osmand") for i, w in enumerate(wearers)]
    store.create_device(org_id, wearers[0].id, "uid-9", "osmand")
    assert [d.unique_id for d in store.devices(scope, limit=3, offset=1)] == ["uid-1", "uid-2", "uid-3"]
    assert [d.unique_id for d in store.devices(scope, wearers[0].id)] == ["uid-0", "uid-9"]
    assert store.devices(scope, wearers[1].id) == [devices[1]]
    assert store.devices(Scope(other), wearers[0].id) == []

    for name in ("f3", "f1", "f2"):
        store.create_geofence(org_id, None, name, "safe", POINT, 100.0)
    store.create_geofence(org_id, wearers[0].id, "f0", "safe", POINT, 100.0)
    assert [f.name for f in store.geofences(scope, limit=2, offset=1)] == ["f1", "f2"]
    assert [f.name for f in store.geofences(scope, wearers[1].id, limit=2)] == ["f1", "f2"]

    now = T0
    for name in ("c2", "c1", "c3"):
        store.create_contact(org_id, name, Locale.FR, "Europe/Paris", ["json://127.0.0.1:9/x"], now)
    assert [c.name for c in store.contacts(scope, limit=2, offset=1)] == ["c2", "c3"]
    assert len(store.contacts(scope)) == 3
    contact = store.contacts(scope)[0].id
    for name in ("p2", "p1"):
        store.create_policy(org_id, name, Policy([Step([contact])]), False, now)
    assert [p.name for p in store.policies(scope, limit=1)] == ["p1"]
    assert [p.name for p in store.policies(scope, offset=1)] == ["p2"]

    user = store.create_user(org_id, "a@a.org", "hash", Role.ADMIN, "A")
    for i in range(3):
        store.create_scoped_token(user.id, f"digest-{i}", f"t{i}", ["read"], now + timedelta(seconds=i))
    assert [t.label for t in store.tokens_of(user.id, limit=2, offset=1)] == ["t1", "t2"]
    assert len(store.tokens_of(user.id)) == 3


def test_positions_page_newest_first(store: Store) -> None:
    org_id = store.create_org("Org A", Region.EU, "Europe/Paris", Locale.FR).id
    wearer = store.create_wearer(org_id, "Jeanne")
    device = store.create_device(org_id, wearer.id, "uid", "osmand")
    readings = []
    for minute in range(5):
        t = T0 + timedelta(minutes=minute)
        message = DeviceMessage("uid", "osmand", t, latitude=43.3, longitude=5.37, valid=True)
        readings.append(Reading(device, message, t, t))
    store.ingest_now(IngestBatch(readings=readings))
    page = store.positions(Scope(org_id), wearer.id, limit=2, offset=1)
    assert [p.time.minute for p in page] == [3, 2]
    assert store.positions(Scope(org_id), wearer.id, limit=10, offset=5) == []
