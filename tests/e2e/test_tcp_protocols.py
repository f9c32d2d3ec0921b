"""Watches and trackers over real TCP sockets: replies, stored fixes, SOS alerts, bad frames, commands.

Every test runs against the service with its TCP gateways in the core process, in a gateway worker
(``--gateway-workers 1``: connections and decoding in the worker, commands routed to it over the link), and
in a gateway worker with the pipeline's commits in a writer process (``--writer-process``).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from geosentinel.protocols.codec import crc_itu
from geosentinel.store import open_store
from geosentinel.testing import ServiceProcess, Tenant, add_devices, eventually, fresh_postgres_database

pytestmark = pytest.mark.e2e

LAT, LON = 43.529742, 5.447427  # Aix-en-Provence


@pytest.fixture(
    scope="module",
    params=[(), ("--gateway-workers", "1"), ("--gateway-workers", "1", "--writer-process")],
    ids=["in-core", "workers", "workers-writer-process"],
)
def serve_args(request: pytest.FixtureRequest) -> tuple[str, ...]:
    return tuple(request.param)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, serve_args: tuple[str, ...]
) -> str:
    """A database per backend (as tests/conftest.py) and gateway mode: the tests register fixed ids."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'gs.db'}"
    url = os.environ.get("GEOSENTINEL_TEST_POSTGRES_URL")
    if not url:  # a missing server is a failure, never a skip
        pytest.fail("GEOSENTINEL_TEST_POSTGRES_URL is not set: run the suite with `make test`")
    return fresh_postgres_database(url)


@pytest.fixture(scope="module")
def service(
    tenant: Tenant, tmp_path_factory: pytest.TempPathFactory, serve_args: tuple[str, ...]
) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    svc = ServiceProcess(tenant.db_url, log, *serve_args).start()
    yield svc
    svc.stop()


