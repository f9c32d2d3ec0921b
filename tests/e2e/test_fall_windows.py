"""Motion windows sent as devices send them, judged by the shipped fall classifier in the real service.

The windows are real wrist recordings (UMAFall) shipped for the simulator: a fall opens a ``fall`` alert
with the classifier's score; clapping (the classic wrist false alarm: peaks of 8 g) is set aside with a
``fall_rejected`` event, even though the device raised its fall alarm.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from geosentinel.sim.motion import RecordedWindow, recorded_windows
from geosentinel.testing import ServiceProcess, Tenant, add_devices, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(mqtt_service: ServiceProcess) -> ServiceProcess:
    return mqtt_service


def _window(activity: str) -> RecordedWindow:
    return next(w for w in recorded_windows() if w.activity == activity)


def _up(window: RecordedWindow | None, *alarms: str) -> bytes:
    now = datetime.now(UTC)
    body: dict[str, object] = {"v": 1, "time": now.isoformat(), "alarms": list(alarms),
                               "position": {"lat": 43.5263, "lon": 5.4454, "accuracy_m": 8}}  # fmt: skip
    if window is not None:
        body["imu"] = window.payload(now)
    return json.dumps(body).encode()


def _post(service: ServiceProcess, unique_id: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{service.osmand}/geosentinel/v1/{unique_id}/up", content=body, timeout=10)


def _get(service: ServiceProcess, token: str, path: str, **params: str) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.get(f"{service.api}{path}", params=params, headers=headers, timeout=5)
    response.raise_for_status()
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_a_real_fall_window_over_http_opens_a_fall_alert_with_its_score(
    service: ServiceProcess, tenant: Tenant
) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["fall-http-1"], "mqtt")[0]
    assert _post(service, "fall-http-1", _up(_window("forwardFall"), "fall")).status_code == 200
    alerts = eventually(lambda: _get(service, tenant.token, "/api/v1/alerts", wearer_id=wearer_id))
    assert [a["kind"] for a in alerts] == ["fall"]
    events = _get(service, tenant.token, "/api/v1/events", wearer_id=wearer_id)
    (fall,) = [e for e in events if e["kind"] == "fall"]
    assert isinstance(fall["details"], dict) and 0.5 <= float(fall["details"]["fall_score"]) <= 1


def test_clapping_with_a_device_fall_alarm_opens_no_alert(
    service: ServiceProcess, tenant: Tenant, mqtt_url: str
) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["clap-mqtt-1"], "mqtt")[0]
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4().hex[:8]}")
    client.connect(host, int(port))
    client.loop_start()
    try:
        topic = f"geosentinel/{tenant.org_id}/clap-mqtt-1/up"
        client.publish(topic, _up(_window("Aplausing"), "fall"), qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    events = eventually(lambda: _get(service, tenant.token, "/api/v1/events", wearer_id=wearer_id))
    assert [e["kind"] for e in events] == ["fall_rejected"]
    assert events[0]["details"]["device_alarm"] is True  # type: ignore[index]
    assert _get(service, tenant.token, "/api/v1/alerts", wearer_id=wearer_id) == []


def test_the_json_endpoint_answers_like_the_mqtt_decoder(service: ServiceProcess, tenant: Tenant) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["json-http-1"], "mqtt")[0]
    assert _post(service, "json-http-1", _up(None, "sos")).status_code == 200
    alerts = eventually(lambda: _get(service, tenant.token, "/api/v1/alerts", wearer_id=wearer_id))
    assert [a["kind"] for a in alerts] == ["sos"]
    unknown = _post(service, "nobody-1", _up(None))
    assert (unknown.status_code, unknown.text) == (404, "unknown device nobody-1")
    bad = _post(service, "json-http-1", b'{"v": 1, "battery_pct": 150}')
    assert bad.status_code == 400 and "$.battery_pct" in bad.text
    assert httpx.get(f"{service.osmand}/geosentinel/v1/json-http-1/up", timeout=5).status_code == 405
    assert _post(service, "json-http-1", b"").status_code == 400
    # The OsmAnd endpoint is still where it was.
    fix = {"id": "861001000719969", "lat": 43.5, "lon": 5.4}  # the tenant's OsmAnd device (conftest)
    assert httpx.get(f"{service.osmand}/", params=fix, timeout=5).status_code == 200
