"""The store contract: what the rest of GeoSentinel may ask of a database.

Two backends implement it (``SqliteStore``, the embedded default, and ``PostgresStore``) and one contract
test suite runs against both. Every read of tenant data takes a :class:`Scope`, so isolation between
organisations (and a family member's narrower view) is enforced here, in the data layer, not only in
the routes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

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

if TYPE_CHECKING:
    from geosentinel.alerts.service_levels import AlertFacts
    from geosentinel.store.accounts import LoginState, TokenRecord
    from geosentinel.store.alert_care import AckTarget, DueEscalation, Outgoing, PolicyRecord, Timeline
    from geosentinel.store.audit import AuditEntry
    from geosentinel.store.export import Section
    from geosentinel.store.users import OrgRecord, UserRecord
    from geosentinel.store.vitals import Vitals


class StoreError(Exception):
    """A request the store cannot satisfy (duplicate name, unknown reference, …)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which data a caller may see: one organisation, and optionally only some of its wearers."""

    org_id: str
    wearer_ids: frozenset[str] | None = None  # None: every wearer of the organisation

    def allows(self, wearer_id: str | None) -> bool:
        return self.wearer_ids is None or wearer_id in self.wearer_ids


class DeviceState(msgspec.Struct, frozen=True, gc=False):
    """What the pipeline remembers about a device between messages (and across restarts).

    A Struct, not a dataclass: the pipeline builds two for every reading (about 0.2 µs each against 2 µs
    for a frozen dataclass of seven fields). It holds only immutable values, so the collector can skip it.
    """

    device_id: str
    last_seen: datetime
    fix_time: datetime | None = None
    fix_latitude: float | None = None
    fix_longitude: float | None = None
    battery_pct: float | None = None
    detectors: str = "{}"  # JSON: detector name -> its state


@dataclass(frozen=True, slots=True)
class IngestBatch:
    """Everything one pipeline step produced; committed atomically, then acknowledged to devices."""

    readings: Sequence[Reading] = ()
    events: Sequence[Event] = ()
    states: Sequence[DeviceState] = ()
    alert_kinds: frozenset[EventKind] = field(default_factory=frozenset)  # event kinds that open alerts


@dataclass(frozen=True, slots=True)
class IngestRows:
    """An :class:`IngestBatch` as the writer binds it (``store.ingest.ingest_rows``): readings and device
    states as rows of plain values (one state per device), events as they are. What crosses to a writer
    process (pipeline/writer_process.py): decoding rows costs a fifth of decoding the structs."""

    readings: list[tuple[Any, ...]] = field(default_factory=list)  # store.ingest.READING_COLUMNS
    events: list[Event] = field(default_factory=list)
    states: list[tuple[Any, ...]] = field(default_factory=list)  # store.ingest.STATE_COLUMNS
    alert_kinds: frozenset[EventKind] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class Position:
    """A stored fix as the API shows it."""

    time: datetime
    received_at: datetime
    device_id: str
    latitude: float
    longitude: float
    accuracy_m: float | None
    speed_kmh: float | None
    battery_pct: float | None
    rejected: str | None


class Store(Protocol):
    """Repository methods. Ingest is async (awaited by the pipeline); the rest is sync and quick."""

    dialect: str

    def migrate(self) -> None:
        """Create or upgrade the schema."""

    def close(self) -> None:
        """Flush pending writes and release connections."""

    async def ingest(self, batch: IngestBatch) -> None:
        """Commit readings, events, alert changes and device states in one transaction."""

    def ingest_now(self, batch: IngestBatch) -> None:
        """Synchronous :meth:`ingest` for tools and benchmarks."""

    async def ingest_rows(self, rows: IngestRows) -> None:
        """:meth:`ingest` of a batch already turned into rows (by a writer process's core)."""

    # Directory -----------------------------------------------------------------------------------
    def create_org(
        self, name: str, region: Region, timezone: str, locale: Locale, org_id: str | None = None
    ) -> Organisation: ...
    def org_by_name(self, name: str) -> Organisation | None: ...
    def org(self, org_id: str) -> Organisation | None: ...
    def create_user(
        self, org_id: str, email: str, password_hash: str, role: Role, display_name: str
    ) -> User: ...
    def user(self, user_id: str) -> User | None: ...
    def user_by_email(self, email: str) -> tuple[User, str] | None:
        """The user and their password hash."""

    def create_token(self, user_id: str, token_hash: str, label: str) -> str: ...
    def user_for_token(self, token_hash: str) -> User | None: ...
    def link_wearer(self, user_id: str, wearer_id: str) -> None: ...
    def linked_wearers(self, user_id: str) -> frozenset[str]: ...
    def create_wearer(self, org_id: str, name: str) -> Wearer: ...
    def wearers(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[Wearer]: ...
    def wearer(self, scope: Scope, wearer_id: str) -> Wearer | None: ...
    def rename_wearer(self, scope: Scope, wearer_id: str, name: str) -> Wearer | None: ...
    def create_device(
        self,
        org_id: str,
        wearer_id: str | None,
        unique_id: str,
        protocol: str,
        model: str | None = None,
        timezone: str | None = None,
        expected_interval_s: float | None = None,
    ) -> Device: ...
    def device_by_unique_id(self, unique_id: str) -> Device | None: ...
    def devices_by_unique_ids(self, unique_ids: Sequence[str]) -> dict[str, Device]:
        """Registered devices among ``unique_ids`` (for batched lookups), keyed by unique id."""
        ...

    def devices(
        self, scope: Scope, wearer_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Device]: ...
    def device(self, scope: Scope, device_id: str) -> Device | None: ...
    def update_device(self, scope: Scope, device_id: str, changes: Mapping[str, object]) -> Device | None:
        """Change some of a device's ``wearer_id``, ``model``, ``timezone``, ``expected_interval_s``."""
        ...

    def device_org(self, device_id: str) -> str | None:
        """The organisation of a device, by its id (for routing a reading to its region)."""
        ...

    def device_state(self, device_id: str) -> DeviceState | None: ...
    def device_states(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        """The stored states of these devices (devices never seen are absent)."""

    def devices_with_state(self) -> list[tuple[Device, DeviceState]]:
        """Every device the pipeline has seen, with its state (for the sweep of time-driven detectors)."""
        ...

    # Detection settings and geofences ---------------------------------------------------------
    def set_wearer_settings(self, scope: Scope, wearer_id: str, settings: dict[str, Any]) -> bool: ...
    def detection_settings(self, wearer_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Per wearer: the organisation's time zone and the wearer's threshold overrides."""
        ...

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
    ) -> Fence: ...
    def geofences(
        self, scope: Scope, wearer_id: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Fence]: ...
    def geofence(self, scope: Scope, fence_id: str) -> Fence | None: ...
    def delete_geofence(self, scope: Scope, fence_id: str) -> bool: ...
    def all_geofences(self) -> list[Fence]: ...
    def geofences_revision(self) -> tuple[int, int]: ...

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
    ) -> list[Alert]: ...
    def alert(self, scope: Scope, alert_id: str) -> Alert | None: ...
    def positions(
        self,
        scope: Scope,
        wearer_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
        include_rejected: bool = False,
        offset: int = 0,
    ) -> list[Position]: ...
    def events(
        self, scope: Scope, wearer_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Event]: ...
    def count_readings(self, device_id: str | None = None) -> int: ...

    # Taking alerts (store/alert_care.py) ----------------------------------------------------------
    def create_contact(
        self, org_id: str, name: str, locale: Locale, timezone: str, urls: Sequence[str], now: datetime
    ) -> Contact: ...
    def contacts(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[Contact]: ...
    def contact(self, scope: Scope, contact_id: str) -> Contact | None: ...
    def create_policy(
        self, org_id: str, name: str, policy: Policy, is_default: bool, now: datetime
    ) -> PolicyRecord: ...
    def policies(self, scope: Scope, limit: int | None = None, offset: int = 0) -> list[PolicyRecord]: ...
    def set_wearer_policy(self, scope: Scope, wearer_id: str, policy_id: str | None) -> bool: ...
    def due_escalations(self, now: datetime, limit: int = 100) -> list[DueEscalation]: ...
    def advance_escalation(
        self,
        seen: DueEscalation,
        contacts: Sequence[str],
        sent: EscalationPosition | None,
        next_position: EscalationPosition,
        next_due: datetime | None,
        now: datetime,
    ) -> bool: ...
    def stop_escalation(self, alert_id: str) -> None: ...
    def next_escalation_due(self) -> datetime | None: ...
    def due_notifications(self, now: datetime, limit: int = 50) -> list[Outgoing]: ...
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
    ) -> None: ...
    def next_notification_due(self) -> datetime | None: ...
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
    ) -> Alert: ...
    def alert_timeline(self, scope: Scope, alert_id: str) -> Timeline | None: ...

    # Service figures (store/alert_figures.py) -------------------------------------------------------
    def set_wearer_contacts(self, scope: Scope, wearer_id: str, contact_ids: Sequence[str]) -> bool: ...
    def wearer_contacts(self, scope: Scope, wearer_id: str) -> list[Contact] | None: ...
    def record_view(self, scope: Scope, alert_id: str, actor: str, now: datetime) -> bool: ...
    def alert_facts(
        self, scope: Scope, since: datetime, until: datetime, alert_id: str | None = None
    ) -> list[AlertFacts]: ...

    # The audit log (store/audit.py) ------------------------------------------------------------------
    def record_read(
        self,
        scope: Scope,
        actor: str,
        resource: str,
        wearer_ids: Iterable[str | None],
        records: int,
        query: Mapping[str, object],
        now: datetime,
    ) -> None: ...
    # Accounts (store/accounts.py) -----------------------------------------------------------------------
    def login_state(self, email: str) -> LoginState | None: ...
    def record_login_failure(
        self, user_id: str, now: datetime, max_failures: int, lock_for: timedelta
    ) -> datetime | None: ...
    def record_login_success(self, user_id: str) -> None: ...
    def create_session(
        self, user_id: str, session_hash: str, csrf_token: str, now: datetime, expires: datetime
    ) -> None: ...
    def session_user(self, session_hash: str, now: datetime) -> tuple[User, str] | None: ...
    def end_session(self, session_hash: str, now: datetime) -> None: ...
    def create_scoped_token(
        self, user_id: str, token_hash: str, label: str, scopes: Sequence[str], now: datetime
    ) -> TokenRecord: ...
    def token_access(self, token_hash: str) -> tuple[User, frozenset[str]] | None: ...
    def tokens_of(self, user_id: str, limit: int | None = None, offset: int = 0) -> list[TokenRecord]: ...
    def revoke_token(self, user_id: str, token_id: str, now: datetime) -> bool: ...
    def wearer_export(self, scope: Scope, wearer_id: str) -> Iterator[Section] | None: ...
    def erase_wearer(self, scope: Scope, wearer_id: str, actor: str, now: datetime) -> dict[str, int] | None:
        """Delete everything about the wearer and their devices (store/erasure.py); rows per table, or
        None when the wearer is not in the scope."""
        ...

    def set_retention(self, org_id: str, days: int) -> bool: ...
    def purge_expired(self, now: datetime) -> dict[str, int]: ...
    def audit_entries(
        self,
        scope: Scope,
        since: datetime | None = None,
        until: datetime | None = None,
        actor: str | None = None,
        wearer_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]: ...
    def ack_target(self, notification_id: str) -> AckTarget | None: ...

    # The organisation and its users (store/users.py) ----------------------------------------------------
    def vitals(
        self, scope: Scope, wearer_id: str, since: datetime, until: datetime, limit: int
    ) -> list[Vitals]: ...
    def organisation(self, scope: Scope) -> OrgRecord | None: ...
    def update_organisation(self, scope: Scope, timezone: str | None, locale: Locale | None) -> bool: ...
    def users(
        self, scope: Scope, role: Role | None = None, limit: int | None = None, offset: int = 0
    ) -> list[UserRecord]: ...
    def user_record(self, scope: Scope, user_id: str) -> UserRecord | None: ...
    def set_linked_wearers(self, scope: Scope, user_id: str, wearer_ids: Sequence[str]) -> bool:
        """Replace the wearers a user is linked to; False: no such user in the organisation;
        :class:`~geosentinel.store.users.UnknownWearers` for wearers that are not the organisation's."""
        ...

    def disable_user(self, scope: Scope, user_id: str, now: datetime) -> bool:
        """Disable the user and revoke their sessions and tokens; False: no such user in the organisation."""
        ...
