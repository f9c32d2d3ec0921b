"""The event stream's own loop, in process: heartbeats, and a credential checked again at each of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sse_starlette import ServerSentEvent
from starlette.requests import Request

from geosentinel.api.deps import Caller
from geosentinel.api.routes import stream
from geosentinel.app import create_api
from geosentinel.auth import hash_password, new_token, token_hash
from geosentinel.live import Hub, LiveEvent
from geosentinel.model import Locale, Region, Role
from geosentinel.store import Scope, Store


def _request(app: object, token: str) -> Request:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "method": "GET", "path": "/api/v1/stream", "headers": headers,
                    "query_string": b"", "app": app})  # fmt: skip


async def _next(events: AsyncIterator[ServerSentEvent]) -> ServerSentEvent | None:
    async with asyncio.timeout(5):
        try:
            return await anext(events)
        except StopAsyncIteration:
            return None


@pytest.mark.anyio
async def test_heartbeats_check_the_caller_again_and_a_revoked_token_ends_the_stream(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "HEARTBEAT_S", 0.05)
    org = store.create_org("Org", Region.EU, "Europe/Paris", Locale.FR)
    mine = store.create_wearer(org.id, "Jeanne")
    later = store.create_wearer(org.id, "Paul")
    user = store.create_user(org.id, "fam@example.org", hash_password("Correct-Horse-9"), Role.FAMILY, "Fam")
    store.link_wearer(user.id, mine.id)
    token, digest = new_token()
    record = store.create_scoped_token(user.id, digest, "dashboard", ["read"], datetime.now(UTC))
    hub = Hub()
    app = create_api(store, live=hub)
    events = stream._events(_request(app, token), store, hub, _caller(store, token), None)
    first = await _next(events)
    assert first is not None and first.event == "ready"
    beat = await _next(events)
    assert beat is not None and beat.comment == "heartbeat"
    store.link_wearer(user.id, later.id)  # a new link applies from the next heartbeat on
    assert (await _next(events)) is not None
    hub.publish(LiveEvent("position", org.id, later.id, "{}"))
    got = await _next(events)
    while got is not None and got.comment == "heartbeat":
        got = await _next(events)
    assert got is not None and got.event == "position"
    assert hub.subscribers() == 1
    assert store.revoke_token(user.id, record.id, datetime.now(UTC))
    while (got := await _next(events)) is not None:
        assert got.comment == "heartbeat"  # at most the one already on its way
    assert hub.subscribers() == 0


def _caller(store: Store, token: str) -> Caller:
    access = store.token_access(token_hash(token))
    assert access is not None
    user = access[0]
    return Caller(user, Scope(user.org_id, store.linked_wearers(user.id)))
