"""``/api/v1/alerts``: what needs a person, newest first."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.schemas import AlertOut, Page
from geosentinel.model import AlertStatus, EventKind

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
