"""Accounts in the store: dashboard sessions, failed-login lockout, and bearer tokens with scopes.

Session cookies and tokens are stored as their SHA-256 only (they carry 256 bits of entropy: a fast hash
is enough, see :mod:`geosentinel.auth`); a stolen database gives no way in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from geosentinel.model import Role, User
from geosentinel.store import schema
from geosentinel.store.schema import from_us, to_us

Row = sa.Row[tuple[object, ...]]
SCOPES = ("read", "write")


@dataclass(frozen=True, slots=True)
class LoginState:
    user: User
    password_hash: str
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    label: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


def _user(row: Row) -> User:
    return User(str(row.id), str(row.org_id), str(row.email), Role(row.role), str(row.display_name))


class AccountStore:
    """Mixed into :class:`~geosentinel.store.sql.SqlStore` (which provides the reads and the writer)."""

    _read: Callable[[sa.Executable], list[Row]]
    _read_one: Callable[[sa.Executable], Row | None]
    _write: Callable[[Callable[[sa.Connection], Any]], Any]

    # Logins ------------------------------------------------------------------------------------------
    def login_state(self, email: str) -> LoginState | None:
        """How a login with this e-mail stands (None: no such account, or a disabled one)."""
        u = schema.users
        row = self._read_one(sa.select(u).where(u.c.email == email.lower(), u.c.disabled_us.is_(None)))
        if row is None:
            return None
        locked = None if row.locked_until_us is None else from_us(int(row.locked_until_us))
        return LoginState(_user(row), str(row.password_hash), locked)

    def record_login_failure(
        self, user_id: str, now: datetime, max_failures: int, lock_for: timedelta
    ) -> datetime | None:
        """Count a failed login; after ``max_failures`` in a row the account is locked for ``lock_for``.
        Returns until when it is locked (None: not locked)."""
        u = schema.users

        def write(connection: sa.Connection) -> datetime | None:
            failures = (
                int(connection.execute(sa.select(u.c.failed_logins).where(u.c.id == user_id)).scalar_one())
                + 1
            )
            until = now + lock_for if failures >= max_failures else None
            values: dict[str, Any] = {"failed_logins": 0 if until else failures}
            if until is not None:
                values["locked_until_us"] = to_us(until)
            connection.execute(u.update().where(u.c.id == user_id).values(**values))
            return until

        locked: datetime | None = self._write(write)
        return locked

    def record_login_success(self, user_id: str) -> None:
        u = schema.users
        query = u.update().where(u.c.id == user_id).values(failed_logins=0, locked_until_us=None)
        self._write(lambda c: c.execute(query))

    # Sessions ----------------------------------------------------------------------------------------
    def create_session(
        self, user_id: str, session_hash: str, csrf_token: str, now: datetime, expires: datetime
    ) -> None:
        values = {"session_hash": session_hash, "user_id": user_id, "csrf_token": csrf_token,
                  "created_us": to_us(now), "expires_us": to_us(expires)}  # fmt: skip
        self._write(lambda c: c.execute(schema.sessions.insert().values(**values)))

    def session_user(self, session_hash: str, now: datetime) -> tuple[User, str] | None:
        """The session's user and CSRF token, if the session is live (not expired, not ended)."""
        s, u = schema.sessions, schema.users
        row = self._read_one(
            sa.select(u, s.c.csrf_token)
            .join(s, s.c.user_id == u.c.id)
            .where(s.c.session_hash == session_hash, s.c.revoked_us.is_(None), s.c.expires_us > to_us(now))
            .where(u.c.disabled_us.is_(None))
        )
        return None if row is None else (_user(row), str(row.csrf_token))

    def end_session(self, session_hash: str, now: datetime) -> None:
        s = schema.sessions
        query = s.update().where(s.c.session_hash == session_hash, s.c.revoked_us.is_(None))
        self._write(lambda c: c.execute(query.values(revoked_us=to_us(now))))

    # Tokens --------------------------------------------------------------------------------------------
    def create_scoped_token(
        self, user_id: str, token_hash: str, label: str, scopes: Sequence[str], now: datetime
    ) -> TokenRecord:
        record = TokenRecord(str(uuid.uuid4()), label, tuple(s for s in SCOPES if s in scopes), now, None)
        values = {"id": record.id, "user_id": user_id, "token_hash": token_hash, "label": label,
                  "created_us": to_us(now), "scopes": ",".join(record.scopes)}  # fmt: skip
        self._write(lambda c: c.execute(schema.tokens.insert().values(**values)))
        return record

    def token_access(self, token_hash: str) -> tuple[User, frozenset[str]] | None:
        """The user a live token stands for, and what it may do."""
        t, u = schema.tokens, schema.users
        row = self._read_one(
            sa.select(u, t.c.scopes)
            .join(t, t.c.user_id == u.c.id)
            .where(t.c.token_hash == token_hash, t.c.revoked_us.is_(None), u.c.disabled_us.is_(None))
        )
        return None if row is None else (_user(row), frozenset(str(row.scopes).split(",")))

    def tokens_of(self, user_id: str, limit: int | None = None, offset: int = 0) -> list[TokenRecord]:
        t = schema.tokens
        query = sa.select(t).where(t.c.user_id == user_id).order_by(t.c.created_us, t.c.id)
        rows = self._read(query.limit(limit).offset(offset))
        return [
            TokenRecord(str(r.id), str(r.label), tuple(str(r.scopes).split(",")), from_us(int(r.created_us)),
                        None if r.revoked_us is None else from_us(int(r.revoked_us)))
            for r in rows
        ]  # fmt: skip

    def revoke_token(self, user_id: str, token_id: str, now: datetime) -> bool:
        """Revoke one of the user's own tokens (False: no such live token of theirs)."""
        t = schema.tokens
        query = t.update().where(t.c.id == token_id, t.c.user_id == user_id, t.c.revoked_us.is_(None))
        count: int = self._write(lambda c: c.execute(query.values(revoked_us=to_us(now))).rowcount)
        return count == 1
