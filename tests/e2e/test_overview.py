"""The dashboard's read routes on the real service, on both backends: ``GET /api/v1/overview`` (each wearer's
status, last position, devices and open alerts) and ``GET /api/v1/wearers/{id}/vitals`` (heart rate, SpO2,
steps and battery over a period). Both are scoped (a family member sees only their wearers) and audited."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from geosentinel.auth import hash_password, new_token
from geosentinel.model import Role
from geosentinel.store import open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant, add_devices, eventually

pytestmark = pytest.mark.e2e

UNIQUE_ID = "861001000719969"  # the tenant's device (tests/e2e/conftest.py)


def _get(service: ServiceProcess, token: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{service.api}/api/v1{path}", params=params, timeout=10,
                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def _fix(service: ServiceProcess, unique_id: str, at: datetime, **extra: object) -> None:
    params: dict[str, Any] = {
        "id": unique_id,
        "lat": 43.2965,
        "lon": 5.3698,
        "timestamp": int(at.timestamp()),
    }
    assert httpx.get(f"{service.osmand}/", params=params | extra, timeout=10).status_code == 200


def _family_token(tenant: Tenant, wearer_id: str) -> str:
    store = open_store(tenant.db_url)
    try:
        user = store.create_user(tenant.org_id, f"fam-{time.monotonic_ns()}@example.org",
                                 hash_password(TEST_PASSWORD), Role.FAMILY, "Fam")  # fmt: skip
        store.link_wearer(user.id, wearer_id)
        token, digest = new_token()
        store.create_token(user.id, digest, "family")
    finally:
        store.close()
    return token


def test_the_overview_gives_each_wearer_status_position_and_devices(
    service: ServiceProcess, tenant: Tenant
) -> None:
    (low_wearer, _), (sos_wearer, _), (silent_wearer, silent_device) = add_devices(
        tenant.db_url, tenant.org_id, ["300000000000001", "300000000000002", "300000000000003"]
    )
    now = datetime.now(UTC)
    _fix(service, UNIQUE_ID, now - timedelta(seconds=30), batt=80, lat=43.2990, lon=5.3720)
    _fix(service, UNIQUE_ID, now, batt=79)
    _fix(service, "300000000000001", now, batt=9)
    _fix(service, "300000000000002", now, alarm="sos")

    def statuses() -> dict[str, dict[str, Any]] | None:
        items = _get(service, tenant.token, "/overview").json()["items"]
        found = {w["id"]: w for w in items}
        return found if found[sos_wearer]["status"] == "alert" else None

    found = eventually(statuses, 10, "no alert status")
    mine = found[tenant.wearer_id]
    assert mine["status"] == "ok" and mine["battery_pct"] == 79.0 and mine["open_alerts"] == []
    assert mine["position"]["latitude"] == pytest.approx(43.2965)  # the newest fix, not the first
    assert mine["position"]["time"] == now.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert [d["unique_id"] for d in mine["devices"]] == [UNIQUE_ID]
    assert mine["devices"][0]["offline"] is False and mine["devices"][0]["last_seen"] is not None
    assert found[low_wearer]["status"] == "low_battery"  # under the 15 % threshold
    assert [a["kind"] for a in found[sos_wearer]["open_alerts"]] == ["sos"]
    silent = found[silent_wearer]
    assert silent["status"] == "unknown" and silent["position"] is None and silent["last_seen"] is None
    assert silent["devices"][0]["id"] == silent_device
    names = [w["name"] for w in _get(service, tenant.token, "/overview").json()["items"]]
    assert names == sorted(names)  # by name, like the wearers list
    page = _get(service, tenant.token, "/overview", limit=1, offset=1).json()
    assert len(page["items"]) == 1 and page["items"][0]["name"] == names[1]

    family = _get(service, _family_token(tenant, low_wearer), "/overview").json()["items"]
    assert [w["id"] for w in family] == [low_wearer]


def test_vitals_are_a_time_series_of_the_period_and_every_read_is_audited(
    service: ServiceProcess, tenant: Tenant
) -> None:
    wearer, _ = add_devices(tenant.db_url, tenant.org_id, ["300000000000009"])[0]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    for i in range(5):
        _fix(service, "300000000000009", start + timedelta(minutes=5 * i), heartrate=70 + i, spo2=97,
             steps=100 * i, batt=90 - i)  # fmt: skip
    until = start + timedelta(minutes=21)

    def series() -> list[dict[str, Any]]:
        period = {"since": start.isoformat(), "until": until.isoformat()}
        found: list[dict[str, Any]] = _get(
            service, tenant.token, f"/wearers/{wearer}/vitals", **period
        ).json()
        return found if len(found) == 5 else []

    vitals = eventually(series, 10, "no vitals")
    assert [v["heart_rate_bpm"] for v in vitals] == [70.0, 71.0, 72.0, 73.0, 74.0]  # oldest first
    assert [v["steps"] for v in vitals] == [0, 100, 200, 300, 400]
    assert vitals[0] == {"time": start.isoformat().replace("+00:00", "Z"), "heart_rate_bpm": 70.0,
                         "spo2_pct": 97.0, "steps": 0, "battery_pct": 90.0}  # fmt: skip
    newest = _get(service, tenant.token, f"/wearers/{wearer}/vitals", since=start.isoformat(), limit=2).json()
    assert [v["heart_rate_bpm"] for v in newest] == [73.0, 74.0]  # the newest ones, oldest first
    backwards = _get(service, tenant.token, f"/wearers/{wearer}/vitals", since=until.isoformat(),
                     until=start.isoformat())  # fmt: skip
    assert backwards.status_code == 422
    assert _get(service, tenant.token, "/wearers/nobody/vitals").status_code == 404
    other_family = _family_token(tenant, tenant.wearer_id)
    assert _get(service, other_family, f"/wearers/{wearer}/vitals").status_code == 404

    audit = _get(service, tenant.token, "/audit", wearer_id=wearer).json()["items"]
    reads = [e for e in audit if e["resource"] == "vitals"]
    assert {5, 2} <= {e["records"] for e in reads}
    assert all(e["wearer_ids"] == [wearer] for e in reads)
    overview_reads = _get(service, tenant.token, "/audit", wearer_id=tenant.wearer_id).json()["items"]
    assert any(e["resource"] == "overview" for e in overview_reads)
