"""Service levels through the running service's API: a wearer's own contacts, the charter template, an
alert seen, taken, reached and resolved, its figures and the organisation's report (JSON and CSV), the
overdue flag, and a fall the wearer cancels from a JSON v1 device."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from geosentinel.testing import ServiceProcess, Tenant, add_devices, eventually

pytestmark = pytest.mark.e2e


def _api(service: ServiceProcess, tenant: Tenant, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {tenant.token}"}
    return httpx.request(method, f"{service.api}/api/v1{path}", headers=headers, timeout=10, **kwargs)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def _up(unique_id: str, service: ServiceProcess, *alarms: str) -> None:
    body = {"v": 1, "time": datetime.now(UTC).isoformat(), "alarms": list(alarms),
            "position": {"lat": 43.5263, "lon": 5.4454, "accuracy_m": 8}}  # fmt: skip
    response = httpx.post(
        f"{service.osmand}/geosentinel/v1/{unique_id}/up", content=json.dumps(body), timeout=10
    )
    assert response.status_code == 200, response.text


def _alerts(service: ServiceProcess, tenant: Tenant, wearer_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _ok(
        _api(service, tenant, "GET", "/alerts", params={"wearer_id": wearer_id})
    )["items"]
    return items


def test_wearer_contacts_and_the_charter_template(service: ServiceProcess, tenant: Tenant) -> None:
    def contact(name: str) -> str:
        body = {"name": name, "urls": [f"json://127.0.0.1:9/{name}"]}
        contact_id: str = _ok(_api(service, tenant, "POST", "/contacts", json=body))["id"]
        return contact_id

    anne, bruno, centrale = contact("Anne"), contact("Bruno"), contact("Centrale")
    path = f"/wearers/{tenant.wearer_id}/contacts"
    assert [
        c["name"] for c in _ok(_api(service, tenant, "PUT", path, json={"contact_ids": [anne, bruno]}))
    ] == [
        "Anne",
        "Bruno",
    ]
    assert [c["id"] for c in _ok(_api(service, tenant, "GET", path))] == [anne, bruno]
    refused = _api(service, tenant, "PUT", path, json={"contact_ids": [anne, anne]})
    assert refused.status_code == 422
    assert (
        _api(service, tenant, "PUT", "/wearers/nobody/contacts", json={"contact_ids": []}).status_code == 404
    )

    templates = _ok(_api(service, tenant, "GET", "/escalation-policies/templates"))
    assert {t["name"]: t["recommended"] for t in templates} == {
        "fr_charter": True,
        "care_home": False,
        "family_only": False,
    }  # fmt: skip  (the tenant's organisation is French)
    body = {"template": "fr_charter", "name": "Charte", "emergency": [centrale], "attempt_gap_s": 90}
    policy = _ok(_api(service, tenant, "POST", "/escalation-policies/from-template", json=body))["policy"]
    assert [(s["contacts"], s["delay_s"]) for s in policy["steps"]] == [
        (["wearer:1"], 0), (["wearer:1"], 90), (["wearer:2"], 90), (["wearer:2"], 90), ([centrale], 90),
    ]  # fmt: skip
    assert policy["fall_grace_s"] == 60
    missing = _api(service, tenant, "POST", "/escalation-policies/from-template",
                   json={"template": "fr_charter", "name": "No emergency"})  # fmt: skip
    assert missing.status_code == 422 and "emergency" in missing.text
    body = {"template": "care_home", "name": "X", "staff": ["nope"], "night_nurse": [anne]}
    unknown = _api(service, tenant, "POST", "/escalation-policies/from-template", json=body)
    assert unknown.status_code == 422 and "unknown contacts" in unknown.text


def test_an_alert_seen_taken_reached_and_resolved_has_its_figures_and_report(
    service: ServiceProcess, tenant: Tenant
) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["sla-json-1"], "mqtt")[0]
    start = datetime.now(UTC) - timedelta(minutes=1)
    _up("sla-json-1", service, "sos")
    (alert,) = eventually(lambda: _alerts(service, tenant, wearer_id))
    alert_id = alert["id"]
    assert alert["ack_overdue"] is False
    assert _ok(_api(service, tenant, "GET", f"/alerts/{alert_id}"))["id"] == alert_id  # seen by the admin
    _ok(_api(service, tenant, "POST", f"/alerts/{alert_id}/acknowledge", json={"note": "on my way"}))
    arrived_at = datetime.now(UTC)
    time.sleep(0.2)
    changed = _ok(
        _api(service, tenant, "POST", f"/alerts/{alert_id}/arrival", json={"at": arrived_at.isoformat()})
    )
    assert changed["status"] == "acknowledged"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        _api(service, tenant, "POST", f"/alerts/{alert_id}/arrival", json={"at": future}).status_code == 409
    )
    _ok(_api(service, tenant, "POST", f"/alerts/{alert_id}/resolve", json={"outcome": "assistance_at_home"}))

    timeline = _ok(_api(service, tenant, "GET", f"/alerts/{alert_id}/timeline"))
    figures = timeline["service"]
    assert figures["taken_by"].startswith("user:") and figures["outcome"] == "assistance_at_home"
    assert (
        0
        <= figures["to_shown_s"]
        <= figures["to_taken_s"]
        <= figures["to_arrival_s"]
        <= figures["to_resolved_s"]
    )
    assert [t["action"] for t in timeline["transitions"]] == ["open", "acknowledge", "arrive", "resolve"]

    period = {"since": start.isoformat(), "until": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    report = _ok(_api(service, tenant, "GET", "/reports/service-levels", params=period))
    assert report["timezone"] == "Europe/Paris" and report["overall"]["answered"] >= 1
    assert (
        report["overall"]["within_60s"] is not None
        and report["overall"]["outcomes"]["assistance_at_home"] >= 1
    )
    sos = next(g for g in report["by_kind"] if g["key"] == "sos")
    assert sos["answered"] >= 1 and sos["median_s"] is not None
    response = _api(service, tenant, "GET", "/reports/service-levels", params=period | {"format": "csv"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0]["group"] == "all" and int(rows[0]["answered"]) == report["overall"]["answered"]
    backwards = {"since": period["until"], "until": period["since"]}
    assert _api(service, tenant, "GET", "/reports/service-levels", params=backwards).status_code == 422


def test_overdue_alerts_are_flagged(service: ServiceProcess, tenant: Tenant) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["sla-late-1"], "mqtt")[0]
    body = {"v": 1, "time": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(), "alarms": ["removed"]}
    assert (
        httpx.post(
            f"{service.osmand}/geosentinel/v1/sla-late-1/up", content=json.dumps(body), timeout=10
        ).status_code
        == 200
    )
    (alert,) = eventually(lambda: _alerts(service, tenant, wearer_id))
    assert alert["ack_overdue"] is True
    overdue = _ok(_api(service, tenant, "GET", "/alerts", params={"overdue": "true"}))["items"]
    assert alert["id"] in [a["id"] for a in overdue]
    assert all(a["ack_overdue"] and a["status"] == "open" for a in overdue)


def test_a_fall_cancelled_from_the_device_in_its_grace_period_is_closed_as_a_false_alarm(
    service: ServiceProcess, tenant: Tenant
) -> None:
    wearer_id, device_id = add_devices(tenant.db_url, tenant.org_id, ["sla-cancel-1"], "mqtt")[0]
    _up("sla-cancel-1", service, "fall")
    (alert,) = eventually(lambda: _alerts(service, tenant, wearer_id))
    assert alert["kind"] == "fall" and alert["status"] == "open"
    _up("sla-cancel-1", service, "cancel")
    closed = eventually(lambda: [a for a in _alerts(service, tenant, wearer_id) if a["status"] == "resolved"])
    assert [a["id"] for a in closed] == [alert["id"]]
    timeline = _ok(_api(service, tenant, "GET", f"/alerts/{alert['id']}/timeline"))
    last = timeline["transitions"][-1]
    assert (last["action"], last["actor"], last["outcome"]) == (
        "cancel",
        f"device:{device_id}",
        "false_alarm",
    )
    assert timeline["notifications"] == []  # nobody was bothered
    assert timeline["service"]["to_taken_s"] is None
