"""What the dashboard needs in one call: each wearer's status and last position, and their vital signs.

``GET /api/v1/overview`` gives the live map its starting state (the event stream keeps it current);
``GET /api/v1/wearers/{wearer_id}/vitals`` feeds the wearer page's charts. Both are scoped like every read
(the caller's organisation; a family member, the wearers linked to them) and both read positions or health
data, so both are audited (resources ``overview`` and ``vitals``) before they answer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel

from geosentinel.api.audit import audit_read
from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.api.schemas import Page
from geosentinel.api.times import check_times
from geosentinel.detect.base import WearerProfile
from geosentinel.model import Alert, AlertStatus, Device, EventKind, Wearer
from geosentinel.store.base import DeviceState

router = APIRouter(tags=["dashboard"])

LOW_BATTERY_PCT = WearerProfile().battery_low_pct  # the detector's default threshold
MAX_PERIOD = timedelta(days=366)
# Alert kinds that only say what the status colour says already (the device's own state).
_DEVICE_KINDS = frozenset({EventKind.OFFLINE.value, EventKind.LOW_BATTERY.value})

Status = Literal["alert", "offline", "low_battery", "ok", "unknown"]


class OpenAlertOut(BaseModel):
    id: str
    kind: str
    opened_at: datetime


class DeviceStatusOut(BaseModel):
    id: str
    unique_id: str
    protocol: str
    model: str | None
    last_seen: datetime | None  # last message of any kind (null: never heard)
    battery_pct: float | None
    offline: bool  # silent for longer than its rhythm allows (the offline detector's verdict)


class FixOut(BaseModel):
    time: datetime
    latitude: float
    longitude: float


class WearerStatusOut(BaseModel):
    id: str
    name: str
    # alert: an open alert needs someone; offline: a device went silent; low_battery: it needs charging;
    # ok: none of these; unknown: no device has been heard yet.
    status: Status
    position: FixOut | None  # the newest good fix of their devices
    last_seen: datetime | None
    battery_pct: float | None
    open_alerts: list[OpenAlertOut]  # oldest first
    devices: list[DeviceStatusOut]


class VitalsOut(BaseModel):
    time: datetime
    heart_rate_bpm: float | None
    spo2_pct: float | None
    steps: int | None
    battery_pct: float | None


def _detector_flag(state: DeviceState, detector: str, flag: str) -> bool:
    try:
        states: Any = orjson.loads(state.detectors)
    except orjson.JSONDecodeError:
        return False
    found = states.get(detector) if isinstance(states, dict) else None
    return isinstance(found, dict) and found.get(flag) is True


def _device_out(device: Device, state: DeviceState | None) -> DeviceStatusOut:
    return DeviceStatusOut(
        id=device.id, unique_id=device.unique_id, protocol=device.protocol, model=device.model,
        last_seen=None if state is None else state.last_seen,
        battery_pct=None if state is None else state.battery_pct,
        offline=state is not None and _detector_flag(state, "offline", "offline"),
    )  # fmt: skip


def _status(open_kinds: set[str], devices: list[DeviceStatusOut]) -> Status:
    if open_kinds - _DEVICE_KINDS:
        return "alert"
    heard = [d for d in devices if d.last_seen is not None]
    if EventKind.OFFLINE.value in open_kinds or (heard and all(d.offline for d in heard)):
        return "offline"
    low = any(d.battery_pct is not None and d.battery_pct < LOW_BATTERY_PCT for d in heard)
    if EventKind.LOW_BATTERY.value in open_kinds or low:
        return "low_battery"
    return "ok" if heard else "unknown"


def _newest_fix(states: list[DeviceState]) -> FixOut | None:
    newest: FixOut | None = None
    for s in states:
        if s.fix_time is None or s.fix_latitude is None or s.fix_longitude is None:
            continue
        if newest is None or s.fix_time > newest.time:
            newest = FixOut(time=s.fix_time, latitude=s.fix_latitude, longitude=s.fix_longitude)
    return newest


def _wearer_out(
    wearer: Wearer, devices: list[Device], states: dict[str, DeviceState], alerts: list[Alert]
) -> WearerStatusOut:
    outs = [_device_out(d, states.get(d.id)) for d in devices]
    position = _newest_fix([s for d in devices if (s := states.get(d.id)) is not None])
    seen = [d for d in outs if d.last_seen is not None]
    latest = max(seen, key=lambda d: d.last_seen or datetime.min.replace(tzinfo=UTC), default=None)
    return WearerStatusOut(
        id=wearer.id, name=wearer.name, status=_status({a.kind.value for a in alerts}, outs),
        position=position,
        last_seen=None if latest is None else latest.last_seen,
        battery_pct=None if latest is None else latest.battery_pct,
        open_alerts=[OpenAlertOut(id=a.id, kind=a.kind.value, opened_at=a.opened_at)
                     for a in sorted(alerts, key=lambda a: a.opened_at)],
        devices=outs,
    )  # fmt: skip


@router.get("/overview", response_model=Page[WearerStatusOut])
async def overview(
    store: StoreDep, caller: CallerDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> Page[WearerStatusOut]:
    """The wearers the caller may see, by name, each with their status, newest good fix, last message,
    battery, open alerts and devices: the live map's starting state."""
    wearers = await asyncio.to_thread(store.wearers, caller.scope, limit, offset)
    wanted = {w.id for w in wearers}
    devices: dict[str, list[Device]] = defaultdict(list)
    alerts: dict[str, list[Alert]] = defaultdict(list)
    if wanted:
        for device in await asyncio.to_thread(store.devices, caller.scope):
            if device.wearer_id in wanted:
                devices[device.wearer_id].append(device)
        # The organisation's open alerts (a thousand at most: past that, the inbox is the place to look).
        for alert in await asyncio.to_thread(store.alerts, caller.scope, AlertStatus.OPEN, None, None, 1000):
            if alert.wearer_id in wanted:
                alerts[alert.wearer_id].append(alert)
    ids = [d.id for found in devices.values() for d in found]
    states = await asyncio.to_thread(store.device_states, ids) if ids else {}
    items = [_wearer_out(w, devices[w.id], states, alerts[w.id]) for w in wearers]
    await audit_read(store, caller, "overview", sorted(wanted), len(items), limit=limit, offset=offset)
    return Page(items=items, limit=limit, offset=offset)


@router.get("/wearers/{wearer_id}/vitals", response_model=list[VitalsOut])
async def vitals(
    wearer_id: str,
    store: StoreDep,
    caller: CallerDep,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 5000,
) -> list[VitalsOut]:
    """The wearer's heart rate, SpO2, steps and battery level in ``[since, until)`` (default: the last 24
    hours), oldest first; at most ``limit`` readings, the newest ones. Every read is audited."""
    check_times(since=since, until=until)
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=1)
    if not timedelta(0) <= until - since <= MAX_PERIOD:
        raise ApiError(422, N_("the period must run forwards and last at most 366 days"))
    if await asyncio.to_thread(store.wearer, caller.scope, wearer_id) is None:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    found = await asyncio.to_thread(store.vitals, caller.scope, wearer_id, since, until, limit)
    await audit_read(store, caller, "vitals", [wearer_id], len(found), since=since, until=until, limit=limit)
    return [VitalsOut(time=v.time, heart_rate_bpm=v.heart_rate_bpm, spo2_pct=v.spo2_pct, steps=v.steps,
                      battery_pct=v.battery_pct) for v in found]  # fmt: skip
