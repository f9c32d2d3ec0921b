"""Timelines of the French charter policy, the fall grace period and the wearer's cancel, on a real store
with a fake clock: every attempt at its time, stop on acknowledgement, the emergency step when nobody
answers (docs/service-levels.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from geosentinel.alerts import templates
from geosentinel.alerts.dispatch import AlertDispatcher, DispatchSettings
from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.alerts.lifecycle import Action, Outcome
from geosentinel.model import AlertStatus, Event, EventKind, Locale, Region
from geosentinel.notify.channels import ChannelAttempt, Delivery
from geosentinel.notify.messages import RenderedMessage
from geosentinel.store import Scope, Store
from geosentinel.store.alert_figures import facts_of
from geosentinel.store.base import IngestBatch
from geosentinel.testing import FakeClock

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


class Recorder:
    """A channel that records who was told when (seconds after T0)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[int, str]] = []

    def __call__(self, urls: list[str], message: RenderedMessage, key: str) -> Delivery:
        self.sent.append((int((self.clock.now() - T0).total_seconds()), urls[0].rsplit("/", 1)[1]))
        return Delivery(True, 0, (ChannelAttempt(0, urls[0], True),))


@dataclass
class Setup:
    store: Store
    scope: Scope
    wearer_id: str
    device_id: str
    ids: dict[str, str]  # contact name -> id
    clock: FakeClock
    channel: Recorder
    dispatcher: AlertDispatcher

    def send(self, kind: EventKind, at: datetime = T0) -> None:
        event = Event(self.scope.org_id, self.wearer_id, self.device_id, kind, at, at, 43.53, 5.45)
        self.store.ingest_now(IngestBatch([], [event], [], OPENS_ALERT))

    def open(self, kind: EventKind, at: datetime = T0) -> str:
        self.send(kind, at)
        return next(a.id for a in self.store.alerts(self.scope) if a.kind is kind)

    async def run_until(self, seconds: int, step_s: int = 5) -> list[tuple[int, str]]:
        """Let the service run (a round every ``step_s``) until T0 + ``seconds``."""
        while True:
            await self.dispatcher.escalate_due()
            await self.dispatcher.send_due()
            await self.dispatcher.drain()
            if self.clock.now() >= T0 + timedelta(seconds=seconds):
                return self.channel.sent
            self.clock.advance(timedelta(seconds=step_s))


def _setup(store: Store, locale: Locale = Locale.FR, own: tuple[str, ...] = ("anne", "bruno")) -> Setup:
    org = store.create_org("Téléassistance Aix", Region.EU, "Europe/Paris", locale)
    scope = Scope(org.id)
    wearer = store.create_wearer(org.id, "Jeanne")
    other = store.create_wearer(org.id, "Paul")
    device = store.create_device(org.id, wearer.id, "uid-1", "watch")
    ids = {
        name: store.create_contact(org.id, name, Locale.FR, "Europe/Paris", [f"json://h/{name}"], T0).id
        for name in ("anne", "bruno", "centrale", "pauls-son")
    }
    assert store.set_wearer_contacts(scope, wearer.id, [ids[n] for n in own])
    assert store.set_wearer_contacts(scope, other.id, [ids["pauls-son"]])
    clock = FakeClock(T0)
    channel = Recorder(clock)
    dispatcher = AlertDispatcher(store, clock, DispatchSettings("https://gs.example", None), channel)
    return Setup(store, scope, wearer.id, device.id, ids, clock, channel, dispatcher)


@pytest.mark.anyio
async def test_the_charter_calls_contact_1_twice_contact_2_twice_then_the_emergency_step(
    store: Store,
) -> None:
    s = _setup(store)
    policy = templates.fr_charter([s.ids["centrale"]], attempt_gap_s=60)
    store.create_policy(s.scope.org_id, "Charte", policy, True, T0)
    s.open(EventKind.SOS)
    assert await s.run_until(540) == [
        (0, "anne"), (60, "anne"), (120, "bruno"), (180, "bruno"), (240, "centrale"),
        (540, "anne"),  # nobody answered: the sequence again 5 minutes after the emergency step
    ]  # fmt: skip


@pytest.mark.anyio
async def test_the_charter_stops_when_someone_acknowledges(store: Store) -> None:
    s = _setup(store)
    store.create_policy(s.scope.org_id, "Charte", templates.fr_charter([s.ids["centrale"]], 60), True, T0)
    alert_id = s.open(EventKind.SOS)
    await s.run_until(130)
    store.change_alert(s.scope, alert_id, Action.ACKNOWLEDGE, "contact:bruno", s.clock.now())
    assert await s.run_until(1800) == [(0, "anne"), (60, "anne"), (120, "bruno")]


@pytest.mark.anyio
async def test_without_a_second_contact_the_emergency_step_comes_sooner(store: Store) -> None:
    s = _setup(store, own=("anne",))
    store.create_policy(s.scope.org_id, "Charte", templates.fr_charter([s.ids["centrale"]], 60), True, T0)
    s.open(EventKind.SOS)
    assert await s.run_until(300) == [(0, "anne"), (60, "anne"), (120, "centrale")]


@pytest.mark.anyio
async def test_a_french_organisation_without_a_policy_follows_the_charter_with_its_staff(
    store: Store,
) -> None:
    s = _setup(store)  # no policy at all; "centrale" is nobody's own contact: the staff
    s.open(EventKind.SOS)
    assert await s.run_until(240) == [
        (0, "anne"),
        (60, "anne"),
        (120, "bruno"),
        (180, "bruno"),
        (240, "centrale"),
    ]


