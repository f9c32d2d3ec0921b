"""Taking alerts, in the store: contacts, escalation policies, each alert's escalation, the notification
outbox and the audit trail of status changes (tables in :mod:`.schema`, rules in :mod:`geosentinel.alerts`).

Everything that must not happen twice or be skipped is one transaction: a step's notifications are created
with the escalation's move to the next step (and only if the escalation is still where the caller saw it);
a status change is written with its audit line and the escalation's stop or restart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import sqlalchemy as sa

from geosentinel.alerts.lifecycle import Action, Outcome, TransitionError, stops_escalation, transition
from geosentinel.alerts.policy import Policy, Position, parse_policy, policy_json
from geosentinel.model import (
    Alert,
    AlertStatus,
    AlertTransition,
    Contact,
    Event,
    EventKind,
    Locale,
    NotificationRecord,
    Region,
)
from geosentinel.store import schema
from geosentinel.store.schema import from_us, to_us

if TYPE_CHECKING:
    from geosentinel.store.base import Scope

T = TypeVar("T")
Row = sa.Row[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    id: str
    org_id: str
    name: str
    policy: Policy
    is_default: bool


@dataclass(frozen=True, slots=True)
class DueEscalation:
    """An escalation whose next step is due, with what deciding it needs."""

    alert_id: str
    org_id: str
    kind: EventKind
    status: AlertStatus
    opened_at: datetime
    position: Position
    due: datetime
    policy: Policy | None  # the wearer's, else the organisation's default; None: none set
    org_timezone: str
    org_locale: str
    wearer_contacts: tuple[str, ...]  # the wearer's own contacts in order (``wearer:N`` in a policy)
    staff: tuple[str, ...]  # the organisation's contacts that are nobody's own (for the fallback policy)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A notification to send now, with everything the message needs."""

    id: str
    idempotency_key: str
    tries: int
    step: int
    contact: Contact
    alert: Alert
    wearer_name: str
    org_name: str
    region: Region
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Timeline:
    alert: Alert
    events: list[Event]
    transitions: list[AlertTransition]
    notifications: list[NotificationRecord]
    resolved_at: datetime | None = None  # the last resolution, while resolved
    outcome: str | None = None
    first_view: datetime | None = None  # the first time a person had it in front of them


@dataclass(frozen=True, slots=True)
class AckTarget:
    """What an acknowledgement link's notification points at (for the page the link opens)."""

    org_id: str
    alert_id: str
    contact_id: str
    locale: Locale
    wearer_name: str
    kind: EventKind
    status: AlertStatus


class AlertNotFound(LookupError):
    pass


def _new_id() -> str:
    return str(uuid.uuid4())


class AlertCareStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads and the writer)."""

    _read: Callable[[sa.Executable], list[Row]]
    _read_one: Callable[[sa.Executable], Row | None]
    _write: Callable[[Callable[[sa.Connection], Any]], Any]

    # Contacts ------------------------------------------------------------------------------------
    def create_contact(
        self, org_id: str, name: str, locale: Locale, timezone: str, urls: Sequence[str], now: datetime
    ) -> Contact:
        contact = Contact(_new_id(), org_id, name, locale, timezone, tuple(urls))
        values = {
            "id": contact.id, "org_id": org_id, "name": name, "locale": locale.value, "timezone": timezone,
            "urls": orjson.dumps(list(urls)).decode(), "created_us": to_us(now),
        }  # fmt: skip
        self._write(lambda c: c.execute(schema.contacts.insert().values(**values)))
        return contact

    def contacts(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[Contact]:
        c = schema.contacts
        query = sa.select(c).where(c.c.org_id == scope.org_id).order_by(c.c.name, c.c.id)
        rows = self._read(query.limit(limit).offset(offset))
        return [_contact(r) for r in rows]

    def contact(self, scope: Scope, contact_id: str) -> Contact | None:
        c = schema.contacts
        row = self._read_one(sa.select(c).where(c.c.org_id == scope.org_id, c.c.id == contact_id))
        return None if row is None else _contact(row)

    # Escalation policies ---------------------------------------------------------------------------
    def create_policy(
        self, org_id: str, name: str, policy: Policy, is_default: bool, now: datetime
    ) -> PolicyRecord:
        record = PolicyRecord(_new_id(), org_id, name, policy, is_default)
        p = schema.escalation_policies

        def write(connection: sa.Connection) -> None:
            if is_default:  # one default per organisation
                connection.execute(p.update().where(p.c.org_id == org_id).values(is_default=False))
            connection.execute(
                p.insert().values(
                    id=record.id, org_id=org_id, name=name, document=policy_json(policy),
                    is_default=is_default, created_us=to_us(now), updated_us=to_us(now),
                )
            )  # fmt: skip

        self._write(write)
        return record

    def policies(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[PolicyRecord]:
        p = schema.escalation_policies
        query = sa.select(p).where(p.c.org_id == scope.org_id).order_by(p.c.name, p.c.id)
        rows = self._read(query.limit(limit).offset(offset))
        return [_policy(r) for r in rows]

    def set_wearer_policy(self, scope: Scope, wearer_id: str, policy_id: str | None) -> bool:
        """Give a wearer their own policy (None: back to the organisation's default). False if the wearer or
        the policy is not the caller's organisation's."""
        w, p = schema.wearers, schema.escalation_policies
        if (
            policy_id is not None
            and self._read_one(sa.select(p.c.id).where(p.c.id == policy_id, p.c.org_id == scope.org_id))
            is None
        ):
            return False
        query = w.update().where(w.c.id == wearer_id, w.c.org_id == scope.org_id)
        count: int = self._write(lambda c: c.execute(query.values(escalation_policy_id=policy_id)).rowcount)
        return count == 1

    # Escalations -------------------------------------------------------------------------------------
    def due_escalations(self, now: datetime, limit: int = 100) -> list[DueEscalation]:
        e, a, w, o = schema.escalations, schema.alerts, schema.wearers, schema.organisations
        query = (
            sa.select(
                e.c.alert_id, e.c.org_id, e.c.round, e.c.step, e.c.due_us, a.c.kind, a.c.status,
                a.c.opened_at_us, a.c.wearer_id, w.c.escalation_policy_id, o.c.timezone, o.c.locale,
            )
            .join(a, a.c.id == e.c.alert_id)
            .join(w, w.c.id == a.c.wearer_id)
            .join(o, o.c.id == e.c.org_id)
            .where(e.c.due_us <= to_us(now))
            .order_by(e.c.due_us)
            .limit(limit)
        )  # fmt: skip
        rows = self._read(query)
        if not rows:
            return []
        p, c, wc = schema.escalation_policies, schema.contacts, schema.wearer_contacts
        orgs = sorted({str(r.org_id) for r in rows})
        policies = {str(r.id): r for r in self._read(sa.select(p).where(p.c.org_id.in_(orgs)))}
        defaults = {str(r.org_id): r for r in policies.values() if r.is_default}
        own: dict[str, list[str]] = {}
        for link in self._read(
            sa.select(wc.c.wearer_id, wc.c.contact_id)
            .where(wc.c.wearer_id.in_(sorted({str(r.wearer_id) for r in rows})))
            .order_by(wc.c.wearer_id, wc.c.rank)
        ):
            own.setdefault(str(link.wearer_id), []).append(str(link.contact_id))
        staff: dict[str, list[str]] = {}
        someones = sa.select(wc.c.contact_id).where(wc.c.org_id.in_(orgs))
        for contact_row in self._read(
            sa.select(c.c.id, c.c.org_id)
            .where(c.c.org_id.in_(orgs), c.c.id.not_in(someones))
            .order_by(c.c.id)
        ):
            staff.setdefault(str(contact_row.org_id), []).append(str(contact_row.id))
        due: list[DueEscalation] = []
        for r in rows:
            chosen = policies.get(str(r.escalation_policy_id)) or defaults.get(str(r.org_id))
            due.append(
                DueEscalation(
                    str(r.alert_id), str(r.org_id), EventKind(r.kind), AlertStatus(r.status),
                    from_us(int(r.opened_at_us)), Position(int(r.round), int(r.step)), from_us(int(r.due_us)),
                    None if chosen is None else parse_policy(str(chosen.document)), str(r.timezone),
                    str(r.locale), tuple(own.get(str(r.wearer_id), ())), tuple(staff.get(str(r.org_id), ())),
                )
            )  # fmt: skip
        return due

    def advance_escalation(
        self,
        seen: DueEscalation,
        contacts: Sequence[str],
        sent: Position | None,
        next_position: Position,
        next_due: datetime | None,
        now: datetime,
    ) -> bool:
        """Create the step's notifications and move the escalation on, in one transaction, only if it is
        still where ``seen`` found it (False otherwise: someone else moved it; nothing is written)."""
        e, n = schema.escalations, schema.notifications
        move = (
            e.update()
            .where(
                e.c.alert_id == seen.alert_id, e.c.round == seen.position.round,
                e.c.step == seen.position.step, e.c.due_us == to_us(seen.due),
            )
            .values(
                round=next_position.round, step=next_position.step,
                due_us=None if next_due is None else to_us(next_due),
            )
        )  # fmt: skip

        def write(connection: sa.Connection) -> bool:
            if connection.execute(move).rowcount != 1:
                return False
            if sent is None:
                return True
            for contact_id in dict.fromkeys(contacts):
                key = f"{seen.alert_id}:{sent.round}:{sent.step}:{contact_id}"
                exists = connection.execute(sa.select(n.c.id).where(n.c.idempotency_key == key)).first()
                if exists is None:
                    connection.execute(
                        n.insert().values(
                            id=_new_id(), org_id=seen.org_id, alert_id=seen.alert_id, contact_id=contact_id,
                            round=sent.round, step=sent.step, idempotency_key=key, status="pending", tries=0,
                            next_try_us=to_us(now), created_us=to_us(now),
                        )
                    )  # fmt: skip
            return True

        done: bool = self._write(write)
        return done

    def stop_escalation(self, alert_id: str) -> None:
        e = schema.escalations
        self._write(lambda c: c.execute(e.update().where(e.c.alert_id == alert_id).values(due_us=None)))

    def next_escalation_due(self) -> datetime | None:
        e = schema.escalations
        row = self._read_one(sa.select(sa.func.min(e.c.due_us).label("min_us")))
        return None if row is None or row.min_us is None else from_us(int(row.min_us))

    # The outbox --------------------------------------------------------------------------------------
    def due_notifications(self, now: datetime, limit: int = 50) -> list[Outgoing]:
        n, c, a, w, o = (
            schema.notifications,
            schema.contacts,
            schema.alerts,
            schema.wearers,
            schema.organisations,
        )
        query = (
            sa.select(
                n.c.id.label("notification_id"), n.c.idempotency_key, n.c.tries, n.c.step, c, a.c.kind,
                a.c.status, a.c.opened_at_us, a.c.last_event_at_us, a.c.event_count, a.c.latitude,
                a.c.longitude, a.c.wearer_id,
                w.c.name.label("wearer_name"), o.c.name.label("org_name"), o.c.region,
                a.c.id.label("alert_id"),
            )
            .join(c, c.c.id == n.c.contact_id)
            .join(a, a.c.id == n.c.alert_id)
            .join(w, w.c.id == a.c.wearer_id)
            .join(o, o.c.id == n.c.org_id)
            .where(n.c.status.in_(("pending", "retrying")), n.c.next_try_us <= to_us(now))
            .order_by(n.c.next_try_us, n.c.created_us)
            .limit(limit)
        )  # fmt: skip
        out = []
        for r in self._read(query):
            latitude, longitude = self._last_position(str(r.wearer_id), int(r.opened_at_us))
            if latitude is None:  # no fix since the alert opened: where it opened
                latitude, longitude = r.latitude, r.longitude
            alert = Alert(
                str(r.alert_id), str(r.org_id), str(r.wearer_id), EventKind(r.kind), AlertStatus(r.status),
                from_us(int(r.opened_at_us)), from_us(int(r.last_event_at_us)), int(r.event_count),
                latitude, longitude,
            )  # fmt: skip
            out.append(
                Outgoing(
                    str(r.notification_id), str(r.idempotency_key), int(r.tries), int(r.step), _contact(r),
                    alert, str(r.wearer_name), str(r.org_name), Region(r.region),
                    self._alert_details(alert.id),
                )
            )  # fmt: skip
        return out

    def _last_position(self, wearer_id: str, since_us: int) -> tuple[float | None, float | None]:
        """The wearer's latest accepted fix if it is newer than ``since_us`` (a later step's message must
        send people where the wearer is now, not where they were when the alert opened)."""
        d, s = schema.devices, schema.device_state
        row = self._read_one(
            sa.select(s.c.fix_latitude, s.c.fix_longitude)
            .join(d, d.c.id == s.c.device_id)
            .where(d.c.wearer_id == wearer_id, s.c.fix_time_us > since_us)
            .order_by(s.c.fix_time_us.desc())
            .limit(1)
        )
        return (None, None) if row is None else (row.fix_latitude, row.fix_longitude)

    def _alert_details(self, alert_id: str) -> dict[str, Any]:
        """The first event's details (e.g. a fall's score, the fence left), for the message."""
        ev = schema.events
        row = self._read_one(
            sa.select(ev.c.details).where(ev.c.alert_id == alert_id).order_by(ev.c.id).limit(1)
        )
        details = {} if row is None or row[0] is None else orjson.loads(str(row[0]))
        return details if isinstance(details, dict) else {}

    def record_delivery(
        self,
        notification_id: str,
        handed_at: datetime,
        ok: bool,
        channel: int | None,
        error: str | None,
        attempts: list[dict[str, Any]],
        next_try: datetime | None,
        done_at: datetime,
    ) -> None:
        """One delivery try's result: delivered; or failed, to retry at ``next_try`` (None: given up)."""
        n = schema.notifications

        def write(connection: sa.Connection) -> None:
            row = connection.execute(
                sa.select(n.c.tries, n.c.handed_us, n.c.attempts_log).where(n.c.id == notification_id)
            ).one()
            log = orjson.loads(row.attempts_log) if row.attempts_log else []
            log += attempts
            values: dict[str, Any] = {
                "tries": int(row.tries) + 1, "attempts_log": orjson.dumps(log[-50:]).decode(),
                "handed_us": row.handed_us if row.handed_us is not None else to_us(handed_at),
                "channel": channel, "last_error": error,
            }  # fmt: skip
            if ok:
                values |= {"status": "delivered", "delivered_us": to_us(done_at), "next_try_us": None}
            elif next_try is None:
                values |= {"status": "failed", "next_try_us": None}
            else:
                values |= {"status": "retrying", "next_try_us": to_us(next_try)}
            connection.execute(n.update().where(n.c.id == notification_id).values(**values))

        self._write(write)

    def next_notification_due(self) -> datetime | None:
        n = schema.notifications
        row = self._read_one(
            sa.select(sa.func.min(n.c.next_try_us).label("min_us")).where(
                n.c.status.in_(("pending", "retrying"))
            )
        )
        return None if row is None or row.min_us is None else from_us(int(row.min_us))

    def ack_target(self, notification_id: str) -> AckTarget | None:
        n, c, a, w = schema.notifications, schema.contacts, schema.alerts, schema.wearers
        row = self._read_one(
            sa.select(n.c.org_id, n.c.alert_id, n.c.contact_id, c.c.locale, w.c.name, a.c.kind, a.c.status)
            .join(c, c.c.id == n.c.contact_id)
            .join(a, a.c.id == n.c.alert_id)
            .join(w, w.c.id == a.c.wearer_id)
            .where(n.c.id == notification_id)
        )
        if row is None:
            return None
        return AckTarget(
            str(row.org_id), str(row.alert_id), str(row.contact_id), Locale(row.locale), str(row.name),
            EventKind(row.kind), AlertStatus(row.status),
        )  # fmt: skip

    # Lifecycle ---------------------------------------------------------------------------------------
    def change_alert(
        self,
        scope: Scope,
        alert_id: str,
        action: Action,
        actor: str,
        now: datetime,
        outcome: Outcome | None = None,
        note: str | None = None,
        at: datetime | None = None,
    ) -> Alert:
        """Apply a status change (raises :class:`AlertNotFound`, or ``TransitionError`` when the status
        does not allow it), with its audit line, and stop or restart the escalation. ``at``: when it
        happened, if earlier than ``now`` (an arrival on site recorded afterwards; not before the alert
        opened)."""
        a, e, t = schema.alerts, schema.escalations, schema.alert_transitions
        selector = a.c.id == alert_id
        scoped = sa.and_(selector, a.c.org_id == scope.org_id)
        if scope.wearer_ids is not None:
            scoped = sa.and_(scoped, a.c.wearer_id.in_(sorted(scope.wearer_ids)))

        # Refusals are returned, not raised, from inside the write: an exception there would roll back
        # (and retry one by one) the other writes committed in the same group, ingest included.
        def write(connection: sa.Connection) -> Exception | None:
            row = connection.execute(
                sa.select(a.c.status, a.c.org_id, a.c.opened_at_us).where(scoped)
            ).first()
            if row is None:
                return AlertNotFound(alert_id)
            before = AlertStatus(row.status)
            try:
                after = transition(before, action, outcome)
            except TransitionError as exc:
                return exc
            when = now if at is None else at
            if when > now or to_us(when) < int(row.opened_at_us):
                return TransitionError("the time given must be between the alert's opening and now")
            values = _status_values(action, before, after, when, actor, outcome, note)
            # The status is re-checked in the update: a concurrent change makes this one fail, not both win.
            if (
                connection.execute(
                    a.update().where(selector, a.c.status == before.value).values(**values)
                ).rowcount
                != 1
            ):
                raise AlertNotFound(alert_id)
            connection.execute(
                t.insert().values(
                    alert_id=alert_id, org_id=row.org_id, at_us=to_us(when), action=action.value,
                    from_status=before.value, to_status=after.value, actor=actor,
                    outcome=None if outcome is None else outcome.value, note=note,
                )
            )  # fmt: skip
            if not stops_escalation(after):  # reopened: escalate again from the first step
                restart = {"round": 0, "step": 0, "due_us": to_us(now)}
                if (
                    connection.execute(e.update().where(e.c.alert_id == alert_id).values(**restart)).rowcount
                    == 0
                ):
                    connection.execute(e.insert().values(alert_id=alert_id, org_id=row.org_id, **restart))
            else:
                connection.execute(e.update().where(e.c.alert_id == alert_id).values(due_us=None))
            return None

        refused: Exception | None = self._write(write)
        if refused is not None:
            raise refused
        a_row = self._read_one(sa.select(a).where(selector))
        assert a_row is not None
        return alert_from_row(a_row)

    def alert_timeline(self, scope: Scope, alert_id: str) -> Timeline | None:
        a, ev, t, n = schema.alerts, schema.events, schema.alert_transitions, schema.notifications
        query = sa.select(a).where(a.c.id == alert_id, a.c.org_id == scope.org_id)
        row = self._read_one(query)
        if row is None or not scope.allows(str(row.wearer_id)):
            return None
        events = [
            Event(
                str(r.org_id), r.wearer_id, str(r.device_id), EventKind(r.kind), from_us(int(r.time_us)),
                from_us(int(r.received_us)), r.latitude, r.longitude,
                orjson.loads(str(r.details)) if r.details else {},
            )
            for r in self._read(sa.select(ev).where(ev.c.alert_id == alert_id).order_by(ev.c.time_us, ev.c.id))  # noqa: E501
        ]  # fmt: skip
        transitions = [
            AlertTransition(
                str(r.alert_id), from_us(int(r.at_us)), str(r.action),
                None if r.from_status is None else AlertStatus(r.from_status), AlertStatus(r.to_status),
                str(r.actor), r.outcome, r.note,
            )
            for r in self._read(sa.select(t).where(t.c.alert_id == alert_id).order_by(t.c.at_us, t.c.id))
        ]  # fmt: skip
        notifications = [
            NotificationRecord(
                str(r.id), str(r.alert_id), str(r.contact_id), int(r.round), int(r.step), str(r.status),
                int(r.tries), from_us(int(r.created_us)), _maybe(r.next_try_us), _maybe(r.handed_us),
                _maybe(r.delivered_us), r.channel, r.last_error,
            )
            for r in self._read(sa.select(n).where(n.c.alert_id == alert_id).order_by(n.c.created_us, n.c.id))
        ]  # fmt: skip
        v = schema.alert_views
        first_view = self._read_one(
            sa.select(sa.func.min(v.c.at_us).label("us")).where(v.c.alert_id == alert_id)
        )
        return Timeline(
            alert_from_row(row),
            events,
            transitions,
            notifications,
            _maybe(row.resolved_at_us),
            row.outcome,
            None if first_view is None else _maybe(first_view.us),
        )


