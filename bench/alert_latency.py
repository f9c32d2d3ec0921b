"""SOS to notification: from the SOS frame read on the socket to the notification handed to the channel.

Starts ``geosentinel serve`` on a fresh SQLite database, with one contact (a webhook served by this
process on loopback) in the organisation's default escalation policy. A load process (``bench/tcp_load.py
--load``) keeps ``--load-devices`` watches sending fixes every ``--interval`` seconds, about half of what
the service commits at most on this machine (docs/benchmarks.md: ~6,000 frames/s). Meanwhile ``--sos``
other watches each press SOS once (an ``AL`` frame with the SOS bit), one every ``--every`` seconds.

Per alert, the latency is measured on the service's own clock: the SOS event's ``received_at`` (stamped
when the gateway read the frame) to the notification's ``handed_at`` (stamped just before it is given to
Apprise). Also checked: every SOS reached the webhook. Writes JSON for ``bench/report.py``.

    .venv/bin/python bench/alert_latency.py --out var/bench/alert_latency.json
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import sqlalchemy as sa

from geosentinel.alerts.policy import Policy, Step
from geosentinel.model import Locale, Region
from geosentinel.sim.speakers import WATCH_SOS_STATUS
from geosentinel.store import open_store, schema
from geosentinel.store.regions import region_url
from geosentinel.testing import ServiceProcess, free_port, provision

sys.path.insert(0, str(Path(__file__).parent))
from tcp_load import ID_BASE, register_watches  # a sibling script

SOS_BASE = 8_000_000_000


class Hook:
    """The contact's webhook: counts what arrives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.keys: list[str] = []
        keys = self.keys

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                keys.append(self.headers.get("Idempotency-Key", ""))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def watch_frame(uid: str, content: str) -> bytes:
    return f"[3G*{uid}*{len(content):04X}*{content}]".encode()


def press_sos(port: int, uid: str) -> float:
    """Press SOS; returns how long (s) the platform took to answer it (its reply follows the commit)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(watch_frame(uid, "LK,0,0,90"))
        connection.recv(256)
        now = datetime.now(UTC)
        content = (f"AL,{now:%d%m%y},{now:%H%M%S},A,43.526300,N,5.445400,E,0.0,0.0,120.0,9,100,80,0,0,"
                   f"{WATCH_SOS_STATUS:08X},0,0")  # fmt: skip
        sent = time.monotonic()
        connection.sendall(watch_frame(uid, content))
        connection.recv(256)  # the platform's AL reply: the reading is committed
        return time.monotonic() - sent


def latencies_ms(db_url: str) -> list[tuple[float, float]]:
    """Per SOS alert: (read → handed to the channel, of which read → notification written), in ms."""
    engine = sa.create_engine(region_url(db_url, Region.EU))  # the organisation's region holds its alerts
    e, n = schema.events, schema.notifications
    query = (
        sa.select(e.c.received_us, n.c.created_us, n.c.handed_us)
        .join(n, n.c.alert_id == e.c.alert_id)
        .where(e.c.kind == "sos", n.c.step == 0, n.c.round == 0)
        .order_by(e.c.received_us)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    engine.dispose()
    return [
        ((handed - received) / 1000, (created - received) / 1000)
        for received, created, handed in rows
        if handed is not None
    ]


def run_once(
    folder: Path, load_devices: int, interval_s: float, sos: int, every_s: float
) -> dict[str, float]:
    db = f"sqlite:///{folder / f'latency-{time.monotonic_ns()}.db'}"
    tenant = provision(db, "Latency", str(ID_BASE - 1), "latency@example.org")
    register_watches(db, tenant.org_id, load_devices)
    register_watches(db, tenant.org_id, sos, base=SOS_BASE)
    hook = Hook()
    store = open_store(db)
    try:
        contact = store.create_contact(
            tenant.org_id, "On duty", Locale.EN, "Europe/Paris", [f"json://127.0.0.1:{hook.port}/hook"],
            datetime.now(UTC),
        )  # fmt: skip
        store.create_policy(tenant.org_id, "Default", Policy([Step([contact.id])]), True, datetime.now(UTC))
    finally:
        store.close()
    service = ServiceProcess(
        db, folder / "serve.log", "--max-connections-per-address", str(load_devices * 2),
        env={"GEOSENTINEL_SECRET_KEY": "bench-" + "k" * 40},
    ).start()  # fmt: skip
    port = service.tcp_ports["watch"]
    control = folder / f"control-{time.monotonic_ns()}"
    control.write_text("")
    seconds = sos * every_s + 10
    load = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "tcp_load.py"), "--load", str(port),
         "--devices", str(load_devices), "--interval", str(interval_s), "--seconds", str(seconds),
         "--control", str(control)]
    )  # fmt: skip
    try:
        while control.read_text() != "connected":
            if load.poll() is not None:
                raise RuntimeError("load process died")
            time.sleep(0.1)
        control.write_text("go")
        time.sleep(5)  # the load settles
        readings = open_store(db)
        before, t0 = readings.count_readings(), time.monotonic()
        replies: list[float] = []
        for i in range(sos):
            started = time.monotonic()
            replies.append(press_sos(port, str(SOS_BASE + i)) * 1000)
            time.sleep(max(0.0, every_s - (time.monotonic() - started)))
        committed_per_s = (readings.count_readings() - before) / (time.monotonic() - t0)
        readings.close()
        deadline = time.monotonic() + 30
        while len(set(hook.keys)) < sos and time.monotonic() < deadline:
            time.sleep(0.1)
        load.wait(seconds + 30)
    finally:
        service.stop()
        hook.server.shutdown()
    both = latencies_ms(db)
    found = [total for total, _ in both]
    ordered = sorted(found)
    written = sorted(w for _, w in both)
    return {
        "sos": sos,
        "notified": len(set(hook.keys)),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "max_ms": ordered[-1],
        "first_ms": found[0] if found else float("nan"),
        "written_p50_ms": statistics.median(written),
        "written_p99_ms": written[min(len(written) - 1, round(0.99 * (len(written) - 1)))],
        "reply_p50_ms": statistics.median(replies),
        "reply_p99_ms": sorted(replies)[min(len(replies) - 1, round(0.99 * (len(replies) - 1)))],
        "offered_per_s": load_devices / interval_s,
        "committed_per_s": committed_per_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-devices", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=0.67, help="seconds between fixes of a load device")
    parser.add_argument("--sos", type=int, default=100, help="SOS presses (one wearer each)")
    parser.add_argument("--every", type=float, default=0.3, help="seconds between SOS presses")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            result = run_once(Path(folder), args.load_devices, args.interval, args.sos, args.every)
            print(json.dumps(result))
            runs.append(result)
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"median: p50 {median['p50_ms']:.0f} ms, p99 {median['p99_ms']:.0f} ms "
          f"under {median['committed_per_s']:,.0f} frames/s")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "runs": runs, "median": median})
        )


if __name__ == "__main__":
    main()
