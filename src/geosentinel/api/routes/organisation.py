"""``/api/v1/organisation`` and ``/api/v1/users``: the caller's organisation, and its people.

Everyone sees their own organisation's settings; only its administrators see and manage its users. A user
is never deleted (the audit log names them): ``DELETE`` disables the account, which ends its sessions and
revokes its tokens at once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, field_validator

from geosentinel.api.deps import Caller, CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.api.schemas import Page
from geosentinel.auth import WeakPassword, hash_password
from geosentinel.model import Locale, Region, Role
from geosentinel.store import Store, StoreError
from geosentinel.store.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS
from geosentinel.store.users import UnknownWearers, UserRecord

router = APIRouter(tags=["accounts"])

MAX_LINKED_WEARERS = 1000
MAX_EMAIL_LENGTH = 320


class OrganisationOut(BaseModel):
    id: str
    name: str
    region: Region
    timezone: str
    locale: Locale
    retention_days: int  # readings, events and resolved alerts older than this are deleted


class UserOut(BaseModel):
    id: str
    email: str
    role: Role
    display_name: str
    created_at: datetime
    disabled_at: datetime | None  # null: the account is active
    wearer_ids: list[str]  # the wearers a family member sees (empty for the other roles)

    @classmethod
    def of(cls, record: UserRecord) -> UserOut:
        user = record.user
        return cls(id=user.id, email=user.email, role=user.role, display_name=user.display_name,
                   created_at=record.created_at, disabled_at=record.disabled_at,
                   wearer_ids=list(record.wearer_ids))  # fmt: skip


class UserIn(BaseModel):
    email: Annotated[str, Field(max_length=MAX_EMAIL_LENGTH, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    password: Annotated[str, Field(min_length=1, max_length=1024)]  # the initial one, hashed with argon2
    role: Role
    display_name: Annotated[str, Field(min_length=1, max_length=200)]

    @field_validator("email")
    @classmethod
    def _lower(cls, email: str) -> str:
        email = email.lower()  # as logins compare it; lowering can lengthen a few letters
        if len(email) > MAX_EMAIL_LENGTH:
            raise ValueError(f"an e-mail address has at most {MAX_EMAIL_LENGTH} characters")
        return email


class LinkedWearersIn(BaseModel):
    wearer_ids: Annotated[list[str], Field(max_length=MAX_LINKED_WEARERS)]


def _may_manage_users(caller: Caller) -> None:
    if caller.user.role is not Role.ADMIN:
        raise ApiError(403, N_("only an organisation's administrators manage its users"))


async def _user(store: Store, caller: Caller, user_id: str) -> UserRecord:
    record = await asyncio.to_thread(store.user_record, caller.scope, user_id)
    if record is None:
        raise ApiError(404, N_("no user {user_id}"), user_id=user_id)
    return record


@router.get("/organisation", response_model=OrganisationOut)
async def get_organisation(store: StoreDep, caller: CallerDep) -> OrganisationOut:
    """The caller's organisation: its region, time zone, language and retention."""
    org = await asyncio.to_thread(store.organisation, caller.scope)
    assert org is not None  # the caller's own organisation
    return OrganisationOut(id=org.id, name=org.name, region=org.region, timezone=org.timezone,
                           locale=org.locale, retention_days=org.retention_days)  # fmt: skip


class OrganisationChange(BaseModel):
    """Only the fields given change."""

    timezone: Annotated[str, Field(max_length=64)] | None = None  # IANA: times, schedules, quiet hours
    locale: Locale | None = None  # the language of its messages
    retention_days: Annotated[int, Field(ge=MIN_RETENTION_DAYS, le=MAX_RETENTION_DAYS)] | None = None


@router.patch("/organisation", response_model=OrganisationOut)
async def change_organisation(
    body: OrganisationChange, store: StoreDep, caller: CallerDep
) -> OrganisationOut:
    """Change the organisation's time zone, language or retention (admins). The service applies a new
    time zone to detection within 30 s; the region never changes (it is where the data lives)."""
    if caller.user.role is not Role.ADMIN:
        raise ApiError(403, N_("only an organisation's administrators change its settings"))
    if body.timezone is not None and body.timezone not in available_timezones():
        raise ApiError(422, N_("unknown time zone {timezone}"), timezone=body.timezone)
    await asyncio.to_thread(store.update_organisation, caller.scope, body.timezone, body.locale)
    if body.retention_days is not None:
        await asyncio.to_thread(store.set_retention, caller.scope.org_id, body.retention_days)
    return await get_organisation(store, caller)


@router.get("/users", response_model=Page[UserOut])
async def list_users(
    store: StoreDep,
    caller: CallerDep,
    role: Role | None = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Page[UserOut]:
    """The organisation's users by e-mail, disabled ones included (admins)."""
    _may_manage_users(caller)
    records = await asyncio.to_thread(store.users, caller.scope, role, limit, offset)
    return Page(items=[UserOut.of(r) for r in records], limit=limit, offset=offset)


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserIn, store: StoreDep, caller: CallerDep) -> UserOut:
    """A new user of the caller's organisation with an initial password (admins)."""
    _may_manage_users(caller)
    try:
        digest = await asyncio.to_thread(hash_password, body.password)
    except WeakPassword as exc:
        raise ApiError(422, N_("the password is too weak: {reason}"), reason=str(exc)) from None
    try:
        user = await asyncio.to_thread(
            store.create_user, caller.scope.org_id, body.email, digest, body.role, body.display_name
        )
    except StoreError:
        raise ApiError(409, N_("a user with the e-mail {email} already exists"), email=body.email) from None
    return UserOut.of(await _user(store, caller, user.id))


@router.put("/users/{user_id}/wearers", response_model=UserOut)
async def set_linked_wearers(
    user_id: str, body: LinkedWearersIn, store: StoreDep, caller: CallerDep
) -> UserOut:
    """Set the wearers a family member sees (admins); the wearers must be the organisation's."""
    _may_manage_users(caller)
    record = await _user(store, caller, user_id)
    if record.user.role is not Role.FAMILY:
        raise ApiError(422, N_("only family members are linked to wearers"))
    try:
        found = await asyncio.to_thread(store.set_linked_wearers, caller.scope, user_id, body.wearer_ids)
    except UnknownWearers as exc:
        raise ApiError(422, N_("no wearer {wearer_id}"), wearer_id=", ".join(exc.wearer_ids)) from None
    if not found:
        raise ApiError(404, N_("no user {user_id}"), user_id=user_id)
    return UserOut.of(await _user(store, caller, user_id))


@router.delete("/users/{user_id}", status_code=204)
async def disable_user(user_id: str, store: StoreDep, caller: CallerDep) -> Response:
    """Disable a user (admins): they can no longer log in, and their sessions and tokens stop working."""
    _may_manage_users(caller)
    if user_id == caller.user.id:
        raise ApiError(409, N_("you cannot disable your own account"))
    if not await asyncio.to_thread(store.disable_user, caller.scope, user_id, datetime.now(UTC)):
        raise ApiError(404, N_("no user {user_id}"), user_id=user_id)
    return Response(status_code=204)
