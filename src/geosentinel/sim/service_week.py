"""Simulated days with people answering: the alert dispatcher and simulated caregivers on the simulation's
clock, then the organisation's service-level report (``geosentinel simulate-days --caregivers``).

Each wearer gets two contacts of their own (the French charter's contact 1 and 2) and the organisation a
control room ("Centrale", its staff); with no policy set, the French organisation follows the charter
(:mod:`geosentinel.alerts.templates`). Notifications go to a recording channel (nothing leaves the
machine) and count as delivered when handed over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from geosentinel.alerts import service_levels
from geosentinel.alerts.dispatch import AlertDispatcher, DispatchSettings
from geosentinel.model import Locale
from geosentinel.notify.channels import ChannelAttempt, Delivery
from geosentinel.notify.messages import RenderedMessage
from geosentinel.sim.accelerated import TIMEZONE, DaysResult, SteppedClock, run_days
from geosentinel.sim.caregivers import Caregivers
from geosentinel.store import Scope, Store


@dataclass(frozen=True, slots=True)
class ServiceWeek:
    days: DaysResult
    report: service_levels.Report
    notifications: int
    caregiver_changes: int


@dataclass(frozen=True, slots=True)
class _People:
    """Who answers in the simulation: the organisation's dispatcher and its caregivers."""

    scope: Scope
    dispatcher: AlertDispatcher
    caregivers: Caregivers


class _Recorder:
    def __init__(self) -> None:
        self.handed = 0

    def __call__(self, urls: list[str], message: RenderedMessage, key: str) -> Delivery:
        self.handed += 1
        return Delivery(True, 0, (ChannelAttempt(0, urls[0], True),))


def _contacts(store: Store, org_id: str, now: datetime) -> dict[str, list[str]]:
    scope = Scope(org_id)
    store.create_contact(org_id, "Centrale", Locale.FR, TIMEZONE, ["json://127.0.0.1:9/centrale"], now)
    own: dict[str, list[str]] = {}
    for wearer in store.wearers(scope):
        ids = [
            store.create_contact(org_id, f"{label} of {wearer.name}", Locale.FR, TIMEZONE,
                                 [f"json://127.0.0.1:9/{wearer.id}/{label}"], now).id
            for label in ("Contact 1", "Contact 2")
        ]  # fmt: skip
        store.set_wearer_contacts(scope, wearer.id, ids)
        own[wearer.id] = ids
    return own


async def run_service_week(
    store: Store,
    wearers: int,
    days: float,
    seed: int = 1,
    progress: Callable[[float], None] | None = None,
) -> ServiceWeek:
    recorder = _Recorder()
    people: list[_People] = []  # set once the simulation has made its organisation

    async def on_start(org_id: str, clock: SteppedClock) -> None:
        own = await asyncio.to_thread(_contacts, store, org_id, clock.now())
        dispatcher = AlertDispatcher(store, clock, DispatchSettings("https://demo.invalid", None), recorder)
        caregivers = Caregivers(store, Scope(org_id), ZoneInfo(TIMEZONE), seed, own)
        people.append(_People(Scope(org_id), dispatcher, caregivers))

    async def on_step(now: datetime) -> None:
        await people[0].dispatcher.escalate_due()
        await people[0].dispatcher.send_due()
        await people[0].dispatcher.drain()
        await asyncio.to_thread(people[0].caregivers.step, now)

    result = await run_days(store, wearers, days, seed, progress=progress, on_start=on_start, on_step=on_step)
    scope, caregivers = people[0].scope, people[0].caregivers
    facts = await asyncio.to_thread(store.alert_facts, scope, result.start, result.end)
    report = service_levels.report(facts, result.start, result.end, result.end, ZoneInfo(TIMEZONE))
    return ServiceWeek(result, report, recorder.handed, caregivers.changes)
