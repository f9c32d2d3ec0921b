"""Tells the live streams what a pipeline commit stored: fixes, device status changes, alerts.

Called on the event loop once a commit succeeded, never before: nothing is announced that was not stored.
Fixes and device status changes are announced from what the pipeline has in hand; the alerts the commit
may have opened or changed are decided by the store inside it, so they are only named here and read back
by the alert feed (:mod:`geosentinel.alerts.feed`). Nothing at all is built for an organisation that
nobody follows, and nothing here waits or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.alerts.feed import AlertFeed, AlertKey, AlertQuery
from geosentinel.live import DEVICE_STATUS, Hub, device_event, position_event
from geosentinel.model import Event, EventKind, Reading
from geosentinel.pipeline.stages import Memory, StageResult

# Events that close an alert of another kind in the store (see store.ingest): the kind they close.
CLOSES: dict[EventKind, EventKind] = {
    EventKind.BACK_ONLINE: EventKind.OFFLINE,
    EventKind.CANCELLED: EventKind.FALL,
}


def fixes(readings: Sequence[Reading], memories: dict[str, Memory]) -> list[tuple[Reading, float | None]]:
    """Per device, the reading whose fix became its current position in this batch (a batch of buffered
    fixes announces only the newest; a late fix that does not move the wearer is not announced), with the
    battery level to show (the reading's own, else the device's last known)."""
    chosen: dict[str, tuple[Reading, float | None]] = {}
    for reading in readings:
        memory = memories.get(reading.device.id)
        state = None if memory is None else memory.state
        if state is None or not reading.position_ok or reading.time != state.fix_time:
            continue
        battery = reading.message.battery_pct
        chosen[reading.device.id] = (reading, state.battery_pct if battery is None else battery)
    return list(chosen.values())


def alert_queries(events: Iterable[Event]) -> dict[AlertKey, AlertQuery]:
    """The alerts the store may have opened or changed for these events."""
    queries: dict[AlertKey, AlertQuery] = {}
    for event in events:
        if event.wearer_id is None:
            continue
        closed = CLOSES.get(event.kind)
        if closed is None and event.kind not in OPENS_ALERT:
            continue
        query = queries.setdefault((event.org_id, event.wearer_id, closed or event.kind), AlertQuery())
        if closed is not None:
            query.closing = True
        else:
            query.opened_by.add(event.time)
    return queries


class Announcer:
    def __init__(self, hub: Hub, alerts: AlertFeed) -> None:
        self._hub = hub
        self._alerts = alerts

    def committed(self, result: StageResult) -> None:
        """Announce a committed batch."""
        hub = self._hub
        if hub.idle():  # the usual case: not a reading looked at
            return
        following: dict[str, bool] = {}

        def follows(org_id: str) -> bool:  # asked once per organisation and batch
            known = following.get(org_id)
            if known is None:
                known = following[org_id] = hub.wants(org_id)
            return known

        for reading, battery in fixes(result.readings, result.memories):
            if follows(reading.device.org_id):
                hub.publish(position_event(reading, battery))
        for event in result.events:
            if event.kind in DEVICE_STATUS and follows(event.org_id):
                status = device_event(event)
                if status is not None:
                    hub.publish(status)
        queries = {key: q for key, q in alert_queries(result.events).items() if follows(key[0])}
        if queries:
            self._alerts.committed(queries)
