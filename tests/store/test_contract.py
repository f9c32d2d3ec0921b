"""The store contract, run against every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.model import (
    Alarm,
    AlertStatus,
    Device,
    DeviceMessage,
    Event,
    EventKind,
    Locale,
    Reading,
    Region,
    Role,
)
from geosentinel.store import Scope, Store, StoreError
from geosentinel.store.base import DeviceState, IngestBatch

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _setup(store: Store, org: str = "Org A") -> tuple[str, str, Device]:
    o = store.create_org(org, Region.EU, "Europe/Paris", Locale.FR)
    w = store.create_wearer(o.id, "Jeanne")
    d = store.create_device(o.id, w.id, f"uid-{org}", "osmand")
    return o.id, w.id, d


def _reading(device: Device, minutes: int, lat: float = 43.3, **kw: object) -> Reading:
    msg = DeviceMessage(device.unique_id, "osmand", T0, latitude=lat, longitude=5.37, valid=True, **kw)  # type: ignore[arg-type]
    t = T0 + timedelta(minutes=minutes)
    return Reading(device, msg, t, t)


def _sos(device: Device, minutes: int) -> Event:
    t = T0 + timedelta(minutes=minutes)
    return Event(device.org_id, device.wearer_id, device.id, EventKind.SOS, t, t, 43.3, 5.37)


def test_directory_round_trip(store: Store) -> None:
    org_id, wearer_id, device = _setup(store)
    assert store.org_by_name("Org A") is not None
    assert store.device_by_unique_id("uid-Org A") == device
    assert store.devices_by_unique_ids(["uid-Org A", "nobody"]) == {"uid-Org A": device}
    assert store.device(Scope(org_id), device.id) == device
    assert store.device(Scope("another org"), device.id) is None
    user = store.create_user(org_id, "Ana@Example.org", "hash", Role.CAREGIVER, "Ana")
    found = store.user_by_email("ana@example.org")
    assert found is not None and found[0] == user and found[1] == "hash"
    store.create_token(user.id, "digest", "cli")
    assert store.user_for_token("digest") == user
    assert store.user_for_token("other") is None
    assert [w.id for w in store.wearers(Scope(org_id))] == [wearer_id]


def test_duplicates_are_refused(store: Store) -> None:
    _setup(store)
    with pytest.raises(StoreError):
        store.create_org("Org A", Region.EU, "Europe/Paris", Locale.FR)


def test_readings_are_stored_and_listed_newest_first(store: Store) -> None:
    org_id, wearer_id, device = _setup(store)
    readings = [_reading(device, m, lat=43.3 + m / 1000, battery_pct=80.0) for m in range(5)]
    store.ingest_now(IngestBatch(readings=readings))
    positions = store.positions(Scope(org_id), wearer_id)
    assert [p.time for p in positions] == [T0 + timedelta(minutes=m) for m in (4, 3, 2, 1, 0)]
    assert positions[0].latitude == pytest.approx(43.304)
    assert positions[0].battery_pct == 80.0
    assert store.count_readings(device.id) == 5


def test_rejected_fixes_are_kept_but_hidden(store: Store) -> None:
    org_id, wearer_id, device = _setup(store)
    good = _reading(device, 0)
    bad = Reading(device, good.message, T0 + timedelta(minutes=1), T0, rejected="null_island")
    store.ingest_now(IngestBatch(readings=[good, bad]))
    assert len(store.positions(Scope(org_id), wearer_id)) == 1
    assert len(store.positions(Scope(org_id), wearer_id, include_rejected=True)) == 2


def test_time_range_filter(store: Store) -> None:
    org_id, wearer_id, device = _setup(store)
    store.ingest_now(IngestBatch(readings=[_reading(device, m) for m in range(10)]))
    got = store.positions(
        Scope(org_id), wearer_id, since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6)
    )
    assert [p.time.minute for p in got] == [5, 4, 3]


def test_sos_opens_one_alert_and_repeats_attach(store: Store) -> None:
    org_id, wearer_id, device = _setup(store)
    store.ingest_now(IngestBatch(events=[_sos(device, 0)], alert_kinds=OPENS_ALERT))
    store.ingest_now(IngestBatch(events=[_sos(device, 2), _sos(device, 1)], alert_kinds=OPENS_ALERT))
    alerts = store.alerts(Scope(org_id), status=AlertStatus.OPEN)
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.kind, alert.wearer_id, alert.event_count) == (EventKind.SOS, wearer_id, 3)
    assert alert.opened_at == T0 and alert.last_event_at == T0 + timedelta(minutes=2)
    assert len(store.events(Scope(org_id))) == 3


def test_events_of_non_alerting_kinds_open_no_alert(store: Store) -> None:
    org_id, _, device = _setup(store)
    event = Event(org_id, device.wearer_id, device.id, EventKind.BACK_ONLINE, T0, T0)
    store.ingest_now(IngestBatch(events=[event], alert_kinds=OPENS_ALERT))
    assert store.alerts(Scope(org_id)) == []
    assert len(store.events(Scope(org_id))) == 1


def test_tenants_never_see_each_other(store: Store) -> None:
    org_a, wearer_a, device_a = _setup(store, "Org A")
    org_b, _wearer_b, device_b = _setup(store, "Org B")
    store.ingest_now(
        IngestBatch(readings=[_reading(device_a, 0), _reading(device_b, 0)], events=[_sos(device_a, 0)],
                    alert_kinds=OPENS_ALERT)
    )  # fmt: skip
    assert store.alerts(Scope(org_b)) == []
    assert store.positions(Scope(org_b), wearer_a) == []
    assert store.wearer(Scope(org_b), wearer_a) is None
    assert [d.id for d in store.devices(Scope(org_b))] == [device_b.id]
    assert len(store.alerts(Scope(org_a))) == 1


def test_family_scope_sees_only_linked_wearers(store: Store) -> None:
    org_id, wearer_1, device_1 = _setup(store)
    wearer_2 = store.create_wearer(org_id, "Marcel")
    family = store.create_user(org_id, "fille@example.org", "h", Role.FAMILY, "Fille")
    store.link_wearer(family.id, wearer_2.id)
    scope = Scope(org_id, store.linked_wearers(family.id))
    store.ingest_now(
        IngestBatch(readings=[_reading(device_1, 0)], events=[_sos(device_1, 0)], alert_kinds=OPENS_ALERT)
    )
    assert [w.id for w in store.wearers(scope)] == [wearer_2.id]
    assert store.alerts(scope) == [] and store.positions(scope, wearer_1) == []


def test_device_state_upserts(store: Store) -> None:
    _, _, device = _setup(store)
    state = DeviceState(device.id, T0, T0, 43.3, 5.37, 90.0)
    store.ingest_now(IngestBatch(states=[state]))
    assert store.device_state(device.id) == state
    later = DeviceState(device.id, T0 + timedelta(hours=1), T0, 43.3, 5.37, 85.0, '{"x": 1}')
    store.ingest_now(IngestBatch(states=[later]))
    assert store.device_state(device.id) == later


def test_a_failing_write_does_not_lose_the_others(store: Store) -> None:
    org_id, wearer_id, device = _setup(store)
    ghost = Device("not-a-device", org_id, wearer_id, "ghost", "osmand")

    async def both() -> list[object]:
        good = store.ingest(IngestBatch(readings=[_reading(device, 0)]))
        bad = store.ingest(IngestBatch(states=[DeviceState(ghost.id, T0)]))  # violates the foreign key
        return await asyncio.gather(good, bad, return_exceptions=True)

    results = asyncio.run(both())
    assert results[0] is None and isinstance(results[1], Exception)
    assert store.count_readings(device.id) == 1


def test_alarms_and_extras_round_trip(store: Store) -> None:
    _org_id, _, device = _setup(store)
    reading = _reading(device, 0, alarms=frozenset({Alarm.SOS, Alarm.FALL}), extras={"event": "motionchange"})
    store.ingest_now(IngestBatch(readings=[reading]))
    assert store.count_readings() == 1


def test_migrate_is_idempotent(store: Store) -> None:
    store.migrate()
    store.migrate()
    assert store.org_by_name("nobody") is None
