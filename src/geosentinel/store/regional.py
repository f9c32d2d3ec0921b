"""The store the service uses: each organisation's data in its own region's store.

:class:`RegionalStore` implements the :class:`~geosentinel.store.base.Store` contract by routing every
call to the store of the region the organisation is pinned to (``eu``, ``cn``), as the shared directory
(:mod:`.org_directory`) says. Nothing about an organisation is written to, or read from, another
region's store:

- calls that name an organisation (a :class:`Scope`, an ``org_id``, an alert's or a device's org) go to
  that organisation's region only;
- calls that start from a bare key (a device's unique id, a login e-mail, a session or token hash) ask
  each region in use and take the one that knows it; unique keys are checked across regions on creation;
- time-driven sweeps (due escalations and notifications, offline devices, retention) merge the regions'
  answers, each row then handled in its own region.

A region's store is opened (and migrated) when an organisation first lives there, so a deployment with
only French organisations has no Chinese database at all.

Writes of one ingest batch spanning regions are one transaction per region; the batch is acknowledged to
the devices only when every region has committed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from geosentinel.alerts.lifecycle import Action, Outcome
from geosentinel.alerts.policy import Policy
from geosentinel.alerts.policy import Position as EscalationPosition
from geosentinel.detect.fences import Fence, FenceKind
from geosentinel.detect.schedule import Schedule
from geosentinel.model import (
    Alert,
    AlertStatus,
    Contact,
    Device,
    Event,
    EventKind,
    Locale,
    Organisation,
    Reading,
    Region,
    Role,
    User,
    Wearer,
)
from geosentinel.store.base import DeviceState, IngestBatch, IngestRows, Position, Scope, Store, StoreError
from geosentinel.store.org_directory import NameTaken, OrgDirectory

if TYPE_CHECKING:
    from geosentinel.alerts.service_levels import AlertFacts
    from geosentinel.store.accounts import LoginState, TokenRecord
    from geosentinel.store.alert_care import AckTarget, DueEscalation, Outgoing, PolicyRecord, Timeline
    from geosentinel.store.audit import AuditEntry
    from geosentinel.store.export import Section
    from geosentinel.store.users import OrgRecord, UserRecord
    from geosentinel.store.vitals import Vitals

T = TypeVar("T")
R = TypeVar("R")  # a reading, as a struct or a row
S = TypeVar("S")  # a device state, as a struct or a row

# How long the list of regions in use is trusted. Sweeps and logins fan out to every region in use, several
# times a second; a region is put in use by creating an organisation there (here, or by the CLI in another
# process), which is rare. Lookups that find nothing ask again with a fresh list, so a uniqueness check
# never misses a region.
REGIONS_IN_USE_TTL_S = 5.0


class RegionalStore:
    def __init__(
        self, directory: OrgDirectory, urls: Mapping[Region, str], open_region: Callable[[str], Store]
    ) -> None:
        self.directory = directory
        self.dialect = directory.engine.dialect.name
        self._urls = dict(urls)
        self._open_region = open_region
        self._stores: dict[Region, Store] = {}
        self._opening = threading.Lock()  # API routes run in a thread pool
        # Routing caches: what an id belongs to never changes.
        self._org_regions: dict[str, Region] = {}
        self._device_orgs: dict[str, str] = {}
        self._user_orgs: dict[str, str] = {}
        self._notification_orgs: dict[str, str] = {}
        self._regions_in_use: tuple[float, list[Region]] | None = None  # (when read, monotonic; regions)

    # Routing ---------------------------------------------------------------------------------------
    def region_store(self, region: Region) -> Store:
        """The store of ``region``, opened (and migrated) on first use."""
        store = self._stores.get(region)
        if store is None:
            with self._opening:
                store = self._stores.get(region)
                if store is None:
                    store = self._stores[region] = self._open_region(self._urls[region])
        return store

    def _in_use(self, fresh: bool = False) -> list[Store]:
        known = self._regions_in_use
        now = time.monotonic()
        if fresh or known is None or now - known[0] > REGIONS_IN_USE_TTL_S:
            known = self._regions_in_use = (now, self.directory.regions_in_use())
        return [self.region_store(region) for region in known[1]]

    def _region(self, org_id: str) -> Region | None:
        region = self._org_regions.get(org_id)
        if region is None:
            region = self.directory.region_of(org_id)
            if region is not None:
                self._org_regions[org_id] = region
        return region

    def _known_region(self, org_id: str) -> Region:
        region = self._region(org_id)
        if region is None:
            raise StoreError(f"unknown organisation {org_id!r}")
        return region

    def _of_org(self, org_id: str) -> Store:
        return self.region_store(self._known_region(org_id))

    def _scoped(self, scope: Scope) -> Store:
        region = self._region(scope.org_id)
        # An organisation the directory does not know has no data anywhere: any region answers "none".
        return self.region_store(region or Region.EU)

    def _of_user(self, user_id: str) -> Store:
        org_id = self._user_orgs.get(user_id)
        if org_id is None:
            user = self._first(lambda s: s.user(user_id))
            if user is None:
                raise StoreError(f"unknown user {user_id!r}")
            org_id = self._remember_user(user).org_id
        return self._of_org(org_id)

    def _device_region(self, device_id: str) -> Region:
        org_id = self._device_orgs.get(device_id)
        if org_id is None:
            org_id = self._first(lambda s: s.device_org(device_id))
            if org_id is None:
                raise StoreError(f"unknown device {device_id!r}")
            self._device_orgs[device_id] = org_id
        return self._known_region(org_id)

    def _first(self, ask: Callable[[Store], T | None]) -> T | None:
        asked = self._in_use()
        for store in asked:
            found = ask(store)
            if found is not None:
                return found
        for store in self._in_use(fresh=True):  # a region put in use since the list was read
            if store not in asked:
                found = ask(store)
                if found is not None:
                    return found
        return None

    def _remember_user(self, user: User) -> User:
        self._user_orgs[user.id] = user.org_id
        return user

    def _remember_devices(self, devices: Iterable[Device]) -> None:
        for device in devices:
            self._device_orgs[device.id] = device.org_id

    # Lifecycle -------------------------------------------------------------------------------------
    def migrate(self) -> None:
        self.directory.migrate()
        for store in list(self._stores.values()):
            store.migrate()

    def close(self) -> None:
        for store in list(self._stores.values()):
            store.close()
        self.directory.close()

    # Ingest ----------------------------------------------------------------------------------------
    def _split(self, batch: IngestBatch) -> dict[Region, IngestBatch]:
        readings, events, states = self._by_region(
            batch.readings, _reading_org, batch.events, batch.states, _state_device
        )
        regions = set(readings) | set(events) | set(states)
        if len(regions) == 1:
            return {regions.pop(): batch}  # the usual case: the batch as it came
        return {
            r: IngestBatch(readings.get(r, ()), events.get(r, ()), states.get(r, ()), batch.alert_kinds)
            for r in regions
        }

    def _by_region(
        self,
        readings: Sequence[R],
        reading_org: Callable[[R], str],
        events: Sequence[Event],
        states: Sequence[S],
        state_device: Callable[[S], str],
    ) -> tuple[dict[Region, list[R]], dict[Region, list[Event]], dict[Region, list[S]]]:
        """A batch's readings, events and device states by region (readings and states as structs or as
        rows: ``reading_org`` and ``state_device`` read their organisation and device)."""
        by_reading: dict[Region, list[R]] = {}
        by_event: dict[Region, list[Event]] = {}
        by_state: dict[Region, list[S]] = {}
        for reading in readings:
            by_reading.setdefault(self._known_region(reading_org(reading)), []).append(reading)
        for event in events:
            by_event.setdefault(self._known_region(event.org_id), []).append(event)
        for state in states:
            by_state.setdefault(self._device_region(state_device(state)), []).append(state)
        return by_reading, by_event, by_state

    async def ingest(self, batch: IngestBatch) -> None:
        parts = self._split(batch)
        await asyncio.gather(*(self.region_store(r).ingest(part) for r, part in parts.items()))

    def ingest_now(self, batch: IngestBatch) -> None:
        for region, part in self._split(batch).items():
            self.region_store(region).ingest_now(part)

    async def ingest_rows(self, rows: IngestRows) -> None:
        # A reading row starts with its organisation, a state row with its device.
        readings, events, states = self._by_region(
            rows.readings, itemgetter(0), rows.events, rows.states, itemgetter(0)
        )
        regions = set(readings) | set(events) | set(states)
        if len(regions) == 1:  # the usual case: the rows as they came
            await self.region_store(regions.pop()).ingest_rows(rows)
            return
        parts = {
            r: IngestRows(readings.get(r, []), events.get(r, []), states.get(r, []), rows.alert_kinds)
            for r in regions
        }
        await asyncio.gather(*(self.region_store(r).ingest_rows(part) for r, part in parts.items()))

    # Organisations and users -------------------------------------------------------------------------
    def create_org(
        self, name: str, region: Region, timezone: str, locale: Locale, org_id: str | None = None
    ) -> Organisation:
        if region not in self._urls:
            raise StoreError(f"no store is configured for region {region.value!r}")
        try:
            new_id = self.directory.add(name, region)
        except NameTaken as exc:
            raise StoreError(f"conflicts with existing data: an organisation is named {name!r}") from exc
        try:
            org = self.region_store(region).create_org(name, region, timezone, locale, org_id=new_id)
        except BaseException:
            self.directory.remove(new_id)
            raise
        self._org_regions[org.id] = region
        self._regions_in_use = None
        return org

    def org_by_name(self, name: str) -> Organisation | None:
        found = self.directory.by_name(name)
        return None if found is None else self.region_store(found[1]).org(found[0])

    def org(self, org_id: str) -> Organisation | None:
        region = self._region(org_id)
        return None if region is None else self.region_store(region).org(org_id)

    def create_user(self, org_id: str, email: str, password_hash: str, role: Role, display_name: str) -> User:
        store = self._of_org(org_id)
        if self._first(lambda s: s.user_by_email(email)) is not None:  # logins are global
            raise StoreError(f"conflicts with existing data: a user has the e-mail {email!r}")
        return self._remember_user(store.create_user(org_id, email, password_hash, role, display_name))

    def user(self, user_id: str) -> User | None:
        user = self._first(lambda s: s.user(user_id))
        return None if user is None else self._remember_user(user)

    def user_by_email(self, email: str) -> tuple[User, str] | None:
        found = self._first(lambda s: s.user_by_email(email))
        if found is not None:
            self._remember_user(found[0])
        return found

    def create_token(self, user_id: str, token_hash: str, label: str) -> str:
        return self._of_user(user_id).create_token(user_id, token_hash, label)

    def user_for_token(self, token_hash: str) -> User | None:
        user = self._first(lambda s: s.user_for_token(token_hash))
        return None if user is None else self._remember_user(user)

    def link_wearer(self, user_id: str, wearer_id: str) -> None:
        self._of_user(user_id).link_wearer(user_id, wearer_id)

    def linked_wearers(self, user_id: str) -> frozenset[str]:
        return self._of_user(user_id).linked_wearers(user_id)

    # Wearers and devices -------------------------------------------------------------------------------
    def create_wearer(self, org_id: str, name: str) -> Wearer:
        return self._of_org(org_id).create_wearer(org_id, name)

    def wearers(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[Wearer]:
        return self._scoped(scope).wearers(scope, limit, offset)

    def wearer(self, scope: Scope, wearer_id: str) -> Wearer | None:
        return self._scoped(scope).wearer(scope, wearer_id)

    def rename_wearer(self, scope: Scope, wearer_id: str, name: str) -> Wearer | None:
        return self._scoped(scope).rename_wearer(scope, wearer_id, name)

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
        store = self._of_org(org_id)
        if self._first(lambda s: s.device_by_unique_id(unique_id)) is not None:  # ids are global
            raise StoreError(f"conflicts with existing data: a device has the unique id {unique_id!r}")
        device = store.create_device(
            org_id, wearer_id, unique_id, protocol, model, timezone, expected_interval_s
        )
        self._remember_devices((device,))
        return device

    def device_by_unique_id(self, unique_id: str) -> Device | None:
        device = self._first(lambda s: s.device_by_unique_id(unique_id))
        if device is not None:
            self._remember_devices((device,))
        return device

    def devices_by_unique_ids(self, unique_ids: Sequence[str]) -> dict[str, Device]:
        found: dict[str, Device] = {}
        for store in self._in_use():
            missing = [u for u in unique_ids if u not in found] if found else unique_ids
            if not missing:
                break
            found |= store.devices_by_unique_ids(missing)
        self._remember_devices(found.values())
        return found

    def devices(
        self, scope: Scope, wearer_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Device]:
        return self._scoped(scope).devices(scope, wearer_id, limit, offset)

    def device(self, scope: Scope, device_id: str) -> Device | None:
        return self._scoped(scope).device(scope, device_id)

    def update_device(self, scope: Scope, device_id: str, changes: Mapping[str, object]) -> Device | None:
        return self._scoped(scope).update_device(scope, device_id, changes)

    def device_org(self, device_id: str) -> str | None:
        return self._first(lambda s: s.device_org(device_id))

    def device_state(self, device_id: str) -> DeviceState | None:
        return self.device_states([device_id]).get(device_id)

    def device_states(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        found: dict[str, DeviceState] = {}
        for store in self._in_use():
            found |= store.device_states(device_ids)
        return found

    def devices_with_state(self) -> list[tuple[Device, DeviceState]]:
        found = [pair for store in self._in_use() for pair in store.devices_with_state()]
        self._remember_devices(device for device, _ in found)
        return found

    # Detection settings and geofences -----------------------------------------------------------------
    def set_wearer_settings(self, scope: Scope, wearer_id: str, settings: dict[str, Any]) -> bool:
        return self._scoped(scope).set_wearer_settings(scope, wearer_id, settings)

    def detection_settings(self, wearer_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        for store in self._in_use():
            found |= store.detection_settings(wearer_ids)
        return found

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
        return self._of_org(org_id).create_geofence(
            org_id, wearer_id, name, kind, geometry, radius_m, width_m, schedule
        )

    def geofences(
        self, scope: Scope, wearer_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Fence]:
        return self._scoped(scope).geofences(scope, wearer_id, limit, offset)

    def geofence(self, scope: Scope, fence_id: str) -> Fence | None:
        return self._scoped(scope).geofence(scope, fence_id)

    def delete_geofence(self, scope: Scope, fence_id: str) -> bool:
        return self._scoped(scope).delete_geofence(scope, fence_id)

    def all_geofences(self) -> list[Fence]:
        return [fence for store in self._in_use() for fence in store.all_geofences()]

    def geofences_revision(self) -> tuple[int, int]:
        revisions = [store.geofences_revision() for store in self._in_use()]
        return sum(count for count, _ in revisions), max((newest for _, newest in revisions), default=0)

    # Queries -----------------------------------------------------------------------------------------
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
        return self._scoped(scope).alerts(scope, status, kind, wearer_id, limit, offset, opened_before)

    def alert(self, scope: Scope, alert_id: str) -> Alert | None:
        return self._scoped(scope).alert(scope, alert_id)

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
        return self._scoped(scope).positions(scope, wearer_id, since, until, limit, include_rejected, offset)

    def events(
        self, scope: Scope, wearer_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Event]:
        return self._scoped(scope).events(scope, wearer_id, limit, offset)

    def count_readings(self, device_id: str | None = None) -> int:
        return sum(store.count_readings(device_id) for store in self._in_use())

    # Taking alerts -------------------------------------------------------------------------------------
    def create_contact(
        self, org_id: str, name: str, locale: Locale, timezone: str, urls: Sequence[str], now: datetime
    ) -> Contact:
        return self._of_org(org_id).create_contact(org_id, name, locale, timezone, urls, now)

    def contacts(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[Contact]:
        return self._scoped(scope).contacts(scope, limit, offset)

    def contact(self, scope: Scope, contact_id: str) -> Contact | None:
        return self._scoped(scope).contact(scope, contact_id)

    def create_policy(
        self, org_id: str, name: str, policy: Policy, is_default: bool, now: datetime
    ) -> PolicyRecord:
        return self._of_org(org_id).create_policy(org_id, name, policy, is_default, now)

    def policies(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[PolicyRecord]:
        return self._scoped(scope).policies(scope, limit, offset)

    def set_wearer_policy(self, scope: Scope, wearer_id: str, policy_id: str | None) -> bool:
        return self._scoped(scope).set_wearer_policy(scope, wearer_id, policy_id)

    def due_escalations(self, now: datetime, limit: int = 100) -> list[DueEscalation]:
        due = [e for store in self._in_use() for e in store.due_escalations(now, limit)]
        return sorted(due, key=lambda e: e.due)[:limit]

    def advance_escalation(
        self,
        seen: DueEscalation,
        contacts: Sequence[str],
        sent: EscalationPosition | None,
        next_position: EscalationPosition,
        next_due: datetime | None,
        now: datetime,
    ) -> bool:
        store = self._of_org(seen.org_id)
        return store.advance_escalation(seen, contacts, sent, next_position, next_due, now)

    def stop_escalation(self, alert_id: str) -> None:
        for store in self._in_use():  # a no-op where the alert is not
            store.stop_escalation(alert_id)

    def next_escalation_due(self) -> datetime | None:
        return min((d for s in self._in_use() if (d := s.next_escalation_due()) is not None), default=None)

    def due_notifications(self, now: datetime, limit: int = 50) -> list[Outgoing]:
        due = [o for store in self._in_use() for o in store.due_notifications(now, limit)][:limit]
        for outgoing in due:
            self._notification_orgs[outgoing.id] = outgoing.alert.org_id
        return due

    def record_delivery(
        self,
        notification_id: str,
        handed_at: datetime,
        ok: bool,
        channel: int | None,
        error: str | None,
        attempts: list[dict[str, Any]],
        next_try: datetime | None,
        done_at: datetime,
    ) -> None:
        org_id = self._notification_orgs.pop(notification_id, None)
        if org_id is None:
            target = self.ack_target(notification_id)
            if target is None:
                raise StoreError(f"unknown notification {notification_id!r}")
            org_id = target.org_id
        self._of_org(org_id).record_delivery(
            notification_id, handed_at, ok, channel, error, attempts, next_try, done_at
        )

    def next_notification_due(self) -> datetime | None:
        return min((d for s in self._in_use() if (d := s.next_notification_due()) is not None), default=None)

    def change_alert(
        self,
        scope: Scope,
        alert_id: str,
        action: Action,
        actor: str,
        now: datetime,
        outcome: Outcome | None = None,
        note: str | None = None,
        at: datetime | None = None,
    ) -> Alert:
        return self._scoped(scope).change_alert(scope, alert_id, action, actor, now, outcome, note, at)

    def alert_timeline(self, scope: Scope, alert_id: str) -> Timeline | None:
        return self._scoped(scope).alert_timeline(scope, alert_id)

    def ack_target(self, notification_id: str) -> AckTarget | None:
        return self._first(lambda s: s.ack_target(notification_id))

    # Service figures -------------------------------------------------------------------------------------
    def set_wearer_contacts(self, scope: Scope, wearer_id: str, contact_ids: Sequence[str]) -> bool:
        return self._scoped(scope).set_wearer_contacts(scope, wearer_id, contact_ids)

    def wearer_contacts(self, scope: Scope, wearer_id: str) -> list[Contact] | None:
        return self._scoped(scope).wearer_contacts(scope, wearer_id)

    def record_view(self, scope: Scope, alert_id: str, actor: str, now: datetime) -> bool:
        return self._scoped(scope).record_view(scope, alert_id, actor, now)

    def alert_facts(
        self, scope: Scope, since: datetime, until: datetime, alert_id: str | None = None
    ) -> list[AlertFacts]:
        return self._scoped(scope).alert_facts(scope, since, until, alert_id)

    # The audit log, privacy and retention -------------------------------------------------------------------
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
        self._scoped(scope).record_read(scope, actor, resource, wearer_ids, records, query, now)

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
        return self._scoped(scope).audit_entries(scope, since, until, actor, wearer_id, limit, offset)

    def wearer_export(self, scope: Scope, wearer_id: str) -> Iterator[Section] | None:
        return self._scoped(scope).wearer_export(scope, wearer_id)

    def erase_wearer(self, scope: Scope, wearer_id: str, actor: str, now: datetime) -> dict[str, int] | None:
        return self._scoped(scope).erase_wearer(scope, wearer_id, actor, now)

    def set_retention(self, org_id: str, days: int) -> bool:
        region = self._region(org_id)
        return region is not None and self.region_store(region).set_retention(org_id, days)

    def purge_expired(self, now: datetime) -> dict[str, int]:
        totals: dict[str, int] = {}
        for store in self._in_use():
            for table, count in store.purge_expired(now).items():
                totals[table] = totals.get(table, 0) + count
        return totals

    # Accounts -------------------------------------------------------------------------------------------
    def login_state(self, email: str) -> LoginState | None:
        state = self._first(lambda s: s.login_state(email))
        if state is not None:
            self._remember_user(state.user)
        return state

    def record_login_failure(
        self, user_id: str, now: datetime, max_failures: int, lock_for: timedelta
    ) -> datetime | None:
        return self._of_user(user_id).record_login_failure(user_id, now, max_failures, lock_for)

    def record_login_success(self, user_id: str) -> None:
        self._of_user(user_id).record_login_success(user_id)

    def create_session(
        self, user_id: str, session_hash: str, csrf_token: str, now: datetime, expires: datetime
    ) -> None:
        self._of_user(user_id).create_session(user_id, session_hash, csrf_token, now, expires)

    def session_user(self, session_hash: str, now: datetime) -> tuple[User, str] | None:
        found = self._first(lambda s: s.session_user(session_hash, now))
        if found is not None:
            self._remember_user(found[0])
        return found

    def end_session(self, session_hash: str, now: datetime) -> None:
        for store in self._in_use():  # a no-op where the session is not
            store.end_session(session_hash, now)

    def create_scoped_token(
        self, user_id: str, token_hash: str, label: str, scopes: Sequence[str], now: datetime
    ) -> TokenRecord:
        return self._of_user(user_id).create_scoped_token(user_id, token_hash, label, scopes, now)

    def token_access(self, token_hash: str) -> tuple[User, frozenset[str]] | None:
        found = self._first(lambda s: s.token_access(token_hash))
        if found is not None:
            self._remember_user(found[0])
        return found

    def tokens_of(self, user_id: str, limit: int | None = None, offset: int = 0) -> list[TokenRecord]:
        return self._of_user(user_id).tokens_of(user_id, limit, offset)

    def revoke_token(self, user_id: str, token_id: str, now: datetime) -> bool:
        return self._of_user(user_id).revoke_token(user_id, token_id, now)

    # The organisation and its users (store/users.py) ------------------------------------------------------
    def vitals(
        self, scope: Scope, wearer_id: str, since: datetime, until: datetime, limit: int
    ) -> list[Vitals]:
        return self._scoped(scope).vitals(scope, wearer_id, since, until, limit)

    def organisation(self, scope: Scope) -> OrgRecord | None:
        return self._scoped(scope).organisation(scope)

    def update_organisation(self, scope: Scope, timezone: str | None, locale: Locale | None) -> bool:
        return self._scoped(scope).update_organisation(scope, timezone, locale)

    def users(
        self, scope: Scope, role: Role | None = None, limit: int | None = None, offset: int = 0
    ) -> list[UserRecord]:
        return self._scoped(scope).users(scope, role, limit, offset)

    def user_record(self, scope: Scope, user_id: str) -> UserRecord | None:
        return self._scoped(scope).user_record(scope, user_id)

    def set_linked_wearers(self, scope: Scope, user_id: str, wearer_ids: Sequence[str]) -> bool:
        return self._scoped(scope).set_linked_wearers(scope, user_id, wearer_ids)

    def disable_user(self, scope: Scope, user_id: str, now: datetime) -> bool:
        return self._scoped(scope).disable_user(scope, user_id, now)


def _reading_org(reading: Reading) -> str:
    return reading.device.org_id


def _state_device(state: DeviceState) -> str:
    return state.device_id
