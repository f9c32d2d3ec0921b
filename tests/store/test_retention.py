"""Retention on every backend: what is older than an organisation's retention goes, open alerts and what
is newer stay, and another organisation's data is untouched by the first one's settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.alerts.lifecycle import Action, Outcome
from geosentinel.model import AlertStatus, Device, DeviceMessage, Event, EventKind, Locale, Reading, Region
from geosentinel.store import Scope, Store
from geosentinel.store.base import IngestBatch

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _org(store: Store, name: str) -> tuple[Scope, Device]:
    org = store.create_org(name, Region.EU, "Europe/Paris", Locale.FR)
    wearer = store.create_wearer(org.id, "Jeanne")
    return Scope(org.id), store.create_device(org.id, wearer.id, f"uid-{name}", "osmand")


def _days_ago(store: Store, device: Device, days: float, kind: EventKind | None = None) -> None:
    t = NOW - timedelta(days=days)
    message = DeviceMessage(device.unique_id, "osmand", t, latitude=43.5, longitude=5.4, valid=True)
    events = (
        [] if kind is None else [Event(device.org_id, device.wearer_id, device.id, kind, t, t, 43.5, 5.4)]
    )
    store.ingest_now(IngestBatch([Reading(device, message, t, t)], events, [], OPENS_ALERT))


def test_what_is_older_than_the_retention_goes(store: Store) -> None:
    scope, device = _org(store, "Short memory")
    other_scope, other = _org(store, "Long memory")
    assert store.set_retention(scope.org_id, 30)
    for days in (400, 45, 10):
        _days_ago(store, device, days)
        _days_ago(store, other, days)
    _days_ago(store, device, 60, EventKind.SOS)  # resolved 59 days ago: goes
    (old_sos,) = store.alerts(scope)
    store.change_alert(
        scope, old_sos.id, Action.RESOLVE, "user:u", NOW - timedelta(days=59), Outcome.FALSE_ALARM
    )
    _days_ago(store, device, 50, EventKind.FALL)  # still open: stays, however old
    _days_ago(store, device, 90, EventKind.LOW_BATTERY)
    (battery,) = store.alerts(scope, kind=EventKind.LOW_BATTERY)
    store.change_alert(scope, battery.id, Action.RESOLVE, "user:u", NOW - timedelta(days=5), Outcome.OTHER)

    deleted = store.purge_expired(NOW)

    assert (
        deleted["readings"] == 2 + 3 + 1
    )  # this org: 400 and 45 days, the three alerts' readings; other: 400
    assert deleted["alerts"] == 1 and deleted["alert_transitions"] == 2  # the SOS: opened, then resolved
    kept = {a.kind for a in store.alerts(scope)}
    assert kept == {EventKind.FALL, EventKind.LOW_BATTERY}  # open; resolved 5 days ago
    assert [round((NOW - p.time).days) for p in store.positions(scope, device.wearer_id or "")] == [10]
    # The other organisation keeps a year (the default): only its 400-day-old reading went.
    assert sorted(
        round((NOW - p.time).days) for p in store.positions(other_scope, other.wearer_id or "")
    ) == [10, 45]
    assert store.alert_timeline(scope, old_sos.id) is None
    assert deleted["events"] == 1  # the SOS's, with its alert; the kept alerts keep theirs
    assert sorted(e.kind for e in store.events(scope)) == [EventKind.FALL, EventKind.LOW_BATTERY]
    assert store.purge_expired(NOW) == {"readings": 0, "events": 0}  # nothing left to do


def test_retention_bounds(store: Store) -> None:
    scope, _ = _org(store, "Bounds")
    with pytest.raises(ValueError, match="retention"):
        store.set_retention(scope.org_id, 0)
    assert not store.set_retention("no-such-org", 30)
    assert store.alerts(scope, status=AlertStatus.OPEN) == []
