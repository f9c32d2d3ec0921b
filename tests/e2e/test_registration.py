"""Registering wearers and bracelets through the API, and giving a bracelet to someone else, on the running
service: the next message of a reassigned device is stored for its new wearer at once."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from geosentinel.auth import hash_password, new_token
from geosentinel.model import Role
from geosentinel.store import open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant, eventually

pytestmark = pytest.mark.e2e


def _api(
    service: ServiceProcess, token: str, method: str, path: str, language: str = "en", **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept-Language": language}
    return httpx.request(method, f"{service.api}/api/v1{path}", headers=headers, timeout=10, **kwargs)


def _fix(service: ServiceProcess, unique_id: str, lat: float) -> None:
    fix = {"id": unique_id, "lat": lat, "lon": 5.4454, "timestamp": int(time.time())}
    assert httpx.get(f"{service.osmand}/", params=fix, timeout=10).status_code == 200


def _positions(service: ServiceProcess, token: str, wearer_id: str) -> list[float]:
    response = _api(service, token, "GET", f"/wearers/{wearer_id}/positions")
    assert response.status_code == 200, response.text
    return [p["latitude"] for p in response.json()]


@pytest.fixture(scope="module")
def caregiver_token(tenant: Tenant) -> str:
    store = open_store(tenant.db_url)
    try:
        user = store.create_user(
            tenant.org_id, "caregiver-reg@example.org", hash_password(TEST_PASSWORD), Role.CAREGIVER, "C"
        )
        token, digest = new_token()
        store.create_token(user.id, digest, "test")
    finally:
        store.close()
    return token


def test_register_a_wearer_and_a_bracelet_then_give_it_to_someone_else(
    service: ServiceProcess, tenant: Tenant
) -> None:
    admin = tenant.token
    first = _api(service, admin, "POST", "/wearers", json={"name": "Lucienne Arnaud"})
    assert first.status_code == 201, first.text
    second = _api(service, admin, "POST", "/wearers", json={"name": "Paul Arnaud"}).json()
    body = {"unique_id": "861000000007001", "protocol": "osmand", "wearer_id": first.json()["id"],
            "expected_interval_s": 60}  # fmt: skip
    device = _api(service, admin, "POST", "/devices", json=body)
    assert device.status_code == 201, device.text
    assert device.json()["expected_interval_s"] == 60
    assert _api(service, admin, "GET", f"/devices/{device.json()['id']}").json() == device.json()

    _fix(service, "861000000007001", 43.5001)
    eventually(lambda: _positions(service, admin, first.json()["id"]) == [43.5001], 10)

    moved = _api(service, admin, "PATCH", f"/devices/{device.json()['id']}", json={"wearer_id": second["id"]})
    assert moved.status_code == 200 and moved.json()["wearer_id"] == second["id"]
    assert moved.json()["expected_interval_s"] == 60  # untouched: only the fields given change
    _fix(service, "861000000007001", 43.5002)
    eventually(lambda: _positions(service, admin, second["id"]) == [43.5002], 10)
    assert _positions(service, admin, first.json()["id"]) == [43.5001]

    renamed = _api(service, admin, "PATCH", f"/wearers/{second['id']}", json={"name": "Paul Arnaud-Roux"})
    assert renamed.json()["name"] == "Paul Arnaud-Roux"


def test_what_registration_refuses(service: ServiceProcess, tenant: Tenant, caregiver_token: str) -> None:
    admin = tenant.token
    assert _api(service, caregiver_token, "POST", "/wearers", json={"name": "X"}).status_code == 403
    taken = {"unique_id": "861001000719969", "protocol": "osmand"}  # the tenant's own device
    assert _api(service, admin, "POST", "/devices", json=taken).status_code == 409
    bad_zone = {"unique_id": "861000000007002", "protocol": "watch", "timezone": "Europe/Aix"}
    refused = _api(service, admin, "POST", "/devices", json=bad_zone, language="fr")
    assert refused.status_code == 422 and "fuseau horaire inconnu" in refused.json()["error"]["message"]
    nobody = {"unique_id": "861000000007003", "protocol": "gt06", "wearer_id": "nobody"}
    assert _api(service, admin, "POST", "/devices", json=nobody).status_code == 422
    assert (
        _api(service, admin, "POST", "/devices", json={"unique_id": "x y", "protocol": "osmand"}).status_code
        == 422
    )
    assert _api(service, admin, "PATCH", "/devices/nobody", json={"model": "S8"}).status_code == 404


def test_an_admin_changes_the_organisations_settings(
    service: ServiceProcess, tenant: Tenant, caregiver_token: str
) -> None:
    admin = tenant.token
    before = _api(service, admin, "GET", "/organisation").json()
    changed = _api(
        service, admin, "PATCH", "/organisation", json={"timezone": "Europe/Brussels", "locale": "en"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["timezone"], changed.json()["locale"]) == ("Europe/Brussels", "en")
    assert changed.json()["retention_days"] == before["retention_days"]  # untouched
    assert (
        _api(service, admin, "PATCH", "/organisation", json={"retention_days": 90}).json()["retention_days"]
        == 90
    )
    assert _api(service, admin, "PATCH", "/organisation", json={"retention_days": 0}).status_code == 422
    assert (
        _api(service, admin, "PATCH", "/organisation", json={"timezone": "Mars/Olympus"}).status_code == 422
    )
    refused = _api(service, caregiver_token, "PATCH", "/organisation", json={"locale": "zh"}, language="zh")
    assert refused.status_code == 403 and "机构管理员" in refused.json()["error"]["message"]
    restore = {
        "timezone": before["timezone"],
        "locale": before["locale"],
        "retention_days": before["retention_days"],
    }
    assert _api(service, admin, "PATCH", "/organisation", json=restore).json() == before
