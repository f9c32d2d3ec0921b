"""Nothing acknowledged is lost: SIGKILL the service mid-stream, restart it, every acked reading is there."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from geosentinel.testing import ServiceProcess, Tenant, add_devices, provision

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SENDERS = 8
KILL_AFTER_ACKS = 400


async def _send_until_killed(service: ServiceProcess, unique_ids: list[str]) -> dict[str, list[int]]:
    """Each sender posts fixes for its device in order; returns the timestamps the service acknowledged."""
    acked: dict[str, list[int]] = {uid: [] for uid in unique_ids}
    killed = asyncio.Event()
    base = int(time.time()) - 3600

    async def sender(client: httpx.AsyncClient, uid: str) -> None:
        for n in range(100_000):
            fix = {"id": uid, "lat": 43.2965 + n * 1e-6, "lon": 5.3698, "timestamp": base + n, "batt": 90}
            try:
                response = await client.get(f"{service.osmand}/", params=fix)  # type: ignore[arg-type]
            except httpx.HTTPError:
                return  # the service is gone: this reading was never acknowledged
            if response.status_code != 200:
                raise AssertionError(f"unexpected reply {response.status_code}: {response.text}")
            acked[uid].append(base + n)
            if killed.is_set():
                return

    async def killer() -> None:
        while sum(map(len, acked.values())) < KILL_AFTER_ACKS:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(service.kill)  # requests are in flight at this moment
        killed.set()

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(killer(), *(sender(client, uid) for uid in unique_ids))
    return acked


def test_acknowledged_readings_survive_sigkill(module_db_url: str, tmp_path: Path) -> None:
    tenant: Tenant = provision(module_db_url, "Durable", "200000000000000", "d@example.org")
    uids = [f"2000000000000{i:02d}" for i in range(1, SENDERS + 1)]
    wearers = dict(zip(uids, (w for w, _ in add_devices(module_db_url, tenant.org_id, uids)), strict=True))
    first = ServiceProcess(module_db_url, tmp_path / "first.log").start()
    try:
        acked = asyncio.run(_send_until_killed(first, uids))
    finally:
        first.stop()
    total = sum(map(len, acked.values()))
    assert total >= KILL_AFTER_ACKS
    second = ServiceProcess(module_db_url, tmp_path / "second.log").start()
    try:
        headers = {"Authorization": f"Bearer {tenant.token}"}
        for uid, times in acked.items():
            response = httpx.get(
                f"{second.api}/api/v1/wearers/{wearers[uid]}/positions",
                params={"limit": 10_000, "include_rejected": "true"},
                headers=headers,
                timeout=10,
            )
            stored = {int(_epoch(p["time"])) for p in response.json()}
            missing = set(times) - stored
            assert not missing, f"{len(missing)} acknowledged readings of {uid} lost after SIGKILL"
    finally:
        second.stop()


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
