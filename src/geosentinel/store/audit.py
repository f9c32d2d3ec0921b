"""The audit log in the store: every read of positions or health data, and who made it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from geosentinel.store import schema
from geosentinel.store.schema import from_us, to_us

if TYPE_CHECKING:
    from geosentinel.store.base import Scope

Row = sa.Row[tuple[object, ...]]
MAX_WEARERS_PER_ENTRY = 1000  # a list page holds at most 1,000 records


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    resource: str
    wearer_ids: list[str]
    records: int
    query: dict[str, Any]


class AuditStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads and the writer)."""

    _read: Callable[[sa.Executable], list[Row]]
    _write: Callable[[Callable[[sa.Connection], Any]], Any]

    def record_read(
        self,
        scope: Scope,
        actor: str,
        resource: str,
        wearer_ids: Iterable[str | None],
        records: int,
        query: Mapping[str, object],
        now: datetime,
    ) -> None:
        """Note that ``actor`` read ``records`` records of ``resource`` about ``wearer_ids``."""
        wearers = sorted({w for w in wearer_ids if w is not None})[:MAX_WEARERS_PER_ENTRY]
        filters = {k: v for k, v in query.items() if v is not None}
        values = {
            "org_id": scope.org_id, "at_us": to_us(now), "actor": actor[:80], "action": "read",
            "resource": resource, "wearer_ids": orjson.dumps(wearers).decode(), "records": records,
            "query": orjson.dumps(filters, default=str).decode() if filters else None,
        }  # fmt: skip
        self._write(lambda c: c.execute(schema.audit_log.insert().values(**values)))

    def audit_entries(
        self,
        scope: Scope,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        wearer_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """The organisation's audit log, newest first (``wearer_id``: entries about that wearer)."""
        log = schema.audit_log
        query = sa.select(log).where(log.c.org_id == scope.org_id)
        if since is not None:
            query = query.where(log.c.at_us >= to_us(since))
        if until is not None:
            query = query.where(log.c.at_us < to_us(until))
        if actor is not None:
            query = query.where(log.c.actor == actor)
        if wearer_id is not None:  # ids are uuids: a quoted match cannot hit another id
            query = query.where(log.c.wearer_ids.contains(orjson.dumps(wearer_id).decode(), autoescape=True))
        rows = self._read(query.order_by(log.c.at_us.desc(), log.c.id.desc()).limit(limit).offset(offset))
        return [
            AuditEntry(
                int(r.id), from_us(int(r.at_us)), str(r.actor), str(r.action), str(r.resource),
                orjson.loads(str(r.wearer_ids)), int(r.records),
                orjson.loads(str(r.query)) if r.query else {},
            )
            for r in rows
        ]  # fmt: skip
