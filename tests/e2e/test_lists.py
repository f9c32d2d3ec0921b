"""Lists and exports against the running service: every list route pages with ``limit`` and ``offset``,
and a wearer's positions download as GeoJSON, GPX and CSV with the JSON route's filters, scope and audit."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import gpxpy
import httpx
import pytest

from geosentinel.auth import hash_password, new_token
from geosentinel.model import Role
from geosentinel.store import open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant

pytestmark = pytest.mark.e2e

UNIQUE_ID = "861001000719969"  # the device of the module's tenant (conftest.py)

LIST_ROUTES = ["/wearers", "/devices", "/geofences", "/contacts", "/escalation-policies", "/tokens",
               "/events", "/alerts", "/audit", "/users", "/wearers/{wearer_id}/positions"]  # fmt: skip


def _get(service: ServiceProcess, token: str | None, path: str, **params: Any) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{service.api}/api/v1{path}", params=params, headers=headers, timeout=10)


def _user_token(tenant: Tenant, role: Role, wearer_ids: list[str]) -> tuple[str, str]:
    store = open_store(tenant.db_url)
    try:
        user = store.create_user(tenant.org_id, f"{role}-{time.monotonic_ns()}@example.org",
                                 hash_password(TEST_PASSWORD), role, "Someone")  # fmt: skip
        for wearer_id in wearer_ids:
            store.link_wearer(user.id, wearer_id)
        token, digest = new_token()
        store.create_token(user.id, digest, "test")
    finally:
        store.close()
    return user.id, token


def test_every_list_route_pages(service: ServiceProcess, tenant: Tenant) -> None:
    for route in LIST_ROUTES:
        path = route.format(wearer_id=tenant.wearer_id)
        page = _get(service, tenant.token, path, limit=1, offset=0)
        assert page.status_code == 200, (route, page.text)
        body = page.json()
        items = body["items"] if isinstance(body, dict) and "items" in body else body
        items = body["features"] if isinstance(body, dict) and "features" in body else items
        assert isinstance(items, list) and len(items) <= 1, route
        if isinstance(body, dict) and "items" in body:
            assert (body["limit"], body["offset"]) == (1, 0), route
        for bad in ({"limit": 0}, {"offset": -1}, {"offset": 10_000_001}):
            refused = _get(service, tenant.token, path, **bad)
            assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_request", route
    assert _get(service, tenant.token, "/wearers", limit=1001).status_code == 422
    assert _get(service, tenant.token, "/wearers", offset=1).json()["items"] == []  # one wearer
    devices = _get(service, tenant.token, "/devices", wearer_id=tenant.wearer_id).json()["items"]
    assert [d["id"] for d in devices] == [tenant.device_id]
    assert _get(service, tenant.token, "/devices", wearer_id="nobody").json()["items"] == []


def _send_fixes(service: ServiceProcess, tenant: Tenant) -> list[datetime]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    times = [start + timedelta(minutes=m) for m in range(3)]
    for m, t in enumerate(times):
        fix = {"id": UNIQUE_ID, "lat": f"{43.5263 + m * 0.0003:.6f}", "lon": "5.445400",
               "timestamp": int(t.timestamp()), "speed": 1.0, "batt": 80 - m, "accuracy": 5}  # fmt: skip
        assert httpx.get(f"{service.osmand}/", params=fix, timeout=10).status_code == 200
    deadline = time.monotonic() + 10
    while len(_get(service, tenant.token, f"/wearers/{tenant.wearer_id}/positions").json()) < 3:
        assert time.monotonic() < deadline, "the fixes were not stored"
        time.sleep(0.05)
    return times


def test_positions_export_as_geojson_gpx_and_csv(service: ServiceProcess, tenant: Tenant) -> None:
    times = _send_fixes(service, tenant)
    carer_id, carer = _user_token(tenant, Role.CAREGIVER, [])
    path = f"/wearers/{tenant.wearer_id}/positions"
    since = (times[0] - timedelta(seconds=1)).isoformat()
    as_json = _get(service, carer, path, since=since).json()
    assert [p["time"] for p in as_json] == [t.isoformat().replace("+00:00", "Z") for t in reversed(times)]

    geojson = _get(service, carer, path, since=since, format="geojson")
    assert geojson.status_code == 200 and geojson.headers["content-type"] == "application/geo+json"
    disposition = geojson.headers["content-disposition"]
    assert disposition == f'attachment; filename="positions-{tenant.wearer_id}.geojson"'
    features = geojson.json()["features"]
    assert [f["properties"]["time"] for f in features] == [t.isoformat() for t in times]  # oldest first
    assert features[0]["geometry"] == {"type": "Point", "coordinates": [5.4454, 43.5263]}
    assert set(features[0]["properties"]) == {"time", "received_at", "accuracy_m", "speed_kmh", "battery_pct",
                                              "device_id"}  # fmt: skip
    assert features[0]["properties"]["battery_pct"] == 80.0 and features[0]["properties"]["accuracy_m"] == 5.0
    assert features[0]["properties"]["device_id"] == tenant.device_id

    gpx = _get(service, carer, path, since=since, format="gpx")
    assert gpx.status_code == 200 and gpx.headers["content-type"] == "application/gpx+xml"
    assert gpx.headers["content-disposition"].endswith(f'filename="positions-{tenant.wearer_id}.gpx"')
    (segment,) = gpxpy.parse(gpx.text).tracks[0].segments
    assert [p.time for p in segment.points] == times
    assert "<time>" in gpx.text and "+00:00</time>" not in gpx.text  # UTC as Z

    exported = _get(service, carer, path, since=since, format="csv", limit=1, offset=1)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["time"] for r in rows] == [times[1].isoformat()] and rows[0]["battery_pct"] == "79.0"

    entries = _get(service, tenant.token, "/audit", actor=f"user:{carer_id}").json()["items"]
    formats = sorted(e["query"]["format"] for e in entries if e["resource"] == "positions")
    assert formats == ["csv", "geojson", "gpx", "json"]
    assert all(e["wearer_ids"] == [tenant.wearer_id] for e in entries)
    assert next(e for e in entries if e["query"]["format"] == "csv")["records"] == 1


def test_positions_export_is_scoped_like_the_json_route(service: ServiceProcess, tenant: Tenant) -> None:
    path = f"/wearers/{tenant.wearer_id}/positions"
    _, linked = _user_token(tenant, Role.FAMILY, [tenant.wearer_id])
    _, unlinked = _user_token(tenant, Role.FAMILY, [])
    for format in ("geojson", "gpx", "csv"):
        assert _get(service, linked, path, format=format).status_code == 200
        refused = _get(service, unlinked, path, format=format)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
        assert _get(service, None, path, format=format).status_code == 401
    assert _get(service, linked, path, format="kml").status_code == 422
