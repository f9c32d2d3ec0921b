"""Capacity of the core alone: pipeline + SQLite store fed in-process, no HTTP and no link.

A diagnostic for optimising ingest (see bench/NOTES.md), not part of ``make bench``:

    .venv/bin/python bench/core.py --in-flight 1000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import uvloop

from geosentinel.clock import SystemClock
from geosentinel.pipeline.runner import Outcome, Pipeline
from geosentinel.protocols import osmand
from geosentinel.store import open_store
from geosentinel.testing import add_devices, provision


async def feed(pipeline: Pipeline, messages: list, in_flight: int) -> float:
    done = 0
    slots = asyncio.Semaphore(in_flight)

    def finished(outcome: Outcome) -> None:
        nonlocal done
        assert outcome is Outcome.STORED, outcome
        done += 1
        slots.release()

    start = time.perf_counter()
    for message in messages:
        await slots.acquire()
        pipeline.enqueue(message, finished, may_refuse=False)  # queued as TCP is, never refused
    while done < len(messages):
        await asyncio.sleep(0.001)
    return len(messages) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--readings", type=int, default=60_000)
    parser.add_argument("--in-flight", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'core.db'}"
        tenant = provision(db, "Core", "499999999999999", "core@example.org")
        ids = [str(500_000_000_000_000 + i) for i in range(args.devices)]
        add_devices(db, tenant.org_id, ids)
        # Fixes of the last minutes, one per device per second (old fixes would make every wearer look
        # inactive and the run measure alerts, not ingest).
        t0 = int(time.time()) - args.readings // args.devices
        messages = [
            osmand.decode_text(f"id={ids[i % args.devices]}&timestamp={t0 + i // args.devices}"
                               "&lat=43.2965&lon=5.3698&speed=1&batt=80").messages
            for i in range(args.readings)
        ]  # fmt: skip
        store = open_store(db)

        async def run() -> None:
            pipeline = Pipeline(store, SystemClock())
            pipeline.start()
            await feed(pipeline, messages[: args.devices * 2], args.in_flight)  # warm the caches
            cpu = time.process_time()
            timed = messages[args.devices * 2 :]
            rate = await feed(pipeline, timed, args.in_flight)
            cpu_us = (time.process_time() - cpu) / len(timed) * 1e6
            print(
                f"core: {rate:,.0f} readings/s committed ({args.in_flight} in flight),"
                f" {cpu_us:.0f} µs of CPU each"
            )
            await pipeline.stop()

        try:
            uvloop.run(run())
        finally:
            store.close()


if __name__ == "__main__":
    main()
