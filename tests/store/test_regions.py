"""Regions: where each region's store lives, and the routing store keeping organisations apart.

The whole contract suite already runs through the routing store (``open_store``); these tests pin what
only regions bring: derived and configured URLs, keys unique across regions, batches split by region,
and regions on different backends (a French SQLite file and a Chinese PostgreSQL server).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from geosentinel.alerts.engine import OPENS_ALERT
from geosentinel.model import Device, DeviceMessage, Event, EventKind, Locale, Reading, Region, Role
from geosentinel.store import Scope, Store, StoreError, open_region_store, open_store
from geosentinel.store.base import DeviceState, IngestBatch
from geosentinel.store.ingest import ingest_rows
from geosentinel.store.regions import region_url
from geosentinel.testing import backend_of

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


def test_region_urls_are_derived_from_the_directory_url() -> None:
    env: dict[str, str] = {}
    assert region_url("sqlite:////var/gs/gs.db", Region.CN, env) == "sqlite:////var/gs/gs.cn.db"
    assert region_url("sqlite:///rel/gs.db?synchronous=normal", Region.EU, env) == (
        "sqlite:///rel/gs.eu.db?synchronous=normal"
    )
    assert region_url("postgresql://u:p@db:5432/gs", Region.EU, env) == "postgresql://u:p@db:5432/gs_eu"
    configured = {"GEOSENTINEL_DB_CN": "postgresql://sh.example.cn/gs"}
    assert region_url("sqlite:////var/gs/gs.db", Region.CN, configured) == "postgresql://sh.example.cn/gs"
    with pytest.raises(ValueError, match="memory"):
        region_url("sqlite:///:memory:", Region.EU, env)


def _tenant(store: Store, region: Region, n: int) -> tuple[str, str, Device]:
    org = store.create_org(f"Org {region.value}", region, "Europe/Paris", Locale.FR)
    wearer = store.create_wearer(org.id, f"Wearer {region.value}")
    device = store.create_device(org.id, wearer.id, f"uid-{n}", "osmand")
    return org.id, wearer.id, device


def _reading(device: Device, minutes: int) -> Reading:
    t = T0 + timedelta(minutes=minutes)
    message = DeviceMessage(device.unique_id, "osmand", t, latitude=43.3, longitude=5.37, valid=True)
    return Reading(device, message, t, t)


def _sos(device: Device, minutes: int) -> Event:
    t = T0 + timedelta(minutes=minutes)
    return Event(device.org_id, device.wearer_id, device.id, EventKind.SOS, t, t, 43.3, 5.37)


def test_keys_are_unique_across_regions_and_lookups_find_either(store: Store) -> None:
    eu_org, _, eu_device = _tenant(store, Region.EU, 1)
    cn_org, _, cn_device = _tenant(store, Region.CN, 2)
    with pytest.raises(StoreError):
        store.create_org("Org eu", Region.CN, "Asia/Shanghai", Locale.ZH)  # the name is taken in eu
    with pytest.raises(StoreError):
        store.create_device(cn_org, None, "uid-1", "osmand")  # eu has that device
    store.create_user(eu_org, "ana@example.org", "hash", Role.ADMIN, "Ana")
    with pytest.raises(StoreError):
        store.create_user(cn_org, "ANA@example.org", "hash", Role.ADMIN, "Ana")
    assert store.devices_by_unique_ids(["uid-1", "uid-2", "nobody"]) == {
        "uid-1": eu_device,
        "uid-2": cn_device,
    }
    assert (found := store.user_by_email("ana@example.org")) is not None and found[0].org_id == eu_org
    assert store.org_by_name("Org cn") is not None
    assert store.wearers(Scope(eu_org)) != store.wearers(Scope(cn_org))


@pytest.mark.parametrize("as_rows", [False, True], ids=["batch", "rows"])
def test_a_batch_spanning_regions_lands_in_each(store: Store, as_rows: bool) -> None:
    """As the pipeline commits in its own process (the batch), or through a writer process (its rows)."""
    eu_org, _, eu_device = _tenant(store, Region.EU, 1)
    cn_org, _, cn_device = _tenant(store, Region.CN, 2)
    batch = IngestBatch(
        readings=[_reading(eu_device, 0), _reading(cn_device, 0), _reading(cn_device, 1)],
        events=[_sos(eu_device, 0), _sos(cn_device, 1)],
        states=[DeviceState(d.id, T0) for d in (eu_device, cn_device)],
        alert_kinds=OPENS_ALERT,
    )
    if as_rows:
        asyncio.run(store.ingest_rows(ingest_rows(batch)))
    else:
        store.ingest_now(batch)
    assert [d for d, _ in backend_of(store, Region.CN).devices_with_state()] == [cn_device]
    assert [d for d, _ in backend_of(store, Region.EU).devices_with_state()] == [eu_device]
    assert backend_of(store, Region.EU).count_readings() == 1
    assert backend_of(store, Region.CN).count_readings() == 2
    assert [a.org_id for a in backend_of(store, Region.CN).alerts(Scope(cn_org))] == [cn_org]
    assert backend_of(store, Region.EU).alerts(Scope(cn_org)) == []
    assert len(store.alerts(Scope(eu_org))) == 1
    assert store.count_readings() == 3


def test_a_region_put_in_use_by_another_process_is_found_at_once(tmp_path: Path) -> None:
    """The service trusts its list of regions in use for a few seconds (sweeps and logins ask it all the
    time); a region another process (the CLI) puts in use meanwhile is still found by lookups, and still
    checked by uniqueness checks, at once."""
    url = f"sqlite:///{tmp_path / 'gs.db'}"
    service, cli = open_store(url), open_store(url)
    try:
        eu_org, _, _ = _tenant(service, Region.EU, 1)
        assert service.count_readings() == 0  # the service has now read the list: eu only
        cn_org, _, cn_device = _tenant(cli, Region.CN, 2)
        assert service.device_by_unique_id("uid-2") == cn_device
        with pytest.raises(StoreError):
            service.create_device(eu_org, None, "uid-2", "osmand")
        cli.create_user(cn_org, "li@example.cn", "hash", Role.ADMIN, "Li")
        with pytest.raises(StoreError):
            service.create_user(eu_org, "li@example.cn", "hash", Role.ADMIN, "Li")
    finally:
        service.close()
        cli.close()


def test_a_region_is_opened_only_when_an_organisation_lives_there(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gs.db'}")
    try:
        _tenant(store, Region.EU, 1)
        store.ingest_now(IngestBatch(readings=[_reading(store.device_by_unique_id("uid-1"), 0)]))  # type: ignore[arg-type]
    finally:
        store.close()
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["gs.db", "gs.eu.db"]


@pytest.mark.postgres
def test_regions_on_different_backends(tmp_path: Path) -> None:
    from geosentinel.testing import fresh_postgres_database

    shanghai = fresh_postgres_database(os.environ["GEOSENTINEL_TEST_POSTGRES_URL"])
    url = f"sqlite:///{tmp_path / 'gs.db'}"
    store = open_store(url, regions={Region.CN: shanghai})
    try:
        _, _, cn_device = _tenant(store, Region.CN, 2)
        _, _, eu_device = _tenant(store, Region.EU, 1)
        store.ingest_now(IngestBatch(readings=[_reading(cn_device, 0), _reading(eu_device, 0)]))
        assert backend_of(store, Region.CN).dialect == "postgresql"
        assert backend_of(store, Region.CN).count_readings() == 1
        assert backend_of(store, Region.EU).dialect == "sqlite"
        assert backend_of(store, Region.EU).count_readings() == 1
    finally:
        store.close()


def test_a_database_with_organisations_is_refused_as_the_directory(tmp_path: Path) -> None:
    """A pre-regions database (or a region's own store) must not become the shared directory."""
    region_store = f"sqlite:///{tmp_path / 'gs.eu.db'}"
    open_region_store(region_store).close()
    with pytest.raises(StoreError, match="cannot be the shared directory"):
        open_store(region_store)
