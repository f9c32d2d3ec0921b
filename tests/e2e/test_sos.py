"""A bracelet's SOS over OsmAnd reaches the API as an open alert, over real sockets."""

from __future__ import annotations

import time

import httpx
import pytest

from geosentinel.store import open_store
from geosentinel.testing import ServiceProcess as Service
from geosentinel.testing import Tenant, add_devices, provision

UNIQUE_ID = "861001000719969"

pytestmark = pytest.mark.e2e


def _get(service: Service, token: str, path: str, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{service.api}{path}", params=params, headers=headers, timeout=5)  # type: ignore[arg-type]


def _open_alerts(service: Service, token: str, wearer_id: str | None = None) -> list[dict[str, object]]:
    response = _get(
        service, token, "/api/v1/alerts", status="open", **({"wearer_id": wearer_id} if wearer_id else {})
    )
    response.raise_for_status()
    items: list[dict[str, object]] = response.json()["items"]
    return items


def _fix(unique_id: str, **extra: object) -> dict[str, object]:
    return {"id": unique_id, "lat": 43.2965, "lon": 5.3698, "timestamp": int(time.time()), **extra}


def test_sos_becomes_an_open_alert_within_one_second(service: Service, tenant: Tenant) -> None:
    start = time.monotonic()
    reply = httpx.get(f"{service.osmand}/", params=_fix(UNIQUE_ID, alarm="sos"), timeout=5)  # type: ignore[arg-type]
    assert reply.status_code == 200
    alerts: list[dict[str, object]] = []
    while time.monotonic() - start < 1.0 and not alerts:
        alerts = _open_alerts(service, tenant.token, tenant.wearer_id)
    elapsed = time.monotonic() - start
    assert len(alerts) == 1, f"no open alert after {elapsed:.2f} s"
    alert = alerts[0]
    assert alert["kind"] == "sos" and alert["status"] == "open" and alert["wearer_id"] == tenant.wearer_id
    assert str(alert["opened_at"]).endswith("Z")
    positions = _get(service, tenant.token, f"/api/v1/wearers/{tenant.wearer_id}/positions").json()
    assert positions[0]["latitude"] == pytest.approx(43.2965)
    assert positions[0]["longitude"] == pytest.approx(5.3698)


def test_repeated_sos_attach_to_the_open_alert(service: Service, tenant: Tenant) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["100000000000002"])[0]
    for _ in range(3):
        fix = _fix("100000000000002", alarm="sos")
        assert httpx.post(f"{service.osmand}/", data=fix, timeout=5).status_code == 200  # type: ignore[arg-type]
    alerts = _open_alerts(service, tenant.token, wearer_id)
    assert len(alerts) == 1 and alerts[0]["event_count"] == 3


def test_positions_are_listed_newest_first(service: Service, tenant: Tenant) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["100000000000003"])[0]
    now = int(time.time())
    for offset in (0, 60, 30):  # one arrives late: it is stored, in its place in time
        fix = {
            "id": "100000000000003",
            "lat": 43.3 + offset / 1e5,
            "lon": 5.37,
            "timestamp": now - 600 + offset,
        }
        assert httpx.get(f"{service.osmand}/", params=fix, timeout=5).status_code == 200  # type: ignore[arg-type]
    positions = _get(service, tenant.token, f"/api/v1/wearers/{wearer_id}/positions").json()
    assert [p["latitude"] for p in positions] == pytest.approx([43.3006, 43.3003, 43.3])


def test_unknown_device_gets_the_protocol_error_and_nothing_is_stored(
    service: Service, tenant: Tenant
) -> None:
    before = _count_readings(tenant)
    reply = httpx.get(f"{service.osmand}/", params=_fix("999"), timeout=5)  # type: ignore[arg-type]
    assert reply.status_code == 400 and b"unknown device" in reply.content
    body = {
        "device_id": "999",
        "location": {"timestamp": "2026-01-01T00:00:00Z", "coords": {"latitude": 1, "longitude": 2}},
    }
    assert httpx.post(f"{service.osmand}/", json=body, timeout=5).status_code == 404
    assert _count_readings(tenant) == before


def _count_readings(tenant: Tenant) -> int:
    store = open_store(tenant.db_url)
    try:
        return store.count_readings()
    finally:
        store.close()


def test_tokens_only_see_their_own_organisation(service: Service, tenant: Tenant) -> None:
    other = provision(tenant.db_url, "Other", "555", "b@example.org")
    assert httpx.get(f"{service.osmand}/", params=_fix(UNIQUE_ID, alarm="sos"), timeout=5).status_code == 200  # type: ignore[arg-type]
    assert _open_alerts(service, other.token) == []
    leak = _get(service, other.token, f"/api/v1/wearers/{tenant.wearer_id}/positions")
    assert leak.status_code == 404
    assert leak.json()["error"]["code"] == "not_found"
    assert _get(service, other.token, f"/api/v1/wearers/{tenant.wearer_id}").status_code == 404


def test_api_requires_a_valid_token(service: Service) -> None:
    missing = httpx.get(f"{service.api}/api/v1/alerts", timeout=5)
    wrong = httpx.get(f"{service.api}/api/v1/alerts", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert missing.status_code == wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