@pytest.mark.anyio
async def test_other_organisations_tell_the_wearers_own_contacts_and_staff_never_another_wearers(
    store: Store,
) -> None:
    s = _setup(store, locale=Locale.EN)
    s.open(EventKind.SOS)
    sent = await s.run_until(60)
    assert sorted(name for _, name in sent) == ["anne", "bruno", "centrale"]  # not Paul's son
    assert {t for t, _ in sent} == {0}


@pytest.mark.anyio
async def test_a_fall_waits_its_grace_period_an_sos_never_does(store: Store) -> None:
    s = _setup(store)
    store.create_policy(s.scope.org_id, "Charte", templates.fr_charter([s.ids["centrale"]], 60), True, T0)
    s.open(EventKind.FALL)
    s.open(EventKind.SOS, T0 + timedelta(seconds=10))
    sent = await s.run_until(125)
    # The SOS at once (t=10) and 60 s later; the fall at 60 s (grace), then its second attempt at 120 s.
    assert sent == [(10, "anne"), (60, "anne"), (70, "anne"), (120, "anne")]


@pytest.mark.anyio
async def test_the_wearer_cancels_a_fall_within_its_grace_period(store: Store) -> None:
    s = _setup(store)
    alert_id = s.open(EventKind.FALL)
    await s.run_until(20)
    s.send(EventKind.CANCELLED, T0 + timedelta(seconds=20))
    assert await s.run_until(600) == []
    alert = store.alert(s.scope, alert_id)
    assert alert is not None and alert.status is AlertStatus.RESOLVED
    timeline = store.alert_timeline(s.scope, alert_id)
    assert timeline is not None
    last = timeline.transitions[-1]
    assert (last.action, last.actor, last.outcome) == ("cancel", f"device:{s.device_id}", "false_alarm")
    assert [e.kind for e in timeline.events] == [EventKind.FALL, EventKind.CANCELLED]


@pytest.mark.anyio
async def test_a_cancel_after_the_first_contact_was_told_is_shown_but_does_not_stop_anything(
    store: Store,
) -> None:
    s = _setup(store)
    alert_id = s.open(EventKind.FALL)
    await s.run_until(65)
    s.send(EventKind.CANCELLED, T0 + timedelta(seconds=65))
    assert await s.run_until(120) == [(60, "anne"), (120, "anne")]  # escalation goes on
    timeline = store.alert_timeline(s.scope, alert_id)
    assert timeline is not None and timeline.alert.status is AlertStatus.OPEN
    assert EventKind.CANCELLED in [e.kind for e in timeline.events]


@pytest.mark.anyio
async def test_a_caregiver_taking_a_fall_during_its_grace_period_means_nobody_is_called(store: Store) -> None:
    s = _setup(store)
    alert_id = s.open(EventKind.FALL)
    await s.run_until(30)
    store.change_alert(s.scope, alert_id, Action.ACKNOWLEDGE, "user:u", s.clock.now())
    assert await s.run_until(600) == []


@pytest.mark.anyio
async def test_a_policy_can_shorten_or_remove_the_grace_period(store: Store) -> None:
    s = _setup(store)
    policy = templates.fr_charter([s.ids["centrale"]], 60)
    store.create_policy(s.scope.org_id, "No wait", msgspec.structs.replace(policy, fall_grace_s=0), True, T0)
    s.open(EventKind.FALL)
    assert (await s.run_until(0))[:1] == [(0, "anne")]


def test_a_report_that_raises_and_cancels_a_fall_leaves_it_closed(store: Store) -> None:
    s = _setup(store)
    events = [
        Event(s.scope.org_id, s.wearer_id, s.device_id, kind, T0, T0, 43.53, 5.45)
        for kind in (EventKind.FALL, EventKind.CANCELLED)  # the alarms detector puts a cancel last
    ]
    store.ingest_now(IngestBatch([], events, [], OPENS_ALERT))
    (alert,) = store.alerts(s.scope)
    assert alert.kind is EventKind.FALL and alert.status is AlertStatus.RESOLVED


@pytest.mark.anyio
async def test_a_timelines_figures_are_the_reports_figures(store: Store) -> None:
    """The timeline route derives an alert's figures from the timeline it loaded (store/alert_figures.py
    ``facts_of``); the report queries them (``alert_facts``): both must tell the same story."""
    s = _setup(store)
    store.create_policy(s.scope.org_id, "Charte", templates.fr_charter([s.ids["centrale"]], 60), True, T0)
    taken = s.open(EventKind.SOS)
    fall = s.open(EventKind.FALL, T0 + timedelta(seconds=5))
    await s.run_until(130)
    store.record_view(s.scope, taken, "user:ana", T0 + timedelta(seconds=20))
    store.change_alert(s.scope, taken, Action.ACKNOWLEDGE, "contact:bruno", T0 + timedelta(seconds=125))
    store.change_alert(s.scope, taken, Action.ARRIVE, "user:ana", T0 + timedelta(seconds=900))
    store.change_alert(s.scope, taken, Action.RESOLVE, "user:ana", T0 + timedelta(seconds=1000),
                       Outcome.ASSISTANCE_AT_HOME)  # fmt: skip
    store.change_alert(s.scope, fall, Action.RESOLVE, "system", T0 + timedelta(seconds=300), Outcome.OTHER)
    reported = {f.alert_id: f for f in store.alert_facts(s.scope, T0, T0 + timedelta(hours=1))}
    for alert_id in (taken, fall):
        timeline = store.alert_timeline(s.scope, alert_id)
        assert timeline is not None
        assert facts_of(timeline) == reported[alert_id]
    assert reported[taken].taken_by == "contact:bruno" and reported[taken].contact_attempts >= 3
    assert reported[fall].taken_at is None and reported[fall].closed_without_person
