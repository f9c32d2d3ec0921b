"""Taking alerts in the store, on every backend: escalations created with alerts and moved exactly once,
the notification outbox, status changes with their audit trail, and the boundaries between organisations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.alerts.lifecycle import Action, Outcome, TransitionError
from geosentinel.alerts.policy import Policy, Position, Step
from geosentinel.model import AlertStatus, Device, Event, EventKind, Locale, Region
from geosentinel.store import Scope, Store
from geosentinel.store.alert_care import AlertNotFound
from geosentinel.store.base import IngestBatch

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _setup(store: Store, org: str = "Org A") -> tuple[Scope, Device]:
    o = store.create_org(org, Region.EU, "Europe/Paris", Locale.FR)
    w = store.create_wearer(o.id, "Jeanne")
    return Scope(o.id), store.create_device(o.id, w.id, f"uid-{org}", "osmand")


def _event(device: Device, minutes: float, kind: EventKind = EventKind.SOS, **details: object) -> Event:
    t = T0 + timedelta(minutes=minutes)
    return Event(device.org_id, device.wearer_id, device.id, kind, t, t, 43.3, 5.37, details)  # type: ignore[arg-type]


def _ingest(store: Store, *events: Event) -> None:
    store.ingest_now(IngestBatch([], list(events), [], OPENS_ALERT))


def _open_alert(store: Store, scope: Scope, device: Device) -> str:
    _ingest(store, _event(device, 0))
    (alert,) = store.alerts(scope)
    return alert.id


def test_a_new_alert_starts_its_escalation_and_its_audit_trail(store: Store) -> None:
    scope, device = _setup(store)
    alert_id = _open_alert(store, scope, device)
    (due,) = store.due_escalations(T0)
    assert (due.alert_id, due.position, due.due, due.kind, due.policy) == (
        alert_id,
        Position(),
        T0,
        EventKind.SOS,
        None,
    )
    assert store.next_escalation_due() == T0
    timeline = store.alert_timeline(scope, alert_id)
    assert timeline is not None
    assert [(t.action, t.to_status, t.actor) for t in timeline.transitions] == [
        ("open", AlertStatus.OPEN, "system")
    ]
    # Repeats attach and start nothing new.
    _ingest(store, _event(device, 1, repeat=True))
    assert len(store.due_escalations(T0 + timedelta(hours=1))) == 1


def test_a_step_is_written_once_even_if_two_runners_saw_it(store: Store) -> None:
    scope, device = _setup(store)
    contact = store.create_contact(
        scope.org_id, "Duty nurse", Locale.FR, "Europe/Paris", ["json://127.0.0.1:9/x"], T0
    )
    policy = store.create_policy(
        scope.org_id, "Day", Policy([Step([contact.id]), Step([contact.id], 300)]), True, T0
    )
    alert_id = _open_alert(store, scope, device)
    (seen,) = store.due_escalations(T0)
    assert seen.policy == policy.policy and seen.staff == (contact.id,) and seen.wearer_contacts == ()
    nxt = T0 + timedelta(minutes=5)
    assert store.advance_escalation(seen, [contact.id], Position(), Position(0, 1), nxt, T0)
    assert not store.advance_escalation(seen, [contact.id], Position(), Position(0, 1), nxt, T0)
    assert store.due_escalations(T0) == []
    (later,) = store.due_escalations(nxt)
    assert later.position == Position(0, 1)
    (outgoing,) = store.due_notifications(T0)
    assert outgoing.contact == contact and outgoing.alert.id == alert_id and outgoing.wearer_name == "Jeanne"
    assert outgoing.idempotency_key == f"{alert_id}:0:0:{contact.id}" and outgoing.region is Region.EU


def test_deliveries_retry_then_succeed_and_the_timeline_shows_why(store: Store) -> None:
    scope, device = _setup(store)
    contact = store.create_contact(scope.org_id, "Son", Locale.EN, "Europe/London", ["mailto://x"], T0)
    alert_id = _open_alert(store, scope, device)
    (seen,) = store.due_escalations(T0)
    store.advance_escalation(seen, [contact.id], Position(), Position(1, 0), None, T0)
    (outgoing,) = store.due_notifications(T0)
    failure = [{"channel": 0, "ok": False, "error": "connection refused"}]
    retry_at = T0 + timedelta(seconds=30)
    store.record_delivery(outgoing.id, T0, False, None, "connection refused", failure, retry_at, T0)
    assert store.due_notifications(T0 + timedelta(seconds=10)) == []
    (again,) = store.due_notifications(retry_at)
    assert again.tries == 1
    store.record_delivery(again.id, retry_at, True, 0, None, [{"channel": 0, "ok": True}], None, retry_at)
    assert store.due_notifications(retry_at + timedelta(hours=1)) == []
    timeline = store.alert_timeline(scope, alert_id)
    assert timeline is not None
    (record,) = timeline.notifications
    assert (record.status, record.tries, record.handed_at, record.delivered_at) == (
        "delivered",
        2,
        T0,
        retry_at,
    )
    assert [e.kind for e in timeline.events] == [EventKind.SOS]


def test_acknowledging_stops_the_escalation_and_is_audited(store: Store) -> None:
    scope, device = _setup(store)
    alert_id = _open_alert(store, scope, device)
    at = T0 + timedelta(seconds=40)
    alert = store.change_alert(scope, alert_id, Action.ACKNOWLEDGE, "user:u-1", at, note="on my way")
    assert alert.status is AlertStatus.ACKNOWLEDGED
    assert store.due_escalations(T0 + timedelta(days=1)) == []
    with pytest.raises(TransitionError, match="cannot acknowledge an alert that is acknowledged"):
        store.change_alert(scope, alert_id, Action.ACKNOWLEDGE, "user:u-2", at)
    with pytest.raises(TransitionError, match="needs an outcome"):
        store.change_alert(scope, alert_id, Action.RESOLVE, "user:u-1", at)
    store.change_alert(
        scope, alert_id, Action.RESOLVE, "user:u-1", at, Outcome.ASSISTANCE_AT_HOME, "helped up"
    )
    reopened = store.change_alert(scope, alert_id, Action.REOPEN, "user:u-1", at + timedelta(minutes=1))
    assert reopened.status is AlertStatus.OPEN
    (due,) = store.due_escalations(at + timedelta(minutes=1))
    assert due.position == Position()
    timeline = store.alert_timeline(scope, alert_id)
    assert timeline is not None
    assert [(t.action, t.actor, t.outcome, t.note) for t in timeline.transitions] == [
        ("open", "system", None, None),
        ("acknowledge", "user:u-1", None, "on my way"),
        ("resolve", "user:u-1", "assistance_at_home", "helped up"),
        ("reopen", "user:u-1", None, None),
    ]


def test_a_new_sos_reopens_an_acknowledged_alert_but_a_repeat_does_not(store: Store) -> None:
    scope, device = _setup(store)
    alert_id = _open_alert(store, scope, device)
    store.change_alert(scope, alert_id, Action.ACKNOWLEDGE, "user:u-1", T0 + timedelta(minutes=1))
    _ingest(store, _event(device, 2, repeat=True))
    assert store.alerts(scope)[0].status is AlertStatus.ACKNOWLEDGED
    _ingest(store, _event(device, 10))
    (alert,) = store.alerts(scope)
    assert (alert.id, alert.status, alert.event_count) == (alert_id, AlertStatus.OPEN, 3)
    (due,) = store.due_escalations(T0 + timedelta(minutes=10))
    assert due.due == T0 + timedelta(minutes=10)
    timeline = store.alert_timeline(scope, alert_id)
    assert timeline is not None and timeline.transitions[-1].note == "new sos while acknowledged"


def test_organisations_cannot_touch_each_others_alerts(store: Store) -> None:
    scope_a, device_a = _setup(store, "Org A")
    scope_b, _ = _setup(store, "Org B")
    alert_id = _open_alert(store, scope_a, device_a)
    with pytest.raises(AlertNotFound):
        store.change_alert(scope_b, alert_id, Action.ACKNOWLEDGE, "user:intruder", T0)
    assert store.alert_timeline(scope_b, alert_id) is None
    assert store.alert_timeline(Scope(scope_a.org_id, frozenset({"someone-else"})), alert_id) is None
    contact = store.create_contact(scope_a.org_id, "Nurse", Locale.FR, "Europe/Paris", ["json://h/x"], T0)
    assert store.contact(scope_b, contact.id) is None and store.contacts(scope_b) == []
    policy = store.create_policy(scope_a.org_id, "P", Policy([Step([contact.id])]), False, T0)
    wearer_b = store.create_wearer(scope_b.org_id, "Paul")
    assert not store.set_wearer_policy(scope_b, wearer_b.id, policy.id)
    assert store.set_wearer_policy(scope_a, device_a.wearer_id or "", policy.id)
    assert store.due_escalations(T0)[0].policy == policy.policy


def test_a_message_sends_people_where_the_wearer_is_now(store: Store) -> None:
    from geosentinel.store.base import DeviceState

    scope, device = _setup(store)
    contact = store.create_contact(scope.org_id, "Son", Locale.EN, "Europe/London", ["json://h/x"], T0)
    _open_alert(store, scope, device)  # at 43.3, 5.37
    (seen,) = store.due_escalations(T0)
    store.advance_escalation(seen, [contact.id], Position(), Position(1, 0), None, T0)
    assert (store.due_notifications(T0)[0].alert.latitude) == 43.3
    later = T0 + timedelta(minutes=3)
    moved = DeviceState(device.id, later, later, 43.5263, 5.4454, 80.0, "{}")
    store.ingest_now(IngestBatch([], [], [moved], OPENS_ALERT))
    (outgoing,) = store.due_notifications(later)
    assert (outgoing.alert.latitude, outgoing.alert.longitude) == (43.5263, 5.4454)
