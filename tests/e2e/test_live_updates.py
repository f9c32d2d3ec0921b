"""``GET /api/v1/stream`` on the real service: what a bracelet sends reaches the right streams, and only them.

Organisation A has an admin, a family member linked to the wearer whose bracelet sends (logged in with the
session cookie) and one linked to another wearer; organisation B has its admin. The streams are opened
before the bracelet sends a fix and an SOS; A's admin and the linked family member get the position and
the alert, the others get nothing about it; acknowledging the alert through the API is announced too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from geosentinel.auth import hash_password, new_token
from geosentinel.model import Role
from geosentinel.store import open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant, provision

pytestmark = pytest.mark.e2e

A_DEVICE = "870000000000001"
TIMEOUT = httpx.Timeout(10, read=30)  # a heartbeat comes every 15 s


@dataclass
class World:
    a: Tenant
    b: Tenant
    linked_email: str  # linked to A's wearer (logs in: the session cookie)
    unlinked_token: str  # a family member of A linked to another wearer


@pytest.fixture(scope="module")
def world(module_db_url: str) -> World:
    a = provision(module_db_url, "Stream A", A_DEVICE, "admin-a@example.org")
    b = provision(module_db_url, "Stream B", "870000000000009", "admin-b@example.org")
    store = open_store(module_db_url)
    try:
        other = store.create_wearer(a.org_id, "Another A wearer")
        linked = store.create_user(
            a.org_id, "linked@example.org", hash_password(TEST_PASSWORD), Role.FAMILY, "Linked"
        )
        store.link_wearer(linked.id, a.wearer_id)
        unlinked = store.create_user(
            a.org_id, "unlinked@example.org", hash_password(TEST_PASSWORD), Role.FAMILY, "Unlinked"
        )
        store.link_wearer(unlinked.id, other.id)
        unlinked_token, digest = new_token()
        store.create_token(unlinked.id, digest, "family")
    finally:
        store.close()
    return World(a, b, "linked@example.org", unlinked_token)


@pytest.fixture(scope="module")
def live(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = ServiceProcess(world.a.db_url, tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield service
    service.stop()


@dataclass
class Sse:
    name: str
    data: dict[str, Any]
    id: str | None


@dataclass
class Reader:
    """One open stream, its events collected as they come."""

    status: int = 0
    events: list[Sse] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def named(self, name: str) -> list[Sse]:
        return [e for e in self.events if e.name == name]

    async def wait_for(self, what: str, found: Any, timeout_s: float = 5.0) -> Sse:
        """The first event for which ``found(event)`` is true, within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events:
                if found(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {timeout_s} s; got {self.events}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass


async def _read(client: httpx.AsyncClient, headers: dict[str, str], reader: Reader) -> None:
    async with client.stream("GET", "/api/v1/stream", headers=headers) as response:
        reader.status = response.status_code
        reader.changed.set()
        if response.status_code != 200:
            return
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                reader.comments.append(line[1:].strip())
            elif line:
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
            elif fields:
                reader.events.append(Sse(fields["event"], json.loads(fields["data"]), fields.get("id")))
                fields = {}
                reader.changed.set()


@asynccontextmanager
async def streams(service: ServiceProcess, **callers: dict[str, str]) -> AsyncIterator[dict[str, Reader]]:
    """Open one stream per caller (their request headers); yield once every stream said ``ready``."""
    async with httpx.AsyncClient(base_url=service.api, timeout=TIMEOUT) as client:
        readers = {name: Reader() for name in callers}
        tasks = [asyncio.create_task(_read(client, callers[n], r)) for n, r in readers.items()]
        try:
            for reader in readers.values():
                await reader.wait_for("ready", lambda e: e.name == "ready")
            yield readers
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _session_cookie(service: ServiceProcess, email: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=service.api, timeout=TIMEOUT) as client:
        response = await client.post("/api/v1/session", json={"email": email, "password": TEST_PASSWORD})
        assert response.status_code == 200, response.text
        return {"Cookie": f"gs_session={response.cookies['gs_session']}"}


@pytest.mark.anyio
async def test_a_fix_and_an_sos_reach_the_streams_that_may_see_them_and_no_other(
    live: ServiceProcess, world: World
) -> None:
    a = world.a
    cookie = await _session_cookie(live, world.linked_email)
    async with streams(live, admin_a=bearer(a.token), linked=cookie, admin_b=bearer(world.b.token),
                       unlinked=bearer(world.unlinked_token)) as readers:  # fmt: skip
        assert all(r.status == 200 for r in readers.values())
        fix = {"id": A_DEVICE, "lat": 43.5263, "lon": 5.4454, "timestamp": int(time.time()), "batt": 71,
               "accuracy": 9.5, "alarm": "sos"}  # fmt: skip
        async with httpx.AsyncClient(timeout=TIMEOUT) as devices:
            assert (await devices.get(f"{live.osmand}/", params=fix)).status_code == 200
        admin = readers["admin_a"]
        position = await admin.wait_for("position", lambda e: e.name == "position")
        assert position.data == {
            "wearer_id": a.wearer_id, "device_id": a.device_id, "time": position.data["time"],
            "latitude": 43.5263, "longitude": 5.4454, "accuracy_m": 9.5, "battery_pct": 71.0,
        }  # fmt: skip
        assert position.data["time"].endswith("Z") and position.id is not None
        opened = await admin.wait_for("alert", lambda e: e.name == "alert")
        assert {k: opened.data[k] for k in ("wearer_id", "kind", "status", "change")} == {
            "wearer_id": a.wearer_id, "kind": "sos", "status": "open", "change": "opened",
        }  # fmt: skip
        alert_id = opened.data["id"]
        linked = readers["linked"]
        await linked.wait_for("the position (linked family)", lambda e: e.name == "position")
        await linked.wait_for("the alert (linked family)", lambda e: e.name == "alert")

        async with httpx.AsyncClient(base_url=live.api, timeout=TIMEOUT) as api:
            taken = await api.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=bearer(a.token))
            assert taken.status_code == 200, taken.text
        acknowledged = await admin.wait_for(
            "the acknowledgement", lambda e: e.data.get("status") == "acknowledged"
        )
        assert (acknowledged.name, acknowledged.data["id"], acknowledged.data["change"]) == (
            "alert", alert_id, "acknowledged",
        )  # fmt: skip
        await linked.wait_for("the acknowledgement (linked family)", lambda e: e.data.get("id") == alert_id
                              and e.data["status"] == "acknowledged")  # fmt: skip
        await asyncio.sleep(0.5)  # anything published to the others would have reached them by now
        for name in ("admin_b", "unlinked"):
            assert [e.name for e in readers[name].events] == ["ready"], (name, readers[name].events)

        # Reconnecting with the position's id replays what came after it (and no ready event).
        resumed = {**bearer(a.token), "Last-Event-ID": position.id}
        async with httpx.AsyncClient(base_url=live.api, timeout=TIMEOUT) as client:
            reader = Reader()
            task = asyncio.create_task(_read(client, resumed, reader))
            try:
                await reader.wait_for("the replay", lambda e: e.data.get("status") == "acknowledged")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        replayed = [(e.name, e.data.get("status")) for e in reader.events]
        assert replayed[:2] == [("alert", "open"), ("alert", "acknowledged")], replayed


@pytest.mark.anyio
async def test_an_anonymous_caller_gets_401_with_the_usual_error(live: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=live.api, timeout=TIMEOUT) as client:
        response = await client.get("/api/v1/stream", headers={"Accept-Language": "fr"})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["content-language"] == "fr"
        revoked = await client.get("/api/v1/stream", headers=bearer("not-a-token"))
        assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "unauthorized"


# Last in this module: it stops the module's service (starting one more costs half a minute on CI).
@pytest.mark.anyio
async def test_open_streams_do_not_hold_up_the_services_shutdown(live: ServiceProcess, world: World) -> None:
    async with streams(live, admin_a=bearer(world.a.token)) as readers:
        started = time.monotonic()
        await asyncio.to_thread(live.stop)  # SIGTERM; SIGKILL after 15 s
        assert time.monotonic() - started < 5
        assert live.process is not None and live.process.returncode == 0
        assert readers["admin_a"].status == 200
