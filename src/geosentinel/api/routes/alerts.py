"""``/api/v1/alerts``: what needs a person, newest first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from geosentinel.alerts.feed import AlertFeed
from geosentinel.alerts.lifecycle import Action, Outcome, TransitionError
from geosentinel.alerts.service_levels import OVERDUE_AFTER, figures
from geosentinel.api.audit import audit_read
from geosentinel.api.deps import Caller, CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.schemas import (
    MAX_OFFSET,
    AlertOut,
    EventOut,
    NotificationOut,
    Page,
    ServiceFiguresOut,
    TimelineOut,
    TransitionOut,
)
from geosentinel.api.times import check_times
from geosentinel.model import Alert, AlertStatus, EventKind, Role
from geosentinel.store import Store
from geosentinel.store.alert_care import AlertNotFound
from geosentinel.store.alert_figures import facts_of

router = APIRouter(prefix="/alerts", tags=["alerts"])


def alert_out(alert: Alert, now: datetime) -> AlertOut:
    out = AlertOut.model_validate(alert)
    out.ack_overdue = alert.status is AlertStatus.OPEN and now - alert.opened_at > OVERDUE_AFTER
    return out


@router.get("", response_model=Page[AlertOut])
async def list_alerts(
    store: StoreDep,
    caller: CallerDep,
    status: AlertStatus | None = None,
    kind: EventKind | None = None,
    wearer_id: str | None = None,
    overdue: Annotated[bool, Query(description="only open alerts nobody took within 180 s")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[AlertOut]:
    now = datetime.now(UTC)
    opened_before = now - OVERDUE_AFTER if overdue else None
    if overdue:
        if status not in (None, AlertStatus.OPEN):  # only open alerts can be overdue
            return Page(items=[], limit=limit, offset=offset)
        status = AlertStatus.OPEN
    alerts = await asyncio.to_thread(
        store.alerts, caller.scope, status, kind, wearer_id, limit, offset, opened_before
    )
    await audit_read(store, caller, "alerts", (a.wearer_id for a in alerts), len(alerts), status=status,
                     kind=kind, wearer_id=wearer_id, overdue=overdue, limit=limit, offset=offset)  # fmt: skip
    return Page(items=[alert_out(a, now) for a in alerts], limit=limit, offset=offset)


@router.get("/{alert_id}", response_model=AlertOut)
async def get_alert(alert_id: str, store: StoreDep, caller: CallerDep) -> AlertOut:
    """One alert. Reading it counts as the caller having seen it (the service figures' "shown")."""
    alert = await asyncio.to_thread(store.alert, caller.scope, alert_id)
    if alert is None:
        raise ApiError(404, N_("no alert {alert_id}"), alert_id=alert_id)
    now = datetime.now(UTC)
    await asyncio.to_thread(store.record_view, caller.scope, alert_id, f"user:{caller.user.id}", now)
    await audit_read(store, caller, "alert", [alert.wearer_id], 1, alert_id=alert_id)
    return alert_out(alert, now)


@router.post("/{alert_id}/seen", status_code=204)
async def alert_seen(alert_id: str, store: StoreDep, caller: CallerDep) -> None:
    """The caller has the alert in front of them (the dashboard calls this when it shows a new alert)."""
    now = datetime.now(UTC)
    if not await asyncio.to_thread(store.record_view, caller.scope, alert_id, f"user:{caller.user.id}", now):
        raise ApiError(404, N_("no alert {alert_id}"), alert_id=alert_id)


class NoteIn(BaseModel):
    note: Annotated[str, Field(max_length=2000)] | None = None


class ResolveIn(NoteIn):
    outcome: Outcome


class ArrivalIn(NoteIn):
    at: datetime | None = None  # when they arrived, if recorded afterwards (default: now)


async def _change(
    request: Request, store: Store, caller: Caller, alert_id: str, action: Action, body: NoteIn
) -> AlertOut:
    outcome = body.outcome if isinstance(body, ResolveIn) else None
    now = datetime.now(UTC)
    at = body.at if isinstance(body, ArrivalIn) else None
    check_times(at=at)
    try:
        alert = await asyncio.to_thread(
            store.change_alert,
            caller.scope,
            alert_id,
            action,
            f"user:{caller.user.id}",
            now,
            outcome,
            body.note,
            at,
        )
    except AlertNotFound:
        raise ApiError(404, N_("no alert {alert_id}"), alert_id=alert_id) from None
    except TransitionError as exc:
        raise ApiError(409, N_("this change is not possible: {reason}"), reason=str(exc)) from None
    feed: AlertFeed = request.app.state.alert_feed
    feed.changed(alert, action)  # committed: the event streams are told
    dispatcher = request.app.state.dispatcher
    if dispatcher is not None:
        dispatcher.wake()  # a reopened alert escalates at once
    return alert_out(alert, now)


def _may_close(caller: Caller) -> None:
    if caller.user.role is Role.FAMILY:
        raise ApiError(403, N_("family members can acknowledge alerts, not resolve or reopen them"))


@router.post("/{alert_id}/acknowledge", response_model=AlertOut)
async def acknowledge_alert(
    alert_id: str, request: Request, store: StoreDep, caller: CallerDep, body: NoteIn | None = None
) -> AlertOut:
    """Take the alert: escalation stops. Anyone who may see the alert may take it (family included)."""
    return await _change(request, store, caller, alert_id, Action.ACKNOWLEDGE, body or NoteIn())


@router.post("/{alert_id}/resolve", response_model=AlertOut)
async def resolve_alert(
    alert_id: str, body: ResolveIn, request: Request, store: StoreDep, caller: CallerDep
) -> AlertOut:
    """Close the alert with its outcome (false alarm, reassured by phone, assistance at home, emergency
    services, other) and a note."""
    _may_close(caller)
    return await _change(request, store, caller, alert_id, Action.RESOLVE, body)


@router.post("/{alert_id}/reopen", response_model=AlertOut)
async def reopen_alert(
    alert_id: str, request: Request, store: StoreDep, caller: CallerDep, body: NoteIn | None = None
) -> AlertOut:
    """Open a resolved or acknowledged alert again: escalation starts again from its first step."""
    _may_close(caller)
    return await _change(request, store, caller, alert_id, Action.REOPEN, body or NoteIn())


@router.post("/{alert_id}/arrival", response_model=AlertOut)
async def record_arrival(
    alert_id: str, request: Request, store: StoreDep, caller: CallerDep, body: ArrivalIn | None = None
) -> AlertOut:
    """Someone reached the wearer (``at``: when, if recorded afterwards). An open alert is thereby taken;
    an acknowledged or resolved one keeps its status."""
    return await _change(request, store, caller, alert_id, Action.ARRIVE, body or ArrivalIn())


@router.get("/{alert_id}/timeline", response_model=TimelineOut)
async def alert_timeline(alert_id: str, store: StoreDep, caller: CallerDep) -> TimelineOut:
    """Everything about one alert, in time order: its events, every status change (who, when, note),
    every notification with its delivery status, and its service figures (seconds from reception to
    shown, taken, arrival on site and resolution). Reading it counts as the caller having seen it."""
    now = datetime.now(UTC)
    # The view first, so that the figures below count it when it is the first.
    if not await asyncio.to_thread(store.record_view, caller.scope, alert_id, f"user:{caller.user.id}", now):
        raise ApiError(404, N_("no alert {alert_id}"), alert_id=alert_id)
    timeline = await asyncio.to_thread(store.alert_timeline, caller.scope, alert_id)
    if timeline is None:  # erased meanwhile
        raise ApiError(404, N_("no alert {alert_id}"), alert_id=alert_id)
    await audit_read(store, caller, "alert_timeline", [timeline.alert.wearer_id], 1, alert_id=alert_id)
    fact = facts_of(timeline)
    numbers = figures(fact, now)
    service = ServiceFiguresOut(
        received_at=fact.received_at, to_shown_s=numbers.to_shown_s, to_taken_s=numbers.to_taken_s,
        taken_by=fact.taken_by, to_arrival_s=numbers.to_arrival_s, to_resolved_s=numbers.to_resolved_s,
        outcome=fact.outcome, contact_attempts=fact.contact_attempts,
        failed_attempts=fact.failed_attempts, overdue=numbers.overdue,
    )  # fmt: skip
    return TimelineOut(
        alert=alert_out(timeline.alert, now),
        events=[EventOut.model_validate(e) for e in timeline.events],
        transitions=[TransitionOut.model_validate(t) for t in timeline.transitions],
        notifications=[NotificationOut.model_validate(n) for n in timeline.notifications],
        service=service,
    )
