"""Detection through the running service: geofences from the API, jitter, offline, and a restart mid-exit."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from geosentinel.store import open_store
from geosentinel.testing import ServiceProcess as Service
from geosentinel.testing import Tenant, add_devices

pytestmark = pytest.mark.e2e

HOME = (43.2965, 5.3698)


def _headers(tenant: Tenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.token}"}


def _alerts(service: Service, tenant: Tenant, wearer_id: str, kind: str) -> list[dict[str, object]]:
    params = {"wearer_id": wearer_id, "kind": kind}
    response = httpx.get(f"{service.api}/api/v1/alerts", params=params, headers=_headers(tenant), timeout=5)
    response.raise_for_status()
    items: list[dict[str, object]] = response.json()["items"]
    return items


def _wait_for_alerts(
    service: Service, tenant: Tenant, wearer_id: str, kind: str, seconds: float
) -> list[dict[str, object]]:
    deadline = time.monotonic() + seconds
    while True:
        found = _alerts(service, tenant, wearer_id, kind)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


class Walker:
    """An OsmAnd device reporting every 30 s of device time (sent as fast as the test likes)."""

    def __init__(self, service: Service, unique_id: str) -> None:
        self.service = service
        self.unique_id = unique_id
        self.t = int(time.time()) - 3600

    def send(self, north_m: float, east_m: float, accuracy_m: float = 8.0) -> None:
        self.t += 30
        lat = HOME[0] + north_m / 111_320.0
        lon = HOME[1] + east_m / (111_320.0 * math.cos(math.radians(HOME[0])))
        params = {"id": self.unique_id, "lat": f"{lat:.6f}", "lon": f"{lon:.6f}", "timestamp": self.t}
        params["accuracy"] = accuracy_m
        reply = httpx.get(f"{self.service.osmand}/", params=params, timeout=5)  # type: ignore[arg-type]
        assert reply.status_code == 200, reply.text


def _safe_zone(service: Service, tenant: Tenant, wearer_id: str) -> dict[str, object]:
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [HOME[1], HOME[0]]},
        "properties": {"name": "Home", "kind": "safe", "wearer_id": wearer_id, "radius_m": 200},
    }
    response = httpx.post(
        f"{service.api}/api/v1/geofences", json=feature, headers=_headers(tenant), timeout=5
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def test_geofence_api_validates_and_lists_geojson(service: Service, tenant: Tenant) -> None:
    created = _safe_zone(service, tenant, tenant.wearer_id)
    assert created["type"] == "Feature" and created["properties"]["kind"] == "safe"  # type: ignore[index]
    url = f"{service.api}/api/v1/geofences"
    listed = httpx.get(
        url, params={"wearer_id": tenant.wearer_id}, headers=_headers(tenant), timeout=5
    ).json()
    assert listed["type"] == "FeatureCollection"
    assert created["id"] in [f["id"] for f in listed["features"]]
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[5.36, 43.29], [5.37, 43.30], [5.37, 43.29], [5.36, 43.30], [5.36, 43.29]]],
    }
    bad = [
        {"type": "Point", "coordinates": [5.36, 43.29]},  # a circle without a radius
        bowtie,  # self-intersecting
        {"type": "Point", "coordinates": [5.36, 143.29]},  # latitude out of range
        {"type": "Banana"},
    ]
    for geometry in bad:
        body = {"type": "Feature", "geometry": geometry, "properties": {"name": "Bad"}}
        response = httpx.post(url, json=body, headers=_headers(tenant), timeout=5)
        assert response.status_code == 422, (geometry, response.text)
        assert response.json()["error"]["message"]
    stranger = {
        "type": "Feature",
        "geometry": created["geometry"],
        "properties": {"name": "X", "radius_m": 5, "wearer_id": "nobody"},
    }
    assert httpx.post(url, json=stranger, headers=_headers(tenant), timeout=5).status_code == 404
    bad_days = {
        "name": "Night",
        "radius_m": 100,
        "schedule": [{"days": [7], "start": "21:00", "end": "07:00"}],
    }
    body = {"type": "Feature", "geometry": created["geometry"], "properties": bad_days}
    assert httpx.post(url, json=body, headers=_headers(tenant), timeout=5).status_code == 422
    fence_url = f"{url}/{created['id']}"
    assert httpx.delete(fence_url, headers=_headers(tenant), timeout=5).status_code == 204
    assert httpx.get(fence_url, headers=_headers(tenant), timeout=5).status_code == 404


def test_one_wild_fix_never_alerts_a_real_exit_does(service: Service, tenant: Tenant) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["200000000000001"])[0]
    _safe_zone(service, tenant, wearer_id)
    time.sleep(2.5)  # the pipeline picks new fences up within its refresh interval (2 s)
    walker, rng = Walker(service, "200000000000001"), random.Random(7)
    for _ in range(20):
        walker.send(rng.gauss(0, 20), rng.gauss(0, 20))
    walker.send(400, 50, accuracy_m=5)  # a multipath fix that claims 5 m accuracy
    for _ in range(10):
        walker.send(rng.gauss(0, 20), rng.gauss(0, 20))
    for _ in range(5):
        walker.send(rng.gauss(0, 300), rng.gauss(0, 300), accuracy_m=900)  # indoors, cell-only
    assert _wait_for_alerts(service, tenant, wearer_id, "geofence_exit", 1.0) == []
    for i in range(4):
        walker.send(420 + 40 * i, 60)
    alerts = _wait_for_alerts(service, tenant, wearer_id, "geofence_exit", 3.0)
    assert len(alerts) == 1 and alerts[0]["event_count"] == 1


@pytest.fixture
def restartable(tenant: Tenant, tmp_path: Path) -> Iterator[Service]:
    svc = Service(tenant.db_url, tmp_path / "serve.log").start()
    yield svc
    svc.stop()


def test_an_exit_half_confirmed_before_a_crash_completes_after_it(
    restartable: Service, tenant: Tenant
) -> None:
    """Detector state is committed with the readings: a SIGKILL between two fixes loses nothing."""
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["200000000000002"])[0]
    _safe_zone(restartable, tenant, wearer_id)
    time.sleep(2.5)
    walker = Walker(restartable, "200000000000002")
    for _ in range(5):
        walker.send(0, 0)
    walker.send(500, 0)
    walker.send(540, 0)  # two fixes outside: one short of confirming
    restartable.kill()
    restartable.start()
    assert _alerts(restartable, tenant, wearer_id, "geofence_exit") == []
    walker.service = restartable
    walker.send(580, 0)
    assert len(_wait_for_alerts(restartable, tenant, wearer_id, "geofence_exit", 3.0)) == 1


def test_a_silent_device_goes_offline_and_back(service: Service, tenant: Tenant) -> None:
    store = open_store(tenant.db_url)
    try:  # a device that promises a report every 10 s (the shortest interval detection accepts)
        wearer_id = store.create_wearer(tenant.org_id, "Silent").id
        store.create_device(tenant.org_id, wearer_id, "200000000000003", "osmand", expected_interval_s=10.0)
    finally:
        store.close()
    walker = Walker(service, "200000000000003")
    walker.send(0, 0)
    sent = time.monotonic()
    alerts = _wait_for_alerts(service, tenant, wearer_id, "offline", 40.0)
    waited = time.monotonic() - sent
    assert len(alerts) == 1 and alerts[0]["status"] == "open", f"no offline alert after {waited:.0f} s"
    # Detected after 1.5 x 10 s and within the next sweep (every 5 s): never before 15 s.
    assert waited >= 15.0
    walker.send(0, 0)
    deadline = time.monotonic() + 3
    while _alerts(service, tenant, wearer_id, "offline")[0]["status"] != "resolved":
        assert time.monotonic() < deadline, "back online did not close the offline alert"
        time.sleep(0.2)


def test_detection_settings_through_the_api(service: Service, tenant: Tenant) -> None:
    url = f"{service.api}/api/v1/wearers/{tenant.wearer_id}/detection"
    shown = httpx.get(url, headers=_headers(tenant), timeout=5).json()
    assert shown["timezone"] == "Europe/Paris" and shown["settings"]["battery_low_pct"] == 15.0
    changed = httpx.put(
        url, json={"battery_low_pct": 25, "day_end": "20:00"}, headers=_headers(tenant), timeout=5
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"]["battery_low_pct"] == 25
    assert changed.json()["overrides"] == {"battery_low_pct": 25, "day_end": "20:00"}
    bad = httpx.put(url, json={"battery_low_pct": "low"}, headers=_headers(tenant), timeout=5)
    assert bad.status_code == 422 and "must be a number" in bad.json()["error"]["message"]
    nobody = f"{service.api}/api/v1/wearers/nobody/detection"
    assert httpx.put(nobody, json={}, headers=_headers(tenant), timeout=5).status_code == 404
    assert httpx.get(nobody, headers=_headers(tenant), timeout=5).status_code == 404
    assert httpx.put(url, json={}, headers=_headers(tenant), timeout=5).json()["overrides"] == {}
