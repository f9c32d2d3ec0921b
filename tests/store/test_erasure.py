"""Erasure of a wearer on every backend: after it, no row of any table (found by reflection, so a table
added later is covered too) mentions the wearer's id, name, device ids or unique ids, while another
wearer's data, the audit trail of who read what and the organisation's own things stay."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.alerts.lifecycle import Action
from geosentinel.alerts.policy import Policy, Position, Step
from geosentinel.auth import hash_password
from geosentinel.model import Device, DeviceMessage, Event, EventKind, Locale, Reading, Region, Role
from geosentinel.store import Scope, Store
from geosentinel.store.base import DeviceState, IngestBatch
from geosentinel.store.regional import RegionalStore
from geosentinel.store.sql import SqlStore
from geosentinel.testing import TEST_PASSWORD

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
ERASED_NAME = "Émilie Erasable"
KEPT_NAME = "Wilfried Keeper"
POINT = {"type": "Point", "coordinates": [5.37, 43.3]}


def _engines(store: Store) -> list[sa.Engine]:
    """Every database behind the store: the regions' and the shared directory's."""
    if isinstance(store, SqlStore):
        return [store.engine]
    assert isinstance(store, RegionalStore)
    engines = [store.directory.engine]
    for region in Region:
        backend = store.region_store(region)
        assert isinstance(backend, SqlStore)
        engines.append(backend.engine)
    return engines


def _mentions(store: Store, markers: set[str]) -> Counter[str]:
    """Rows per table holding any of ``markers`` in any column (every table, found by reflection)."""
    found: Counter[str] = Counter()
    for engine in _engines(store):
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                for row in connection.execute(sa.select(table)):
                    text = " ".join(str(value) for value in row)
                    if any(marker in text for marker in markers):
                        found[table.name] += 1
    return found


def _wearer_with_everything(store: Store, scope: Scope, name: str, unique_id: str, contact_id: str) -> Device:
    """A wearer with a device, readings, state, events, an alert escalated, acknowledged and seen, a
    geofence, settings, an own contact, an own policy and a family member."""
    wearer = store.create_wearer(scope.org_id, name)
    device = store.create_device(scope.org_id, wearer.id, unique_id, "osmand")
    readings, events = [], []
    for minutes in (0, 5, 10):
        t = T0 + timedelta(minutes=minutes)
        message = DeviceMessage(unique_id, "osmand", t, latitude=43.3, longitude=5.37, valid=True)
        readings.append(Reading(device, message, t, t))
    events.append(Event(scope.org_id, wearer.id, device.id, EventKind.SOS, T0, T0, 43.3, 5.37, {"n": 1}))
    events.append(Event(scope.org_id, wearer.id, device.id, EventKind.LOW_BATTERY, T0, T0, None, None))
    state = DeviceState(device.id, T0 + timedelta(minutes=10), T0, 43.3, 5.37, 80.0)
    store.ingest_now(IngestBatch(readings, events, [state], OPENS_ALERT))
    store.create_geofence(scope.org_id, wearer.id, f"Home of {name}", "safe", POINT, 200.0)
    assert store.set_wearer_settings(scope, wearer.id, {"heart_rate_max_bpm": 110})
    assert store.set_wearer_contacts(scope, wearer.id, [contact_id])
    policy = store.create_policy(
        scope.org_id, f"Policy {unique_id[-1]}", Policy([Step(["wearer:1"])]), False, T0
    )
    assert store.set_wearer_policy(scope, wearer.id, policy.id)
    family = store.create_user(
        scope.org_id, f"family-{unique_id[-1]}@example.org", hash_password(TEST_PASSWORD), Role.FAMILY, "Fam"
    )
    store.link_wearer(family.id, wearer.id)
    sos = next(a for a in store.alerts(scope, wearer_id=wearer.id) if a.kind is EventKind.SOS)
    (due,) = [d for d in store.due_escalations(T0) if d.alert_id == sos.id]
    assert store.advance_escalation(due, [contact_id], Position(), Position(1, 0), None, T0)
    store.change_alert(scope, sos.id, Action.ACKNOWLEDGE, "user:nurse", T0 + timedelta(minutes=1))
    assert store.record_view(scope, sos.id, "user:nurse", T0 + timedelta(minutes=1))
    return device


def test_erasure_leaves_no_trace_of_the_wearer_and_keeps_everyone_else(store: Store) -> None:
    org = store.create_org("Erasure", Region.EU, "Europe/Paris", Locale.FR)
    scope = Scope(org.id)
    contact = store.create_contact(
        org.id, "Duty nurse", Locale.FR, "Europe/Paris", ["json://127.0.0.1:9/x"], T0
    )
    org_fence = store.create_geofence(org.id, None, "Danger: the river", "danger", POINT, 50.0)
    gone = _wearer_with_everything(store, scope, ERASED_NAME, "860000000000001", contact.id)
    kept = _wearer_with_everything(store, scope, KEPT_NAME, "860000000000002", contact.id)
    assert gone.wearer_id is not None and kept.wearer_id is not None
    store.record_read(
        scope, "user:nurse", "positions", [gone.wearer_id], 3, {"wearer_id": gone.wearer_id}, T0
    )
    store.record_read(scope, "user:nurse", "alerts", [gone.wearer_id, kept.wearer_id], 2, {}, T0)
    store.record_read(
        scope, "user:nurse", "positions", [kept.wearer_id], 3, {"wearer_id": kept.wearer_id}, T0
    )
    # Another organisation, to be left alone.
    other_org = store.create_org("Bystander", Region.EU, "Europe/Paris", Locale.FR)
    other_contact = store.create_contact(other_org.id, "Nurse B", Locale.FR, "Europe/Paris", ["json://x"], T0)
    bystander = _wearer_with_everything(store, Scope(other_org.id), "Bea Bystander", "860000000000009",
                                        other_contact.id)  # fmt: skip
    gone_markers = {gone.wearer_id, gone.id, gone.unique_id, ERASED_NAME}
    kept_markers = {kept.wearer_id, kept.id, kept.unique_id, KEPT_NAME}
    bystander_markers = {bystander.wearer_id or "", bystander.id, bystander.unique_id}
    assert set(_mentions(store, gone_markers)) >= {
        "wearers", "devices", "device_state", "readings", "events", "alerts", "geofences", "wearer_contacts",
        "user_wearers", "audit_log",
    }  # fmt: skip
    kept_before = _mentions(store, kept_markers)
    bystander_before = _mentions(store, bystander_markers)

    # Not visible: another organisation, or a family member not linked to the wearer.
    assert store.erase_wearer(Scope(other_org.id), gone.wearer_id, "user:b", T0) is None
    assert (
        store.erase_wearer(Scope(org.id, frozenset({kept.wearer_id})), gone.wearer_id, "user:f", T0) is None
    )
    erased_at = T0 + timedelta(days=1)
    deleted = store.erase_wearer(scope, gone.wearer_id, "user:admin", erased_at)

    assert deleted is not None
    assert {k: v for k, v in deleted.items() if v} == {
        "readings": 3, "events": 2, "alerts": 2, "alert_transitions": 3, "notifications": 1, "escalations": 2,
        "alert_views": 1, "device_state": 1, "devices": 1, "geofences": 1, "wearer_contacts": 1,
        "user_wearers": 1, "wearers": 1, "audit_log": 2,
    }  # fmt: skip
    assert _mentions(store, gone_markers) == Counter()
    assert _mentions(store, kept_markers) == kept_before
    assert _mentions(store, bystander_markers) == bystander_before
    assert store.wearer(scope, gone.wearer_id) is None
    assert store.erase_wearer(scope, gone.wearer_id, "user:admin", erased_at) is None  # once is all
    # The organisation's own things and other people stay.
    assert [c.id for c in store.contacts(scope)] == [contact.id]
    assert org_fence.id in {f.id for f in store.geofences(scope)}
    assert len(store.policies(scope)) == 2
    # The audit log still says who read what, no longer about whom; the erasure is in it, anonymous.
    entries = store.audit_entries(scope)
    erasure = entries[0]
    assert (erasure.actor, erasure.action, erasure.resource, erasure.at) == (
        "user:admin", "erase", "wearer", erased_at
    )  # fmt: skip
    assert erasure.wearer_ids == [] and erasure.query == deleted
    reads = [(e.resource, sorted(e.wearer_ids), e.query) for e in entries[1:]]
    expected = [
        ("alerts", sorted(["erased", kept.wearer_id]), {}),
        ("positions", ["erased"], {"wearer_id": "erased"}),
        ("positions", [kept.wearer_id], {"wearer_id": kept.wearer_id}),
    ]
    assert len(reads) == len(expected) and all(read in reads for read in expected)
    # The kept wearer still works as before.
    assert len(store.positions(scope, kept.wearer_id)) == 3
    assert len(store.alerts(scope, wearer_id=kept.wearer_id)) == 2
    assert store.device_state(kept.id) is not None
    assert store.devices_by_unique_ids([gone.unique_id, kept.unique_id]).keys() == {kept.unique_id}


def test_a_wearer_with_nothing_yet_is_erased_too(store: Store) -> None:
    org = store.create_org("Empty", Region.EU, "Europe/Paris", Locale.FR)
    wearer = store.create_wearer(org.id, "Newcomer")
    deleted = store.erase_wearer(Scope(org.id), wearer.id, "cli:root", T0)
    assert deleted is not None and {k: v for k, v in deleted.items() if v} == {"wearers": 1}
    assert store.wearers(Scope(org.id)) == []
    assert store.erase_wearer(Scope(org.id), "no-such-wearer", "cli:root", T0) is None
