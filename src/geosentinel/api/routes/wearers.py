"""``/api/v1/wearers``: the people, and where they have been."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, Field

from geosentinel.api.audit import audit_read
from geosentinel.api.deps import Caller, CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.api.position_export import MEDIA_TYPES, to_csv, to_geojson, to_gpx
from geosentinel.api.schemas import MAX_OFFSET, Page, PositionOut, WearerOut
from geosentinel.api.times import check_times
from geosentinel.detect.base import profile_from_settings, profile_settings, validate_settings
from geosentinel.model import Role

router = APIRouter(prefix="/wearers", tags=["wearers"])


@router.get("", response_model=Page[WearerOut])
async def list_wearers(
    store: StoreDep, caller: CallerDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> Page[WearerOut]:
    """The wearers the caller may see, by name."""
    wearers = await asyncio.to_thread(store.wearers, caller.scope, limit, offset)
    return Page(items=[WearerOut.model_validate(w) for w in wearers], limit=limit, offset=offset)


class WearerIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]


def may_register(caller: Caller) -> None:
    if caller.user.role is not Role.ADMIN:
        raise ApiError(403, N_("only an organisation's administrators register wearers and devices"))


@router.post("", response_model=WearerOut, status_code=201)
async def create_wearer(body: WearerIn, store: StoreDep, caller: CallerDep) -> WearerOut:
    """A new wearer of the caller's organisation (admins)."""
    may_register(caller)
    wearer = await asyncio.to_thread(store.create_wearer, caller.scope.org_id, body.name)
    return WearerOut.model_validate(wearer)


@router.patch("/{wearer_id}", response_model=WearerOut)
async def rename_wearer(wearer_id: str, body: WearerIn, store: StoreDep, caller: CallerDep) -> WearerOut:
    """Correct a wearer's name (admins)."""
    may_register(caller)
    wearer = await asyncio.to_thread(store.rename_wearer, caller.scope, wearer_id, body.name)
    if wearer is None:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    return WearerOut.model_validate(wearer)


@router.get("/{wearer_id}", response_model=WearerOut)
async def get_wearer(wearer_id: str, store: StoreDep, caller: CallerDep) -> WearerOut:
    wearer = await asyncio.to_thread(store.wearer, caller.scope, wearer_id)
    if wearer is None:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    return WearerOut.model_validate(wearer)


@router.get(
    "/{wearer_id}/positions",
    response_model=list[PositionOut],
    responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()},
                     "description": "JSON, or a GeoJSON, GPX or CSV file with format=…"}},
)  # fmt: skip
async def list_positions(
    wearer_id: str,
    store: StoreDep,
    caller: CallerDep,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    include_rejected: bool = False,
    format: Literal["json", "geojson", "gpx", "csv"] = "json",
) -> list[PositionOut] | Response:
    """Stored fixes, newest first. Fixes rejected by the bad-fix filter only on request. ``format``
    ``geojson``, ``gpx`` or ``csv``: the same fixes as a file to download, oldest first."""
    check_times(since=since, until=until)
    wearer = await asyncio.to_thread(store.wearer, caller.scope, wearer_id)
    if wearer is None:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    positions = await asyncio.to_thread(
        store.positions, caller.scope, wearer_id, since, until, limit, include_rejected, offset
    )
    await audit_read(store, caller, "positions", [wearer_id], len(positions), since=since, until=until,
                     limit=limit, offset=offset, include_rejected=include_rejected,
                     format=format)  # fmt: skip
    if format == "json":
        return [PositionOut.model_validate(p) for p in positions]
    if format == "geojson":
        content: str | bytes = to_geojson(positions, with_rejected=include_rejected)
    elif format == "gpx":
        content = to_gpx(positions, wearer.name)
    else:
        content = to_csv(positions)
    disposition = f'attachment; filename="positions-{wearer_id}.{format}"'
    return Response(content, media_type=MEDIA_TYPES[format], headers={"Content-Disposition": disposition})


@router.get("/{wearer_id}/detection")
async def get_detection_settings(wearer_id: str, store: StoreDep, caller: CallerDep) -> dict[str, Any]:
    """The wearer's detection thresholds: ``settings`` in force and the ``overrides`` set for them."""
    if await asyncio.to_thread(store.wearer, caller.scope, wearer_id) is None:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    timezone, overrides = (await asyncio.to_thread(store.detection_settings, [wearer_id]))[wearer_id]
    profile = profile_from_settings(timezone, overrides)
    return {"timezone": timezone, "settings": profile_settings(profile), "overrides": overrides}


@router.put("/{wearer_id}/detection")
async def put_detection_settings(
    wearer_id: str,
    store: StoreDep,
    caller: CallerDep,
    overrides: Annotated[dict[str, Any], Body(examples=[{"heart_rate_max_bpm": 110, "day_start": "07:30"}])],
) -> dict[str, Any]:
    """Replace the wearer's overrides (an empty object restores the defaults). Applied within 30 s."""
    if caller.user.role is Role.FAMILY:
        raise ApiError(403, N_("family members cannot change detection settings"))
    try:
        checked = validate_settings(overrides)
    except ValueError as exc:
        raise ApiError(422, N_("invalid detection settings: {reason}"), reason=str(exc)) from exc
    if not await asyncio.to_thread(store.set_wearer_settings, caller.scope, wearer_id, checked):
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    return await get_detection_settings(wearer_id, store, caller)
