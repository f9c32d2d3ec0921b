"""Erasure of a wearer through the running service: admins only, with an explicit confirmation, and from
then on the wearer's device is an unknown device (its frames are not stored), while others' are."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from geosentinel.auth import hash_password, new_token
from geosentinel.model import Role
from geosentinel.store import Scope, open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant, add_devices

pytestmark = pytest.mark.e2e
GONE = "861001000719969"  # the tenant's device (tests/e2e/conftest.py)
KEPT = "861001000719977"


def _delete(service: ServiceProcess, token: str, wearer_id: str, **params: Any) -> httpx.Response:
    return httpx.delete(f"{service.api}/api/v1/wearers/{wearer_id}", params=params, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def _token(tenant: Tenant, role: Role) -> str:
    store = open_store(tenant.db_url)
    try:
        user = store.create_user(tenant.org_id, f"{role.value}-erasure@example.org",
                                 hash_password(TEST_PASSWORD), role, role.value)  # fmt: skip
        if role is Role.FAMILY:
            store.link_wearer(user.id, tenant.wearer_id)
        token, digest = new_token()
        store.create_token(user.id, digest, "test")
    finally:
        store.close()
    return token


def _fix(service: ServiceProcess, unique_id: str, **extra: str) -> httpx.Response:
    params = {"id": unique_id, "lat": "43.5263", "lon": "5.4454", "timestamp": str(int(time.time()))}
    return httpx.get(f"{service.osmand}/", params=params | extra, timeout=10)


def _readings(tenant: Tenant, device_id: str) -> int:
    store = open_store(tenant.db_url)
    try:
        return store.count_readings(device_id)
    finally:
        store.close()


def test_an_erased_wearers_device_is_unknown_from_then_on(service: ServiceProcess, tenant: Tenant) -> None:
    ((kept_wearer, kept_device),) = add_devices(tenant.db_url, tenant.org_id, [KEPT])
    assert _fix(service, GONE, alarm="sos").status_code == 200  # readings, an event and an alert to erase
    assert _fix(service, KEPT).status_code == 200
    for role in (Role.CAREGIVER, Role.FAMILY):
        refused = _delete(service, _token(tenant, role), tenant.wearer_id, confirm=tenant.wearer_id)
        assert refused.status_code == 403, role
    assert _delete(service, tenant.token, "no-such-wearer", confirm="no-such-wearer").status_code == 404
    for confirm in ({}, {"confirm": "yes"}, {"confirm": kept_wearer}):  # a stray DELETE erases nobody
        unconfirmed = _delete(service, tenant.token, tenant.wearer_id, **confirm)
        assert unconfirmed.status_code == 422, confirm
        assert unconfirmed.json()["error"]["code"] == "unprocessable"
    assert _readings(tenant, tenant.device_id) >= 1

    answer = _delete(service, tenant.token, tenant.wearer_id, confirm=tenant.wearer_id)

    assert answer.status_code == 200, answer.text
    deleted = answer.json()["deleted"]
    assert answer.json()["wearer_id"] == tenant.wearer_id
    assert deleted["wearers"] == 1 and deleted["devices"] == 1 and deleted["readings"] >= 1
    assert deleted["alerts"] == 1
    unknown = _fix(service, GONE)  # an unknown device now (OsmAnd's query form answers 400): nothing stored
    assert (unknown.status_code, unknown.text) == (400, f"unknown device {GONE}")
    assert _readings(tenant, tenant.device_id) == 0
    assert _fix(service, KEPT).status_code == 200
    assert _readings(tenant, kept_device) == 2
    headers = {"Authorization": f"Bearer {tenant.token}"}
    assert httpx.get(f"{service.api}/api/v1/wearers/{tenant.wearer_id}", headers=headers).status_code == 404
    assert _delete(service, tenant.token, tenant.wearer_id, confirm=tenant.wearer_id).status_code == 404
    audit = httpx.get(f"{service.api}/api/v1/audit", headers=headers, timeout=10).json()["items"]
    erasure = next(e for e in audit if e["action"] == "erase")
    assert erasure["wearer_ids"] == [] and erasure["query"] == deleted
    store = open_store(tenant.db_url)
    try:  # still nothing of it after the pipeline's sweep would have had a chance to run
        time.sleep(1)
        assert _readings(tenant, tenant.device_id) == 0
        assert all(e.wearer_id == kept_wearer for e in store.events(Scope(tenant.org_id)))
    finally:
        store.close()


def test_with_the_dashboard_session_an_erasure_needs_the_csrf_token(
    service: ServiceProcess, tenant: Tenant
) -> None:
    with httpx.Client(base_url=service.api, timeout=10) as client:
        login = client.post("/api/v1/session", json={"email": "a@example.org", "password": TEST_PASSWORD})
        assert login.status_code == 200, login.text
        refused = client.delete("/api/v1/wearers/whoever", params={"confirm": "whoever"})
        assert refused.status_code == 403
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        assert (
            client.delete("/api/v1/wearers/whoever", params={"confirm": "whoever"}, headers=csrf).status_code
            == 404
        )
