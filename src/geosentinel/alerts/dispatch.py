"""The service's alert loop: escalation steps fall due, notifications go out, failures are retried.

Two halves, both driven from the store so that a restart (even a SIGKILL) resumes exactly:

- **Escalations.** Every escalation whose next step is due gets its plan (:func:`alerts.policy.plan`); the
  step's notifications and the escalation's next position are written in one transaction, and only if
  nobody moved it meanwhile. A step is therefore created once, at its time, never skipped.
- **Deliveries.** Every pending notification is rendered in its contact's language and time zone, with a
  signed acknowledgement link, and handed to the contact's channels in order (the next one when one fails).
  Delivery is at least once: the result is recorded after the channel answered, so a crash in between
  sends it again, with the same idempotency key. A failed try is retried with growing back-off, then given
  up with the reason recorded; the escalation's later steps go on regardless.

The pipeline wakes the loop when it commits a new alert, so the first step does not wait for a poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from geosentinel import metrics
from geosentinel.alerts.lifecycle import stops_escalation
from geosentinel.alerts.policy import first_due, plan
from geosentinel.alerts.templates import fallback_policy
from geosentinel.clock import Clock
from geosentinel.notify.ack_links import AckSigner
from geosentinel.notify.channels import Delivery, deliver
from geosentinel.notify.messages import AlertNotice, RenderedMessage, render
from geosentinel.store import Store
from geosentinel.store.alert_care import DueEscalation, Outgoing

log = logging.getLogger(__name__)

# Back-off between delivery tries of one notification; after the last, it is given up (status "failed").
RETRY_DELAYS_S: tuple[float, ...] = (5, 15, 45, 120, 300)
ACK_LINK_TTL = timedelta(hours=24)
POLL_S = 1.0
MAX_PARALLEL_DELIVERIES = 8

Deliver = Callable[[list[str], RenderedMessage, str], Delivery]


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    public_url: str  # where acknowledgement links point (the API's public address)
    signer: AckSigner | None  # None: messages go out without an acknowledgement link
    retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S
    poll_s: float = POLL_S


class AlertDispatcher:
    def __init__(
        self, store: Store, clock: Clock, settings: DispatchSettings, channel: Deliver = deliver
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._deliver = channel
        self._wake = asyncio.Event()
        self._sending: set[str] = set()  # notifications being delivered now (not picked up twice)
        # A read of due notifications may predate the commit of a delivery that ends while it runs: such a
        # notification is skipped by that read's round (it is read again, as it now is, by the next).
        self._reads = 0
        self._finished: dict[str, int] = {}  # notification id -> the read count when its delivery ended
        self._parallel = asyncio.Semaphore(MAX_PARALLEL_DELIVERIES)
        # Deliveries block on the network (up to the channels' timeouts): their own threads, so that a slow
        # receiver never holds the threads the pipeline and the API use.
        self._channels = ThreadPoolExecutor(MAX_PARALLEL_DELIVERIES, thread_name_prefix="deliver")
        self._tasks: set[asyncio.Task[None]] = set()
        self._silent_orgs: set[str] = set()

    def wake(self) -> None:
        """Look now (the pipeline committed an alert, or someone changed one)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.escalate_due()
                await self.send_due()
            except Exception:
                log.exception("alert dispatch round failed; trying again shortly")
            try:
                await asyncio.wait_for(self._wake.wait(), await self._sleep_s())
            except TimeoutError:
                pass
            self._wake.clear()

    async def _sleep_s(self) -> float:
        """Until the next known due time, at most a poll interval (changes made elsewhere are seen then)."""
        now = self._clock.now()
        nexts = [
            d
            for d in await asyncio.gather(
                asyncio.to_thread(self._store.next_escalation_due),
                asyncio.to_thread(self._store.next_notification_due),
            )
            if d is not None
        ]
        soonest = min(nexts, default=None)
        if soonest is None:
            return self._settings.poll_s
        return max(0.0, min(self._settings.poll_s, (soonest - now).total_seconds()))

    # Escalations ---------------------------------------------------------------------------------------
    async def escalate_due(self) -> int:
        """Send every escalation step due now; returns how many steps were written."""
        written = 0
        while True:
            now = self._clock.now()
            due = await asyncio.to_thread(self._store.due_escalations, now)
            if not due:
                return written
            for escalation in due:
                if await asyncio.to_thread(self._advance, escalation, now):
                    written += 1
            self.wake()  # new notifications: deliver them in this round

    def _advance(self, seen: DueEscalation, now: datetime) -> bool:
        if stops_escalation(seen.status):  # taken meanwhile (the change already stopped it)
            self._store.stop_escalation(seen.alert_id)
            return False
        policy = seen.policy or fallback_policy(seen.org_locale, seen.staff)
        if not seen.staff and not seen.wearer_contacts and seen.policy is None:
            if seen.org_id not in self._silent_orgs:  # once per organisation, not once per alert
                self._silent_orgs.add(seen.org_id)
                log.warning("organisation %s has no contact: its alerts reach nobody", seen.org_id)
            self._store.stop_escalation(seen.alert_id)
            return False
        due = seen.due
        if seen.position.round == 0 and seen.position.step == 0:
            # The first step's delay (and a fall's grace period) counts from the alert's opening, or from
            # its arrival if the device's clock puts the opening later (a clock ahead must not delay it).
            due = max(due, first_due(policy, seen.kind, min(seen.opened_at, seen.due)))
            if due > now:
                return self._store.advance_escalation(seen, (), None, seen.position, due, now)
        step = plan(
            policy, seen.kind, seen.position, due, now, _zone(seen.org_timezone), seen.wearer_contacts
        )
        moved = self._store.advance_escalation(
            seen, step.contacts, step.sent, step.next_position, step.next_due, now
        )
        if moved and step.contacts:
            metrics.escalation_step()
        return moved

    # Deliveries --------------------------------------------------------------------------------------
    async def send_due(self) -> int:
        """Start delivering every notification due now; returns how many were started."""
        now = self._clock.now()
        self._reads += 1
        read = self._reads
        outgoing = await asyncio.to_thread(self._store.due_notifications, now)
        started = 0
        for notification in outgoing:
            if notification.id in self._sending or self._finished.get(notification.id, -1) >= read:
                continue
            self._sending.add(notification.id)
            task = asyncio.create_task(self._send(notification))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def drain(self) -> None:
        """Wait for the deliveries in progress (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Finish the deliveries in progress and release the delivery threads (shutdown)."""
        await self.drain()
        self._channels.shutdown(wait=False)

    async def _send(self, notification: Outgoing) -> None:
        try:
            async with self._parallel:
                handed_at = self._clock.now()
                message = self._message(notification, handed_at)
                contact = notification.contact
                delivery = await asyncio.get_running_loop().run_in_executor(
                    self._channels, self._deliver, list(contact.urls), message, notification.idempotency_key
                )
                done_at = self._clock.now()
                attempts: list[dict[str, Any]] = [
                    {"at": done_at.isoformat(), "channel": a.channel, "url": a.url_redacted, "ok": a.ok,
                     "error": a.error}
                    for a in delivery.attempts
                ]  # fmt: skip
                error = None if delivery.ok else "; ".join(a.error or "failed" for a in delivery.attempts)
                next_try = None
                delays = self._settings.retry_delays_s
                if not delivery.ok and notification.tries < len(delays):
                    next_try = done_at + timedelta(seconds=delays[notification.tries])
                await asyncio.to_thread(
                    self._store.record_delivery, notification.id, handed_at, delivery.ok, delivery.channel,
                    error, attempts, next_try, done_at,
                )  # fmt: skip
                metrics.notification_tried(
                    "delivered" if delivery.ok else "retrying" if next_try is not None else "failed"
                )
                if not delivery.ok:
                    log.warning(
                        "notification %s to contact %s failed (try %d): %s",
                        notification.id, contact.id, notification.tries + 1, error,
                    )  # fmt: skip
        except Exception:
            log.exception("delivering notification %s failed unexpectedly", notification.id)
        finally:
            self._sending.discard(notification.id)
            self._finished[notification.id] = self._reads
            if len(self._finished) > 10_000:  # only deliveries that ended during the latest reads matter
                self._finished = {k: v for k, v in self._finished.items() if v >= self._reads - 1}

    def _message(self, notification: Outgoing, now: datetime) -> RenderedMessage:
        alert, contact = notification.alert, notification.contact
        ack_url = None
        signer = self._settings.signer
        if signer is not None:
            token = signer.sign(alert.id, contact.id, notification.id, now + ACK_LINK_TTL)
            ack_url = f"{self._settings.public_url.rstrip('/')}/ack/{token}"
        details = {k: v for k, v in notification.details.items() if isinstance(v, str | int | float | bool)}
        notice = AlertNotice(
            alert.id, alert.kind, notification.wearer_name, notification.org_name, notification.region,
            alert.opened_at, alert.event_count, alert.latitude, alert.longitude, notification.step + 1,
            ack_url, details,
        )  # fmt: skip
        return render(notice, contact.locale.value, contact.timezone)


def warm_channels() -> None:
    """Load Apprise and its plugins now: they load on first use (over a second here), which must not be
    while an SOS waits; and loaded before the service freezes its long-lived objects out of the garbage
    collector's reach (app.py), they stay out of every collection."""
    import apprise

    apprise.Apprise().add("json://127.0.0.1/")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")
