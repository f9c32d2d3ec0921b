"""The dispatch loop on a real store with a fake clock: steps at their times, exactly once, retries with
back-off then given up, nothing for a taken alert. The channel here records what it is handed (the real
channels are tested on loopback receivers in tests/notify and tests/e2e)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geosentinel.alerts.dispatch import AlertDispatcher, DispatchSettings
from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.alerts.lifecycle import Action
from geosentinel.alerts.policy import Policy, Step
from geosentinel.model import Event, EventKind, Locale, Region
from geosentinel.notify.ack_links import AckSigner
from geosentinel.notify.channels import ChannelAttempt, Delivery
from geosentinel.notify.messages import RenderedMessage
from geosentinel.store import Scope, Store
from geosentinel.store.base import IngestBatch
from geosentinel.testing import FakeClock

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
SIGNER = AckSigner(b"k" * 32)


class Channel:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[datetime, str, RenderedMessage, str]] = []
        self.failures = failures
        self.clock: FakeClock | None = None

    def __call__(self, urls: list[str], message: RenderedMessage, key: str) -> Delivery:
        assert self.clock is not None
        if self.failures:
            self.failures -= 1
            return Delivery(False, None, (ChannelAttempt(0, urls[0], False, "connection refused"),))
        self.sent.append((self.clock.now(), urls[0], message, key))
        return Delivery(True, 0, (ChannelAttempt(0, urls[0], True),))


def _setup(store: Store, steps: list[tuple[str, int]]) -> tuple[Scope, str]:
    org = store.create_org("Care", Region.EU, "Europe/Paris", Locale.FR)
    wearer = store.create_wearer(org.id, "Jeanne")
    device = store.create_device(org.id, wearer.id, "uid-1", "osmand")
    ids = {name: store.create_contact(org.id, name, Locale.FR, "Europe/Paris", [f"json://h/{name}"], T0).id
           for name, _ in steps}  # fmt: skip
    policy = Policy([Step([ids[name]], delay) for name, delay in steps], repeat_after_s=None)
    store.create_policy(org.id, "Default", policy, True, T0)
    sos = Event(org.id, wearer.id, device.id, EventKind.SOS, T0, T0, 43.3, 5.37)
    store.ingest_now(IngestBatch([], [sos], [], OPENS_ALERT))
    return Scope(org.id), store.alerts(Scope(org.id))[0].id


async def _round(dispatcher: AlertDispatcher) -> None:
    await dispatcher.escalate_due()
    await dispatcher.send_due()
    await dispatcher.drain()


@pytest.mark.anyio
async def test_steps_go_out_once_each_at_their_time_in_the_contacts_language(store: Store) -> None:
    _setup(store, [("nurse", 0), ("family", 300)])
    clock, channel = FakeClock(T0), Channel()
    channel.clock = clock
    dispatcher = AlertDispatcher(store, clock, DispatchSettings("https://gs.example", SIGNER), channel)
    await _round(dispatcher)
    await _round(dispatcher)  # nothing new: the nurse was told once
    assert [(t, url) for t, url, _, _ in channel.sent] == [(T0, "json://h/nurse")]
    assert "https://gs.example/ack/" in channel.sent[0][2].body and "SOS" in channel.sent[0][2].title
    clock.advance(timedelta(seconds=299))
    await _round(dispatcher)
    assert len(channel.sent) == 1
    clock.advance(timedelta(seconds=1))
    await _round(dispatcher)
    assert [url for _, url, _, _ in channel.sent] == ["json://h/nurse", "json://h/family"]


@pytest.mark.anyio
async def test_a_taken_alert_escalates_no_further(store: Store) -> None:
    scope, alert_id = _setup(store, [("nurse", 0), ("family", 60)])
    clock, channel = FakeClock(T0), Channel()
    channel.clock = clock
    dispatcher = AlertDispatcher(store, clock, DispatchSettings("https://gs.example", None), channel)
    await _round(dispatcher)
    store.change_alert(scope, alert_id, Action.ACKNOWLEDGE, "user:u", T0 + timedelta(seconds=30))
    clock.advance(timedelta(minutes=10))
    await _round(dispatcher)
    assert [url for _, url, _, _ in channel.sent] == ["json://h/nurse"]
    assert "/ack/" not in channel.sent[0][2].body  # no secret: no link


@pytest.mark.anyio
async def test_failures_are_retried_with_back_off_then_given_up(store: Store) -> None:
    scope, alert_id = _setup(store, [("nurse", 0)])
    clock, channel = FakeClock(T0), Channel(failures=10)
    channel.clock = clock
    settings = DispatchSettings("https://gs.example", None, retry_delays_s=(5, 15))
    dispatcher = AlertDispatcher(store, clock, settings, channel)
    tries = []
    for seconds in (0, 4, 5, 19, 20, 3600):
        clock.advance(timedelta(seconds=seconds) - (clock.now() - T0))
        await _round(dispatcher)
        timeline = store.alert_timeline(scope, alert_id)
        assert timeline is not None
        (notification,) = timeline.notifications
        tries.append((seconds, notification.tries, notification.status))
    assert tries == [
        (0, 1, "retrying"), (4, 1, "retrying"), (5, 2, "retrying"), (19, 2, "retrying"), (20, 3, "failed"),
        (3600, 3, "failed"),
    ]  # fmt: skip
    assert notification.last_error == "connection refused" and channel.sent == []
