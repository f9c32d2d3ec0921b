"""Simulated people on the other side: the caregivers and contacts who take, reach and resolve alerts.

A service-level report needs people who answer. This model is a stated assumption, not a measurement:
social-alarm centres report answering most calls within a minute, slower at night; some calls wait
because everyone is busy; low-priority alerts (battery, a device offline) are dealt with in office hours.
Every figure below can be changed; the report over a simulated week (docs/service-levels.md) says which
were used.

- A critical or high alert is *taken* after a log-normal delay (median 35 s by day, 75 s at night,
  22:00-07:00), and 2 % of them wait 5-20 minutes (everyone busy): the report must show those.
- Taken in the dashboard by the caregiver on duty (who saw it a few seconds after it arrived) 70 % of
  the time; otherwise by a contact through the link in the message they received.
- Outcomes by kind (``OUTCOMES``); for assistance at home or the emergency services someone arrives
  10-25 minutes after taking it; the alert is resolved a few minutes after that, or after the call.
- Low-severity alerts are taken after 10-90 minutes by day, and at 08:00-09:00 if they arrive at night.

Everything runs on the simulation's clock, through the store's public operations (the same as the API).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from geosentinel.alerts.lifecycle import Action, Outcome, TransitionError
from geosentinel.alerts.policy import DEFAULT_SEVERITY
from geosentinel.model import Alert, AlertStatus, EventKind
from geosentinel.store import Scope, Store
from geosentinel.store.alert_care import AlertNotFound

OUTCOMES: Final[dict[EventKind, list[tuple[Outcome, float]]]] = {
    EventKind.SOS: [(Outcome.FALSE_ALARM, 0.55), (Outcome.REASSURED_BY_PHONE, 0.28),
                    (Outcome.ASSISTANCE_AT_HOME, 0.14), (Outcome.EMERGENCY_SERVICES, 0.03)],
    EventKind.FALL: [(Outcome.FALSE_ALARM, 0.35), (Outcome.REASSURED_BY_PHONE, 0.30),
                     (Outcome.ASSISTANCE_AT_HOME, 0.25), (Outcome.EMERGENCY_SERVICES, 0.10)],
    EventKind.GEOFENCE_EXIT: [(Outcome.REASSURED_BY_PHONE, 0.45), (Outcome.ASSISTANCE_AT_HOME, 0.50),
                              (Outcome.EMERGENCY_SERVICES, 0.05)],
}  # fmt: skip
OTHER_OUTCOMES: Final = [(Outcome.REASSURED_BY_PHONE, 0.6), (Outcome.OTHER, 0.3), (Outcome.FALSE_ALARM, 0.1)]
GOING: Final = frozenset({Outcome.ASSISTANCE_AT_HOME, Outcome.EMERGENCY_SERVICES})


@dataclass(frozen=True, slots=True)
class CaregiverModel:
    median_take_day_s: float = 35.0
    median_take_night_s: float = 75.0
    sigma: float = 0.8  # of the log-normal delay
    busy_share: float = 0.02  # alerts that wait 5-20 minutes
    dashboard_share: float = 0.7  # taken in the dashboard (else through a contact's link)
    night_start_hour: int = 22
    night_end_hour: int = 7


@dataclass(order=True)
class _Action:
    at: datetime
    alert_id: str = field(compare=False)
    action: Action = field(compare=False)
    actor: str = field(compare=False)
    outcome: Outcome | None = field(compare=False, default=None)
    view: bool = field(compare=False, default=False)  # a dashboard view, not a status change


class Caregivers:
    def __init__(
        self,
        store: Store,
        scope: Scope,
        zone: ZoneInfo,
        seed: int,
        contacts: dict[str, list[str]],  # wearer id -> own contact ids
        model: CaregiverModel | None = None,
    ) -> None:
        self._store = store
        self._scope = scope
        self._zone = zone
        self._rng = random.Random(f"caregivers:{seed}")
        self._contacts = contacts
        self._model = model or CaregiverModel()
        self._pending: dict[str, int] = {}  # alert id -> actions still to do
        self._queue: list[_Action] = []
        self.changes = 0

    def step(self, now: datetime) -> None:
        """Plan what people do about alerts opened since the last step, then do what is due by ``now``."""
        for alert in self._new_alerts():
            self._plan(alert)
        self._queue.sort()
        while self._queue and self._queue[0].at <= now:
            self._do(self._queue.pop(0))

    def _new_alerts(self) -> list[Alert]:
        fresh = []
        offset = 0
        while True:
            page = self._store.alerts(self._scope, AlertStatus.OPEN, limit=500, offset=offset)
            # An open alert with nothing planned: new, or reopened (a new press while someone had it).
            fresh += [a for a in page if not self._pending.get(a.id)]
            if len(page) < 500:
                return fresh
            offset += len(page)

    def _plan(self, alert: Alert) -> None:
        rng, model = self._rng, self._model
        received = max(alert.opened_at, alert.last_event_at)  # a reopened alert: from the new press
        local = received.astimezone(self._zone)
        night = local.hour >= model.night_start_hour or local.hour < model.night_end_hour
        if DEFAULT_SEVERITY.get(alert.kind, "high") == "low":
            if night:
                morning = local.replace(hour=8, minute=0, second=0, microsecond=0)
                if local.hour >= model.night_start_hour:
                    morning += timedelta(days=1)
                delay = (morning - local).total_seconds() + rng.uniform(0, 3600)
            else:
                delay = rng.uniform(600, 5400)
        elif rng.random() < model.busy_share:
            delay = rng.uniform(300, 1200)
        else:
            median = model.median_take_night_s if night else model.median_take_day_s
            delay = rng.lognormvariate(math.log(median), model.sigma)
        taken = received + timedelta(seconds=delay)
        own = self._contacts.get(alert.wearer_id, [])
        if rng.random() < model.dashboard_share or not own:
            actor = "user:sim-caregiver"
            seen = received + timedelta(seconds=min(rng.uniform(1, 8), delay * 0.8))
            self._queue.append(_Action(seen, alert.id, Action.ACKNOWLEDGE, actor, view=True))
        else:
            actor = f"contact:{own[0]}"  # contact 1 is told first; they answer once they have the message
        self._queue.append(_Action(taken, alert.id, Action.ACKNOWLEDGE, actor))
        outcome = _pick(rng, OUTCOMES.get(alert.kind, OTHER_OUTCOMES))
        done = taken + timedelta(seconds=rng.uniform(60, 600))
        if outcome in GOING:
            arrival = taken + timedelta(seconds=rng.uniform(600, 1500))
            self._queue.append(_Action(arrival, alert.id, Action.ARRIVE, actor))
            done = arrival + timedelta(seconds=rng.uniform(300, 1800))
        self._queue.append(_Action(done, alert.id, Action.RESOLVE, actor, outcome))
        self._pending[alert.id] = sum(1 for a in self._queue if a.alert_id == alert.id)

    def _do(self, todo: _Action) -> None:
        if todo.actor.startswith("contact:") and todo.action is Action.ACKNOWLEDGE and not self._told(todo):
            # Not told yet (a fall's grace period, a later step): they take it a little after the message.
            self._queue.append(
                _Action(todo.at + timedelta(seconds=20), todo.alert_id, todo.action, todo.actor)
            )
            for later in self._queue:  # what they do after taking it moves as much
                if later.alert_id == todo.alert_id and later.at > todo.at:
                    later.at += timedelta(seconds=20)
            return
        self._pending[todo.alert_id] -= 1
        if todo.view:
            self._store.record_view(self._scope, todo.alert_id, todo.actor, todo.at)
            return
        try:
            self._store.change_alert(
                self._scope, todo.alert_id, todo.action, todo.actor, todo.at, todo.outcome
            )
            self.changes += 1
        except (TransitionError, AlertNotFound):
            pass  # closed meanwhile (a device back online, a wearer's cancel): nothing left to do

    def _told(self, todo: _Action) -> bool:
        timeline = self._store.alert_timeline(self._scope, todo.alert_id)
        if timeline is None or timeline.alert.status is not AlertStatus.OPEN:
            return True  # closed or taken meanwhile: let the change say so
        contact_id = todo.actor.removeprefix("contact:")
        return any(
            n.contact_id == contact_id and n.delivered_at is not None and n.delivered_at <= todo.at
            for n in timeline.notifications
        )


def _pick(rng: random.Random, choices: list[tuple[Outcome, float]]) -> Outcome:
    draw = rng.random() * sum(weight for _, weight in choices)
    for outcome, weight in choices:
        draw -= weight
        if draw <= 0:
            return outcome
    return choices[-1][0]
