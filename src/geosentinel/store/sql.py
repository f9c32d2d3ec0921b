"""The store implementation shared by both backends (SQLAlchemy Core queries, one writer thread)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import msgspec
import orjson
import sqlalchemy as sa

from geosentinel import metrics
from geosentinel.detect.fences import Fence, FenceKind
from geosentinel.detect.schedule import Schedule
from geosentinel.model import (
    Alert,
    AlertStatus,
    Device,
    Event,
    EventKind,
    Locale,
    Organisation,
    Region,
    Role,
    User,
    Wearer,
)
from geosentinel.store import migrate, schema
from geosentinel.store.accounts import AccountStore
from geosentinel.store.alert_care import AlertCareStore, alert_from_row
from geosentinel.store.alert_figures import AlertFiguresStore
from geosentinel.store.audit import AuditStore
from geosentinel.store.base import DeviceState, IngestBatch, IngestRows, Position, Scope, StoreError
from geosentinel.store.erasure import ErasureStore
from geosentinel.store.export import ExportStore
from geosentinel.store.ingest import IngestSql, ingest_rows
from geosentinel.store.retention import RetentionStore
from geosentinel.store.schema import from_us, to_us
from geosentinel.store.users import UserStore
from geosentinel.store.vitals import VitalsStore
from geosentinel.store.writer import BatchWriter

T = TypeVar("T")


DEVICE_SETTINGS = frozenset({"wearer_id", "model", "timezone", "expected_interval_s"})


def _now_us() -> int:
    # Creation stamps on directory rows only; pipeline times always come from the caller.
    return to_us(datetime.now(UTC))


def _new_id() -> str:
    return str(uuid.uuid4())


class SqlStore(
    AlertCareStore, AlertFiguresStore, AuditStore, AccountStore, ExportStore, ErasureStore, RetentionStore,
    UserStore, VitalsStore,
):  # fmt: skip
    """Common code of :class:`SqliteStore` and :class:`PostgresStore`."""

    dialect: str

    def __init__(self, engine: sa.Engine, placeholder: str, multirow_inserts: bool) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sql = IngestSql(placeholder, multirow_inserts)
        self._writer = BatchWriter(engine)

    # Lifecycle -----------------------------------------------------------------------------------
    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def close(self) -> None:
        self._writer.close()
        self.engine.dispose()

    # Ingest --------------------------------------------------------------------------------------
    async def ingest(self, batch: IngestBatch) -> None:
        started = time.perf_counter()
        # Rows are built on the writer's thread, beside the event loop.
        await asyncio.wrap_future(self._writer.submit(lambda c: self._sql.write(c, ingest_rows(batch))))
        metrics.committed(
            len(batch.readings), (e.kind.value for e in batch.events), time.perf_counter() - started
        )

    def ingest_now(self, batch: IngestBatch) -> None:
        self._writer.run(lambda c: self._sql.write(c, ingest_rows(batch)))

    async def ingest_rows(self, rows: IngestRows) -> None:
        await asyncio.wrap_future(self._writer.submit(lambda c: self._sql.write(c, rows)))

    def _write(self, fn: Callable[[sa.Connection], T]) -> T:
        try:
            return self._writer.run(fn)
        except sa.exc.IntegrityError as exc:
            raise StoreError(f"conflicts with existing data: {exc.orig}") from exc

    def _read(self, query: sa.Executable) -> list[sa.Row[tuple[object, ...]]]:
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def _read_one(self, query: sa.Executable) -> sa.Row[tuple[object, ...]] | None:
        rows = self._read(query)
        return rows[0] if rows else None

    # Organisations and users ---------------------------------------------------------------------
    def create_org(
        self, name: str, region: Region, timezone: str, locale: Locale, org_id: str | None = None
    ) -> Organisation:
        org = Organisation(org_id or _new_id(), name, region, timezone, locale)
        values: dict[str, Any] = {"id": org.id, "name": name, "region": region.value, "timezone": timezone}
        values |= {"locale": locale.value, "created_us": _now_us()}
        self._write(lambda c: c.execute(schema.organisations.insert().values(**values)))
        return org

    def org_by_name(self, name: str) -> Organisation | None:
        return _org(
            self._read_one(sa.select(schema.organisations).where(schema.organisations.c.name == name))
        )

    def org(self, org_id: str) -> Organisation | None:
        return _org(
            self._read_one(sa.select(schema.organisations).where(schema.organisations.c.id == org_id))
        )

    def create_user(self, org_id: str, email: str, password_hash: str, role: Role, display_name: str) -> User:
        user = User(_new_id(), org_id, email.lower(), role, display_name)
        values: dict[str, Any] = {
            "id": user.id,
            "org_id": org_id,
            "email": user.email,
            "password_hash": password_hash,
        }
        values |= {"role": role.value, "display_name": display_name, "created_us": _now_us()}
        self._write(lambda c: c.execute(schema.users.insert().values(**values)))
        return user

    def user(self, user_id: str) -> User | None:
        row = self._read_one(sa.select(schema.users).where(schema.users.c.id == user_id))
        return None if row is None else _user(row)

    def user_by_email(self, email: str) -> tuple[User, str] | None:
        row = self._read_one(sa.select(schema.users).where(schema.users.c.email == email.lower()))
        return None if row is None else (_user(row), row.password_hash)

    def create_token(self, user_id: str, token_hash: str, label: str) -> str:
        token_id = _new_id()
        values: dict[str, Any] = {
            "id": token_id,
            "user_id": user_id,
            "token_hash": token_hash,
            "label": label,
        }
        values["created_us"] = _now_us()
        self._write(lambda c: c.execute(schema.tokens.insert().values(**values)))
        return token_id

    def user_for_token(self, token_hash: str) -> User | None:
        t, u = schema.tokens, schema.users
        query = (
            sa.select(u)
            .join(t, t.c.user_id == u.c.id)
            .where(t.c.token_hash == token_hash, t.c.revoked_us.is_(None))
        )
        row = self._read_one(query)
        return None if row is None else _user(row)

    def link_wearer(self, user_id: str, wearer_id: str) -> None:
        values = {"user_id": user_id, "wearer_id": wearer_id}
        self._write(lambda c: c.execute(schema.user_wearers.insert().values(**values)))

    def linked_wearers(self, user_id: str) -> frozenset[str]:
        uw = schema.user_wearers
        return frozenset(r.wearer_id for r in self._read(sa.select(uw).where(uw.c.user_id == user_id)))

    # Wearers and devices -------------------------------------------------------------------------
    def create_wearer(self, org_id: str, name: str) -> Wearer:
        wearer = Wearer(_new_id(), org_id, name)
        values = {"id": wearer.id, "org_id": org_id, "name": name, "created_us": _now_us()}
        self._write(lambda c: c.execute(schema.wearers.insert().values(**values)))
        return wearer

    def wearers(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[Wearer]:
        w = schema.wearers
        query = _scoped(sa.select(w), w, scope).order_by(w.c.name, w.c.id).limit(limit).offset(offset)
        return [Wearer(r.id, r.org_id, r.name) for r in self._read(query)]

    def wearer(self, scope: Scope, wearer_id: str) -> Wearer | None:
        w = schema.wearers
        row = self._read_one(_scoped(sa.select(w), w, scope).where(w.c.id == wearer_id))
        return None if row is None else Wearer(row.id, row.org_id, row.name)

    def rename_wearer(self, scope: Scope, wearer_id: str, name: str) -> Wearer | None:
        w = schema.wearers
        if not scope.allows(wearer_id):
            return None
        query = w.update().where(w.c.id == wearer_id, w.c.org_id == scope.org_id).values(name=name)
        if not self._write(lambda c: c.execute(query).rowcount):
            return None
        return Wearer(wearer_id, scope.org_id, name)

    def create_device(
        self,
        org_id: str,
        wearer_id: str | None,
        unique_id: str,
        protocol: str,
        model: str | None = None,
        timezone: str | None = None,
        expected_interval_s: float | None = None,
    ) -> Device:
        device = Device(
            _new_id(), org_id, wearer_id, unique_id, protocol, model, timezone, expected_interval_s
        )
        values: dict[str, Any] = {
            "id": device.id,
            "org_id": org_id,
            "wearer_id": wearer_id,
            "unique_id": unique_id,
        }
        values |= {"protocol": protocol, "model": model, "timezone": timezone, "created_us": _now_us()}
        values["expected_interval_s"] = expected_interval_s
        self._write(lambda c: c.execute(schema.devices.insert().values(**values)))
        return device

    def device_by_unique_id(self, unique_id: str) -> Device | None:
        d = schema.devices
        return _device(self._read_one(sa.select(d).where(d.c.unique_id == unique_id)))

    def devices_by_unique_ids(self, unique_ids: Sequence[str]) -> dict[str, Device]:
        d = schema.devices
        found: dict[str, Device] = {}
        for start in range(0, len(unique_ids), 500):  # bounded IN lists
            chunk = list(unique_ids[start : start + 500])
            for row in self._read(sa.select(d).where(d.c.unique_id.in_(chunk))):
                device = _device(row)
                if device is not None:
                    found[device.unique_id] = device
        return found

    def devices(
        self, scope: Scope, wearer_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Device]:
        d = schema.devices
        query = _scoped(sa.select(d), d, scope)
        if wearer_id is not None:
            query = query.where(d.c.wearer_id == wearer_id)
        rows = self._read(query.order_by(d.c.unique_id).limit(limit).offset(offset))
        return [dev for dev in map(_device, rows) if dev is not None]

    def device(self, scope: Scope, device_id: str) -> Device | None:
        d = schema.devices
        rows = self._read(_scoped(sa.select(d), d, scope).where(d.c.id == device_id))
        return _device(rows[0]) if rows else None

    def update_device(self, scope: Scope, device_id: str, changes: Mapping[str, object]) -> Device | None:
        """Change some of ``wearer_id``, ``model``, ``timezone``, ``expected_interval_s`` (admins' tools)."""
        d = schema.devices
        unknown = set(changes) - DEVICE_SETTINGS
        if unknown:
            raise StoreError(f"devices have no setting {sorted(unknown)}")
        if scope.wearer_ids is not None:
            return None  # a family member's view changes no device
        query = d.update().where(d.c.id == device_id, d.c.org_id == scope.org_id).values(**changes)
        if changes and not self._write(lambda c: c.execute(query).rowcount):
            return None
        return self.device(scope, device_id)

    def device_org(self, device_id: str) -> str | None:
        d = schema.devices
        row = self._read_one(sa.select(d.c.org_id).where(d.c.id == device_id))
        return None if row is None else str(row.org_id)

    def device_state(self, device_id: str) -> DeviceState | None:
        return self.device_states([device_id]).get(device_id)

    def device_states(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        s = schema.device_state
        found: dict[str, DeviceState] = {}
        for start in range(0, len(device_ids), 500):  # bounded IN lists
            chunk = list(device_ids[start : start + 500])
            for row in self._read(sa.select(s).where(s.c.device_id.in_(chunk))):
                found[row.device_id] = _state(row)
        return found

    def devices_with_state(self) -> list[tuple[Device, DeviceState]]:
        d, s = schema.devices, schema.device_state
        rows = self._read(sa.select(d, s).join(s, s.c.device_id == d.c.id))
        return [(dev, _state(r)) for r in rows if (dev := _device(r)) is not None]

    # Detection settings --------------------------------------------------------------------------
    def set_wearer_settings(self, scope: Scope, wearer_id: str, settings: dict[str, Any]) -> bool:
        w = schema.wearers
        query = w.update().where(w.c.id == wearer_id, w.c.org_id == scope.org_id)
        if not scope.allows(wearer_id):
            return False
        raw = orjson.dumps(settings).decode() if settings else None
        return bool(self._write(lambda c: c.execute(query.values(settings=raw)).rowcount))

    def detection_settings(self, wearer_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Per wearer: the organisation's time zone and the wearer's threshold overrides."""
        w, o = schema.wearers, schema.organisations
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for start in range(0, len(wearer_ids), 500):
            chunk = list(wearer_ids[start : start + 500])
            query = sa.select(w.c.id, w.c.settings, o.c.timezone).join(o, o.c.id == w.c.org_id)
            for row in self._read(query.where(w.c.id.in_(chunk))):
                found[row.id] = (row.timezone, orjson.loads(row.settings) if row.settings else {})
        return found

    # Geofences -----------------------------------------------------------------------------------
    def create_geofence(
        self,
        org_id: str,
        wearer_id: str | None,
        name: str,
        kind: FenceKind,
        geometry: dict[str, Any],
        radius_m: float | None = None,
        width_m: float | None = None,
        schedule: Schedule | None = None,
    ) -> Fence:
        fence = Fence(_new_id(), org_id, wearer_id, name, kind, geometry, radius_m, width_m, schedule)
        now = _now_us()
        values: dict[str, Any] = {"id": fence.id, "org_id": org_id, "wearer_id": wearer_id, "name": name}
        values |= {"kind": kind, "geometry": orjson.dumps(geometry).decode(), "radius_m": radius_m}
        values |= {"width_m": width_m, "created_us": now, "updated_us": now}
        values["schedule"] = None if schedule is None else msgspec.json.encode(schedule).decode()
        self._write(lambda c: c.execute(schema.geofences.insert().values(**values)))
        return fence

    def geofences(
        self, scope: Scope, wearer_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Fence]:
        g = schema.geofences
        query = _fences_in(scope)
        if wearer_id is not None:
            query = query.where(sa.or_(g.c.wearer_id == wearer_id, g.c.wearer_id.is_(None)))
        query = query.order_by(g.c.name, g.c.id).limit(limit).offset(offset)
        return [_fence(r) for r in self._read(query)]

    def geofence(self, scope: Scope, fence_id: str) -> Fence | None:
        row = self._read_one(_fences_in(scope).where(schema.geofences.c.id == fence_id))
        return None if row is None else _fence(row)

    def delete_geofence(self, scope: Scope, fence_id: str) -> bool:
        fence = self.geofence(scope, fence_id)
        if fence is None:
            return False
        g = schema.geofences
        self._write(lambda c: c.execute(g.delete().where(g.c.id == fence_id, g.c.org_id == scope.org_id)))
        return True

    def all_geofences(self) -> list[Fence]:
        """Every fence of every organisation (for the pipeline's index; not for callers' eyes)."""
        return [_fence(r) for r in self._read(sa.select(schema.geofences))]

    def geofences_revision(self) -> tuple[int, int]:
        """Changes whenever a fence is added, changed or removed (count, newest update)."""
        g = schema.geofences
        row = self._read_one(sa.select(sa.func.count(), sa.func.max(g.c.updated_us)))
        count, newest = (0, 0) if row is None else cast(tuple[int | None, int | None], tuple(row))
        return int(count or 0), int(newest or 0)

    # Queries -------------------------------------------------------------------------------------
    def alerts(
        self,
        scope: Scope,
        status: AlertStatus | None = None,
        kind: EventKind | None = None,
        wearer_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
        opened_before: datetime | None = None,
    ) -> list[Alert]:
        a = schema.alerts
        query = _scoped(sa.select(a), a, scope)
        if opened_before is not None:
            query = query.where(a.c.opened_at_us < to_us(opened_before))
        if status is not None:
            query = query.where(a.c.status == status.value)
        if kind is not None:
            query = query.where(a.c.kind == kind.value)
        if wearer_id is not None:
            query = query.where(a.c.wearer_id == wearer_id)
        query = query.order_by(a.c.opened_at_us.desc(), a.c.id).limit(limit).offset(offset)
        return [alert_from_row(r) for r in self._read(query)]

    def alert(self, scope: Scope, alert_id: str) -> Alert | None:
        a = schema.alerts
        row = self._read_one(_scoped(sa.select(a), a, scope).where(a.c.id == alert_id))
        return None if row is None else alert_from_row(row)

    def positions(
        self,
        scope: Scope,
        wearer_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
        include_rejected: bool = False,
        offset: int = 0,
    ) -> list[Position]:
        r = schema.readings
        query = _scoped(sa.select(r), r, scope).where(r.c.wearer_id == wearer_id, r.c.latitude.is_not(None))
        if not include_rejected:
            query = query.where(r.c.rejected.is_(None))
        if since is not None:
            query = query.where(r.c.time_us >= to_us(since))
        if until is not None:
            query = query.where(r.c.time_us < to_us(until))
        query = query.order_by(r.c.time_us.desc(), r.c.id.desc()).limit(limit).offset(offset)
        return [
            Position(
                from_us(x.time_us),
                from_us(x.received_us),
                x.device_id,
                x.latitude,
                x.longitude,
                x.accuracy_m,
                x.speed_kmh,
                x.battery_pct,
                x.rejected,
            )
            for x in self._read(query)
        ]

    def events(
        self, scope: Scope, wearer_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Event]:
        e = schema.events
        query = _scoped(sa.select(e), e, scope)
        if wearer_id is not None:
            query = query.where(e.c.wearer_id == wearer_id)
        query = query.order_by(e.c.time_us.desc(), e.c.id.desc()).limit(limit).offset(offset)
        return [_event(r) for r in self._read(query)]

    def count_readings(self, device_id: str | None = None) -> int:
        r = schema.readings
        query = sa.select(sa.func.count()).select_from(r)
        if device_id is not None:
            query = query.where(r.c.device_id == device_id)
        row = self._read_one(query)
        return int(row[0]) if row is not None else 0  # type: ignore[call-overload]


SelectT = TypeVar("SelectT", bound=sa.Select[tuple[object, ...]])


def _scoped(query: SelectT, table: sa.Table, scope: Scope) -> SelectT:
    """Restrict a query to the caller's organisation (and wearers, for family members)."""
    query = query.where(table.c.org_id == scope.org_id)
    if scope.wearer_ids is not None:
        column = table.c.id if table.name == "wearers" else table.c.wearer_id
        query = query.where(column.in_(sorted(scope.wearer_ids)))
    return query


def _fences_in(scope: Scope) -> sa.Select[tuple[object, ...]]:
    """Fences a caller may see: a family member sees their wearers' and the organisation-wide ones."""
    g = schema.geofences
    query = sa.select(g).where(g.c.org_id == scope.org_id)
    if scope.wearer_ids is not None:
        query = query.where(sa.or_(g.c.wearer_id.in_(sorted(scope.wearer_ids)), g.c.wearer_id.is_(None)))
    return query


def _org(row: sa.Row[tuple[object, ...]] | None) -> Organisation | None:
    if row is None:
        return None
    return Organisation(row.id, row.name, Region(row.region), row.timezone, Locale(row.locale))


def _user(row: sa.Row[tuple[object, ...]]) -> User:
    return User(row.id, row.org_id, row.email, Role(row.role), row.display_name)


def _device(row: sa.Row[tuple[object, ...]] | None) -> Device | None:
    if row is None:
        return None
    return Device(
        row.id, row.org_id, row.wearer_id, row.unique_id, row.protocol, row.model, row.timezone,
        row.expected_interval_s,
    )  # fmt: skip


def _state(row: sa.Row[tuple[object, ...]]) -> DeviceState:
    fix_time = None if row.fix_time_us is None else from_us(row.fix_time_us)
    return DeviceState(
        row.device_id, from_us(row.last_seen_us), fix_time, row.fix_latitude, row.fix_longitude,
        row.battery_pct, row.detectors,
    )  # fmt: skip


def _fence(row: sa.Row[tuple[object, ...]]) -> Fence:
    schedule = None if row.schedule is None else msgspec.json.decode(row.schedule, type=Schedule)
    return Fence(
        row.id, row.org_id, row.wearer_id, row.name, row.kind, orjson.loads(row.geometry), row.radius_m,
        row.width_m, schedule,
    )  # fmt: skip


def _event(row: sa.Row[tuple[object, ...]]) -> Event:
    details = orjson.loads(row.details) if row.details else {}
    return Event(
        row.org_id, row.wearer_id, row.device_id, EventKind(row.kind), from_us(row.time_us),
        from_us(row.received_us), row.latitude, row.longitude, details,
    )  # fmt: skip
