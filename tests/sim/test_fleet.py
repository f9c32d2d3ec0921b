"""The fleet driver end to end, against a real (tiny) HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from geosentinel.model import Alarm, DeviceMessage, EventKind
from geosentinel.protocols import gt06, h02, stream_codec, watch
from geosentinel.protocols.base import Session
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
from geosentinel.store import Scope, Store, open_store
from geosentinel.testing import ServiceProcess, Tenant, add_devices, provision

UNKNOWN_ID = "999999999999999"
KINDS = {
    "sos", "fall", "removed", "vitals", "geofence_exit", "silence_start", "silence_end", "low_battery",
    "walk_start", "walk_end",
}  # fmt: skip


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


# -- TCP protocols against a fake service that loses acknowledgements ----------------------------------

CODECS = {"watch": watch, "gt06": gt06, "h02": h02}


@dataclass
class TcpRecorder:
    """What a fake TCP service decoded, per device, and how often it hung up instead of answering."""

    protocol: str
    cut_every: int  # every n-th frame that deserves a reply is stored, then the connection is dropped
    stored: dict[str, list[DeviceMessage]] = field(default_factory=lambda: defaultdict(list))
    openings: list[list[bytes]] = field(default_factory=list)  # the first two frames of each connection
    frames: int = 0
    cuts: int = 0
    transports: list[asyncio.Transport] = field(default_factory=list)


class FakeTcpService(asyncio.Protocol):
    """The real framer and decoder of the protocol; replies as the service does, except for the cuts."""

    def __init__(self, recorder: TcpRecorder) -> None:
        self.recorder = recorder
        self.framer = stream_codec(recorder.protocol).framer()
        self.session = Session()
        self.transport: asyncio.Transport | None = None
        self.opening: list[bytes] = []
        recorder.openings.append(self.opening)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.recorder.transports.append(self.transport)

    def data_received(self, data: bytes) -> None:
        rec = self.recorder
        for frame in self.framer.feed(data):
            if self.transport is None or self.transport.is_closing():
                return
            if len(self.opening) < 2:
                self.opening.append(frame)
            result = CODECS[rec.protocol].decode(frame, self.session, datetime.now(UTC))
            self.session = result.session or self.session
            device = result.device_id or self.session.unique_id
            if device == UNKNOWN_ID:  # as the service does with unknown devices: hang up, store nothing
                self.transport.close()
                return
            assert device is not None
            rec.stored[device].extend(result.messages)
            if result.reply:
                rec.frames += 1
                if rec.frames % rec.cut_every == 0:
                    rec.cuts += 1  # stored, but the ack is lost: the device must send it again
                    self.transport.abort()
                    return
                self.transport.write(result.reply)


async def _run_against_fake(config: FleetConfig, recorder: TcpRecorder) -> FleetStats:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeTcpService(recorder), "127.0.0.1", 0)
    config.tcp_port = server.sockets[0].getsockname()[1]
    try:
        return await run_fleet(config)
    finally:
        server.close()
        for transport in recorder.transports:
            transport.abort()
        await server.wait_closed()
        await asyncio.sleep(0)


def _fixes(messages: list[DeviceMessage]) -> list[DeviceMessage]:
    return [m for m in messages if m.time is not None]


@pytest.mark.parametrize("protocol", ["watch", "gt06", "h02"])
def test_tcp_reports_survive_lost_acks_in_order(protocol: str, tmp_path: Path) -> None:
    recorder = TcpRecorder(protocol, cut_every=5)
    known = demo_unique_ids(3)
    truth = tmp_path / "truth.jsonl"
    config = FleetConfig(
        protocol=protocol,
        unique_ids=[*known, UNKNOWN_ID],
        duration_s=2.0,
        speedup=450.0,  # 15 simulated minutes
        seed=3,
        truth_path=truth,
        sos_per_hour=12.0,
        silence_per_hour=0.0,
        retry_delay_s=0.02,
        max_retry_delay_s=0.1,
        timeout_s=5.0,
        drain_timeout_s=1.0,
        heartbeat_interval_s=240.0,
    )
    stats = asyncio.run(_run_against_fake(config, recorder))

    assert recorder.cuts >= 3 and stats.failed > 0
    assert stats.connections > len(known) + recorder.cuts // 2  # every cut costs a reconnection
    assert stats.rejected == 0
    assert stats.sent == stats.ok + stats.failed
    assert UNKNOWN_ID not in recorder.stored
    assert stats.pending > 0  # the unknown device's reports: it keeps retrying, as a real one would
    delivered = resent = 0
    for unique_id in known:
        fixes = _fixes(recorder.stored[unique_id])
        # At least once, in order: resent frames repeat a stretch, they never skip or reorder one.
        first_seen = list(dict.fromkeys(m.time for m in fixes))
        assert first_seen == sorted(first_seen) and len(first_seen) >= 29
        delivered += len(first_seen)
        resent += len(fixes) - len(first_seen)
        # The keep-alives carry the battery, at least every 4 simulated minutes.
        beats = [m for m in recorder.stored[unique_id] if m.time is None and m.battery_pct is not None]
        assert len(beats) >= 4
    assert delivered == stats.ok == stats.reports - stats.pending
    assert resent > 0 or protocol == "watch"  # watch: only LK and AL are answered, hence cut
    for opening in recorder.openings:
        _check_opening(protocol, opening)
    sos = [r for r in map(json.loads, truth.read_text().splitlines()) if r["kind"] == "sos"]
    assert any(r["unique_id"] in known for r in sos)
    for record in sos:
        if record["unique_id"] in known:
            alarms = {m.time for m in recorder.stored[record["unique_id"]] if Alarm.SOS in m.alarms}
            assert datetime.fromisoformat(record["time"]) in alarms


def _check_opening(protocol: str, opening: list[bytes]) -> None:
    """A connection starts as real devices start it: login then heartbeat (GT06), or a heartbeat."""
    if not opening:
        return  # connected, then cut off before writing (a cut during the fleet's drain)
    if protocol == "gt06":
        assert opening[0][3] == 0x01
        assert len(opening) < 2 or opening[1][3] == 0x13
    elif protocol == "watch":
        assert b"*LK," in opening[0]
    else:
        assert b",HTBT," in opening[0]


def test_tcp_and_mqtt_configs_are_checked() -> None:
    with pytest.raises(ValueError, match="protocol"):
        asyncio.run(run_fleet(FleetConfig(unique_ids=["1"], protocol="sms")))
    with pytest.raises(ValueError, match="mqtt_url and org_id"):
        asyncio.run(run_fleet(FleetConfig(unique_ids=["1"], protocol="mqtt", mqtt_url="mqtt://127.0.0.1")))
    with pytest.raises(ValueError, match="GT06"):
        asyncio.run(run_fleet(FleetConfig(unique_ids=["86100000000000123"], protocol="gt06")))
    with pytest.raises(ValueError, match="tcp_port"):
        asyncio.run(run_fleet(FleetConfig(unique_ids=["1"], protocol="h02", tcp_port=70000)))


# -- every protocol end to end, against the real service -----------------------------------------------


@dataclass(frozen=True)
class Live:
    service: ServiceProcess
    tenant: Tenant
    mqtt_url: str
    ids: dict[str, list[str]]  # protocol -> unique ids
    wearers: dict[str, str]  # unique id -> wearer id


@pytest.fixture(scope="module")
def live(mqtt_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("live")
    db = f"sqlite:///{folder / 'gs.db'}"
    tenant = provision(db, "Fleet", "700000000000000", "fleet@example.org")
    ids: dict[str, list[str]] = {}
    wearers: dict[str, str] = {}
    for prefix, protocol in enumerate(("watch", "gt06", "h02", "mqtt"), start=1):
        ids[protocol] = [f"86{prefix}00000000000{i}" for i in range(1, 4)]
        pairs = add_devices(db, tenant.org_id, ids[protocol], protocol)
        wearers.update(zip(ids[protocol], (wearer for wearer, _ in pairs), strict=True))
    broker = f"{mqtt_url}?client_id=sim-test-{uuid.uuid4().hex[:8]}"
    service = ServiceProcess(db, folder / "serve.log", "--mqtt", broker).start()
    try:
        yield Live(service, tenant, mqtt_url, ids, wearers)
    finally:
        service.stop()


def _positions(store: Store, live: Live, unique_id: str) -> list[datetime]:
    scope = Scope(live.tenant.org_id)
    found = store.positions(scope, live.wearers[unique_id], limit=10_000, include_rejected=True)
    return sorted(p.time for p in found)


@pytest.mark.e2e
@pytest.mark.parametrize("protocol", ["watch", "gt06", "h02", "mqtt"])
def test_every_protocol_is_stored_by_the_real_service(protocol: str, live: Live, tmp_path: Path) -> None:
    ids = live.ids[protocol]
    truth = tmp_path / "truth.jsonl"
    config = FleetConfig(
        protocol=protocol,
        unique_ids=ids,
        tcp_port=live.service.tcp_ports.get(protocol),
        mqtt_url=live.mqtt_url,
        org_id=live.tenant.org_id,
        duration_s=3.0,
        speedup=300.0,  # the last 15 simulated minutes
        seed=4,
        truth_path=truth,
        sos_per_hour=20.0,
        silence_per_hour=0.0,
        timeout_s=5.0,
    )
    stats = asyncio.run(run_fleet(config))
    assert stats.failed == stats.rejected == stats.pending == 0
    assert stats.ok == stats.sent == stats.reports >= 3 * 29
    assert stats.connections == (1 if protocol == "mqtt" else len(ids))

    store = open_store(live.service.db_url)
    try:
        # Acknowledged means committed, except the watch's UD_LTE (no reply) and MQTT (the broker acks).
        deadline = time.monotonic() + 10
        while sum(len(_positions(store, live, u)) for u in ids) < stats.ok and time.monotonic() < deadline:
            time.sleep(0.05)
        stored = {u: _positions(store, live, u) for u in ids}
        assert sum(map(len, stored.values())) == stats.ok
        now = datetime.now(UTC)
        for unique_id in ids:
            times = stored[unique_id]
            assert len(times) >= 29 and len(set(times)) == len(times)
            assert times[-1] <= now and times[0] >= now - timedelta(minutes=16)
            if protocol != "mqtt":  # plus the heartbeats, stored as readings without a position
                readings = store.count_readings(store.device_by_unique_id(unique_id).id)  # type: ignore[union-attr]
                assert readings >= len(times) + 2
        records = [json.loads(line) for line in truth.read_text().splitlines()]
        sos = [r for r in records if r["kind"] == "sos"]
        assert sos, "expected SOS presses at 20 per hour and bracelet"
        scope = Scope(live.tenant.org_id)
        for record in sos:
            events = store.events(scope, live.wearers[record["unique_id"]], limit=1000)
            alerted = {e.time for e in events if e.kind == EventKind.SOS}
            assert datetime.fromisoformat(record["time"]) in alerted
    finally:
        store.close()
