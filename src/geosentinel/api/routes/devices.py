"""``/api/v1/devices``: the bracelets of the organisation."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.api.schemas import CommandIn, CommandOut, DeviceOut, Page
from geosentinel.commands import NotConnected, send_command
from geosentinel.model import Role
from geosentinel.protocols.base import DeviceCommand, UnsupportedCommand

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
