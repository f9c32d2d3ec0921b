"""The fleet driver end to end, against a real (tiny) HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from geosentinel.sim.bracelet import Report
from geosentinel.sim.fleet import (
    DEFAULT_BACKFILL_S,
    FleetConfig,
    FleetStats,
    demo_unique_ids,
    osmand_query,
    resolve_start,
    run_fleet,
)

UNKNOWN_ID = "999999999999999"
KINDS = {"sos", "silence_start", "silence_end", "low_battery", "walk_start", "walk_end"}


@dataclass
class Recorder:
    """What the fake OsmAnd endpoint saw, and how it misbehaves."""

    stored: dict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))
    refused: int = 0
    failures_left: int = 0  # the next requests fail: 503 and dropped connections, alternately
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, query: dict[str, str]) -> int | None:
        """HTTP status to answer, or None to drop the connection without an answer."""
        with self.lock:
            if self.failures_left > 0:
                self.failures_left -= 1
                return 503 if self.failures_left % 2 else None
            if query.get("id") == UNKNOWN_ID:
                self.refused += 1
                return 400
            self.stored[query["id"]].append(query)
            return 200


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the simulator's shared client expects
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:
            query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            status = recorder.handle(query)
            if status is None:
                self.close_connection = True
                return
            body = b"OK" if status == 200 else b"unknown device"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="fake-osmand", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_reports_arrive_in_order_despite_failures(server: tuple[str, Recorder], tmp_path: Path) -> None:
    url, recorder = server
    recorder.failures_left = 40
    known = demo_unique_ids(4)
    truth = tmp_path / "truth" / "incidents.jsonl"
    progress: list[FleetStats] = []
    config = FleetConfig(
        osmand_url=url,
        unique_ids=[*known, UNKNOWN_ID],
        duration_s=2.0,
        speedup=450.0,  # 15 simulated minutes in two seconds, all in the past
        seed=3,
        truth_path=truth,
        sos_per_hour=12.0,
        silence_per_hour=0.0,
        retry_delay_s=0.02,
        max_retry_delay_s=0.1,
        timeout_s=5.0,
        progress_interval_s=0.2,
    )
    started = datetime.now(UTC)
    stats = asyncio.run(run_fleet(config, progress.append))

    assert stats.failed >= 40
    assert stats.pending == 0
    assert stats.sent == stats.ok + stats.failed + stats.rejected
    assert stats.rejected == recorder.refused > 0
    assert stats.ok == sum(len(v) for v in recorder.stored.values()) == stats.reports - stats.rejected
    assert progress and progress[-1] == stats
    assert set(recorder.stored) == set(known)
    for unique_id in known:
        stamps = [int(q["timestamp"]) for q in recorder.stored[unique_id]]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        assert len(stamps) >= 29  # 15 simulated minutes every 30 s
        assert max(stamps) <= datetime.now(UTC).timestamp()  # never in the future
        assert min(stamps) >= (started - timedelta(hours=1)).timestamp()
    _check_truth(truth, recorder, stats)


def _check_truth(truth: Path, recorder: Recorder, stats: FleetStats) -> None:
    lines = truth.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == sum(stats.incidents.values())
    for record in records:
        assert set(record) == {"time", "unique_id", "kind", "latitude", "longitude", "details"}
        assert record["kind"] in KINDS
        assert record["time"].endswith("Z")
        assert datetime.fromisoformat(record["time"]).tzinfo is not None
    sos = [r for r in records if r["kind"] == "sos" and r["unique_id"] != UNKNOWN_ID]
    assert sos, "expected SOS presses at 12 per hour and bracelet"
    for record in sos:
        pressed = round(datetime.fromisoformat(record["time"]).timestamp())
        alarms = [q for q in recorder.stored[record["unique_id"]] if q.get("alarm") == "sos"]
        assert pressed in {int(q["timestamp"]) for q in alarms}


def test_cancellation_stops_cleanly(server: tuple[str, Recorder], tmp_path: Path) -> None:
    url, recorder = server
    truth = tmp_path / "truth.jsonl"
    progress: list[FleetStats] = []
    config = FleetConfig(
        osmand_url=url,
        unique_ids=demo_unique_ids(3),
        speedup=600.0,
        start=datetime.now(UTC) - timedelta(hours=2),
        sos_per_hour=30.0,
        truth_path=truth,
    )

    async def run_then_cancel() -> None:
        task = asyncio.create_task(run_fleet(config, progress.append))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_then_cancel())
    final = progress[-1]
    # Requests in flight when cancelled may be stored without their answer being counted.
    assert 0 < final.ok <= sum(len(v) for v in recorder.stored.values()) <= final.sent
    # Unacknowledged requests stay pending: they would be sent again, never counted as delivered.
    assert final.pending >= final.sent - final.ok - final.failed - final.rejected
    assert progress[-1].incidents["sos"] >= 1
    assert all(json.loads(line)["kind"] in KINDS for line in truth.read_text().splitlines())


def test_resolve_start_never_reaches_the_future() -> None:
    now = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
    config = FleetConfig(osmand_url="http://127.0.0.1:1/", unique_ids=["1"])
    assert resolve_start(config, now) == now
    config.speedup, config.duration_s = 10.0, 100.0
    assert resolve_start(config, now) == now - timedelta(seconds=900)
    config.duration_s = None
    assert resolve_start(config, now) == now - timedelta(seconds=DEFAULT_BACKFILL_S)
    config.start = now - timedelta(days=1)
    assert resolve_start(config, now) == now - timedelta(days=1)


def test_invalid_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="unique_ids"):
        asyncio.run(run_fleet(FleetConfig(osmand_url="http://127.0.0.1:1/", unique_ids=[])))
    bad_city = FleetConfig(osmand_url="http://127.0.0.1:1/", unique_ids=["1"], city_weights={"paris": 1.0})
    with pytest.raises(ValueError, match="city_weights"):
        asyncio.run(run_fleet(bad_city))


def test_demo_ids_and_query() -> None:
    ids = demo_unique_ids(12)
    assert ids[0] == "861000000000001" and ids[-1] == "861000000000012"
    assert all(len(i) == 15 and i.isdigit() for i in ids)
    report = Report(
        unique_id=ids[0],
        time=datetime(2025, 6, 2, 12, 0, 5, tzinfo=UTC),
        latitude=43.2951234,
        longitude=5.374,
        speed_knots=2.14,
        bearing_deg=271.3,
        altitude_m=41.0,
        accuracy_m=7.5,
        battery_pct=86.4,
        alarm="sos",
    )
    assert osmand_query(report) == {
        "id": "861000000000001",
        "timestamp": str(int(datetime(2025, 6, 2, 12, 0, 5, tzinfo=UTC).timestamp())),
        "lat": "43.295123",
        "lon": "5.374000",
        "speed": "2.14",
        "bearing": "271.3",
        "altitude": "41.0",
        "accuracy": "7.5",
        "batt": "86.4",
        "alarm": "sos",
    }
    assert "alarm" not in osmand_query(replace(report, alarm=None))
