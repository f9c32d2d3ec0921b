"""``/metrics``: Prometheus counters move with real traffic, and say nothing about anyone."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from geosentinel.testing import ServiceProcess, Tenant

pytestmark = pytest.mark.e2e


def _samples(service: ServiceProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{service.api}/metrics", timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_metrics_count_ingest_and_events_without_naming_anyone(
    service: ServiceProcess, tenant: Tenant
) -> None:
    before = _samples(service)
    fix = {"id": "861001000719969", "lat": 43.5263, "lon": 5.4454, "alarm": "sos"}
    assert httpx.get(f"{service.osmand}/", params=fix, timeout=10).status_code == 200
    deadline = time.monotonic() + 5
    while True:
        after = _samples(service)
        sos = after.get(("geosentinel_events_committed_total", (("kind", "sos"),)), 0)
        if sos > before.get(("geosentinel_events_committed_total", (("kind", "sos"),)), 0):
            break
        assert time.monotonic() < deadline, "the SOS event was never counted"
        time.sleep(0.1)
    readings = ("geosentinel_readings_committed_total", ())
    assert after[readings] >= before.get(readings, 0) + 1
    assert after[("geosentinel_ingest_commit_seconds_count", ())] >= 1
    assert after[("geosentinel_detection_seconds_count", ())] >= 1  # the detectors ran on that batch
    assert ("geosentinel_pipeline_queue_depth", ()) in after
    text = httpx.get(f"{service.api}/metrics", timeout=10).text
    assert tenant.org_id not in text and tenant.wearer_id not in text and "861001000719969" not in text
