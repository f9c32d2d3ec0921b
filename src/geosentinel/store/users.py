"""An organisation and its people in the store: the organisation's settings, its users, the wearers a family
member is linked to, and disabling an account.

Every method takes the caller's :class:`~geosentinel.store.base.Scope` first and reads or changes only that
organisation's rows. A disabled user is kept (the audit log names them) but cannot log in, and their sessions
and tokens are revoked with it (:mod:`.accounts` refuses disabled users too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from geosentinel.model import Locale, Region, Role, User
from geosentinel.store import schema
from geosentinel.store.base import Scope, StoreError
from geosentinel.store.schema import from_us, to_us

Row = sa.Row[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class OrgRecord:
    id: str
    name: str
    region: Region
    timezone: str
    locale: Locale
    retention_days: int


@dataclass(frozen=True, slots=True)
class UserRecord:
    user: User
    created_at: datetime
    disabled_at: datetime | None
    wearer_ids: tuple[str, ...]  # the wearers a family member is linked to, sorted


class UnknownWearers(StoreError):
    """Wearers named for a family member that are not of the organisation."""

    def __init__(self, wearer_ids: Sequence[str]) -> None:
        super().__init__(f"no wearer {', '.join(wearer_ids)} in this organisation")
        self.wearer_ids = tuple(wearer_ids)


class UserStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads and the writer)."""

    _read: Callable[[sa.Executable], list[Row]]
    _read_one: Callable[[sa.Executable], Row | None]
    _write: Callable[[Callable[[sa.Connection], Any]], Any]

    def organisation(self, scope: Scope) -> OrgRecord | None:
        """The caller's organisation with its settings."""
        o = schema.organisations
        row = self._read_one(sa.select(o).where(o.c.id == scope.org_id))
        if row is None:
            return None
        return OrgRecord(
            str(row.id), str(row.name), Region(row.region), str(row.timezone), Locale(row.locale),
            int(row.retention_days),
        )  # fmt: skip

    def update_organisation(self, scope: Scope, timezone: str | None, locale: Locale | None) -> bool:
        """Change the organisation's time zone (IANA, checked by the caller) and language."""
        changes: dict[str, str] = {}
        if timezone is not None:
            changes["timezone"] = timezone
        if locale is not None:
            changes["locale"] = locale.value
        if not changes:
            return True
        o = schema.organisations
        query = o.update().where(o.c.id == scope.org_id).values(**changes)
        return bool(self._write(lambda c: c.execute(query).rowcount))

    def users(
        self, scope: Scope, role: Role | None = None, limit: int | None = None, offset: int = 0
    ) -> list[UserRecord]:
        """The organisation's users (disabled ones included), by e-mail."""
        u = schema.users
        query = sa.select(u).where(u.c.org_id == scope.org_id)
        if role is not None:
            query = query.where(u.c.role == role.value)
        rows = self._read(query.order_by(u.c.email, u.c.id).limit(limit).offset(offset))
        return self._records(rows)

    def user_record(self, scope: Scope, user_id: str) -> UserRecord | None:
        u = schema.users
        rows = self._read(sa.select(u).where(u.c.id == user_id, u.c.org_id == scope.org_id))
        return self._records(rows)[0] if rows else None

    def set_linked_wearers(self, scope: Scope, user_id: str, wearer_ids: Sequence[str]) -> bool:
        """Replace the wearers a user is linked to. False if the user is not of the organisation;
        :class:`UnknownWearers` if a wearer is not."""
        u, w, uw = schema.users, schema.wearers, schema.user_wearers
        if self._read_one(sa.select(u.c.id).where(u.c.id == user_id, u.c.org_id == scope.org_id)) is None:
            return False
        wanted = sorted(set(wearer_ids))
        known: set[str] = set()
        for start in range(0, len(wanted), 500):  # bounded IN lists
            chunk = wanted[start : start + 500]
            query = sa.select(w.c.id).where(w.c.id.in_(chunk), w.c.org_id == scope.org_id)
            known |= {str(r.id) for r in self._read(query)}
        unknown = [wearer_id for wearer_id in wanted if wearer_id not in known]
        if unknown:
            raise UnknownWearers(unknown)
        rows = [{"user_id": user_id, "wearer_id": wearer_id} for wearer_id in wanted]

        def write(connection: sa.Connection) -> None:
            connection.execute(uw.delete().where(uw.c.user_id == user_id))
            if rows:
                connection.execute(uw.insert(), rows)

        self._write(write)
        return True

    def disable_user(self, scope: Scope, user_id: str, now: datetime) -> bool:
        """Disable a user of the organisation and revoke their sessions and tokens, at once. False if there is
        no such user; disabling a disabled user again changes nothing."""
        u, s, t = schema.users, schema.sessions, schema.tokens
        at = to_us(now)

        def write(connection: sa.Connection) -> bool:
            found = connection.execute(
                sa.select(u.c.id).where(u.c.id == user_id, u.c.org_id == scope.org_id)
            ).first()
            if found is None:
                return False
            connection.execute(
                u.update().where(u.c.id == user_id, u.c.disabled_us.is_(None)).values(disabled_us=at)
            )
            connection.execute(
                s.update().where(s.c.user_id == user_id, s.c.revoked_us.is_(None)).values(revoked_us=at)
            )
            connection.execute(
                t.update().where(t.c.user_id == user_id, t.c.revoked_us.is_(None)).values(revoked_us=at)
            )
            return True

        done: bool = self._write(write)
        return done

    def _records(self, rows: list[Row]) -> list[UserRecord]:
        uw = schema.user_wearers
        ids = [str(r.id) for r in rows if r.role == Role.FAMILY.value]
        linked: dict[str, list[str]] = {}
        for start in range(0, len(ids), 500):
            query = sa.select(uw).where(uw.c.user_id.in_(ids[start : start + 500]))
            for link in self._read(query):
                linked.setdefault(str(link.user_id), []).append(str(link.wearer_id))
        return [
            UserRecord(
                User(str(r.id), str(r.org_id), str(r.email), Role(r.role), str(r.display_name)),
                from_us(int(r.created_us)),
                None if r.disabled_us is None else from_us(int(r.disabled_us)),
                tuple(sorted(linked.get(str(r.id), ()))),
            )
            for r in rows
        ]
