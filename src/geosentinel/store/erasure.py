"""Erasure of a wearer, for the right to erasure (GDPR art. 17, PIPL art. 47).

Everything about the wearer and their devices goes, in one transaction (an erasure half done would be
neither kept nor erased): readings, events, alerts with their transitions, notifications, escalation and
views, device state, devices, the wearer's own geofences, the links to their contacts and to family
members' accounts, and the wearer row (their name and detection settings). Children go before parents
(foreign keys are enforced on both backends).

What stays, and why:

- the audit log's record that someone read something (accountability: art. 5(2), PIPL art. 54) — but no
  longer about whom: the wearer's id is replaced by :data:`ERASED` in each entry's wearers and filters;
- contacts and family members' accounts: other people, with their own rights; only their links to the
  wearer go (an administrator removes them separately if they are no longer needed);
- organisation-wide geofences and escalation policies: they belong to the organisation, not the wearer;
- readings and events of another wearer made by a device once theirs and later given to this wearer:
  they are about the other wearer.

The erasure itself is audited: who, when, and how many rows of each table went — neither the wearer's id
nor their name (that record would otherwise be the one trace left of them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
import sqlalchemy as sa

from geosentinel.store import schema
from geosentinel.store.schema import to_us

if TYPE_CHECKING:
    from geosentinel.store.base import Scope

Row = sa.Row[tuple[object, ...]]
ERASED: Final = "erased"  # stands for an erased wearer in the audit log


class ErasureStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads and the writer)."""

    _read_one: Callable[[sa.Executable], Row | None]
    _write: Callable[[Callable[[sa.Connection], Any]], Any]

    def erase_wearer(self, scope: Scope, wearer_id: str, actor: str, now: datetime) -> dict[str, int] | None:
        """Delete everything about the wearer; rows deleted (or, for the audit log, rewritten) per table.

        None: no such wearer in the caller's scope (nothing was touched).
        """
        w = schema.wearers
        visible = sa.select(w.c.id).where(w.c.id == wearer_id, w.c.org_id == scope.org_id)
        if not scope.allows(wearer_id) or self._read_one(visible) is None:
            return None
        counts: dict[str, int] | None = self._write(
            lambda c: _erase(c, scope.org_id, wearer_id, actor, to_us(now))
        )
        return counts


def _erase(c: sa.Connection, org_id: str, wearer_id: str, actor: str, now_us: int) -> dict[str, int] | None:
    w, d, a = schema.wearers, schema.devices, schema.alerts
    # Checked again inside the transaction: a concurrent erasure of the same wearer counts once.
    if c.execute(sa.select(w.c.id).where(w.c.id == wearer_id, w.c.org_id == org_id)).first() is None:
        return None
    # Subqueries rather than lists of ids: a wearer may have thousands of alerts.
    devices = sa.select(d.c.id).where(d.c.wearer_id == wearer_id, d.c.org_id == org_id)
    alerts = sa.select(a.c.id).where(a.c.wearer_id == wearer_id, a.c.org_id == org_id)
    counts: dict[str, int] = {}

    def delete(table: sa.Table, condition: sa.ColumnElement[bool]) -> None:
        name = str(table.name)  # (a quoted_name: a str subclass that orjson refuses as a key)
        counts[name] = counts.get(name, 0) + c.execute(table.delete().where(condition)).rowcount

    for child in (schema.alert_transitions, schema.notifications, schema.escalations, schema.alert_views):
        delete(child, child.c.alert_id.in_(alerts))
    # By wearer (their index): the pipeline stores nothing from a device that is nobody's, so every row
    # of the wearer's devices carries a wearer, and rows of a device's earlier wearer stay theirs.
    for table in (schema.readings, schema.events):
        delete(table, sa.and_(table.c.wearer_id == wearer_id, table.c.org_id == org_id))
    delete(a, sa.and_(a.c.wearer_id == wearer_id, a.c.org_id == org_id))
    delete(schema.device_state, schema.device_state.c.device_id.in_(devices))
    for table in (d, schema.geofences):
        delete(table, sa.and_(table.c.wearer_id == wearer_id, table.c.org_id == org_id))
    for link in (schema.wearer_contacts, schema.user_wearers):
        delete(link, link.c.wearer_id == wearer_id)
    delete(w, sa.and_(w.c.id == wearer_id, w.c.org_id == org_id))
    counts["audit_log"] = _anonymise_audit(c, org_id, wearer_id)
    _record_erasure(c, org_id, actor, now_us, counts)
    return counts


def _anonymise_audit(c: sa.Connection, org_id: str, wearer_id: str) -> int:
    """Replace the wearer's id in the audit log's entries (their wearers and filters) by :data:`ERASED`."""
    log = schema.audit_log
    quoted = orjson.dumps(wearer_id).decode()
    mentions = sa.or_(
        log.c.wearer_ids.contains(quoted, autoescape=True), log.c.query.contains(wearer_id, autoescape=True)
    )
    # REPLACE exists in SQLite and PostgreSQL alike; done in the database, so that years of audit
    # entries are not read into memory. Ids are UUIDs: replacing the text cannot hit another id.
    update = (
        log.update()
        .where(log.c.org_id == org_id, mentions)
        .values(
            wearer_ids=sa.func.replace(log.c.wearer_ids, quoted, orjson.dumps(ERASED).decode()),
            query=sa.func.replace(log.c.query, wearer_id, ERASED),
        )
    )
    return int(c.execute(update).rowcount)


def _record_erasure(c: sa.Connection, org_id: str, actor: str, now_us: int, counts: dict[str, int]) -> None:
    values = {
        "org_id": org_id, "at_us": now_us, "actor": actor[:80], "action": "erase", "resource": "wearer",
        "wearer_ids": "[]", "records": sum(n for table, n in counts.items() if table != "audit_log"),
        "query": orjson.dumps(counts).decode(),
    }  # fmt: skip
    c.execute(schema.audit_log.insert().values(**values))
