"""``/api/v1/wearers/{id}/export``: everything about a wearer, for their right of access (admins).

Streamed as one JSON document, section by section, so months of readings never sit in memory:
``{"format": "geosentinel-export/1", "organisation", "exported_at", "wearer": {...}, "devices": [...],
"geofences": [...], "contacts": [...], "readings": [...], "events": [...], "alerts": [...],
"alert_transitions": [...], "notifications": [...], "alert_views": [...], "audit_log": [...]}``. Contacts'
addresses are redacted (they may hold credentials). The export itself is audited.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Final

import orjson
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from geosentinel.api.audit import audit_read
from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.model import Role
from geosentinel.notify.channels import redact
from geosentinel.store.export import Section

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
