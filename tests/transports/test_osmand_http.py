"""Fuzz the OsmAnd endpoint over loopback (real gateway, pipeline and SQLite store): never a 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geosentinel.clock import SystemClock
from geosentinel.pipeline.runner import Pipeline
from geosentinel.store import Store, open_store
from geosentinel.testing import add_devices, provision
from geosentinel.transports.http_gateway import GatewayLimits, start_gateway
from geosentinel.transports.osmand_http import OsmAndHandler

UID = "400000000000001"


class Harness:
    """An event loop running the pipeline and the device gateway on an ephemeral loopback port."""

    def __init__(self, store: Store) -> None:
        self.loop = asyncio.new_event_loop()
        self.pipeline = Pipeline(store, SystemClock())
        self.server = self.loop.run_until_complete(self._start())
        port = self.server.sockets[0].getsockname()[1]
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)

    async def _start(self) -> asyncio.Server:
        self.pipeline.start()
        limits = GatewayLimits(max_body_bytes=4096)
        return await start_gateway(OsmAndHandler(self.pipeline), "127.0.0.1", 0, limits)

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.server.close()
        self.loop.run_until_complete(self.server.wait_closed())
        self.loop.run_until_complete(self.pipeline.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'gs.db'}"
    tenant = provision(db_url, "Fuzz", UID, "f@example.org")
    add_devices(db_url, tenant.org_id, ["400000000000002"])
    store = open_store(db_url)
    h = Harness(store)
    yield h
    h.close()
    store.close()


KEYS = [
    "id",
    "deviceid",
    "lat",
    "lon",
    "timestamp",
    "speed",
    "batt",
    "alarm",
    "location",
    "accuracy",
    "valid",
]
QUERY_KEYS = st.sampled_from([*KEYS, "bearing", "cell", "x"])
QUERY_VALUES = st.one_of(
    st.sampled_from([UID, "400000000000002", "43.3", "-91", "1e308", "nan", "", "sos", "1700000000", "true"]),
    st.text(max_size=20),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(params=st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=8))
def test_any_query_is_answered_without_a_server_error(
    harness: Harness, params: list[tuple[str, str]]
) -> None:
    response = harness.request("GET", "/", params=params)
    assert response.status_code in (200, 400, 404), response.text
    if response.status_code != 200:
        assert response.text  # every refusal says why


CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
    "application/json; charset=latin-1",
    "multipart/form-data",
]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "",
            "application/json; charset=latin-1",
            "multipart/form-data",
        ]
    ),
    body=st.one_of(st.binary(max_size=5000), st.text(max_size=300).map(str.encode)),
)
def test_any_body_is_answered_without_a_server_error(
    harness: Harness, method: str, content_type: str, body: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = harness.request(method, "/", content=body, headers=headers)
    assert 200 <= response.status_code < 500, response.text
    if len(body) > 4096:
        assert response.status_code == 413


def test_the_endpoint_still_stores_after_the_fuzzing(harness: Harness) -> None:
    response = harness.request("GET", "/", params={"id": UID, "lat": "43.3", "lon": "5.37"})
    assert response.status_code == 200
    assert harness.pipeline.store.count_readings() >= 1


def test_idle_connections_are_closed_and_active_ones_kept(tmp_path: Path) -> None:
    """A connection with no request for ``idle_timeout_s`` is closed; one answered meanwhile lives on."""

    async def scenario(store: Store) -> tuple[bytes, bytes]:
        pipeline = Pipeline(store, SystemClock())
        pipeline.start()
        server = await start_gateway(
            OsmAndHandler(pipeline), "127.0.0.1", 0, GatewayLimits(idle_timeout_s=0.6)
        )
        port = server.sockets[0].getsockname()[1]
        request = f"GET /?id={UID}&lat=43.3&lon=5.37 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        try:
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
            busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(4):  # 4 × 0.3 s: twice the idle limit, with a request every 0.3 s
                busy_writer.write(request)
                answer = await asyncio.wait_for(busy_reader.readuntil(b"\r\n\r\n"), 5)
                assert answer.startswith(b"HTTP/1.1 200"), answer
                await asyncio.sleep(0.3)
            idle_end = await asyncio.wait_for(idle_reader.read(), 5)  # b"": closed by the server
            busy_writer.write(request)
            last = await asyncio.wait_for(busy_reader.readuntil(b"\r\n\r\n"), 5)
            idle_writer.close()
            busy_writer.close()
            return idle_end, last
        finally:
            server.close()
            await pipeline.stop()

    db_url = f"sqlite:///{tmp_path / 'idle.db'}"
    provision(db_url, "Idle", UID, "i@example.org")
    store = open_store(db_url)
    try:
        idle_end, last = asyncio.run(scenario(store))
    finally:
        store.close()
    assert idle_end == b""
    assert last.startswith(b"HTTP/1.1 200")
