"""Alerts for the live streams: read back from the store after each change is committed, one read at a time.

An alert is changed by the pipeline's commits (opened, joined by more events, reopened by a new alarm,
closed when the device is back or the wearer cancels: decided by the store inside the commit) and by people
through the API. Each change only asks for the alert to be read again; one task reads what was asked, in
order, and publishes what it read. As every change asks after its commit, and reads are published in the
order they were made, the last event about an alert always shows it as stored (two changes at once never
leave a stale state last on the streams). Asking never waits: a storm of changes is read once per alert
and never holds up ingest or the API.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from geosentinel.alerts.lifecycle import Action
from geosentinel.live import Hub, alert_event
from geosentinel.model import Alert, AlertStatus, EventKind
from geosentinel.store import Scope, Store

log = logging.getLogger(__name__)

AlertKey = tuple[str, str, EventKind]  # organisation, wearer, alert kind

# What a person's change did to an alert, as an alert event's ``change`` says it.
CHANGED_BY: Final = {
    Action.ACKNOWLEDGE: "acknowledged",
    Action.RESOLVE: "resolved",
    Action.REOPEN: "reopened",
    Action.ARRIVE: "arrival",
    Action.CANCEL: "cancelled",
}


@dataclass(slots=True)
class AlertQuery:
    """What commits said about one wearer's alert of one kind, until it is read back."""

    opened_by: set[datetime] = field(default_factory=set)  # times of events that may have opened it
    closing: bool = False  # an event that closes it (back online, the wearer's cancel)


def change_of(alert: Alert, query: AlertQuery) -> str:
    """What a commit did to the alert: ``opened`` by one of the events, ``resolved`` by a closing one, or
    ``updated`` (more events joined it; a new alarm may have reopened it: its status says)."""
    if query.closing and alert.status is AlertStatus.RESOLVED:
        return "resolved"
    if alert.opened_at in query.opened_by and alert.status is AlertStatus.OPEN:
        return "opened"
    return "updated"


class AlertFeed:
    def __init__(self, hub: Hub, store: Store) -> None:
        self._hub = hub
        self._store = store
        self._by_kind: dict[AlertKey, AlertQuery] = {}
        self._by_id: dict[tuple[str, str], str] = {}  # (organisation, alert id) -> what changed
        self._reader: asyncio.Task[None] | None = None

    def committed(self, queries: dict[AlertKey, AlertQuery]) -> None:
        """A pipeline commit may have opened or changed these alerts (keys of followed organisations)."""
        for key, query in queries.items():
            pending = self._by_kind.setdefault(key, AlertQuery())
            pending.opened_by |= query.opened_by
            pending.closing |= query.closing
        self._read_soon()

    def changed(self, alert: Alert, action: Action) -> None:
        """Someone changed ``alert`` by ``action`` (committed)."""
        if self._hub.wants(alert.org_id):
            self._by_id[(alert.org_id, alert.id)] = CHANGED_BY[action]
            self._read_soon()

    def _read_soon(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="live-alerts")

    async def _read(self) -> None:
        while self._by_kind or self._by_id:
            by_kind, self._by_kind = self._by_kind, {}
            by_id, self._by_id = self._by_id, {}
            try:
                found = await asyncio.to_thread(self._alerts, by_kind, by_id)
            except Exception:
                log.exception("reading back %d alerts for the live streams failed", len(by_kind) + len(by_id))
                continue
            for alert, change in found:
                self._hub.publish(alert_event(alert, change))

    def _alerts(
        self, by_kind: dict[AlertKey, AlertQuery], by_id: dict[tuple[str, str], str]
    ) -> list[tuple[Alert, str]]:
        found = []
        for (org_id, wearer_id, kind), query in by_kind.items():
            # The wearer's newest alert of that kind: the one the event opened, joined or closed.
            scope = Scope(org_id, frozenset({wearer_id}))
            alerts = self._store.alerts(scope, kind=kind, wearer_id=wearer_id, limit=1)
            if alerts:
                found.append((alerts[0], change_of(alerts[0], query)))
        for (org_id, alert_id), change in by_id.items():
            alert = self._store.alert(Scope(org_id), alert_id)
            if alert is not None:
                found.append((alert, change))
        return found

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
