"""The live feed: what the service has just stored, fanned out to the API's event streams.

Publishers (the pipeline after a commit, the alert routes after a change) hand the :class:`Hub` a
:class:`LiveEvent`; the hub numbers it, keeps the last ones for replay and puts it on the queue of every
subscriber allowed to see it: the caller's organisation only, and a family member only the wearers linked
to them (the API's :class:`~geosentinel.store.Scope`).

Publishing never waits and does no I/O. A subscriber whose queue is full is dropped (its stream ends and
the client reconnects), so a slow dashboard never slows ingest. A client reconnecting with the id of the
last event it got is replayed what it missed, when the hub still holds all of it; otherwise it is told to
reload the current state through the REST API (a ``ready`` event). Everything runs on the event loop's
thread: no locks.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

import orjson

from geosentinel import metrics
from geosentinel.model import Alert, Event, EventKind, Reading
from geosentinel.store import Scope

QUEUE_SIZE: Final = 1000  # events a subscriber may have waiting before it is dropped
REPLAY_SIZE: Final = 1000  # events kept for clients that reconnect with Last-Event-ID

# Device status changes worth showing live, by the event that tells them.
DEVICE_STATUS: Final = {
    EventKind.OFFLINE: "offline",
    EventKind.BACK_ONLINE: "online",
    EventKind.LOW_BATTERY: "low_battery",
}


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One event of the stream. ``data`` is its JSON, encoded once whatever the number of subscribers."""

    name: str  # position, device, alert, ready
    org_id: str
    wearer_id: str | None  # None: about no wearer (a spare device): not for family members
    data: str
    seq: int = 0  # given by the hub when published


def visible(scope: Scope, event: LiveEvent) -> bool:
    """Whether a caller with ``scope`` may see ``event`` (the same rule as every API read)."""
    return event.org_id == scope.org_id and scope.allows(event.wearer_id)


