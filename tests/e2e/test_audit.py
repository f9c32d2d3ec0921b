"""Who saw what: every read of positions or health data through the API leaves an audit entry before the
answer goes out, readable by the organisation's admins only."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from geosentinel.auth import hash_password, new_token
from geosentinel.model import Role
from geosentinel.store import open_store
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant

pytestmark = pytest.mark.e2e


def _get(service: ServiceProcess, token: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{service.api}/api/v1{path}", params=params, timeout=10,
                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def _caregiver_token(tenant: Tenant) -> tuple[str, str]:
    store = open_store(tenant.db_url)
    try:
        user = store.create_user(tenant.org_id, f"carer-{time.monotonic_ns()}@example.org",
                                 hash_password(TEST_PASSWORD), Role.CAREGIVER, "Carer")  # fmt: skip
        token, digest = new_token()
        store.create_token(user.id, digest, "test")
    finally:
        store.close()
    return user.id, token


def test_reads_of_health_data_are_audited(service: ServiceProcess, tenant: Tenant) -> None:
    fix = {"id": "861001000719969", "lat": 43.5263, "lon": 5.4454, "alarm": "sos"}
    assert httpx.get(f"{service.osmand}/", params=fix, timeout=10).status_code == 200
    carer_id, carer = _caregiver_token(tenant)
    since = datetime.now(UTC) - timedelta(seconds=1)
    deadline = time.monotonic() + 5
    while not (alerts := _get(service, carer, "/alerts", wearer_id=tenant.wearer_id).json()["items"]):
        assert time.monotonic() < deadline, "no alert"
        time.sleep(0.05)
    alert_id = alerts[0]["id"]
    for path in (f"/wearers/{tenant.wearer_id}/positions", "/events", f"/alerts/{alert_id}",
                 f"/alerts/{alert_id}/timeline", "/reports/service-levels"):  # fmt: skip
        assert _get(service, carer, path).status_code == 200, path

    assert _get(service, carer, "/audit").status_code == 403  # caregivers do not read the audit log
    entries = _get(service, tenant.token, "/audit", actor=f"user:{carer_id}", since=since.isoformat()).json()
    resources = [e["resource"] for e in entries["items"]]
    assert sorted(resources) == sorted(
        ["alerts", "positions", "events", "alert", "alert_timeline", "service_levels"]
    ), resources
    by_resource = {e["resource"]: e for e in entries["items"]}
    assert by_resource["positions"]["wearer_ids"] == [tenant.wearer_id]
    assert by_resource["positions"]["records"] >= 1
    assert by_resource["alerts"]["query"]["wearer_id"] == tenant.wearer_id
    assert tenant.wearer_id in by_resource["events"]["wearer_ids"]
    about = _get(service, tenant.token, "/audit", wearer_id=tenant.wearer_id).json()["items"]
    assert {e["resource"] for e in about} >= {"positions", "alert_timeline"}
    assert _get(service, tenant.token, "/audit", wearer_id="someone-else").json()["items"] == []


def test_a_wearers_export_holds_their_records_with_secrets_redacted_and_is_audited(
    service: ServiceProcess, tenant: Tenant
) -> None:
    store = open_store(tenant.db_url)
    try:
        from datetime import UTC, datetime

        from geosentinel.model import Locale
        from geosentinel.store import Scope

        url = "mailto://user:S3cretPass@mail.example.org"
        contact = store.create_contact(
            tenant.org_id, "Daughter", Locale.FR, "Europe/Paris", [url], datetime.now(UTC)
        )
        store.set_wearer_contacts(Scope(tenant.org_id), tenant.wearer_id, [contact.id])
    finally:
        store.close()
    fix = {"id": "861001000719969", "lat": 43.5263, "lon": 5.4454, "batt": 77}
    assert httpx.get(f"{service.osmand}/", params=fix, timeout=10).status_code == 200
    _, carer = _caregiver_token(tenant)
    assert _get(service, carer, f"/wearers/{tenant.wearer_id}/export").status_code == 403
    assert _get(service, tenant.token, "/wearers/nobody/export").status_code == 404
    response = _get(service, tenant.token, f"/wearers/{tenant.wearer_id}/export")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["format"] == "geosentinel-export/1" and document["wearer"]["id"] == tenant.wearer_id
    assert {"devices", "readings", "events", "alerts", "contacts", "audit_log"} <= document.keys()
    assert any(r["battery_pct"] == 77 for r in document["readings"])
    assert all(r["wearer_id"] == tenant.wearer_id for r in document["readings"] + document["alerts"])
    assert "S3cretPass" not in response.text and document["contacts"][0]["name"] == "Daughter"
    entries = _get(service, tenant.token, "/audit", wearer_id=tenant.wearer_id).json()["items"]
    assert entries[0]["resource"] == "export"
