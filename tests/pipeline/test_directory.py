"""The device directory batches lookups and never stalls on its own cache expiring."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from geosentinel.model import Device
from geosentinel.pipeline.directory import MISS, DeviceDirectory

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class CountingStore:
    """Answers device lookups from a dict and records each query (the directory's only store call)."""

    def __init__(self, devices: dict[str, Device]) -> None:
        self.devices = devices
        self.queries: list[list[str]] = []

    def devices_by_unique_ids(self, unique_ids: Sequence[str]) -> dict[str, Device]:
        self.queries.append(list(unique_ids))
        return {u: self.devices[u] for u in unique_ids if u in self.devices}


def _device(uid: str, wearer: str | None = "w") -> Device:
    return Device(f"id-{uid}", "org", wearer, uid, "watch")


def _directory(store: CountingStore) -> DeviceDirectory:
    return DeviceDirectory(store, ttl=timedelta(seconds=30), negative_ttl=timedelta(seconds=2))  # type: ignore[arg-type]


async def test_concurrent_misses_share_one_query() -> None:
    store = CountingStore({f"u{i}": _device(f"u{i}") for i in range(300)})
    directory = _directory(store)
    found = await asyncio.gather(*(directory.lookup(f"u{i}", T0) for i in range(300)))
    assert [d.unique_id for d in found if d] == [f"u{i}" for i in range(300)]
    assert len(store.queries) <= 2
    assert directory.cached("u7", T0) == _device("u7")


async def test_unknown_and_unassigned_devices_are_none_and_cached_briefly() -> None:
    store = CountingStore({"stock": _device("stock", wearer=None)})
    directory = _directory(store)
    assert await directory.lookup("ghost", T0) is None
    assert await directory.lookup("stock", T0) is None
    assert directory.cached("ghost", T0 + timedelta(seconds=1)) is None
    assert directory.cached("ghost", T0 + timedelta(seconds=3)) is MISS


async def test_a_due_entry_is_served_stale_while_it_refreshes() -> None:
    store = CountingStore({"u1": _device("u1")})
    directory = _directory(store)
    await directory.lookup("u1", T0)
    moved = Device("id-u1", "org", "another wearer", "u1", "watch")
    store.devices["u1"] = moved
    later = T0 + timedelta(seconds=31)
    assert directory.cached("u1", later) == _device("u1")  # stale, but no stall
    for _ in range(50):
        if directory.cached("u1", later) == moved:
            break
        await asyncio.sleep(0.01)
    assert directory.cached("u1", later) == moved
    assert directory.cached("u1", later + timedelta(minutes=6)) is MISS  # too stale to use at all
