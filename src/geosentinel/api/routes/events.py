"""``/api/v1/events``: what the detectors concluded, newest first."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from geosentinel.api.audit import audit_read
from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.schemas import MAX_OFFSET, EventOut, Page

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", response_model=Page[EventOut])
async def list_events(
    store: StoreDep,
    caller: CallerDep,
    wearer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[EventOut]:
    events = await asyncio.to_thread(store.events, caller.scope, wearer_id, limit, offset)
    await audit_read(store, caller, "events", (e.wearer_id for e in events), len(events), wearer_id=wearer_id,
                     limit=limit, offset=offset)  # fmt: skip
    return Page(items=[EventOut.model_validate(e) for e in events], limit=limit, offset=offset)
