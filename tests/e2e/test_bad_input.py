"""Malformed OsmAnd requests over real sockets: a clear 4xx, never a 500; good readings around them kept."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from geosentinel.testing import ServiceProcess, Tenant, add_devices

pytestmark = pytest.mark.e2e

UID = "300000000000001"


@pytest.fixture(scope="module")
def wearer_id(tenant: Tenant) -> str:
    return add_devices(tenant.db_url, tenant.org_id, [UID])[0][0]


BAD_REQUESTS = [
    pytest.param("GET", "/?lat=43.3&lon=5.37", {}, b"", "device id", id="missing-id"),
    pytest.param("GET", f"/?id={UID}&lat=abc&lon=5.37", {}, b"", "latitude", id="bad-latitude"),
    pytest.param("GET", f"/?id={UID}&lat=95&lon=5.37", {}, b"", "latitude", id="latitude-out-of-range"),
    pytest.param("GET", f"/?id={UID}&lat=43&lon=nan", {}, b"", "longitude", id="nan-longitude"),
    pytest.param("GET", f"/?id={UID}&lat=43&lon=5&timestamp=yesterday", {}, b"", "timestamp", id="bad-time"),
    pytest.param("GET", f"/?id={UID}&lat=43&lon=5&batt=-x", {}, b"", "batt", id="bad-battery"),
    pytest.param(
        "POST", "/", {"content-type": "application/json"}, b'{"device_id": ', "JSON", id="truncated-json"
    ),
    pytest.param(
        "POST",
        "/",
        {"content-type": "application/json"},
        b'{"device_id": "x", "location": 3}',
        "location",
        id="json-wrong-type",
    ),
    pytest.param("POST", "/", {"content-type": "text/xml"}, b"<a/>", "content type", id="wrong-content-type"),
    pytest.param("POST", "/", {"content-type": "application/json"}, b"\xff\xfe\x00", "", id="not-utf8"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "says"), BAD_REQUESTS)
def test_malformed_requests_get_a_clear_4xx(
    service: ServiceProcess, method: str, path: str, headers: dict[str, str], body: bytes, says: str
) -> None:
    response = httpx.request(method, f"{service.osmand}{path}", headers=headers, content=body, timeout=5)
    assert 400 <= response.status_code < 500, response.text
    assert says.lower() in response.text.lower()


def test_huge_bodies_are_refused_without_reading_them(service: ServiceProcess) -> None:
    body = b"id=1&" + b"x" * (2 * 1024 * 1024)
    response = httpx.post(
        f"{service.osmand}/",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert response.status_code == 413
    assert "larger than" in response.text


def test_other_methods_are_refused(service: ServiceProcess) -> None:
    assert httpx.delete(f"{service.osmand}/?id={UID}", timeout=5).status_code == 405


def test_garbage_on_the_socket_does_not_disturb_good_readings(
    service: ServiceProcess, tenant: Tenant, wearer_id: str
) -> None:
    now = int(time.time())
    good = {"id": UID, "lat": 43.30, "lon": 5.37, "timestamp": now - 10}
    assert httpx.get(f"{service.osmand}/", params=good, timeout=5).status_code == 200  # type: ignore[arg-type]
    with socket.create_connection(("127.0.0.1", service.osmand_port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01garbage that is not HTTP\r\n\r\n")
        raw.recv(1024)  # the server answers 400 or closes; either way it must keep serving others
    for bad in BAD_REQUESTS:
        method, path, headers, body, _ = bad.values
        httpx.request(method, f"{service.osmand}{path}", headers=headers, content=body, timeout=5)  # type: ignore[arg-type]
    good2 = {"id": UID, "lat": 43.3005, "lon": 5.37, "timestamp": now}
    assert httpx.get(f"{service.osmand}/", params=good2, timeout=5).status_code == 200  # type: ignore[arg-type]
    positions = httpx.get(
        f"{service.api}/api/v1/wearers/{wearer_id}/positions",
        headers={"Authorization": f"Bearer {tenant.token}"},
        timeout=5,
    ).json()
    assert [p["latitude"] for p in positions] == pytest.approx([43.3005, 43.30])
