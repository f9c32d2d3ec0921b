"""A device publishing to a real mosquitto broker: readings stored, SOS alerted, bad messages isolated."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from geosentinel.testing import ServiceProcess, Tenant, add_devices, eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(mqtt_service: ServiceProcess) -> ServiceProcess:
    return mqtt_service


@pytest.fixture(scope="module")
def publisher(mqtt_url: str) -> Iterator[Callable[[str, bytes], None]]:
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4().hex[:8]}")
    client.connect(host, int(port))
    client.loop_start()

    def publish(topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(5)

    yield publish
    client.loop_stop()
    client.disconnect()


def _api(service: ServiceProcess, token: str, path: str) -> object:
    response = httpx.get(f"{service.api}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    response.raise_for_status()
    return response.json()


def _up(lat: float, **extra: object) -> bytes:
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {"v": 1, "time": now, "position": {"lat": lat, "lon": 5.3698, "accuracy_m": 8}, **extra}
    ).encode()


def test_a_published_reading_is_stored(
    service: ServiceProcess, tenant: Tenant, publisher: Callable[[str, bytes], None]
) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["mq-0001"], "mqtt")[0]
    publisher(f"geosentinel/{tenant.org_id}/mq-0001/up", _up(43.2961, battery_pct=77, heart_rate_bpm=71))

    def stored() -> bool:
        positions = _api(service, tenant.token, f"/api/v1/wearers/{wearer_id}/positions")
        return (
            isinstance(positions, list)
            and bool(positions)
            and positions[0]["latitude"] == pytest.approx(43.2961)
        )

    eventually(stored)


def test_a_malformed_message_between_two_good_ones_loses_neither(
    service: ServiceProcess, tenant: Tenant, publisher: Callable[[str, bytes], None]
) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["mq-0002"], "mqtt")[0]
    topic = f"geosentinel/{tenant.org_id}/mq-0002/up"
    publisher(topic, _up(43.2961))
    publisher(topic, b'{"v": 1, "position": {"lat": "north"}}')
    publisher(topic, b"\xff\xfe not json")
    publisher(topic, _up(43.2962))

    def both() -> bool:
        positions = _api(service, tenant.token, f"/api/v1/wearers/{wearer_id}/positions")
        assert isinstance(positions, list)
        return sorted(round(p["latitude"], 4) for p in positions) == [43.2961, 43.2962]

    eventually(both)


def test_sos_over_mqtt_opens_an_alert(
    service: ServiceProcess, tenant: Tenant, publisher: Callable[[str, bytes], None]
) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["mq-0003"], "mqtt")[0]
    publisher(f"geosentinel/{tenant.org_id}/mq-0003/up", _up(43.3, alarms=["sos"]))

    def alerted() -> bool:
        body = _api(service, tenant.token, f"/api/v1/alerts?status=open&wearer_id={wearer_id}")
        assert isinstance(body, dict)
        return any(a["kind"] == "sos" for a in body["items"])

    eventually(alerted)


def test_a_device_publishing_under_another_organisation_is_ignored(
    service: ServiceProcess, tenant: Tenant, publisher: Callable[[str, bytes], None]
) -> None:
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["mq-0004"], "mqtt")[0]
    publisher(f"geosentinel/{uuid.uuid4()}/mq-0004/up", _up(43.2964))
    publisher(f"geosentinel/{tenant.org_id}/mq-0004/up", _up(43.2965))

    def latest() -> list[float]:
        positions = _api(service, tenant.token, f"/api/v1/wearers/{wearer_id}/positions")
        assert isinstance(positions, list)
        return [p["latitude"] for p in positions]

    eventually(lambda: bool(latest()))
    time.sleep(0.3)
    assert latest() == [pytest.approx(43.2965)]


def test_readings_in_flight_or_sent_while_the_service_is_down_are_stored(
    tenant: Tenant,
    mqtt_url: str,
    publisher: Callable[[str, bytes], None],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The service acknowledges a PUBLISH only after the commit, in a persistent broker session: whatever
    # it had not committed when killed is delivered again to the restarted service.
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, ["mq-0005"], "mqtt")[0]
    url = f"{mqtt_url}?client_id=test-kill-{uuid.uuid4().hex[:8]}"
    args = ("--mqtt", url, "--watch-port", "0", "--gt06-port", "0", "--h02-port", "0")
    log = tmp_path_factory.mktemp("kill") / "serve.log"
    first = ServiceProcess(tenant.db_url, log, *args).start()
    topic = f"geosentinel/{tenant.org_id}/mq-0005/up"
    count = 300
    for i in range(count // 2):
        publisher(topic, _up(43.29 + i * 1e-5, steps=i))
    first.kill()  # some of those are likely still uncommitted, hence unacknowledged
    for i in range(count // 2, count):  # queued by the broker for the session while nobody listens
        publisher(topic, _up(43.29 + i * 1e-5, steps=i))
    second = ServiceProcess(tenant.db_url, log, *args).start()
    try:

        def all_stored() -> bool:
            positions = _api(second, tenant.token, f"/api/v1/wearers/{wearer_id}/positions?limit=1000")
            assert isinstance(positions, list)
            return len({round(p["latitude"], 6) for p in positions}) == count

        eventually(all_stored, 15)
    finally:
        second.stop()