def _api(service: ServiceProcess, token: str, path: str) -> object:
    response = httpx.get(f"{service.api}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    response.raise_for_status()
    return response.json()


def _latitudes(service: ServiceProcess, tenant: Tenant, wearer_id: str) -> list[float]:
    positions = _api(service, tenant.token, f"/api/v1/wearers/{wearer_id}/positions")
    assert isinstance(positions, list)
    return [round(p["latitude"], 5) for p in positions]


def _open_alert_kinds(service: ServiceProcess, tenant: Tenant, wearer_id: str) -> set[str]:
    body = _api(service, tenant.token, f"/api/v1/alerts?status=open&wearer_id={wearer_id}")
    assert isinstance(body, dict)
    return {a["kind"] for a in body["items"]}


@pytest.fixture
def connect(service: ServiceProcess) -> Iterator[Callable[[str], socket.socket]]:
    opened: list[socket.socket] = []

    def open_to(protocol: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", service.tcp_ports[protocol]), timeout=5)
        opened.append(sock)
        return sock

    yield open_to
    for sock in opened:
        sock.close()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


# watch ------------------------------------------------------------------------------------------------
def _watch(uid: str, content: str) -> bytes:
    return f"[3G*{uid}*{len(content):04X}*{content}]".encode()


def _watch_fix(kind: str, lat: float, status: str = "00000000") -> str:
    now = datetime.now(UTC)
    return (f"{kind},{now:%d%m%y},{now:%H%M%S},A,{lat:.6f},N,{LON:.6f},E,0.5,0.0,120.0,9,100,86,1520,0,"
            f"{status},0,0")  # fmt: skip


def test_watch_link_fix_sos_and_a_command(
    service: ServiceProcess, tenant: Tenant, connect: Callable[[str], socket.socket]
) -> None:
    uid = "8800000001"
    wearer_id, device_id = add_devices(tenant.db_url, tenant.org_id, [uid], "watch")[0]
    watch = connect("watch")
    watch.sendall(_watch(uid, "LK,0,0,87"))
    assert _recv_exactly(watch, 23) == f"[3G*{uid}*0002*LK]".encode()
    watch.sendall(_watch(uid, _watch_fix("UD_LTE", LAT)))
    eventually(lambda: _latitudes(service, tenant, wearer_id) == [round(LAT, 5)])
    watch.sendall(_watch(uid, _watch_fix("AL_LTE", LAT + 1e-5, status="00010000")))
    assert _recv_exactly(watch, 23) == f"[3G*{uid}*0002*AL]".encode()
    eventually(lambda: "sos" in _open_alert_kinds(service, tenant, wearer_id))

    response = httpx.post(
        f"{service.api}/api/v1/devices/{device_id}/commands", json={"kind": "locate"},
        headers={"Authorization": f"Bearer {tenant.token}"}, timeout=5,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    sent = response.json()["payload"].encode()
    assert _recv_exactly(watch, len(sent)) == sent
    assert sent.startswith(b"[") and uid.encode() in sent and b"CR" in sent


def test_watch_bad_frame_between_two_good_ones_loses_neither(
    service: ServiceProcess, tenant: Tenant, connect: Callable[[str], socket.socket]
) -> None:
    uid = "8800000002"
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, [uid], "watch")[0]
    watch = connect("watch")
    watch.sendall(
        _watch(uid, _watch_fix("UD", LAT)) + b"[3G*" + uid.encode() + b"*0005*UD,\xff\xfe]garbage"
        + _watch(uid, _watch_fix("UD", LAT + 2e-5))
    )  # fmt: skip
    eventually(
        lambda: sorted(_latitudes(service, tenant, wearer_id)) == [round(LAT, 5), round(LAT + 2e-5, 5)]
    )


def test_unknown_watch_is_disconnected_and_nothing_is_stored(
    service: ServiceProcess, connect: Callable[[str], socket.socket]
) -> None:
    watch = connect("watch")
    watch.sendall(_watch("8899999999", "LK,0,0,87"))
    assert watch.recv(100) == b""


# GT06 -------------------------------------------------------------------------------------------------
def _gt06(protocol: int, content: bytes, serial: int) -> bytes:
    body = bytes([len(content) + 5, protocol]) + content + struct.pack(">H", serial)
    return b"\x78\x78" + body + struct.pack(">H", crc_itu(body)) + b"\r\n"


def _gt06_gps(lat: float) -> bytes:
    now = datetime.now(UTC)
    course_status = 0x1000 | 0x0400 | 90  # fix valid, north, east, course 90
    when = bytes([now.year - 2000, now.month, now.day, now.hour, now.minute, now.second, 0xC9])
    return when + struct.pack(">IIBH", round(lat * 1_800_000), round(LON * 1_800_000), 3, course_status)


def test_gt06_login_gps_and_sos_alarm(
    service: ServiceProcess, tenant: Tenant, connect: Callable[[str], socket.socket]
) -> None:
    imei = "864717003283581"
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, [imei], "gt06")[0]
    tracker = connect("gt06")
    tracker.sendall(_gt06(0x01, bytes.fromhex("0" + imei), 1))
    assert _recv_exactly(tracker, 10) == b"\x78\x78\x05\x01\x00\x01" + _crc(b"\x05\x01\x00\x01") + b"\r\n"
    lbs = struct.pack(">HBH", 208, 1, 3000) + (12345).to_bytes(3, "big")
    tracker.sendall(_gt06(0x12, _gt06_gps(LAT) + lbs, 2))
    assert _recv_exactly(tracker, 10) == b"\x78\x78\x05\x12\x00\x02" + _crc(b"\x05\x12\x00\x02") + b"\r\n"
    eventually(lambda: _latitudes(service, tenant, wearer_id) == [round(LAT, 5)])
    alarm = _gt06_gps(LAT + 1e-5) + b"\x09" + lbs + bytes([0x04 << 3 | 0x40, 5, 4, 0x01, 0x02])
    tracker.sendall(_gt06(0x16, alarm, 3))
    assert _recv_exactly(tracker, 10) == b"\x78\x78\x05\x16\x00\x03" + _crc(b"\x05\x16\x00\x03") + b"\r\n"
    eventually(lambda: "sos" in _open_alert_kinds(service, tenant, wearer_id))


def _crc(body: bytes) -> bytes:
    return struct.pack(">H", crc_itu(body))


# H02 --------------------------------------------------------------------------------------------------
def _h02_v1(uid: str, lat: float, status: str) -> bytes:
    now = datetime.now(UTC)
    minutes = (lat - int(lat)) * 60
    lon_minutes = (LON - int(LON)) * 60
    where = f"{int(lat):02d}{minutes:07.4f},N,{int(LON):03d}{lon_minutes:07.4f},E"
    return f"*HQ,{uid},V1,{now:%H%M%S},A,{where},000.00,000,{now:%d%m%y},{status}#".encode()


def test_h02_v1_fix_and_sos(
    service: ServiceProcess, tenant: Tenant, connect: Callable[[str], socket.socket]
) -> None:
    uid = "4970105243"
    wearer_id, _ = add_devices(tenant.db_url, tenant.org_id, [uid], "h02")[0]
    tracker = connect("h02")
    tracker.sendall(_h02_v1(uid, LAT, "FFFFFBFF"))
    reply = _recv_exactly(tracker, len(f"*HQ,{uid},V4,V1,20261127120000#"))
    assert reply.startswith(f"*HQ,{uid},V4,V1,".encode()) and reply.endswith(b"#")
    eventually(lambda: [round(x, 4) for x in _latitudes(service, tenant, wearer_id)] == [round(LAT, 4)])
    tracker.sendall(_h02_v1(uid, LAT, "FFFFFBFD"))  # bit 1 low: SOS
    eventually(lambda: "sos" in _open_alert_kinds(service, tenant, wearer_id))


# Garbage -------------------------------------------------------------------------------------------------
def _rss_kb(pid: int) -> int:
    """The resident memory of the service and its gateway workers, which hold the connections."""
    pids = [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    total = 0
    for one in pids:
        with open(f"/proc/{one}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total


@pytest.mark.parametrize("protocol", ["watch", "gt06", "h02"])
def test_a_garbage_flood_is_cut_off_without_memory_growth(service: ServiceProcess, protocol: str) -> None:
    assert service.process is not None
    before = _rss_kb(service.process.pid)
    sock = socket.create_connection(("127.0.0.1", service.tcp_ports[protocol]), timeout=5)
    chunk = os.urandom(64 * 1024)
    sent = 0
    try:
        with pytest.raises(OSError):  # reset or broken pipe once the gateway cuts the sender off
            while sent < 100 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
    finally:
        sock.close()
    assert sent < 16 * 1024 * 1024, f"still accepted after {sent} bytes"
    assert _rss_kb(service.process.pid) - before < 16 * 1024
    # and the gateway still serves devices
    healthy = socket.create_connection(("127.0.0.1", service.tcp_ports[protocol]), timeout=5)
    healthy.close()


def test_a_watch_sending_local_time_is_corrected_by_its_device_zone(
    service: ServiceProcess, tenant: Tenant, connect: Callable[[str], socket.socket]
) -> None:
    # Watches set with LZ report wall-clock time in their zone; the device's zone turns it back into UTC.
    uid = "8800000003"
    store = open_store(tenant.db_url)
    try:
        wearer = store.create_wearer(tenant.org_id, "Local time")
        store.create_device(tenant.org_id, wearer.id, uid, "watch", timezone="Europe/Paris")
    finally:
        store.close()
    utc_now = datetime.now(UTC).replace(microsecond=0)
    paris = utc_now.astimezone(ZoneInfo("Europe/Paris"))
    where = f"A,{LAT:.6f},N,{LON:.6f},E"
    fix = f"UD,{paris:%d%m%y},{paris:%H%M%S},{where},0.5,0.0,120.0,9,100,86,1520,0,00000000,0,0"
    connect("watch").sendall(_watch(uid, fix))

    def stored_time() -> str | None:
        positions = _api(service, tenant.token, f"/api/v1/wearers/{wearer.id}/positions")
        assert isinstance(positions, list)
        return positions[0]["time"] if positions else None

    eventually(lambda: stored_time() is not None)
    assert datetime.fromisoformat(str(stored_time()).replace("Z", "+00:00")) == utc_now
