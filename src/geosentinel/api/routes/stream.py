"""``/api/v1/stream``: Server-Sent Events of positions, device status changes and alerts, as they are stored.

Scoped like every read (the caller's organisation; a family member, the wearers linked to them) and fed by
the live hub (:mod:`geosentinel.live`). A long-lived request must not outlive its credential: every
heartbeat checks the token or session again (a revoked token or an ended session ends the stream) and
picks up a family member's current links.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Final

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from geosentinel.api.audit import audit_read
from geosentinel.api.deps import Caller, CallerDep, StoreDep, caller_again
from geosentinel.api.errors import ApiError
from geosentinel.live import Hub, Subscription
from geosentinel.store import Store

log = logging.getLogger(__name__)

router = APIRouter(tags=["live"])

HEARTBEAT_S: Final = 15.0  # a comment line this often: proxies keep the connection, clients see it alive
# A client that takes a send longer than this is gone (its socket buffers are full): the stream ends.
SEND_TIMEOUT_S: Final = 30.0

DESCRIPTION: Final = """Server-Sent Events (`text/event-stream`) of what the service stores, as it stores
it: `position`, `device` (offline, online, low_battery) and `alert` (opened and every change), only about
what the caller may see. The stream starts with a `ready` event (load the current state through the REST
API then) unless `Last-Event-ID` names an event after which everything could be replayed. A comment line
is sent every 15 s. Event payloads are described in docs/api.md ("Live updates")."""


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    summary="Live positions, device status and alerts (Server-Sent Events)",
    description=DESCRIPTION,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def stream(
    request: Request,
    store: StoreDep,
    caller: CallerDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)] = None,
) -> EventSourceResponse:
    hub: Hub = request.app.state.live
    # Following the stream reads positions and health data from now on: one audit entry when it opens.
    await audit_read(store, caller, "stream", sorted(caller.scope.wearer_ids or ()), 0)
    return EventSourceResponse(
        _events(request, store, hub, caller, last_event_id),
        ping=0,  # our own heartbeat (see _events), which also checks the caller again
        send_timeout=SEND_TIMEOUT_S,
    )


async def _events(
    request: Request, store: Store, hub: Hub, caller: Caller, last_event_id: str | None
) -> AsyncIterator[ServerSentEvent]:
    # Subscribed here rather than in the route: the subscription exists exactly while the stream runs,
    # and the finally below always ends it.
    subscription = hub.subscribe(caller.scope, last_event_id)
    loop = asyncio.get_running_loop()
    beat_at = loop.time() + HEARTBEAT_S
    try:
        while True:
            try:
                event = await asyncio.wait_for(subscription.next(), max(0.0, beat_at - loop.time()))
            except TimeoutError:
                if not await _still_allowed(request, store, subscription):
                    return
                yield ServerSentEvent(comment="heartbeat")
                beat_at = loop.time() + HEARTBEAT_S
                continue
            if event is None:  # the hub closed it: the service stops, or the client was too slow
                return
            yield ServerSentEvent(data=event.data, event=event.name, id=hub.event_id(event.seq))
    finally:
        hub.unsubscribe(subscription)


async def _still_allowed(request: Request, store: Store, subscription: Subscription) -> bool:
    try:
        caller = await caller_again(request, store)
    except ApiError:
        return False
    except Exception:  # the store cannot tell: end the stream (fail closed); the client reconnects
        log.exception("checking a stream's caller again failed")
        return False
    subscription.scope = caller.scope
    return True
