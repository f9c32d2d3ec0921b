"""Everything the store holds about one wearer, for the right of access (GDPR art. 15, PIPL art. 45).

Read in pages (readings by keyset, never all at once), yielded section by section so that the API can
stream months of readings without holding them in memory. Secrets stay out: contacts' addresses are
redacted by the caller, tokens and password hashes are never about a wearer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from geosentinel.store import schema

if TYPE_CHECKING:
    from geosentinel.store.base import Scope

Row = sa.Row[tuple[object, ...]]
PAGE = 5000
# Columns holding JSON text: exported as JSON values, not as strings of JSON.
JSON_COLUMNS = frozenset(
    (
        "details", "extras", "settings", "geometry", "schedule", "attempts_log", "detectors", "wearer_ids",
        "query", "urls",
    )
)  # fmt: skip
Section = tuple[str, dict[str, Any]]  # (section name, one record)


def _record(row: Row) -> dict[str, Any]:
    record = {str(key): value for key, value in row._asdict().items()}  # (keys may be quoted_name)
    for column in JSON_COLUMNS & record.keys():
        if isinstance(record[column], str):
            try:
                record[column] = orjson.loads(record[column])
            except orjson.JSONDecodeError:
                pass
    record.pop("org_id", None)  # the organisation is the exporter: said once, in the header
    return record


class ExportStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads)."""

    _read: Callable[[sa.Executable], list[Row]]
    _read_one: Callable[[sa.Executable], Row | None]

    def wearer_export(self, scope: Scope, wearer_id: str) -> Iterator[Section] | None:
        """The wearer's records, section by section (None: not the caller's wearer)."""
        w = schema.wearers
        wearer = self._read_one(sa.select(w).where(w.c.id == wearer_id, w.c.org_id == scope.org_id))
        if wearer is None or not scope.allows(wearer_id):
            return None
        return self._sections(wearer, scope.org_id)

    def _sections(self, wearer: Row, org_id: str) -> Iterator[Section]:
        wearer_id = str(wearer.id)
        yield "wearer", _record(wearer)
        for table in (schema.devices, schema.geofences):
            for row in self._read(
                sa.select(table).where(table.c.wearer_id == wearer_id).order_by(table.c.id)
            ):
                yield table.name, _record(row)
        wc, c = schema.wearer_contacts, schema.contacts
        for row in self._read(
            sa.select(wc.c.rank, c.c.id, c.c.name, c.c.locale, c.c.timezone, c.c.urls)
            .join(c, c.c.id == wc.c.contact_id)
            .where(wc.c.wearer_id == wearer_id)
            .order_by(wc.c.rank)
        ):
            yield "contacts", _record(row)
        yield from self._pages("readings", schema.readings, wearer_id)
        yield from self._pages("events", schema.events, wearer_id)
        a = schema.alerts
        alert_ids: list[str] = []
        for row in self._read(
            sa.select(a).where(a.c.wearer_id == wearer_id).order_by(a.c.opened_at_us, a.c.id)
        ):
            alert_ids.append(str(row.id))
            yield "alerts", _record(row)
        for table in (schema.alert_transitions, schema.notifications, schema.alert_views):
            for start in range(0, len(alert_ids), 500):
                chunk = alert_ids[start : start + 500]
                query = (
                    sa.select(table).where(table.c.alert_id.in_(chunk)).order_by(*table.primary_key.columns)
                )
                for row in self._read(query):
                    yield table.name, _record(row)
        log = schema.audit_log
        marker = orjson.dumps(wearer_id).decode()
        query = sa.select(log).where(
            log.c.org_id == org_id, log.c.wearer_ids.contains(marker, autoescape=True)
        )
        for row in self._read(query.order_by(log.c.at_us, log.c.id)):
            yield "audit_log", _record(row)

    def _pages(self, name: str, table: sa.Table, wearer_id: str) -> Iterator[Section]:
        """Rows by wearer in (time, id) order, a page at a time (keyset: no OFFSET over months of data)."""
        after: tuple[int, int] | None = None
        while True:
            query = sa.select(table).where(table.c.wearer_id == wearer_id)
            if after is not None:
                query = query.where(sa.tuple_(table.c.time_us, table.c.id) > sa.tuple_(*after))
            rows = self._read(query.order_by(table.c.time_us, table.c.id).limit(PAGE))
            for row in rows:
                yield name, _record(row)
            if len(rows) < PAGE:
                return
            last = rows[-1]
            after = (int(last.time_us), int(last.id))