class Subscription:
    """One stream's bounded queue. ``None`` from :meth:`next` ends the stream (closed, or dropped)."""

    def __init__(self, scope: Scope, size: int) -> None:
        self.scope = scope  # replaced when the stream re-checks its caller (a family member's links)
        self.dropped = False  # too slow: its queue overflowed
        self.closed = False
        self._queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(size)

    def offer(self, event: LiveEvent) -> bool:
        """Queue ``event``; False when the queue is full."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    async def next(self) -> LiveEvent | None:
        if self.closed:
            return None
        event = await self._queue.get()
        return None if self.closed else event

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:  # wake a reader waiting for the next event; a full queue has no reader waiting
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            pass


class Hub:
    """Subscribers by organisation, the last events for replay, and the sequence of event ids.

    Ids are ``<epoch>-<n>``: the epoch changes at every start of the service, so an id from before a
    restart is known to be unreplayable.
    """

    def __init__(
        self, queue_size: int = QUEUE_SIZE, replay_size: int = REPLAY_SIZE, epoch: str | None = None
    ) -> None:
        self.epoch = epoch or secrets.token_hex(4)
        self._queue_size = queue_size
        self._seq = 0
        self._recent: deque[LiveEvent] = deque(maxlen=replay_size)
        self._fallen_out = 0  # the last event that fell out of the replay window
        self._subscribers: dict[str, set[Subscription]] = {}
        # Per organisation, the sequence number when an event was last left unpublished because nobody
        # listened (see wants): a client whose last event is not after it cannot be replayed.
        self._missed: dict[str, int] = {}
        self._missed_by_all = -1  # the same, for every organisation at once (see idle)
        self._closed = False

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    def idle(self) -> bool:
        """Whether nobody follows anything (then publishers skip everything, as :meth:`wants` says)."""
        if self._subscribers:
            return False
        self._missed_by_all = self._seq
        return True

    def wants(self, org_id: str) -> bool:
        """Whether anyone follows the organisation. Publishers ask first so that building events costs
        nothing while nobody watches; the hub remembers that it was asked in vain (no replay over that)."""
        if self._subscribers.get(org_id):
            return True
        self._missed[org_id] = self._seq
        return False

    def publish(self, event: LiveEvent) -> None:
        """Hand ``event`` to every subscriber that may see it. Never waits; drops full subscribers."""
        self._seq += 1
        event = replace(event, seq=self._seq)
        if len(self._recent) == self._recent.maxlen:
            self._fallen_out = self._recent[0].seq if self._recent else event.seq
        self._recent.append(event)
        metrics.live_event(event.name)
        subscribers = self._subscribers.get(event.org_id)
        if not subscribers:
            return
        for subscription in list(subscribers):
            # The organisation is matched already (subscribers are kept by organisation).
            if subscription.scope.allows(event.wearer_id) and not subscription.offer(event):
                self._drop(subscription)

    def subscribe(self, scope: Scope, last_event_id: str | None = None) -> Subscription:
        """A new stream for ``scope``, starting with what it missed since ``last_event_id`` when the hub
        still holds all of it, or else with a ``ready`` event (load the current state now)."""
        subscription = Subscription(scope, self._queue_size)
        if self._closed:
            subscription.close()
            return subscription
        missed = self._replay(scope, last_event_id)
        for event in missed if missed is not None else [self._ready(scope, last_event_id)]:
            subscription.offer(event)
        self._subscribers.setdefault(scope.org_id, set()).add(subscription)
        metrics.live_subscribers(+1)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        self._forget(subscription)

    def close(self) -> None:
        """End every stream (the service is stopping: open streams must not hold up its shutdown)."""
        self._closed = True
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                self.unsubscribe(subscription)

    def forget_wearer(self, wearer_id: str) -> None:
        """Drop the replayable events about an erased wearer: nobody reconnecting gets them again."""
        self._recent = deque((e for e in self._recent if e.wearer_id != wearer_id), self._recent.maxlen)

    def subscribers(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def _drop(self, subscription: Subscription) -> None:
        subscription.dropped = True
        subscription.close()
        if self._forget(subscription):
            metrics.live_dropped()

    def _forget(self, subscription: Subscription) -> bool:
        subscribers = self._subscribers.get(subscription.scope.org_id)
        if subscribers is None or subscription not in subscribers:
            return False
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.scope.org_id]
        metrics.live_subscribers(-1)
        return True

    def _replay(self, scope: Scope, last_event_id: str | None) -> list[LiveEvent] | None:
        """What the client missed since ``last_event_id``; None if the hub cannot tell it all."""
        last = self._parse(last_event_id)
        if last is None or max(self._missed.get(scope.org_id, -1), self._missed_by_all) >= last:
            return None
        if last < self._fallen_out:
            return None  # some of it fell out of the replay window
        missed = [e for e in self._recent if e.seq > last and visible(scope, e)]
        # Room must remain for what is published next, else the replay would only get the client dropped.
        return missed if len(missed) < self._queue_size // 2 else None

    def _parse(self, last_event_id: str | None) -> int | None:
        epoch, _, number = (last_event_id or "").strip().rpartition("-")
        if epoch != self.epoch or not (number.isascii() and number.isdigit()) or len(number) > 18:
            return None
        seq = int(number)
        return seq if seq <= self._seq else None

    def _ready(self, scope: Scope, last_event_id: str | None) -> LiveEvent:
        # Numbered like the events, without taking a number: a client that reconnects with its id is
        # replayed exactly what came after.
        reason = "connected" if last_event_id is None else "not_replayable"
        data = orjson.dumps({"reason": reason}).decode()
        return LiveEvent("ready", scope.org_id, None, data, self._seq)


# Building events from what was stored (pure) ------------------------------------------------------------


def iso(value: datetime) -> str:
    """UTC ISO-8601 with ``Z``, as the REST API writes times."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def position_event(reading: Reading, battery_pct: float | None) -> LiveEvent:
    """A reading's fix; ``battery_pct``: the reading's own, else the device's last known."""
    m = reading.message
    device = reading.device
    data = {
        "wearer_id": device.wearer_id, "device_id": device.id, "time": iso(reading.time),
        "latitude": m.latitude, "longitude": m.longitude, "accuracy_m": m.accuracy_m,
        "battery_pct": battery_pct,
    }  # fmt: skip
    return LiveEvent("position", device.org_id, device.wearer_id, orjson.dumps(data).decode())


def device_event(event: Event) -> LiveEvent | None:
    """A device's status change (offline, back online, low battery), or None for other events."""
    status = DEVICE_STATUS.get(event.kind)
    if status is None:
        return None
    battery = event.details.get("battery_pct")  # a low battery event's level
    data = {
        "device_id": event.device_id, "wearer_id": event.wearer_id, "status": status,
        "time": iso(event.time), "battery_pct": None if isinstance(battery, bool | str) else battery,
    }  # fmt: skip
    return LiveEvent("device", event.org_id, event.wearer_id, orjson.dumps(data).decode())


def alert_event(alert: Alert, change: str) -> LiveEvent:
    """An alert as it now is (the REST API's fields but ``ack_overdue``), and what just happened to it."""
    data = {
        "id": alert.id, "wearer_id": alert.wearer_id, "kind": alert.kind.value, "status": alert.status.value,
        "opened_at": iso(alert.opened_at), "last_event_at": iso(alert.last_event_at),
        "event_count": alert.event_count, "latitude": alert.latitude, "longitude": alert.longitude,
        "change": change,
    }  # fmt: skip
    return LiveEvent("alert", alert.org_id, alert.wearer_id, orjson.dumps(data).decode())
