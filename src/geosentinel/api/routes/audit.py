"""``/api/v1/audit``: who read whose positions or health data, and when (the organisation's admins)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.schemas import MAX_OFFSET, Page
from geosentinel.api.times import check_times
from geosentinel.model import Role

router = APIRouter(prefix="/audit", tags=["privacy"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str  # user:<id>
    action: str  # read
    resource: str  # positions, events, alerts, alert, alert_timeline, service_levels, stream
    wearer_ids: list[str]  # whose data the answer held
    records: int
    query: dict[str, Any]  # the request's filters


@router.get("", response_model=Page[AuditOut])
async def list_audit(
    store: StoreDep,
    caller: CallerDep,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    wearer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[AuditOut]:
    """The organisation's audit log, newest first, filtered by period, actor (``user:<id>``) or wearer."""
    if caller.user.role is not Role.ADMIN:
        raise ApiError(403, N_("only an organisation's administrators read its audit log"))
    check_times(since=since, until=until)
    entries = await asyncio.to_thread(
        store.audit_entries, caller.scope, since, until, actor, wearer_id, limit, offset
    )
    items = [AuditOut.model_validate(e, from_attributes=True) for e in entries]
    return Page(items=items, limit=limit, offset=offset)
