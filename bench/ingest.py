"""Ingest benchmark: OsmAnd over HTTP end to end, the store path, and raw inserts of the same rows.

Run by ``make bench`` (which starts PostgreSQL); writes its figures as JSON for ``bench/report.py``.
Every figure is the median of several runs, and every ratio compares numbers measured in the same
invocation on the same machine, since these machines are noisy.

    .venv/bin/python bench/ingest.py --backend sqlite --out var/bench/sqlite.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from geosentinel.model import Device, DeviceMessage, Reading, Region
from geosentinel.store import open_store
from geosentinel.store.base import IngestBatch
from geosentinel.store.ingest import READING_COLUMNS, reading_row
from geosentinel.store.postgres import engine_url
from geosentinel.store.regions import region_url
from geosentinel.testing import ServiceProcess, add_devices, fresh_postgres_database, provision

ID_BASE = 500_000_000_000_000
LUA = Path(__file__).with_name("osmand.lua")


def new_db(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / f'bench-{time.monotonic_ns()}.db'}"
    return fresh_postgres_database(os.environ["GEOSENTINEL_TEST_POSTGRES_URL"])


# -- end to end over HTTP ---------------------------------------------------------------------------------


def wrk(url: str, devices: int, connections: int, seconds: float, t0: int) -> dict[str, float]:
    env = dict(os.environ, BENCH_DEVICES=str(devices), BENCH_ID_BASE=str(ID_BASE), BENCH_T0=str(t0))
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "-s", str(LUA), url]
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError(f"{bad.group(1)} requests were not answered 200:\n{out}")

    def latency_ms(pct: str) -> float:
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert match, out
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    return {"p50_ms": latency_ms("50"), "p99_ms": latency_ms("99")}


def http_run(
    backend: str, folder: Path, devices: int, connections: int, seconds: float, workers: int
) -> dict:
    db = new_db(backend, folder)
    tenant = provision(db, "Bench", str(ID_BASE - 1), "bench@example.org")
    add_devices(db, tenant.org_id, [str(ID_BASE + i) for i in range(devices)])
    service = ServiceProcess(db, folder / "serve.log", "--gateway-workers", str(workers)).start()
    store = open_store(db)
    try:
        now = int(time.time())
        # Warm-up (device and state caches, connections), two days back; then the measured run, one day
        # back: plausible past timestamps that the bad-fix filter accepts.
        wrk(f"{service.osmand}/", devices, connections, 3, now - 2 * 86_400)
        before = store.count_readings()
        start = time.monotonic()
        latency = wrk(f"{service.osmand}/", devices, connections, seconds, now - 86_400)  # plausible, past
        elapsed = time.monotonic() - start
        committed = store.count_readings() - before
    finally:
        store.close()
        service.stop()
    return {"readings_per_s": committed / elapsed, **latency}


# -- store path and raw inserts -----------------------------------------------------------------------------


def sample_readings(n: int, device: Device) -> list[Reading]:
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        t = t0 + timedelta(seconds=5 * i)
        message = DeviceMessage(
            device.unique_id, "osmand", t, latitude=43.2965 + i * 1e-6, longitude=5.3698, valid=True,
            speed_kmh=4.2, course_deg=90.0, accuracy_m=8.0, battery_pct=87.0,
        )  # fmt: skip
        out.append(Reading(device, message, t, t))
    return out


def store_run(backend: str, folder: Path, readings: int, chunk: int) -> float:
    db = new_db(backend, folder)
    tenant = provision(db, "Bench", str(ID_BASE - 1), "bench@example.org")
    store = open_store(db)
    try:
        device = store.device_by_unique_id(str(ID_BASE - 1))
        assert device is not None and device.org_id == tenant.org_id
        rows = sample_readings(readings, device)
        start = time.perf_counter()
        for i in range(0, readings, chunk):
            store.ingest_now(IngestBatch(readings=rows[i : i + chunk]))
        return readings / (time.perf_counter() - start)
    finally:
        store.close()


def raw_run(backend: str, folder: Path, readings: int, chunk: int) -> float:
    """The same rows, inserted with the driver's executemany (one transaction per chunk).

    The plain driver call, ``None`` fields and all: on SQLite the store binds ``None`` as NaN (see
    ``store.ingest.MultiRowInsert``), which this baseline does not, so the store path can beat it. It is
    kept as it was for every earlier table: what it measures is the machine.
    """
    db = new_db(backend, folder)
    provision(db, "Bench", str(ID_BASE - 1), "bench@example.org")  # same schema, same indexes
    store = open_store(db)
    device = store.device_by_unique_id(str(ID_BASE - 1))
    store.close()
    assert device is not None
    rows = [reading_row(r) for r in sample_readings(readings, device)]  # conversion not timed
    db = region_url(db, Region.EU)  # the readings live in the organisation's region store
    mark = "?" if backend == "sqlite" else "%s"
    marks = ", ".join([mark] * len(READING_COLUMNS))
    sql = f"INSERT INTO readings ({', '.join(READING_COLUMNS)}) VALUES ({marks})"
    if backend == "sqlite":
        import sqlite3

        connection = sqlite3.connect(sa.make_url(db).database or "", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL"):  # the store's own settings
            connection.execute(f"PRAGMA {pragma}")
        begin: Callable[[], object] = lambda: connection.execute("BEGIN")  # noqa: E731
    else:
        import psycopg

        connection = psycopg.connect(engine_url(db).set(drivername="postgresql").render_as_string(False))
        begin = lambda: None  # noqa: E731 (psycopg opens the transaction itself)
    try:
        start = time.perf_counter()
        for i in range(0, readings, chunk):
            begin()
            connection.cursor().executemany(sql, rows[i : i + chunk])
            connection.commit() if backend != "sqlite" else connection.execute("COMMIT")
        return readings / (time.perf_counter() - start)
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"raw": [], "store": [], "http": [], "p50_ms": [], "p99_ms": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for run in range(args.runs):
            results["raw"].append(raw_run(args.backend, folder, args.readings, args.chunk))
            results["store"].append(store_run(args.backend, folder, args.readings, args.chunk))
            http = http_run(
                args.backend, folder, args.devices, args.connections, args.seconds, args.gateway_workers
            )
            for key, name in (("http", "readings_per_s"), ("p50_ms", "p50_ms"), ("p99_ms", "p99_ms")):
                results[key].append(http[name])
            print(
                f"run {run + 1}/{args.runs} {args.backend}: "
                + ", ".join(f"{k} {v[-1]:,.1f}" for k, v in results.items()),
                flush=True,
            )
    summary = {key: statistics.median(values) for key, values in results.items()}
    summary |= {
        "store_vs_raw": summary["store"] / summary["raw"],
        "http_vs_raw": summary["http"] / summary["raw"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) for k, v in vars(args).items()}
    report = {"backend": args.backend, "args": settings, "runs": results, "median": summary}
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
