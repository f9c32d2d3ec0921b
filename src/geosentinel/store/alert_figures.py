"""What service figures need from the store: each wearer's own contacts, who saw an alert first, and the
facts of every alert of a period (rules in :mod:`geosentinel.alerts.service_levels`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from geosentinel.alerts.lifecycle import TAKING_ACTIONS, Action
from geosentinel.alerts.service_levels import AlertFacts
from geosentinel.model import AlertStatus, Contact, EventKind
from geosentinel.store import schema
from geosentinel.store.schema import from_us, to_us

if TYPE_CHECKING:
    from geosentinel.store.alert_care import Timeline
    from geosentinel.store.base import Scope

Row = sa.Row[tuple[object, ...]]
MAX_WEARER_CONTACTS = 9  # policies name them wearer:1 .. wearer:9


class ContactRefused(ValueError):
    """Contacts that cannot be a wearer's (not the organisation's, repeated, too many)."""


def is_person(actor: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """Actors that are people (``user:``, ``contact:``, ``cli:``), not the system or a device."""
    return sa.and_(actor != "system", actor.not_like("device:%"))


def is_person_actor(actor: str) -> bool:
    """:func:`is_person`, for an actor already read."""
    return actor != "system" and not actor.startswith("device:")


def facts_of(timeline: Timeline) -> AlertFacts:
    """The service figures' facts of one alert from its loaded timeline (no query): the same as
    :meth:`AlertFiguresStore.alert_facts` answers for it, which a test checks on both backends."""
    alert = timeline.alert
    received = min((e.received_at for e in timeline.events), default=alert.opened_at)
    delivered = [n.delivered_at for n in timeline.notifications if n.delivered_at is not None]
    shown = min([*delivered, *([timeline.first_view] if timeline.first_view else [])], default=None)
    taking_actions = {action.value for action in TAKING_ACTIONS}
    takings = [t for t in timeline.transitions if t.action in taking_actions and is_person_actor(t.actor)]
    taken_at, taken_by = (takings[0].at, takings[0].actor) if takings else (None, None)  # in time order
    arrivals = [t.at for t in timeline.transitions if t.action == Action.ARRIVE.value]
    return AlertFacts(
        alert.id, alert.wearer_id, alert.kind, alert.status, received, shown,
        taken_at, taken_by,
        min(arrivals, default=None), timeline.resolved_at, timeline.outcome, len(timeline.notifications),
        sum(1 for n in timeline.notifications if n.status == "failed"),
    )  # fmt: skip


class AlertFiguresStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads and the writer)."""

    _read: Callable[[sa.Executable], list[Row]]
    _read_one: Callable[[sa.Executable], Row | None]
    _write: Callable[[Callable[[sa.Connection], Any]], Any]

    contacts: Callable[[Scope], list[Contact]]  # from AlertCareStore

    # A wearer's own contacts -----------------------------------------------------------------------------
    def set_wearer_contacts(self, scope: Scope, wearer_id: str, contact_ids: Sequence[str]) -> bool:
        """Replace the wearer's own contacts, in order (contact 1 first). False if the wearer is not the
        caller's; :class:`ContactRefused` if a contact is not the organisation's or is repeated."""
        if len(set(contact_ids)) != len(contact_ids) or len(contact_ids) > MAX_WEARER_CONTACTS:
            raise ContactRefused(f"a wearer has at most {MAX_WEARER_CONTACTS} contacts, each once")
        w, c, wc = schema.wearers, schema.contacts, schema.wearer_contacts
        wearer = self._read_one(sa.select(w.c.id).where(w.c.id == wearer_id, w.c.org_id == scope.org_id))
        if wearer is None or not scope.allows(wearer_id):
            return False
        known = {str(r.id) for r in self._read(sa.select(c.c.id).where(c.c.org_id == scope.org_id))}
        unknown = [cid for cid in contact_ids if cid not in known]
        if unknown:
            raise ContactRefused(f"no contact {unknown[0]} in this organisation")
        rows = [
            {"wearer_id": wearer_id, "rank": rank, "contact_id": cid, "org_id": scope.org_id}
            for rank, cid in enumerate(contact_ids, start=1)
        ]

        def write(connection: sa.Connection) -> None:
            connection.execute(wc.delete().where(wc.c.wearer_id == wearer_id))
            if rows:
                connection.execute(wc.insert(), rows)

        self._write(write)
        return True

    def wearer_contacts(self, scope: Scope, wearer_id: str) -> list[Contact] | None:
        """The wearer's own contacts in order (None: not the caller's wearer)."""
        w, wc = schema.wearers, schema.wearer_contacts
        wearer = self._read_one(sa.select(w.c.id).where(w.c.id == wearer_id, w.c.org_id == scope.org_id))
        if wearer is None or not scope.allows(wearer_id):
            return None
        ranked = [
            str(r.contact_id)
            for r in self._read(
                sa.select(wc.c.contact_id).where(wc.c.wearer_id == wearer_id).order_by(wc.c.rank)
            )
        ]
        by_id = {contact.id: contact for contact in self.contacts(scope)}
        return [by_id[cid] for cid in ranked if cid in by_id]

    # Who saw an alert --------------------------------------------------------------------------------------
    def record_view(self, scope: Scope, alert_id: str, actor: str, now: datetime) -> bool:
        """Note that ``actor`` has seen the alert (the first time only). False if it is not the caller's."""
        a, v = schema.alerts, schema.alert_views
        row = self._read_one(sa.select(a.c.wearer_id).where(a.c.id == alert_id, a.c.org_id == scope.org_id))
        if row is None or not scope.allows(str(row.wearer_id)):
            return False
        seen = sa.select(v.c.alert_id).where(v.c.alert_id == alert_id, v.c.actor == actor)

        def write(connection: sa.Connection) -> None:
            if connection.execute(seen).first() is None:
                connection.execute(
                    v.insert().values(alert_id=alert_id, actor=actor, org_id=scope.org_id, at_us=to_us(now))
                )

        self._write(write)
        return True

    # Facts for the service figures -------------------------------------------------------------------------
    def alert_facts(
        self, scope: Scope, since: datetime, until: datetime, alert_id: str | None = None
    ) -> list[AlertFacts]:
        """Every alert of the caller's organisation opened in ``[since, until)`` (or the one asked for),
        with the moments the service figures count."""
        a, ev, n, v, t = (
            schema.alerts, schema.events, schema.notifications, schema.alert_views, schema.alert_transitions
        )  # fmt: skip
        first_event = sa.select(ev.c.alert_id, sa.func.min(ev.c.received_us).label("us")).group_by(
            ev.c.alert_id
        )
        delivered = (
            sa.select(
                n.c.alert_id,
                sa.func.min(n.c.delivered_us).label("us"),
                sa.func.count().label("attempts"),
                sa.func.sum(sa.case((n.c.status == "failed", 1), else_=0)).label("failed"),
            ).group_by(n.c.alert_id)
        )  # fmt: skip
        viewed = sa.select(v.c.alert_id, sa.func.min(v.c.at_us).label("us")).group_by(v.c.alert_id)
        taking = [action.value for action in TAKING_ACTIONS]
        taken = (
            sa.select(t.c.alert_id, sa.func.min(t.c.at_us).label("us"))
            .where(t.c.action.in_(taking), is_person(t.c.actor))
            .group_by(t.c.alert_id)
        )
        arrived = (
            sa.select(t.c.alert_id, sa.func.min(t.c.at_us).label("us"))
            .where(t.c.action == Action.ARRIVE.value)
            .group_by(t.c.alert_id)
        )
        query = sa.select(a)
        if alert_id is not None:
            query = query.where(a.c.id == alert_id)
        else:
            query = query.where(a.c.opened_at_us >= to_us(since), a.c.opened_at_us < to_us(until))
        query = query.where(a.c.org_id == scope.org_id)
        if scope.wearer_ids is not None:
            query = query.where(a.c.wearer_id.in_(sorted(scope.wearer_ids)))
        alerts = self._read(query.order_by(a.c.opened_at_us, a.c.id))
        if not alerts:
            return []
        ids = [str(r.id) for r in alerts]

        def moments(select: sa.Select[Any]) -> dict[str, Row]:
            sub = select.subquery()
            chunks: dict[str, Row] = {}
            for start in range(0, len(ids), 500):  # bounded IN lists on both backends
                rows = self._read(sa.select(sub).where(sub.c.alert_id.in_(ids[start : start + 500])))
                chunks |= {str(r.alert_id): r for r in rows}
            return chunks

        firsts, deliveries, views, takings, arrivals = (
            moments(first_event), moments(delivered), moments(viewed), moments(taken), moments(arrived)
        )  # fmt: skip
        takers = self._takers(ids)
        facts = []
        for r in alerts:
            key = str(r.id)
            received = _us(firsts.get(key)) or int(r.opened_at_us)
            delivery = deliveries.get(key)
            shown = [x for x in (_us(delivery), _us(views.get(key))) if x is not None]
            taken_us = _us(takings.get(key))
            facts.append(
                AlertFacts(
                    key, str(r.wearer_id), EventKind(r.kind), AlertStatus(r.status), from_us(received),
                    from_us(min(shown)) if shown else None, _at(taken_us), takers.get(key),
                    _at(_us(arrivals.get(key))), _at(r.resolved_at_us), r.outcome,
                    0 if delivery is None else int(delivery.attempts),
                    0 if delivery is None else int(delivery.failed or 0),
                )
            )  # fmt: skip
        return facts

    def _takers(self, ids: list[str]) -> dict[str, str]:
        """Who first took each alert."""
        t = schema.alert_transitions
        out: dict[str, str] = {}
        taking = [action.value for action in TAKING_ACTIONS]
        for start in range(0, len(ids), 500):
            rows = self._read(
                sa.select(t.c.alert_id, t.c.actor)
                .where(
                    t.c.alert_id.in_(ids[start : start + 500]), t.c.action.in_(taking), is_person(t.c.actor)
                )
                .order_by(t.c.alert_id, t.c.at_us.desc(), t.c.id.desc())
            )
            out |= {str(r.alert_id): str(r.actor) for r in rows}  # the earliest comes last and stays
        return out


def _us(row: Row | None) -> int | None:
    value = None if row is None else row.us
    return None if value is None else int(value)


def _at(value: object) -> datetime | None:
    return None if value is None else from_us(int(value))  # type: ignore[call-overload]
