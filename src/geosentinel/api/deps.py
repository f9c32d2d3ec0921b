"""Request dependencies: the store, and the caller with their data scope.

A caller is a bearer token (integrations; hashed at rest, revocable, scoped ``read`` or ``read,write``) or
the dashboard's session cookie (:mod:`geosentinel.api.routes.session`). With the cookie, every request that
changes something must carry the session's CSRF token in ``X-CSRF-Token``: a page of another site can
make the browser send the cookie, but cannot read the token.
"""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import unquote, unquote_plus

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from geosentinel.api.errors import N_, ApiError
from geosentinel.auth import token_hash
from geosentinel.model import Role, User
from geosentinel.store import Scope, Store

SESSION_COOKIE = "gs_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False)
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False)


@dataclass(frozen=True, slots=True)
class Caller:
    user: User
    scope: Scope
    csrf_token: str | None = None  # the session's (None for a bearer token)


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_caller(
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Caller:
    csrf = None
    if credentials is not None:
        access = await asyncio.to_thread(store.token_access, token_hash(credentials.credentials))
        if access is None:
            raise ApiError(401, N_("invalid or revoked token"))
        user, scopes = access
        if request.method not in SAFE_METHODS and "write" not in scopes:
            raise ApiError(403, N_("this token may only read"))
    elif cookie is not None:
        found = await asyncio.to_thread(store.session_user, token_hash(cookie), datetime.now(UTC))
        if found is None:
            raise ApiError(401, N_("session expired or ended: log in again"))
        user, csrf = found
        sent = request.headers.get(CSRF_HEADER, "")
        if request.method not in SAFE_METHODS and not hmac.compare_digest(sent.encode(), csrf.encode()):
            # The header's name (CSRF_HEADER) is spelled out: a msgid is a literal.
            raise ApiError(403, N_("missing or wrong X-CSRF-Token header (the session's CSRF token)"))
    else:
        raise ApiError(401, N_("authentication required: log in, or send 'Authorization: Bearer <token>'"))
    wearer_ids = None
    if user.role is Role.FAMILY:
        wearer_ids = await asyncio.to_thread(store.linked_wearers, user.id)
    return Caller(user, Scope(user.org_id, wearer_ids), csrf)


async def caller_again(request: Request, store: Store) -> Caller:
    """The request's caller, checked again now (a long-lived stream must end with its token or session)."""
    return await get_caller(request, store, await _bearer(request), await _cookie(request))


StoreDep = Annotated[Store, Depends(get_store)]
CallerDep = Annotated[Caller, Depends(get_caller)]


async def refuse_nul(request: Request) -> None:
    """Refuse text with NUL characters anywhere in the request (path, query or JSON body): PostgreSQL
    cannot store them, and no name, note or id needs one. Both backends answer the same way."""
    if "\x00" in unquote(request.url.path) or "\x00" in unquote_plus(request.url.query):
        raise ApiError(422, N_("text cannot contain NUL characters"))
    body = await request.body()  # kept by Starlette for the route that parses it next
    if b"\x00" in body or b"\\u0000" in body:
        raise ApiError(422, N_("text cannot contain NUL characters"))
