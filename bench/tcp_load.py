"""TCP load: thousands of simulated senior watches connected at once, sending fixes to SQLite.

Starts ``geosentinel serve`` on a fresh SQLite database with N registered watches, connects N devices
(one TCP connection each, from a separate load process), measures the service's resident memory per
connected device, then has every device send fixes at a fixed pace and counts readings committed per
second over the measured window. Writes JSON for ``bench/report.py``.

    .venv/bin/python bench/tcp_load.py --devices 10000 --out var/bench/tcp.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
import uvloop

from geosentinel.store import open_store, schema
from geosentinel.testing import ServiceProcess, provision

ID_BASE = 7_000_000_000


def register_watches(db_url: str, org_id: str, count: int, base: int = ID_BASE) -> None:
    """N wearers with a watch each, in one transaction (the CLI would take minutes for 10,000)."""
    engine = sa.create_engine(db_url)
    now_us = int(time.time() * 1e6)
    wearers = [
        {"id": str(uuid.uuid4()), "org_id": org_id, "name": f"W{i}", "created_us": now_us}
        for i in range(count)
    ]
    devices = [
        {"id": str(uuid.uuid4()), "org_id": org_id, "wearer_id": w["id"], "unique_id": str(base + i),
         "protocol": "watch", "model": None, "timezone": None, "created_us": now_us}
        for i, w in enumerate(wearers)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(schema.wearers.insert(), wearers)
        connection.execute(schema.devices.insert(), devices)
    engine.dispose()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# -- the load process -----------------------------------------------------------------------------------


class Watch(asyncio.Protocol):
    def __init__(self, uid: str, ready: asyncio.Event) -> None:
        self.uid = uid
        self.ready = ready
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        content = "LK,0,0,90"
        transport.write(f"[3G*{self.uid}*{len(content):04X}*{content}]".encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.ready.set()


async def load(port: int, devices: int, interval_s: float, seconds: float, control: Path) -> None:
    loop = asyncio.get_running_loop()
    watches = []
    for i in range(devices):
        ready = asyncio.Event()
        _t, watch = await loop.create_connection(
            lambda uid=str(ID_BASE + i), r=ready: Watch(uid, r), "127.0.0.1", port
        )
        watches.append(watch)
    await asyncio.gather(*(w.ready.wait() for w in watches))
    control.write_text("connected")
    while control.read_text() != "go":
        await asyncio.sleep(0.05)
    start = time.monotonic()
    tick = 0.05
    per_tick = max(1, round(devices * tick / interval_s))
    sent = 0
    index = 0
    while time.monotonic() - start < seconds:
        t = time.gmtime()
        date, clock = time.strftime("%d%m%y", t), time.strftime("%H%M%S", t)
        for _ in range(per_tick):
            watch = watches[index % devices]
            index += 1
            lat = 43.5 + (index % 1000) * 1e-6
            content = f"UD,{date},{clock},A,{lat:.6f},N,5.447427,E,0.5,0.0,120.0,9,100,86,1520,0,00000000,0,0"
            assert watch.transport is not None
            watch.transport.write(f"[3G*{watch.uid}*{len(content):04X}*{content}]".encode())
            sent += 1
        await asyncio.sleep(tick)
    control.write_text(f"sent {sent}")


# -- the orchestrating process ----------------------------------------------------------------------------


def run_once(folder: Path, devices: int, interval_s: float, seconds: float) -> dict[str, float]:
    db = f"sqlite:///{folder / f'tcp-{time.monotonic_ns()}.db'}"
    tenant = provision(db, "Load", str(ID_BASE - 1), "load@example.org")
    register_watches(db, tenant.org_id, devices)
    service = ServiceProcess(
        db, folder / "serve.log", "--max-connections-per-address", str(devices * 2)
    ).start()
    assert service.process is not None
    control = folder / f"control-{time.monotonic_ns()}"
    control.write_text("")
    store = open_store(db)
    try:
        time.sleep(1.0)
        rss_before = rss_kb(service.process.pid)
        # The load runs in its own process, so the service's figures are not the load generator's.
        proc = subprocess.Popen(
            [sys.executable, __file__, "--load", str(service.tcp_ports["watch"]), "--devices", str(devices),
             "--interval", str(interval_s), "--seconds", str(seconds + 5), "--control", str(control)]
        )  # fmt: skip
        while control.read_text() != "connected":
            if proc.poll() is not None:
                raise RuntimeError("load process died")
            time.sleep(0.1)
        time.sleep(1.0)
        rss_connected = rss_kb(service.process.pid)
        control.write_text("go")
        time.sleep(5)  # warm-up: caches, state loads
        before = store.count_readings()
        t0 = time.monotonic()
        time.sleep(seconds)
        committed = store.count_readings() - before
        elapsed = time.monotonic() - t0
        proc.wait(60)
    finally:
        store.close()
        service.stop()
    return {
        "frames_per_s": committed / elapsed,
        "rss_per_device_kb": (rss_connected - rss_before) / devices,
        "rss_before_mb": rss_before / 1024,
        "rss_connected_mb": rss_connected / 1024,
        "offered_per_s": devices / interval_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between fixes of one device")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--load", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--control", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(load(args.load, args.devices, args.interval, args.seconds, args.control))
        return
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            result = run_once(Path(folder), args.devices, args.interval, args.seconds)
            print(json.dumps(result))
            runs.append(result)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"median: {median['frames_per_s']:,.0f} frames/s, {median['rss_per_device_kb']:.1f} KB/device")
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "runs": runs, "median": median})
        )


if __name__ == "__main__":
    main()
