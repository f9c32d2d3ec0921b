"""Data residency: an ``eu`` and a ``cn`` organisation on one installation, through the running service.

After ingest (positions and an SOS), the alert taken, a geofence and a contact created, positions read
(audited), an export, a failed and a good login: every table of the ``eu`` store is scanned for anything
that names the ``cn`` organisation (its id, its users', wearers' and devices' ids, unique ids, e-mails and
names) and vice versa, and the shared directory holds one table of ids, names and regions only. The scan
is generic (every column of every table, reflected), so a table added later is covered too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from geosentinel.model import Region
from geosentinel.store import open_store
from geosentinel.store.regional import RegionalStore
from geosentinel.testing import TEST_PASSWORD, ServiceProcess, Tenant, backend_of, provision

pytestmark = pytest.mark.e2e

TENANTS = {
    Region.EU: ("Résidence Mistral", "861000000000101", "soignant@mistral.example.fr", "Europe/Paris",
                "Marcelle Provençale"),
    Region.CN: ("颐养之家", "861000000000202", "huli@yiyang.example.cn", "Asia/Shanghai", "王秀英"),
}  # fmt: skip
WHERE = {Region.EU: (43.5263, 5.4454), Region.CN: (31.2304, 121.4737)}


@pytest.fixture(scope="module")
def tenants(module_db_url: str) -> dict[Region, Tenant]:
    return {
        region: provision(module_db_url, org, uid, email, region, tz, wearer_name=name)
        for region, (org, uid, email, tz, name) in TENANTS.items()
    }


@pytest.fixture(scope="module")
def service(
    tenants: dict[Region, Tenant], module_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(module_db_url, tmp_path_factory.mktemp("serve") / "serve.log").start()
    yield svc
    svc.stop()


def _api(service: ServiceProcess, tenant: Tenant, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {tenant.token}"}
    response = httpx.request(method, f"{service.api}/api/v1{path}", headers=headers, timeout=10, **kwargs)
    assert response.status_code < 300, response.text
    return response


def _use(service: ServiceProcess, region: Region, tenant: Tenant) -> None:
    """Everything a day of care writes: readings, an alert taken, settings, reads, an export, logins."""
    lat, lon = WHERE[region]
    uid, email = TENANTS[region][1], TENANTS[region][2]
    for alarm in (None, "sos"):
        body = {"v": 1, "time": datetime.now(UTC).isoformat(), "alarms": [alarm] if alarm else [],
                "position": {"lat": lat, "lon": lon, "accuracy_m": 8}, "battery_pct": 64}  # fmt: skip
        up = httpx.post(f"{service.osmand}/geosentinel/v1/{uid}/up", content=json.dumps(body), timeout=10)
        assert up.status_code == 200, up.text
    deadline = time.monotonic() + 10
    while not (alerts := _api(service, tenant, "GET", "/alerts").json()["items"]):
        assert time.monotonic() < deadline, "the SOS opened no alert"
        time.sleep(0.05)
    _api(service, tenant, "GET", f"/alerts/{alerts[0]['id']}/timeline")
    _api(service, tenant, "POST", f"/alerts/{alerts[0]['id']}/acknowledge", json={"note": "on my way"})
    where = {"name": "home", "kind": "safe", "radius_m": 300, "wearer_id": tenant.wearer_id}
    fence = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": where}
    _api(service, tenant, "POST", "/geofences", json=fence)
    _api(
        service,
        tenant,
        "POST",
        "/contacts",
        json={"name": f"contact {uid}", "urls": ["json://127.0.0.1:9/x"]},
    )
    _api(service, tenant, "GET", f"/wearers/{tenant.wearer_id}/positions")
    _api(service, tenant, "GET", f"/wearers/{tenant.wearer_id}/export")
    login = f"{service.api}/api/v1/session"
    assert httpx.post(login, json={"email": email, "password": "wrong"}, timeout=10).status_code == 401
    assert httpx.post(login, json={"email": email, "password": TEST_PASSWORD}, timeout=10).status_code == 200


def _markers(region: Region, tenant: Tenant) -> set[str]:
    org, uid, email, _, wearer_name = TENANTS[region]
    return {tenant.org_id, tenant.wearer_id, tenant.device_id, org, uid, email, wearer_name}


def _rows_naming(engine: sa.Engine, markers: set[str]) -> list[tuple[str, str]]:
    found = []
    with engine.connect() as connection:
        metadata = sa.MetaData()
        metadata.reflect(bind=connection)
        for table in metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                text = " ".join(str(value) for value in row)
                found += [(table.name, marker) for marker in markers if marker in text]
    return found


def test_each_organisation_lives_only_in_its_region(
    service: ServiceProcess, tenants: dict[Region, Tenant], module_db_url: str
) -> None:
    for region, tenant in tenants.items():
        _use(service, region, tenant)
    service.stop()  # every write flushed

    store = open_store(module_db_url)
    try:
        assert isinstance(store, RegionalStore)
        stores = {region: backend_of(store, region).engine for region in Region}
        assert stores[Region.EU].url != stores[Region.CN].url
        markers = {region: _markers(region, tenant) for region, tenant in tenants.items()}
        for region in Region:
            other = Region.CN if region is Region.EU else Region.EU
            assert _rows_naming(stores[region], markers[other]) == [], f"{other} data in the {region} store"
            # ...and the scan does see what it looks for: its own organisation's rows are there.
            own = {table for table, _ in _rows_naming(stores[region], markers[region])}
            assert {"organisations", "users", "readings", "alerts", "audit_log", "geofences"} <= own, own
            with stores[region].connect() as connection:  # the login's session, in its user's region
                assert connection.execute(sa.text("SELECT count(*) FROM sessions")).scalar() == 1

        directory = store.directory.engine
        assert sa.inspect(directory).get_table_names() == ["org_regions"]
        with directory.connect() as connection:
            rows = {tuple(r) for r in connection.execute(sa.text("SELECT id, name, region FROM org_regions"))}
        expected = {(t.org_id, TENANTS[r][0], r.value) for r, t in tenants.items()}
        assert rows == expected
        assert (
            _rows_naming(directory, {TENANTS[r][2] for r in Region} | {t.wearer_id for t in tenants.values()})
            == []
        )
    finally:
        store.close()


def test_the_embedded_default_keeps_one_sqlite_file_per_region(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gs.db'}"
    for region, (org, uid, email, tz, name) in TENANTS.items():
        provision(url, org, uid, email, region, tz, wearer_name=name)
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["gs.cn.db", "gs.db", "gs.eu.db"]
