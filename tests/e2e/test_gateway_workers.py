"""`serve --gateway-workers 1`: device traffic decoded in a worker process, committed by the core.

(Every TCP protocol test also runs through a worker: see test_tcp_protocols.py.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from geosentinel.testing import ServiceProcess, Tenant, add_devices, provision

pytestmark = pytest.mark.e2e

UID = "600000000000001"


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, Tenant]]:
    folder = tmp_path_factory.mktemp("workers")
    tenant = provision(f"sqlite:///{folder / 'gs.db'}", "Workers", UID, "w@example.org")
    service = ServiceProcess(tenant.db_url, folder / "serve.log", "--gateway-workers", "1").start()
    yield service, tenant
    service.stop()


def _workers(service: ServiceProcess) -> list[int]:
    assert service.process is not None
    out = subprocess.run(
        ["pgrep", "-P", str(service.process.pid)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in out.stdout.split()]


def test_sos_through_a_worker_opens_an_alert(linked: tuple[ServiceProcess, Tenant]) -> None:
    service, tenant = linked
    assert len(_workers(service)) == 1
    fix = {"id": UID, "lat": 43.2965, "lon": 5.3698, "timestamp": int(time.time()), "alarm": "sos"}
    assert httpx.get(f"{service.osmand}/", params=fix, timeout=5).status_code == 200  # type: ignore[arg-type]
    alerts = httpx.get(
        f"{service.api}/api/v1/alerts",
        params={"status": "open"},
        headers={"Authorization": f"Bearer {tenant.token}"},
        timeout=5,
    ).json()["items"]
    assert [(a["kind"], a["wearer_id"]) for a in alerts] == [("sos", tenant.wearer_id)]


def test_workers_answer_errors_like_the_core(linked: tuple[ServiceProcess, Tenant]) -> None:
    service, _ = linked
    unknown = httpx.get(f"{service.osmand}/", params={"id": "nobody", "lat": 1, "lon": 2}, timeout=5)
    assert unknown.status_code == 400 and "unknown device nobody" in unknown.text
    body = {"device_id": "nobody", "location": {"coords": {"latitude": 1, "longitude": 2}}}
    assert httpx.post(f"{service.osmand}/", json=body, timeout=5).status_code == 404
    bad = httpx.get(f"{service.osmand}/", params={"id": UID, "lat": "north"}, timeout=5)
    assert bad.status_code == 400 and "latitude" in bad.text


def _watch_link(port: int, uid: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as watch:
        watch.sendall(f"[3G*{uid}*0009*LK,0,0,87]".encode())
        return watch.recv(100)


def test_a_killed_worker_is_restarted_and_its_watches_reconnect(
    linked: tuple[ServiceProcess, Tenant],
) -> None:
    service, tenant = linked
    uid = "8800000099"
    add_devices(tenant.db_url, tenant.org_id, [uid], "watch")
    port = service.tcp_ports["watch"]
    assert _watch_link(port, uid) == f"[3G*{uid}*0002*LK]".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as held:
        held.sendall(f"[3G*{uid}*0009*LK,0,0,87]".encode())
        assert held.recv(100)
        (worker,) = _workers(service)
        os.kill(worker, signal.SIGKILL)
        try:
            assert held.recv(100) == b""  # the worker held the connection: gone with it
        except ConnectionResetError:
            pass
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _workers(service) in ([], [worker]):
        time.sleep(0.2)
    assert len(_workers(service)) == 1
    deadline = time.monotonic() + 15
    while True:  # the new worker listens once it has started
        try:
            assert _watch_link(port, uid) == f"[3G*{uid}*0002*LK]".encode()
            break
        except (ConnectionError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_workers_exit_when_the_core_is_killed(tmp_path: Path) -> None:
    """Gateway workers and the writer process alike (pipeline/writer_process.py)."""
    tenant = provision(f"sqlite:///{tmp_path / 'gs.db'}", "Orphans", UID, "o@example.org")
    service = ServiceProcess(
        tenant.db_url, tmp_path / "serve.log", "--gateway-workers", "2", "--writer-process"
    ).start()
    workers = _workers(service)
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in workers]
    assert sorted(c[3].decode() for c in commands) == ["gateway-worker", "gateway-worker", "writer-process"]
    service.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]
    assert alive == [], "gateway workers outlived the core"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "Z"
