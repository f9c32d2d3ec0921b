"""``/api/v1/tokens``: a user's bearer tokens for integrations: made, listed, revoked.

A token is shown once, when made; only its SHA-256 is kept. ``read`` tokens may only read (GET);
``read,write`` tokens may also change things. A revoked token stops working at its next request.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from geosentinel.api.deps import CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.paging import DEFAULT_LIMIT, Limit, Offset
from geosentinel.auth import new_token
from geosentinel.store.accounts import TokenRecord

router = APIRouter(prefix="/tokens", tags=["accounts"])


class TokenIn(BaseModel):
    label: Annotated[str, Field(min_length=1, max_length=200)]
    scopes: Annotated[list[Literal["read", "write"]], Field(min_length=1)] = ["read"]


class TokenOut(BaseModel):
    id: str
    label: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: TokenRecord) -> TokenOut:
        return cls(id=record.id, label=record.label, scopes=list(record.scopes), created_at=record.created_at,
                   revoked_at=record.revoked_at)  # fmt: skip


class NewTokenOut(TokenOut):
    token: str  # shown this once: keep it; it cannot be shown again


@router.get("", response_model=list[TokenOut])
async def list_tokens(
    store: StoreDep, caller: CallerDep, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0
) -> list[TokenOut]:
    """The caller's own tokens, oldest first (never their secret)."""
    tokens = await asyncio.to_thread(store.tokens_of, caller.user.id, limit, offset)
    return [TokenOut.of(t) for t in tokens]


@router.post("", response_model=NewTokenOut, status_code=201)
async def create_token(body: TokenIn, store: StoreDep, caller: CallerDep) -> NewTokenOut:
    """A new token for the caller; ``scopes`` ``["read"]`` (default) or ``["read", "write"]``."""
    scopes = sorted({"read", *body.scopes})  # writing implies reading
    token, digest = new_token()
    record = await asyncio.to_thread(
        store.create_scoped_token, caller.user.id, digest, body.label, scopes, datetime.now(UTC)
    )
    return NewTokenOut(**TokenOut.of(record).model_dump(), token=token)


@router.delete("/{token_id}", status_code=204)
async def revoke_token(token_id: str, store: StoreDep, caller: CallerDep) -> None:
    """Revoke one of the caller's tokens: it stops working at once."""
    if not await asyncio.to_thread(store.revoke_token, caller.user.id, token_id, datetime.now(UTC)):
        raise ApiError(404, N_("no live token {token_id} of yours"), token_id=token_id)
