"""``/api/v1/devices``: the bracelets of the organisation."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.schemas import DeviceOut, Page

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", response_model=Page[DeviceOut])
async def list_devices(store: StoreDep, caller: CallerDep) -> Page[DeviceOut]:
    devices = await asyncio.to_thread(store.devices, caller.scope)
    return Page(items=[DeviceOut.model_validate(d) for d in devices], limit=len(devices), offset=0)
