"""``/api/v1/wearers``: the people, and where they have been."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.schemas import Page, PositionOut, WearerOut

router = APIRouter(prefix="/wearers", tags=["wearers"])


@router.get("", response_model=Page[WearerOut])
async def list_wearers(store: StoreDep, caller: CallerDep) -> Page[WearerOut]:
    wearers = await asyncio.to_thread(store.wearers, caller.scope)
    return Page(items=[WearerOut.model_validate(w) for w in wearers], limit=len(wearers), offset=0)


@router.get("/{wearer_id}", response_model=WearerOut)
async def get_wearer(wearer_id: str, store: StoreDep, caller: CallerDep) -> WearerOut:
    wearer = await asyncio.to_thread(store.wearer, caller.scope, wearer_id)
    if wearer is None:
        raise HTTPException(404, f"no wearer {wearer_id}")
    return WearerOut.model_validate(wearer)


@router.get("/{wearer_id}/positions", response_model=list[PositionOut])
async def list_positions(
    wearer_id: str,
    store: StoreDep,
    caller: CallerDep,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    include_rejected: bool = False,
) -> list[PositionOut]:
    """Stored fixes, newest first. Fixes rejected by the bad-fix filter only on request."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(400, f"'{name}' needs a time zone (e.g. 2026-05-01T08:00:00Z)")
    if await asyncio.to_thread(store.wearer, caller.scope, wearer_id) is None:
        raise HTTPException(404, f"no wearer {wearer_id}")
    positions = await asyncio.to_thread(
        store.positions, caller.scope, wearer_id, since, until, limit, include_rejected
    )
    return [PositionOut.model_validate(p) for p in positions]
