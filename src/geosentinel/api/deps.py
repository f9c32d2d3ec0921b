"""Request dependencies: the store, and the caller (from the bearer token) with their data scope."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from geosentinel.auth import token_hash
from geosentinel.model import Role, User
from geosentinel.store import Scope, Store

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True, slots=True)
class Caller:
    user: User
    scope: Scope


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_caller(
    store: Annotated[Store, Depends(get_store)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise HTTPException(401, "authentication required: send 'Authorization: Bearer <token>'")
    user = await asyncio.to_thread(store.user_for_token, token_hash(credentials.credentials))
    if user is None:
        raise HTTPException(401, "invalid or revoked token")
    wearer_ids = None
    if user.role is Role.FAMILY:
        wearer_ids = await asyncio.to_thread(store.linked_wearers, user.id)
    return Caller(user, Scope(user.org_id, wearer_ids))


StoreDep = Annotated[Store, Depends(get_store)]
CallerDep = Annotated[Caller, Depends(get_caller)]
