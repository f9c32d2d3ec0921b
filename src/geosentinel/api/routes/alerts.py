"""``/api/v1/alerts``: what needs a person, newest first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from geosentinel.alerts.lifecycle import Action, Outcome, TransitionError
from geosentinel.api.deps import Caller, CallerDep, StoreDep
from geosentinel.api.schemas import AlertOut, EventOut, NotificationOut, Page, TimelineOut, TransitionOut
from geosentinel.model import AlertStatus, EventKind, Role
from geosentinel.store import Store
from geosentinel.store.alert_care import AlertNotFound

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", response_model=Page[AlertOut])
async def list_alerts(
    store: StoreDep,
    caller: CallerDep,
    status: AlertStatus | None = None,
    kind: EventKind | None = None,
    wearer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AlertOut]:
    alerts = await asyncio.to_thread(store.alerts, caller.scope, status, kind, wearer_id, limit, offset)
    return Page(items=[AlertOut.model_validate(a) for a in alerts], limit=limit, offset=offset)


@router.get("/{alert_id}", response_model=AlertOut)
async def get_alert(alert_id: str, store: StoreDep, caller: CallerDep) -> AlertOut:
    alert = await asyncio.to_thread(store.alert, caller.scope, alert_id)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return AlertOut.model_validate(alert)


class NoteIn(BaseModel):
    note: Annotated[str, Field(max_length=2000)] | None = None


class ResolveIn(NoteIn):
    outcome: Outcome


async def _change(
    request: Request, store: Store, caller: Caller, alert_id: str, action: Action, body: NoteIn
) -> AlertOut:
    outcome = body.outcome if isinstance(body, ResolveIn) else None
    now = datetime.now(UTC)
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
        )
    except AlertNotFound:
        raise HTTPException(404, f"no alert {alert_id}") from None
    except TransitionError as exc:
        raise HTTPException(409, str(exc)) from None
    dispatcher = request.app.state.dispatcher
    if dispatcher is not None:
        dispatcher.wake()  # a reopened alert escalates at once
    return AlertOut.model_validate(alert)


def _may_close(caller: Caller) -> None:
    if caller.user.role is Role.FAMILY:
        raise HTTPException(403, "family members can acknowledge alerts, not resolve or reopen them")


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


@router.get("/{alert_id}/timeline", response_model=TimelineOut)
async def alert_timeline(alert_id: str, store: StoreDep, caller: CallerDep) -> TimelineOut:
    """Everything about one alert, in time order: its events, every status change (who, when, note) and
    every notification with its delivery status."""
    timeline = await asyncio.to_thread(store.alert_timeline, caller.scope, alert_id)
    if timeline is None:
        raise HTTPException(404, f"no alert {alert_id}")
    return TimelineOut(
        alert=AlertOut.model_validate(timeline.alert),
        events=[EventOut.model_validate(e) for e in timeline.events],
        transitions=[TransitionOut.model_validate(t) for t in timeline.transitions],
        notifications=[NotificationOut.model_validate(n) for n in timeline.notifications],
    )
