"""``/api/v1/contacts``: who alerts may reach, and how (Apprise URLs, shown redacted)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from geosentinel.api.deps import Caller, CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.model import Contact, Locale, Role
from geosentinel.notify.channels import redact
from geosentinel.store.alert_figures import MAX_WEARER_CONTACTS, ContactRefused

router = APIRouter(prefix="/contacts", tags=["alerts"])


class ContactIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    locale: Locale = Locale.FR
    timezone: str = "Europe/Paris"
    urls: Annotated[
        list[Annotated[str, Field(min_length=4, max_length=2000)]], Field(min_length=1, max_length=10)
    ]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value

    @field_validator("urls")
    @classmethod
    def _schemes(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if "://" not in url:
                raise ValueError(f"not an Apprise URL (scheme://...): {redact(url)}")
        return urls


class ContactOut(BaseModel):
    id: str
    name: str
    locale: Locale
    timezone: str
    urls: list[str]  # redacted: credentials never leave the store

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        return cls(
            id=contact.id, name=contact.name, locale=contact.locale, timezone=contact.timezone,
            urls=[redact(url) for url in contact.urls],
        )  # fmt: skip


def may_manage(caller: Caller) -> None:
    if caller.user.role is not Role.ADMIN:
        raise ApiError(403, N_("only an organisation's administrators manage contacts and policies"))


@router.get("", response_model=list[ContactOut])
async def list_contacts(
    store: StoreDep, caller: CallerDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[ContactOut]:
    """The organisation's contacts, by name."""
    if caller.user.role is Role.FAMILY:
        raise ApiError(403, N_("family members do not see the organisation's contacts"))
    return [ContactOut.of(c) for c in await asyncio.to_thread(store.contacts, caller.scope, limit, offset)]


@router.post("", response_model=ContactOut, status_code=201)
async def create_contact(body: ContactIn, store: StoreDep, caller: CallerDep) -> ContactOut:
    may_manage(caller)
    contact = await asyncio.to_thread(
        store.create_contact, caller.user.org_id, body.name, body.locale, body.timezone, body.urls,
        datetime.now(UTC),
    )  # fmt: skip
    return ContactOut.of(contact)


class WearerContactsIn(BaseModel):
    contact_ids: Annotated[list[str], Field(max_length=MAX_WEARER_CONTACTS)]  # contact 1 first


wearer_router = APIRouter(prefix="/wearers", tags=["alerts"])


@wearer_router.get("/{wearer_id}/contacts", response_model=list[ContactOut])
async def wearer_contacts(wearer_id: str, store: StoreDep, caller: CallerDep) -> list[ContactOut]:
    """The wearer's own contacts in order (``wearer:1``, ``wearer:2`` in escalation policies)."""
    if caller.user.role is Role.FAMILY:
        raise ApiError(403, N_("family members do not see the organisation's contacts"))
    contacts = await asyncio.to_thread(store.wearer_contacts, caller.scope, wearer_id)
    if contacts is None:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    return [ContactOut.of(c) for c in contacts]


@wearer_router.put("/{wearer_id}/contacts", response_model=list[ContactOut])
async def set_wearer_contacts(
    wearer_id: str, body: WearerContactsIn, store: StoreDep, caller: CallerDep
) -> list[ContactOut]:
    """Set the wearer's own contacts in order: the French charter's contact 1 and contact 2 (people who
    can reach the home within 20 minutes), then any others."""
    may_manage(caller)
    try:
        found = await asyncio.to_thread(store.set_wearer_contacts, caller.scope, wearer_id, body.contact_ids)
    except ContactRefused as exc:
        raise ApiError(422, N_("these contacts cannot be the wearer's: {reason}"), reason=str(exc)) from None
    if not found:
        raise ApiError(404, N_("no wearer {wearer_id}"), wearer_id=wearer_id)
    return await wearer_contacts(wearer_id, store, caller)
