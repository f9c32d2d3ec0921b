"""Keeping health data no longer than needed: each organisation's ``retention_days`` (default 365).

What is older than an organisation's retention goes: readings and events (by their time), and alerts
resolved before the cutoff with their audit trail, notifications, escalation and views. Open or
acknowledged alerts are never purged, however old (someone still has to deal with them). The audit log of
who read what is kept: it is the record of accountability, and holds no health data.

Deleted in chunks of :data:`CHUNK` rows, each its own transaction on the single writer, so that a large
purge never holds ingest up for long.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa

from geosentinel.store import schema
from geosentinel.store.schema import to_us

Row = sa.Row[tuple[object, ...]]
CHUNK: Final = 10_000
MIN_RETENTION_DAYS: Final = 1
MAX_RETENTION_DAYS: Final = 36_500


class RetentionStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads and the writer)."""

    _read: Callable[[sa.Executable], list[Row]]
    _write: Callable[[Callable[[sa.Connection], Any]], Any]

    def set_retention(self, org_id: str, days: int) -> bool:
        if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
            raise ValueError(f"retention must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS} days")
        o = schema.organisations
        query = o.update().where(o.c.id == org_id).values(retention_days=days)
        count: int = self._write(lambda c: c.execute(query).rowcount)
        return count == 1

    def purge_expired(self, now: datetime) -> dict[str, int]:
        """Delete what every organisation keeps no longer; returns the rows deleted per table."""
        o = schema.organisations
        deleted: dict[str, int] = {}
        for org in self._read(sa.select(o.c.id, o.c.retention_days)):
            cutoff = to_us(now - timedelta(days=int(org.retention_days)))
            for table, count in self._purge_org(str(org.id), cutoff).items():
                deleted[table] = deleted.get(table, 0) + count
        return deleted

    def _purge_org(self, org_id: str, cutoff_us: int) -> dict[str, int]:
        r, ev, a = schema.readings, schema.events, schema.alerts
        counts = {
            "readings": self._chunks(r, sa.and_(r.c.org_id == org_id, r.c.time_us < cutoff_us), r.c.id),
        }
        # Alerts resolved before the cutoff, with everything hanging from them (their events included).
        old = sa.and_(a.c.org_id == org_id, a.c.status == "resolved", a.c.resolved_at_us < cutoff_us)
        ids = [str(row.id) for row in self._read(sa.select(a.c.id).where(old))]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]

            def drop(connection: sa.Connection, chunk: list[str] = chunk) -> dict[str, int]:
                out: dict[str, int] = {}
                for table in (schema.alert_transitions, schema.notifications, schema.escalations,
                              schema.alert_views, schema.events):  # fmt: skip
                    out[table.name] = connection.execute(
                        table.delete().where(table.c.alert_id.in_(chunk))
                    ).rowcount
                out["alerts"] = connection.execute(a.delete().where(a.c.id.in_(chunk))).rowcount
                return out

            for table_name, count in self._write(drop).items():
                counts[table_name] = counts.get(table_name, 0) + count
        # Events of no alert (or of an alert still kept: its events stay with it).
        loose = sa.and_(ev.c.org_id == org_id, ev.c.time_us < cutoff_us, ev.c.alert_id.is_(None))
        counts["events"] = counts.get("events", 0) + self._chunks(ev, loose, ev.c.id)
        return counts

    def _chunks(self, table: sa.Table, condition: sa.ColumnElement[bool], key: sa.ColumnElement[int]) -> int:
        total = 0
        oldest = table.delete().where(key.in_(sa.select(key).where(condition).limit(CHUNK).scalar_subquery()))
        while True:
            count: int = self._write(lambda c: c.execute(oldest).rowcount)
            total += count
            if count < CHUNK:
                return total
