"""``/api/v1/geofences``: safe zones and danger zones, as GeoJSON Features.

A circle is a ``Point`` with ``properties.radius_m``; a corridor a ``LineString`` with
``properties.width_m`` (full width); areas are ``Polygon``/``MultiPolygon``. ``properties.wearer_id``
null means the fence applies to every wearer of the organisation. The pipeline picks changes up within
a couple of seconds.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from geosentinel.api.deps import Caller, CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.detect.fences import Fence, validate_fence_geometry
from geosentinel.detect.schedule import Schedule
from geosentinel.model import Role

router = APIRouter(prefix="/geofences", tags=["geofences"])


Weekday = Annotated[int, Field(ge=0, le=6)]


class WindowIn(BaseModel):
    days: list[Weekday] = Field(
        default=[0, 1, 2, 3, 4, 5, 6], min_length=1, max_length=7, description="0 = Monday … 6 = Sunday"
    )
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["21:00"])
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["07:00"])


class FenceProperties(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["safe", "danger"] = "safe"
    wearer_id: str | None = None
    radius_m: float | None = Field(default=None, gt=0, le=100_000)
    width_m: float | None = Field(default=None, gt=0, le=10_000)
    schedule: list[WindowIn] | None = Field(
        default=None, description="Local-time windows (organisation's time zone) when the fence is active."
    )


class FeatureIn(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any]
    properties: FenceProperties


def feature(fence: Fence) -> dict[str, Any]:
    schedule = None if fence.schedule is None else msgspec.to_builtins(fence.schedule)["windows"]
    return {
        "type": "Feature",
        "id": fence.id,
        "geometry": fence.geometry,
        "properties": {
            "name": fence.name,
            "kind": fence.kind,
            "wearer_id": fence.wearer_id,
            "radius_m": fence.radius_m,
            "width_m": fence.width_m,
            "schedule": schedule,
        },
    }


def _may_edit(caller: Caller) -> None:
    if caller.user.role is Role.FAMILY:
        raise ApiError(403, N_("family members cannot change geofences"))


@router.get("")
async def list_geofences(
    store: StoreDep,
    caller: CallerDep,
    wearer_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection, by name; with ``wearer_id``, that wearer's fences and the
    organisation's."""
    fences = await asyncio.to_thread(store.geofences, caller.scope, wearer_id, limit, offset)
    return {"type": "FeatureCollection", "features": [feature(f) for f in fences]}


@router.post("", status_code=201)
async def create_geofence(body: FeatureIn, store: StoreDep, caller: CallerDep) -> dict[str, Any]:
    _may_edit(caller)
    props = body.properties
    try:
        validate_fence_geometry(body.geometry, props.radius_m, props.width_m)
    except ValueError as exc:
        raise ApiError(422, N_("invalid geometry: {exc}"), exc=exc) from exc
    if (
        props.wearer_id is not None
        and await asyncio.to_thread(store.wearer, caller.scope, props.wearer_id) is None
    ):
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=props.wearer_id)
    schedule = None
    if props.schedule is not None:
        try:
            schedule = msgspec.convert({"windows": [w.model_dump() for w in props.schedule]}, Schedule)
        except msgspec.ValidationError as exc:
            raise ApiError(422, N_("invalid schedule: {exc}"), exc=exc) from exc
    fence = await asyncio.to_thread(
        store.create_geofence,
        caller.scope.org_id,
        props.wearer_id,
        props.name,
        props.kind,
        body.geometry,
        props.radius_m,
        props.width_m,
        schedule,
    )
    return feature(fence)


@router.get("/{fence_id}")
async def get_geofence(fence_id: str, store: StoreDep, caller: CallerDep) -> dict[str, Any]:
    fence = await asyncio.to_thread(store.geofence, caller.scope, fence_id)
    if fence is None:
        raise ApiError(404, N_("no geofence {fence_id}"), fence_id=fence_id)
    return feature(fence)


@router.delete("/{fence_id}", status_code=204)
async def delete_geofence(fence_id: str, store: StoreDep, caller: CallerDep) -> Response:
    _may_edit(caller)
    if not await asyncio.to_thread(store.delete_geofence, caller.scope, fence_id):
        raise ApiError(404, N_("no geofence {fence_id}"), fence_id=fence_id)
    return Response(status_code=204)
