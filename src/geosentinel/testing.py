"""Test support shipped with the package: run the real service in a child process, provision tenants.

Used by the test suite and the benchmarks (never by the service itself). No pytest import here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import psycopg
import sqlalchemy as sa

from geosentinel.auth import hash_password, new_token
from geosentinel.model import Locale, Region, Role
from geosentinel.store import Store, open_store
from geosentinel.store.regional import RegionalStore
from geosentinel.store.sql import SqlStore

# Debian's chromium (installed by `make test`), as the dashboard's browser tests launch it with Playwright;
# without the background-networking flags it keeps trying to reach Google on a machine with no internet.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEST_PASSWORD = "Correct-Horse-9"  # noqa: S105 (throwaway accounts in throwaway databases)

T = TypeVar("T")


def eventually(fetch: Callable[[], T], timeout_s: float = 5.0, what: str = "the condition") -> T:
    """What ``fetch`` returns once it is truthy (a running service commits, and answers, a moment after
    it is told something); an AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (found := fetch()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        time.sleep(0.05)
    return found


async def until(condition: Callable[[], T], timeout_s: float = 5.0, what: str = "the condition") -> T:
    """:func:`eventually` inside an event loop (the loop keeps running while it waits)."""
    deadline = time.monotonic() + timeout_s
    while not (found := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s")
        await asyncio.sleep(0.01)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_postgres_database(admin_url: str) -> str:
    """Create a new, empty database on the server of ``admin_url``; return its URL."""
    admin = sa.make_url(admin_url)
    name = f"gs_{uuid.uuid4().hex[:12]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin.set(database=name).render_as_string(hide_password=False)


def backend_of(store: Store, region: Region = Region.EU) -> SqlStore:
    """The backend store of one region behind the routing store (for tests that look at raw tables)."""
    assert isinstance(store, RegionalStore)
    backend = store.region_store(region)
    assert isinstance(backend, SqlStore)
    return backend


@dataclass(frozen=True, slots=True)
class Tenant:
    db_url: str
    org_id: str
    wearer_id: str
    device_id: str
    token: str


def provision(
    db_url: str,
    org: str,
    unique_id: str,
    email: str,
    region: Region = Region.EU,
    timezone: str = "Europe/Paris",
    wearer_name: str = "Jeanne Test",
) -> Tenant:
    """An organisation with an admin (and a bearer token), one wearer and one OsmAnd device."""
    store = open_store(db_url)
    try:
        locale = Locale.ZH if region is Region.CN else Locale.FR
        o = store.create_org(org, region, timezone, locale)
        user = store.create_user(o.id, email, hash_password(TEST_PASSWORD), Role.ADMIN, "Admin")
        token, digest = new_token()
        store.create_token(user.id, digest, "test")
        wearer = store.create_wearer(o.id, wearer_name)
        device = store.create_device(o.id, wearer.id, unique_id, "osmand")
    finally:
        store.close()
    return Tenant(db_url, o.id, wearer.id, device.id, token)


def add_devices(
    db_url: str, org_id: str, unique_ids: list[str], protocol: str = "osmand"
) -> list[tuple[str, str]]:
    """One new wearer per device; returns (wearer id, device id) pairs."""
    store = open_store(db_url)
    try:
        out = []
        for unique_id in unique_ids:
            wearer = store.create_wearer(org_id, f"Wearer {unique_id}")
            device = store.create_device(org_id, wearer.id, unique_id, protocol)
            out.append((wearer.id, device.id))
        return out
    finally:
        store.close()


class ServiceProcess:
    """``geosentinel serve`` in a child process, on free loopback ports."""

    def __init__(
        self, db_url: str, log_path: Path, *extra_args: str, env: dict[str, str] | None = None
    ) -> None:
        self.db_url = db_url
        self.log_path = log_path
        self.extra_args = extra_args
        self.env = env or {}  # added to this process's environment, at every (re)start
        self.http_port = free_port()
        self.osmand_port = free_port()
        self.tcp_ports = {"watch": free_port(), "gt06": free_port(), "h02": free_port()}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def osmand(self) -> str:
        return f"http://127.0.0.1:{self.osmand_port}"

    def start(self, timeout_s: float = 60) -> ServiceProcess:
        args = [sys.executable, "-m", "geosentinel", "serve", "--db", self.db_url, *self.extra_args]
        args += ["--http-port", str(self.http_port), "--osmand-port", str(self.osmand_port)]
        for name, port in self.tcp_ports.items():
            if f"--{name}-port" not in self.extra_args:
                args += [f"--{name}-port", str(port)]
        with self.log_path.open("ab") as log:
            env = os.environ | self.env
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"service exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.api}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"service did not start: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class FakeClock:
    """A clock that moves only when told to (timelines in tests, replays)."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def same(actual: object, expected: object) -> bool:
    """Equality for decoded JSON that also tells 1 from 1.0 from True (case files pin exact types)."""
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same(actual[key], expected[key]) for key in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return type(actual) is type(expected) and actual == expected
