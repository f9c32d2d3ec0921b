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
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
import uvloop

from geosentinel.model import Region
from geosentinel.store import Store, open_store, schema
from geosentinel.store.regions import region_url
from geosentinel.testing import ServiceProcess, provision

ID_BASE = 7_000_000_000


def register_watches(db_url: str, org_id: str, count: int, base: int = ID_BASE) -> None:
    """N wearers with a watch each, in one transaction (the CLI would take minutes for 10,000), written
    straight into the region's database where the organisation lives (``db_url`` is the deployment's)."""
    engine = sa.create_engine(region_url(db_url, Region.EU))
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


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (the service's gateway workers)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


MACHINE_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def machine_ticks() -> list[int]:
    """The whole machine's CPU time so far by kind (``/proc/stat``'s first line, in clock ticks)."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_cores(before: list[int], after: list[int], elapsed_s: float) -> dict[str, float]:
    """How many cores went to each kind of work between two :func:`machine_ticks`: the load's sends and
    the kernel's share of loopback TCP show as system and softirq time, which no per-process figure has."""
    ticks = dict(zip(MACHINE_FIELDS, (b - a for a, b in zip(before, after, strict=True)), strict=True))
    scale = 1 / os.sysconf("SC_CLK_TCK") / elapsed_s
    return {
        "machine_user_cores": (ticks["user"] + ticks["nice"]) * scale,
        "machine_system_cores": (ticks["system"] + ticks["irq"]) * scale,
        "machine_softirq_cores": ticks["softirq"] * scale,
        "machine_idle_cores": (ticks["idle"] + ticks["iowait"]) * scale,
        "machine_steal_cores": ticks["steal"] * scale,
    }


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (the machine is shared: wall clock misleads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


FIX_TAIL = "N,5.447427,E,0.5,0.0,120.0,9,100,86,1520,0,00000000,0,0"


def fix_parts(uid: str, lat: float) -> tuple[bytes, bytes]:
    """A watch's UD frame around its date and time ("ddmmyy,HHMMSS"): built once per device, so the load
    process (which shares the two cores with the service) spends its time sending, not formatting."""
    content = f"UD,ddmmyy,HHMMSS,A,{lat:.6f},{FIX_TAIL}"
    head = f"[3G*{uid}*{len(content):04X}*UD,"
    return head.encode(), f",A,{lat:.6f},{FIX_TAIL}]".encode()


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
    # Every frame a real UD fix of its own registered watch; each watch's latitude differs a little.
    frames = []
    for i, watch in enumerate(watches):
        assert watch.transport is not None
        frames.append((watch.transport.write, *fix_parts(watch.uid, 43.5 + ((i + 1) % 1000) * 1e-6)))
    control.write_text("connected")
    while control.read_text() != "go":
        await asyncio.sleep(0.05)
    tally = control.with_suffix(".sent")
    start = time.monotonic()
    tick = 0.05
    per_tick = max(1, round(devices * tick / interval_s))
    sent = 0
    ticks = 0
    while time.monotonic() - start < seconds:
        stamp = time.strftime("%d%m%y,%H%M%S", time.gmtime()).encode()
        first = sent % devices
        batch = frames[first : first + per_tick]
        if len(batch) < per_tick:
            batch += frames[: per_tick - len(batch)]
        for write, head, tail in batch:
            write(head + stamp + tail)
        sent += per_tick
        if ticks % 20 == 0:
            tally.write_text(str(sent))  # read by the orchestrator: the load's CPU per frame sent
        # Paced against the clock, not slept after each burst: the offered rate is the nominal one.
        ticks += 1
        await asyncio.sleep(max(0.0, start + ticks * tick - time.monotonic()))
    # What the service did not read yet waits in our buffers: hand it over before leaving (within a
    # minute), so that every frame counted as sent can be committed.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        w.transport and w.transport.get_write_buffer_size() for w in watches
    ):
        await asyncio.sleep(0.1)
    control.write_text(f"sent {sent}")


# -- the orchestrating process ----------------------------------------------------------------------------


def run_once(
    folder: Path, devices: int, interval_s: float, seconds: float, gateway_workers: int, writer_process: bool
) -> dict[str, float]:
    db = f"sqlite:///{folder / f'tcp-{time.monotonic_ns()}.db'}"
    tenant = provision(db, "Load", str(ID_BASE - 1), "load@example.org")
    register_watches(db, tenant.org_id, devices)
    service = ServiceProcess(
        db, folder / "serve.log", "--max-connections-per-address", str(devices * 2),
        "--gateway-workers", str(gateway_workers), *(["--writer-process"] if writer_process else []),
    ).start()  # fmt: skip
    assert service.process is not None
    control = folder / f"control-{time.monotonic_ns()}"
    control.write_text("")
    store = open_store(db)
    try:
        time.sleep(1.0)
        pid = service.process.pid
        # The gateway workers, then the writer process if any (its CPU is reported on its own).
        workers = sorted(children(pid), key=_is_writer)
        writers = 1 if writer_process else 0
        rss_before = [rss_kb(p) for p in [pid, *workers]]
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
        rss_connected = [rss_kb(p) for p in [pid, *workers]]
        control.write_text("go")
        time.sleep(5)  # warm-up: caches, state loads
        before = store.count_readings()
        t0 = time.monotonic()
        cpu_before = [cpu_s(p) for p in (pid, proc.pid, *workers)]
        sent_before = _sent(control)
        machine_before = machine_ticks()
        time.sleep(seconds)
        committed = store.count_readings() - before
        elapsed = time.monotonic() - t0
        machine = machine_cores(machine_before, machine_ticks(), elapsed)
        sent = _sent(control) - sent_before
        # CPU per frame from the same start to the end of the backlog: under overload, commits come in
        # lumps of tens of thousands, so a window's count alone says little about the cost of a frame.
        load_cpu = cpu_s(proc.pid)
        proc.wait(120)
        # Every watch's LK and every fix sent is a reading: the backlog is worked off at that count.
        drained = _drained(store, devices + int(control.read_text().split()[-1]))
        cpu_after = [cpu_s(pid), load_cpu, *(cpu_s(p) for p in workers)]
    finally:
        store.close()
        service.stop()
    return {
        "frames_per_s": committed / elapsed,
        # The service's processes together (the core and its gateway workers, which hold connections).
        "rss_per_device_kb": (sum(rss_connected) - sum(rss_before)) / devices,
        "rss_before_mb": sum(rss_before) / 1024,
        "rss_connected_mb": sum(rss_connected) / 1024,
        "core_rss_per_device_kb": (rss_connected[0] - rss_before[0]) / devices,
        "offered_per_s": devices / interval_s,
        "sent_per_s": sent / elapsed,  # what the load process managed to send (it shares the cores)
        # CPU per committed frame (µs) of the core process, the load generator and the gateway workers.
        "core_cpu_us": (cpu_after[0] - cpu_before[0]) / (drained - before) * 1e6,
        "load_cpu_us": (cpu_after[1] - cpu_before[1]) / sent * 1e6,  # per frame sent
        "workers_cpu_us": _per_frame(
            cpu_before[2 : len(cpu_before) - writers],
            cpu_after[2 : len(cpu_after) - writers],
            drained - before,
        ),
        "writer_cpu_us": _per_frame(
            cpu_before[len(cpu_before) - writers :], cpu_after[len(cpu_after) - writers :], drained - before
        ),
        **machine,  # the whole machine over the measured window, in cores
    }


def _is_writer(pid: int) -> bool:
    return b"writer-process" in Path(f"/proc/{pid}/cmdline").read_bytes()


def _per_frame(before: list[float], after: list[float], frames: int) -> float:
    return (sum(after) - sum(before)) / frames * 1e6


def _sent(control: Path) -> int:
    tally = control.with_suffix(".sent")
    return int(tally.read_text() or 0) if tally.exists() else 0


def _drained(store: Store, expected: int, limit_s: float = 180.0) -> int:
    """The readings count once the service has worked off its backlog (or after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while (count := store.count_readings()) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between fixes of one device")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--gateway-workers", type=int, default=1,
        help="serve --gateway-workers (the watches' connections and decoding in that many processes)",
    )  # fmt: skip
    parser.add_argument(
        "--writer-process", action=argparse.BooleanOptionalAction, default=True,
        help="serve --writer-process (the pipeline's commits in a process of their own)",
    )  # fmt: skip
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
            result = run_once(
                Path(folder),
                args.devices,
                args.interval,
                args.seconds,
                args.gateway_workers,
                args.writer_process,
            )
            print(json.dumps(result))
            runs.append(result)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"median: {median['frames_per_s']:,.0f} frames/s, {median['rss_per_device_kb']:.1f} KB/device, "
          f"CPU per frame: core {median['core_cpu_us']:.0f} µs, workers {median['workers_cpu_us']:.0f} µs, "
          f"writer {median['writer_cpu_us']:.0f} µs, load {median['load_cpu_us']:.0f} µs")  # fmt: skip
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "runs": runs, "median": median})
        )


if __name__ == "__main__":
    main()
