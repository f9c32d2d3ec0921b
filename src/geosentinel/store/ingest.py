"""The ingest hot path: turn an :class:`IngestBatch` into rows and write them with ``executemany``.

Kept apart from the query code because it is the one place where speed matters: rows are plain tuples
written through the driver (no per-value ORM conversion), and the SQL is built once per dialect from the
column lists below.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Mapping, Sequence

import orjson
import sqlalchemy as sa

from geosentinel.alerts.lifecycle import REOPENING_KINDS, Action, Outcome, wearer_may_cancel
from geosentinel.model import AlertStatus, Event, EventKind, ExtraValue, Reading
from geosentinel.store.base import DeviceState, IngestBatch, IngestRows
from geosentinel.store.schema import ACTIVE_ALERT, to_us

READING_COLUMNS = (
    "org_id", "device_id", "wearer_id", "time_us", "received_us", "latitude", "longitude", "valid",
    "rejected", "speed_kmh", "course_deg", "altitude_m", "accuracy_m", "hdop", "satellites", "battery_pct",
    "charging", "steps", "heart_rate_bpm", "spo2_pct", "temperature_c", "alarms", "extras",
)  # fmt: skip
STATE_COLUMNS = (
    "device_id", "last_seen_us", "fix_time_us", "fix_latitude", "fix_longitude", "battery_pct", "detectors",
)  # fmt: skip
EVENT_COLUMNS = (
    "org_id", "wearer_id", "device_id", "kind", "time_us", "received_us", "latitude", "longitude", "alert_id",
    "details",
)  # fmt: skip


class MultiRowInsert:
    """``INSERT … VALUES (…), (…), …`` for up to ``max_rows`` rows per statement.

    One statement per chunk instead of ``executemany`` (SQLite): the sqlite3 module releases and re-takes
    the GIL around every row it steps, and while the event loop is busy each re-take can wait a whole
    switch interval. One step per few hundred rows keeps the writer thread from stalling. PostgreSQL keeps
    ``executemany``, which psycopg pipelines and which plans far faster than huge VALUES lists.

    In that SQLite path, ``None`` parameters are bound as NaN, which SQLite stores as NULL (it has no NaN:
    binding one always gives NULL, whatever the column, and ``tests/store/test_ingest_chunks.py`` holds it to
    that). Python 3.11's sqlite3 module binds ints, floats and strings directly but sends every other value,
    ``None`` included, through its adapter lookup: a reading row has a dozen ``None`` fields, and their
    lookups cost more than the rest of the row's binding (49,000 instructions per row against 31,000 with
    the substitution, valgrind, 20,000 rows).
    """

    def __init__(
        self, table: str, columns: Sequence[str], placeholder: str, suffix: str = "", multirow: bool = True
    ) -> None:
        self._multirow = multirow
        self._head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608 (constant names)
        self._row = "(" + ", ".join([placeholder] * len(columns)) + ")"
        self._suffix = suffix
        # SQLite allows 32,766 parameters per statement; stay well below for every backend.
        self.max_rows = max(1, 16_000 // len(columns))
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        statement = self._sql.get(rows)
        if statement is None:
            statement = self._head + ", ".join([self._row] * rows) + self._suffix
            self._sql[rows] = statement
        return statement

    def execute(self, connection: sa.Connection, rows: Sequence[tuple[object, ...]]) -> None:
        if not self._multirow:
            connection.exec_driver_sql(self.sql(1), list(rows))
            return
        start = 0
        for size in chunk_sizes(len(rows), self.max_rows):
            chunk = rows[start : start + size]
            start += size
            values = [_NULL if v is None else v for v in itertools.chain.from_iterable(chunk)]
            connection.exec_driver_sql(self.sql(size), tuple(values))


_NULL = math.nan  # what SQLite binds as NULL without the sqlite3 module's adapter lookup (see MultiRowInsert)


def chunk_sizes(count: int, limit: int) -> list[int]:
    """How to split ``count`` rows into statements of at most ``limit`` rows: the largest power of two
    within the limit while more remain, then the rest's binary digits (1,500 rows: 512, 512, 256, 128,
    64, 16, 8, 4). So a table has about ten statement texts, all kept compiled in the driver's statement
    cache; a statement per row count missed that cache at nearly every batch, and compiling an INSERT of
    hundreds of rows costs more than running it."""
    largest = 1 << (limit.bit_length() - 1)
    sizes = [largest] * (count // largest)
    rest = count % largest
    sizes += [1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1]
    return sizes


class IngestSql:
    """The statements of the hot path for one DBAPI parameter style (``?`` or ``%s``)."""

    def __init__(self, placeholder: str, multirow: bool) -> None:
        def insert(table: str, columns: Sequence[str]) -> str:
            marks = ", ".join([placeholder] * len(columns))
            return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 (constant names)

        self.readings = MultiRowInsert("readings", READING_COLUMNS, placeholder, multirow=multirow)
        self.events = insert("events", EVENT_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in STATE_COLUMNS[1:])
        self.states = MultiRowInsert(
            "device_state",
            STATE_COLUMNS,
            placeholder,
            f" ON CONFLICT (device_id) DO UPDATE SET {updates}",
            multirow=multirow,
        )
        p = placeholder
        # One active alert per wearer and kind: a repeat bumps the count of the active one.
        self.alert = (
            "INSERT INTO alerts (id, org_id, wearer_id, kind, status, opened_at_us, last_event_at_us,"  # noqa: S608
            f" event_count, latitude, longitude) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, 1, {p}, {p})"
            f" ON CONFLICT (wearer_id, kind) WHERE {ACTIVE_ALERT} DO UPDATE SET"
            " event_count = alerts.event_count + 1,"
            " last_event_at_us = CASE WHEN excluded.last_event_at_us > alerts.last_event_at_us"
            " THEN excluded.last_event_at_us ELSE alerts.last_event_at_us END"
            " RETURNING id, event_count, status"
        )
        # A new alert's escalation starts when it opens (see alerts.policy); a reopened one starts again.
        self.escalate = (
            f"INSERT INTO escalations (alert_id, org_id, round, step, due_us) VALUES ({p}, {p}, 0, 0, {p})"  # noqa: S608
            " ON CONFLICT (alert_id) DO UPDATE SET round = 0, step = 0, due_us = excluded.due_us"
        )
        self.transition = (
            "INSERT INTO alert_transitions (alert_id, org_id, at_us, action, from_status, to_status, actor,"  # noqa: S608
            f" outcome, note) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
        )
        # A wearer's cancel: the wearer's active fall alert, and whether any contact was told yet.
        self.cancel_target = (
            "SELECT id, status, (SELECT COUNT(*) FROM notifications WHERE notifications.alert_id = alerts.id)"  # noqa: S608
            f" FROM alerts WHERE wearer_id = {p} AND kind = 'fall' AND {ACTIVE_ALERT}"
            " ORDER BY opened_at_us DESC LIMIT 1"
        )
        self.cancel = (
            f"UPDATE alerts SET status = 'resolved', resolved_at_us = {p}, resolved_by = {p},"  # noqa: S608
            f" outcome = '{Outcome.FALSE_ALARM.value}' WHERE id = {p} AND status = 'open'"
        )
        self.stop_escalation = f"UPDATE escalations SET due_us = NULL WHERE alert_id = {p}"  # noqa: S608
        self.reopen = (
            "UPDATE alerts SET status = 'open', acknowledged_at_us = NULL, acknowledged_by = NULL"  # noqa: S608
            f" WHERE id = {p} AND status = 'acknowledged'"
        )
        # A device repeating an alarm within its window: attach to the wearer's latest alert of that kind
        # (active first), even one just resolved; never open a new one for the same press.
        self.repeat = (
            f"UPDATE alerts SET event_count = event_count + 1, last_event_at_us = CASE WHEN {p} >"  # noqa: S608
            f" last_event_at_us THEN {p} ELSE last_event_at_us END WHERE id = (SELECT id FROM alerts"
            f" WHERE wearer_id = {p} AND kind = {p} ORDER BY CASE WHEN {ACTIVE_ALERT} THEN 0 ELSE 1 END,"
            " opened_at_us DESC LIMIT 1) RETURNING id"
        )
        # Back online closes the device's open offline alert (nobody needs to go and look any more).
        self.close_offline = (
            f"UPDATE alerts SET status = 'resolved', resolved_at_us = {p}, outcome = 'back_online'"  # noqa: S608
            f" WHERE wearer_id = {p} AND kind = 'offline' AND {ACTIVE_ALERT} RETURNING id, org_id"
        )

    def write(self, connection: sa.Connection, batch: IngestRows) -> None:
        if batch.readings:
            self.readings.execute(connection, batch.readings)
        for event in batch.events:
            self._write_event(connection, event, batch)
        if batch.states:
            self.states.execute(connection, batch.states)

    def _write_event(self, connection: sa.Connection, event: Event, batch: IngestRows) -> None:
        alert_id = None
        time_us = to_us(event.time)
        if event.wearer_id is not None and event.kind is EventKind.BACK_ONLINE:
            closed = connection.exec_driver_sql(self.close_offline, (time_us, event.wearer_id)).first()
            if closed is not None:
                alert_id = closed[0]
                self._log(connection, event, alert_id, "resolve", None, AlertStatus.RESOLVED, "back_online")
        elif event.wearer_id is not None and event.kind is EventKind.CANCELLED:
            alert_id = self._cancel(connection, event, event.wearer_id)
        elif event.wearer_id is not None and event.kind in batch.alert_kinds and event.details.get("repeat"):
            params_repeat = (time_us, time_us, event.wearer_id, event.kind.value)
            found = connection.exec_driver_sql(self.repeat, params_repeat).first()
            alert_id = None if found is None else found[0]
        if alert_id is None and event.kind in batch.alert_kinds and event.wearer_id is not None:
            params = (
                str(uuid.uuid4()), event.org_id, event.wearer_id, event.kind.value, AlertStatus.OPEN.value,
                time_us, time_us, event.latitude, event.longitude,
            )  # fmt: skip
            alert_id, count, status = connection.exec_driver_sql(self.alert, params).one()
            if count == 1:  # a new alert
                self._log(connection, event, alert_id, "open", None, AlertStatus.OPEN)
                self._escalate(connection, event, alert_id)
            elif (
                status == AlertStatus.ACKNOWLEDGED.value
                and event.kind in REOPENING_KINDS
                and not event.details.get("repeat")
            ):
                # Asked again while someone had it: whoever took it has not arrived (alerts.lifecycle).
                connection.exec_driver_sql(self.reopen, (alert_id,))
                note = f"new {event.kind.value} while acknowledged"
                self._log(
                    connection,
                    event,
                    alert_id,
                    "reopen",
                    AlertStatus.ACKNOWLEDGED,
                    AlertStatus.OPEN,
                    None,
                    note,
                )
                self._escalate(connection, event, alert_id)
        details = orjson.dumps(dict(event.details)).decode() if event.details else None
        row = (
            event.org_id, event.wearer_id, event.device_id, event.kind.value, time_us,
            to_us(event.received_at), event.latitude, event.longitude, alert_id, details,
        )  # fmt: skip
        connection.exec_driver_sql(self.events, row)

    def _cancel(self, connection: sa.Connection, event: Event, wearer_id: str) -> str | None:
        """The wearer cancelled on the device: close their fall alert if nobody was told yet (otherwise the
        cancel is only attached to it, for the caregivers to see). The alert it concerns, if any."""
        target = connection.exec_driver_sql(self.cancel_target, (wearer_id,)).first()
        if target is None:
            return None
        alert_id, status, told = str(target[0]), AlertStatus(target[1]), int(target[2]) > 0
        if wearer_may_cancel(status, EventKind.FALL, told):
            actor = f"device:{event.device_id}"
            connection.exec_driver_sql(self.cancel, (to_us(event.received_at), actor[:36], alert_id))
            connection.exec_driver_sql(self.stop_escalation, (alert_id,))
            self._log(
                connection, event, alert_id, Action.CANCEL.value, status, AlertStatus.RESOLVED,
                Outcome.FALSE_ALARM.value, "cancelled by the wearer on the device", actor,
            )  # fmt: skip
        return alert_id

    def _escalate(self, connection: sa.Connection, event: Event, alert_id: str) -> None:
        connection.exec_driver_sql(self.escalate, (alert_id, event.org_id, to_us(event.received_at)))

    def _log(
        self,
        connection: sa.Connection,
        event: Event,
        alert_id: str,
        action: str,
        before: AlertStatus | None,
        after: AlertStatus,
        outcome: str | None = None,
        note: str | None = None,
        actor: str = "system",
    ) -> None:
        """An entry in the alert's audit trail made on ingest, timed by the event's arrival."""
        before_value = None if before is None else before.value
        at_us = to_us(event.received_at)
        row = (alert_id, event.org_id, at_us, action, before_value, after.value, actor, outcome, note)
        connection.exec_driver_sql(self.transition, row)


def ingest_rows(batch: IngestBatch) -> IngestRows:
    """The rows the writer binds for ``batch`` (pure: no I/O)."""
    # One state per device: a statement may not upsert the same row twice (PostgreSQL refuses).
    latest = {state.device_id: state for state in batch.states}
    return IngestRows(
        [reading_row(r) for r in batch.readings], list(batch.events), [state_row(s) for s in latest.values()],
        batch.alert_kinds,
    )  # fmt: skip


def reading_row(reading: Reading) -> tuple[object, ...]:
    m = reading.message
    device = reading.device
    return (
        device.org_id, device.id, device.wearer_id, to_us(reading.time), to_us(reading.received_at),
        m.latitude, m.longitude, m.valid, reading.rejected, m.speed_kmh, m.course_deg, m.altitude_m,
        m.accuracy_m, m.hdop, m.satellites, m.battery_pct, m.charging, m.steps, m.heart_rate_bpm, m.spo2_pct,
        m.temperature_c, ",".join(sorted(m.alarms)) if m.alarms else None,
        _extras_json(m.extras) if m.extras else None,
    )  # fmt: skip


def _extras_json(extras: Mapping[str, ExtraValue]) -> str:
    # orjson takes only dicts; decoders give dicts, so the copy is only for other mappings.
    return orjson.dumps(extras if type(extras) is dict else dict(extras)).decode()


def state_row(state: DeviceState) -> tuple[object, ...]:
    return (
        state.device_id, to_us(state.last_seen), None if state.fix_time is None else to_us(state.fix_time),
        state.fix_latitude, state.fix_longitude, state.battery_pct, state.detectors,
    )  # fmt: skip