def _status_values(
    action: Action,
    before: AlertStatus,
    after: AlertStatus,
    when: datetime,
    actor: str,
    outcome: Outcome | None,
    note: str | None,
) -> dict[str, Any]:
    """The alert row's new values for a status change."""
    values: dict[str, Any] = {"status": after.value}
    if action is Action.ACKNOWLEDGE or (action is Action.ARRIVE and before is AlertStatus.OPEN):
        values |= {"acknowledged_at_us": to_us(when), "acknowledged_by": actor[:36]}
    elif action in (Action.RESOLVE, Action.CANCEL):
        values |= {
            "resolved_at_us": to_us(when),
            "resolved_by": actor[:36],
            "outcome": outcome if action is Action.RESOLVE else Outcome.FALSE_ALARM,
            "note": note,
        }
    elif action is Action.REOPEN:
        values |= {"acknowledged_at_us": None, "acknowledged_by": None, "resolved_at_us": None,
                   "resolved_by": None, "outcome": None}  # fmt: skip
    return values  # an arrival on an acknowledged or resolved alert: the audit line says it all


def _maybe(value: object) -> datetime | None:
    return None if value is None else from_us(int(value))  # type: ignore[call-overload]


def _contact(row: Row) -> Contact:
    urls = orjson.loads(str(row.urls))
    return Contact(
        str(row.id), str(row.org_id), str(row.name), Locale(row.locale), str(row.timezone), tuple(urls)
    )


def _policy(row: Row) -> PolicyRecord:
    return PolicyRecord(
        str(row.id), str(row.org_id), str(row.name), parse_policy(str(row.document)), bool(row.is_default)
    )


def alert_from_row(row: Row) -> Alert:
    return Alert(
        str(row.id), str(row.org_id), str(row.wearer_id), EventKind(row.kind), AlertStatus(row.status),
        from_us(int(row.opened_at_us)), from_us(int(row.last_event_at_us)), int(row.event_count),
        row.latitude, row.longitude,
    )  # fmt: skip
