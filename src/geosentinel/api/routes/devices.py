"""``/api/v1/devices``: the bracelets of the organisation."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from geosentinel.api.deps import Caller, CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.api.routes.wearers import may_register
from geosentinel.api.schemas import CommandIn, CommandOut, DeviceOut, Page
from geosentinel.commands import NotConnected, send_command
from geosentinel.model import Role
from geosentinel.protocols.base import DeviceCommand, UnsupportedCommand
from geosentinel.store import Store, StoreError

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", response_model=Page[DeviceOut])
async def list_devices(
    store: StoreDep,
    caller: CallerDep,
    wearer_id: str | None = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Page[DeviceOut]:
    """The devices the caller may see, by unique id; with ``wearer_id``, only that wearer's."""
    devices = await asyncio.to_thread(store.devices, caller.scope, wearer_id, limit, offset)
    return Page(items=[DeviceOut.model_validate(d) for d in devices], limit=limit, offset=offset)


UniqueId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_.:-]+$")]
Protocol = Literal["watch", "gt06", "h02", "osmand", "mqtt"]
Interval = Annotated[float, Field(ge=1, le=7 * 86_400)]


class DeviceIn(BaseModel):
    unique_id: UniqueId
    protocol: Protocol
    wearer_id: str | None = None
    model: Annotated[str, Field(max_length=64)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None  # for devices that send local times
    expected_interval_s: Interval | None = None  # None: learned from the device's rhythm


class DeviceChange(BaseModel):
    """Only the fields given change; ``wearer_id: null`` takes the device off its wearer."""

    wearer_id: str | None = None
    model: Annotated[str, Field(max_length=64)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    expected_interval_s: Interval | None = None


async def _check_references(
    store: Store, caller: Caller, wearer_id: str | None, timezone: str | None
) -> None:
    if wearer_id is not None and await asyncio.to_thread(store.wearer, caller.scope, wearer_id) is None:
        raise ApiError(422, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    if timezone is not None and timezone not in available_timezones():
        raise ApiError(422, N_("unknown time zone {timezone}"), timezone=timezone)


@router.post("", response_model=DeviceOut, status_code=201)
async def register_device(body: DeviceIn, store: StoreDep, caller: CallerDep) -> DeviceOut:
    """Register a bracelet (admins): from then on its messages are stored and watched over."""
    may_register(caller)
    await _check_references(store, caller, body.wearer_id, body.timezone)
    try:
        device = await asyncio.to_thread(
            store.create_device, caller.scope.org_id, body.wearer_id, body.unique_id, body.protocol,
            body.model, body.timezone, body.expected_interval_s,
        )  # fmt: skip
    except StoreError as exc:
        raise ApiError(
            409, N_("a device {unique_id} is already registered"), unique_id=body.unique_id
        ) from exc
    return DeviceOut.model_validate(device)


@router.get("/{device_id}", response_model=DeviceOut)
async def get_device(device_id: str, store: StoreDep, caller: CallerDep) -> DeviceOut:
    device = await asyncio.to_thread(store.device, caller.scope, device_id)
    if device is None:
        raise ApiError(404, N_("no device {device_id}"), device_id=device_id)
    return DeviceOut.model_validate(device)


@router.patch("/{device_id}", response_model=DeviceOut)
async def change_device(
    device_id: str, body: DeviceChange, request: Request, store: StoreDep, caller: CallerDep
) -> DeviceOut:
    """Give the device to another wearer (or none), or change its settings (admins)."""
    may_register(caller)
    changes = body.model_dump(include=body.model_fields_set)
    await _check_references(store, caller, changes.get("wearer_id"), changes.get("timezone"))
    device = await asyncio.to_thread(store.update_device, caller.scope, device_id, changes)
    if device is None:
        raise ApiError(404, N_("no device {device_id}"), device_id=device_id)
    pipeline = request.app.state.pipeline
    if pipeline is not None:
        pipeline.directory.drop(device.unique_id)  # its next message is routed with the new settings
    return DeviceOut.model_validate(device)


@router.post("/{device_id}/commands", response_model=CommandOut)
async def command_device(
    device_id: str, body: CommandIn, request: Request, store: StoreDep, caller: CallerDep
) -> CommandOut:
    """Send a command now: 409 when the device is not connected, 422 when its protocol lacks it."""
    if caller.user.role is Role.FAMILY:
        raise ApiError(403, N_("family members cannot send commands to devices"))
    device = await asyncio.to_thread(store.device, caller.scope, device_id)
    org = await asyncio.to_thread(store.org, caller.scope.org_id)
    if device is None or org is None:
        raise ApiError(404, N_("no device {device_id}"), device_id=device_id)
    command = DeviceCommand(
        body.kind, body.interval_s, tuple(body.phone_numbers), body.enabled, body.utc_offset_min
    )
    state = request.app.state
    try:
        sent = send_command(
            device, command, org.timezone, request.app.state.pipeline.clock.now(),
            getattr(state, "tcp_gateways", {}), getattr(state, "mqtt", None),
        )  # fmt: skip
    except UnsupportedCommand as exc:
        raise ApiError(422, N_("this command cannot be sent: {reason}"), reason=str(exc)) from exc
    except NotConnected as exc:
        raise ApiError(409, N_("the command cannot be sent now: {reason}"), reason=str(exc)) from exc
    return CommandOut(device_id=device.id, kind=body.kind, delivery=sent.delivery, payload=sent.payload)
