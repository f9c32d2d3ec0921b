"""A wearer's rights over their data (admins act for them): access and erasure.

``GET /api/v1/wearers/{id}/export``: everything about a wearer, for their right of access.

Streamed as one JSON document, section by section, so months of readings never sit in memory:
``{"format": "geosentinel-export/1", "organisation", "exported_at", "wearer": {...}, "devices": [...],
"geofences": [...], "contacts": [...], "readings": [...], "events": [...], "alerts": [...],
"alert_transitions": [...], "notifications": [...], "alert_views": [...], "audit_log": [...]}``. Contacts'
addresses are redacted (they may hold credentials). The export itself is audited.

``DELETE /api/v1/wearers/{id}?confirm={id}``: erases the wearer and everything about them and their
devices (:mod:`geosentinel.store.erasure`); the id repeated in ``confirm`` keeps a stray DELETE from
erasing anyone. The pipeline forgets the devices first, so that no message of theirs is stored after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Final

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from geosentinel.api.audit import audit_read
from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.model import Role
from geosentinel.notify.channels import redact
from geosentinel.store.export import Section

if TYPE_CHECKING:
    from geosentinel.pipeline.runner import Pipeline

router = APIRouter(prefix="/wearers", tags=["privacy"])
FORMAT: Final = "geosentinel-export/1"
SECTIONS: Final = ("devices", "geofences", "contacts", "readings", "events", "alerts", "alert_transitions",
                   "notifications", "alert_views", "audit_log")  # fmt: skip


def _document(header: Mapping[str, object], sections: Iterator[Section]) -> Iterator[bytes]:
    """The JSON document, written as the sections come (each section's records arrive together, in the
    order of :data:`SECTIONS`, after the wearer)."""
    yield orjson.dumps(header)[:-1]  # the header's fields, the object left open
    current: str | None = None
    for name, record in sections:
        if name == "contacts" and isinstance(record.get("urls"), list):
            record["urls"] = [redact(str(u)) for u in record["urls"]]
        if name == "wearer":
            yield b',"wearer":' + orjson.dumps(record)
            continue
        if name != current:
            if current is not None:
                yield b"]"
            for skipped in SECTIONS[SECTIONS.index(current) + 1 if current else 0 : SECTIONS.index(name)]:
                yield b',"' + skipped.encode() + b'":[]'
            yield b',"' + name.encode() + b'":['
            current = name
        else:
            yield b","
        yield orjson.dumps(record)
    if current is not None:
        yield b"]"
    for skipped in SECTIONS[SECTIONS.index(current) + 1 if current else 0 :]:
        yield b',"' + skipped.encode() + b'":[]'
    yield b"}"


@router.get("/{wearer_id}/export", response_class=StreamingResponse)
async def export_wearer(wearer_id: str, store: StoreDep, caller: CallerDep) -> StreamingResponse:
    """Everything the installation holds about the wearer, as one JSON document (admins)."""
    if caller.user.role is not Role.ADMIN:
        raise ApiError(403, N_("only an organisation's administrators export a wearer's data"))
    sections = await asyncio.to_thread(store.wearer_export, caller.scope, wearer_id)
    if sections is None:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    await audit_read(store, caller, "export", [wearer_id], 1)
    header = {
        "format": FORMAT,
        "organisation": caller.scope.org_id,
        "exported_at": datetime.now(UTC).isoformat(),
    }
    filename = f"geosentinel-wearer-{wearer_id}.json"
    return StreamingResponse(
        _document(header, sections), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )  # fmt: skip


class ErasureOut(BaseModel):
    wearer_id: str
    erased_at: datetime
    deleted: dict[str, int]  # rows deleted per table (audit_log: entries no longer naming the wearer)


@router.delete("/{wearer_id}", response_model=ErasureOut)
async def erase_wearer(
    wearer_id: str,
    request: Request,
    store: StoreDep,
    caller: CallerDep,
    confirm: Annotated[str, Query(description="The wearer's id again: erasure cannot be undone.")] = "",
) -> ErasureOut:
    """Erase the wearer and everything about them and their devices, for good (admins)."""
    if caller.user.role is not Role.ADMIN:
        raise ApiError(403, N_("only an organisation's administrators erase a wearer"))
    if await asyncio.to_thread(store.wearer, caller.scope, wearer_id) is None:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    if confirm != wearer_id:
        raise ApiError(422, N_("erasing a wearer cannot be undone: repeat their id in 'confirm'"))
    # The pipeline forgets the devices first, so that nothing of theirs is written after the erasure. Should
    # the erasure then fail, they stay unknown to this process and the data stays: the DELETE is retried.
    pipeline: Pipeline | None = request.app.state.pipeline
    if pipeline is not None:
        devices = await asyncio.to_thread(store.devices, caller.scope, wearer_id)
        await pipeline.forget_wearer(wearer_id, devices)
    now = datetime.now(UTC)
    actor = f"user:{caller.user.id}"
    deleted = await asyncio.to_thread(store.erase_wearer, caller.scope, wearer_id, actor, now)
    if deleted is None:  # erased meanwhile by another request
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    request.app.state.live.forget_wearer(wearer_id)  # a reconnecting stream is not replayed their events
    return ErasureOut(wearer_id=wearer_id, erased_at=now, deleted=deleted)
