"""``make demo``: a Marseille care organisation, its staff and ~50 bracelets walking around the city.

The credentials are random, generated on first run and kept (readable by the owner only) in
``DATA_DIR/demo-credentials.json``, so there is no default password anywhere, even in the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from geosentinel.app import Settings, serve
from geosentinel.auth import hash_password, new_token
from geosentinel.model import Locale, Region, Role
from geosentinel.store import Store, open_store

if TYPE_CHECKING:
    from geosentinel.sim.fleet import FleetConfig

ORG_NAME = "Marseille Demo"
FIRST_NAMES = (
    "Jeanne",
    "Marcel",
    "Odette",
    "Louis",
    "Simone",
    "René",
    "Paulette",
    "André",
    "Yvette",
    "Henri",
)
LAST_NAMES = ("Martin", "Bernard", "Roux", "Fabre", "Blanc", "Garcia", "Mistral", "Pagnol", "Durand", "Rey")
# The demo fleet speaks every device protocol, over the real transports: device i uses protocol i mod 4.
DEMO_MODELS = {
    "osmand": "Traccar Client (simulated)",
    "watch": "3G senior watch (simulated)",
    "gt06": "Concox GT06 (simulated)",
    "h02": "H02 tracker (simulated)",
}


def demo_protocol(index: int) -> str:
    return list(DEMO_MODELS)[index % len(DEMO_MODELS)]


def seed(
    store: Store,
    devices: int,
    credentials_path: Path,
    zones: dict[str, tuple[float, float, float]] | None = None,
) -> dict[str, str]:
    """Create the demo organisation, accounts, wearers and devices if missing; return the credentials.

    ``zones``: each device's home safe zone (lat, lon, radius m), created with its wearer.
    """
    from geosentinel.sim.fleet import demo_unique_ids

    if credentials_path.exists():
        credentials: dict[str, str] = json.loads(credentials_path.read_text())
    else:
        credentials = {}
    org = store.org_by_name(ORG_NAME) or store.create_org(ORG_NAME, Region.EU, "Europe/Paris", Locale.FR)
    for role, email in (
        (Role.ADMIN, "admin@demo.geosentinel.org"),
        (Role.CAREGIVER, "aide@demo.geosentinel.org"),
    ):
        if store.user_by_email(email) is None:
            password = secrets.token_urlsafe(12)
            user = store.create_user(org.id, email, hash_password(password), role, role.value.title())
            credentials[f"{role.value}_email"], credentials[f"{role.value}_password"] = email, password
            if role is Role.ADMIN:
                token, digest = new_token()
                store.create_token(user.id, digest, "demo")
                credentials["admin_token"] = token
    for index, unique_id in enumerate(demo_unique_ids(devices)):
        if store.device_by_unique_id(unique_id) is None:
            name = f"{FIRST_NAMES[index % 10]} {LAST_NAMES[(index // 10) % 10]}"
            wearer = store.create_wearer(org.id, name)
            protocol = demo_protocol(index)
            store.create_device(org.id, wearer.id, unique_id, protocol, model=DEMO_MODELS[protocol])
            if zones and unique_id in zones:
                lat, lon, radius = zones[unique_id]
                home = {"type": "Point", "coordinates": [lon, lat]}
                store.create_geofence(org.id, wearer.id, "Domicile", "safe", home, round(radius))
    credentials_path.write_text(json.dumps(credentials, indent=2))
    os.chmod(credentials_path, 0o600)
    return credentials


def demo_fleets(devices: int, host: str, osmand_port: int, data_dir: Path) -> list[FleetConfig]:
    """One simulated fleet per protocol, a quarter of the bracelets each."""
    from geosentinel.sim.fleet import FleetConfig, demo_unique_ids

    ids = demo_unique_ids(devices)
    configs = []
    for offset, protocol in enumerate(DEMO_MODELS):
        config = FleetConfig(
            protocol=protocol, osmand_url=f"http://{host}:{osmand_port}", tcp_host=host,
            unique_ids=ids[offset :: len(DEMO_MODELS)], interval_s=10.0, seed=offset,
            truth_path=data_dir / f"simulator-truth-{protocol}.jsonl",
            sos_per_hour=60.0 / devices,  # about one SOS a minute across the fleet, so the demo shows alerts
        )  # fmt: skip
        if config.unique_ids:
            configs.append(config)
    return configs


def demo_secret(data_dir: Path) -> bytes:
    """The demo's own key for acknowledgement links, made once and kept in its data folder (owner-only):
    the demo is the one place where the service makes up a secret itself."""
    path = data_dir / "secret-key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def _before_regions(db_path: Path) -> bool:
    """A demo database of the time when one file held every organisation (it cannot be the directory)."""
    if not db_path.exists():
        return False
    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        found = connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'organisations'").fetchone()
    return found is not None


async def run_demo(data_dir: Path, devices: int, host: str, http_port: int, osmand_port: int) -> None:
    from geosentinel.sim.fleet import run_fleet, safe_zones

    console = Console(soft_wrap=True)  # long lines (the curl command) must stay copy-pasteable
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir.resolve() / "geosentinel.db"
    if _before_regions(db_path):
        set_aside = db_path.with_name("geosentinel.before-regions.db")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{db_path}{suffix}").rename(f"{set_aside}{suffix}")
        console.print(f"[yellow]The demo database predates regions: set aside as {set_aside.name}[/]")
    db_url = f"sqlite:///{db_path}"
    configs = demo_fleets(devices, host, osmand_port, data_dir)
    zones = {uid: zone for config in configs for uid, zone in safe_zones(config).items()}
    store = await asyncio.to_thread(open_store, db_url)
    try:
        credentials = await asyncio.to_thread(seed, store, devices, data_dir / "demo-credentials.json", zones)
    finally:
        await asyncio.to_thread(store.close)
    ready = asyncio.Event()
    settings = Settings(db_url, host, http_port, osmand_port, secret_key=demo_secret(data_dir))
    server = asyncio.create_task(serve(settings, ready=ready))
    await asyncio.wait([server, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        await server  # surfaces the start-up error
        return
    _print_banner(console, credentials, host, http_port, osmand_port, data_dir)
    fleets = [asyncio.create_task(run_fleet(config)) for config in configs]
    try:
        await server
    finally:
        for fleet in fleets:
            fleet.cancel()
        for fleet in fleets:
            with contextlib.suppress(asyncio.CancelledError):
                await fleet


def _print_banner(
    console: Console, credentials: dict[str, str], host: str, http_port: int, osmand_port: int, data_dir: Path
) -> None:
    base = f"http://{host}:{http_port}"
    console.rule("[bold]GeoSentinel demo")
    console.print(f"API docs       {base}/docs")
    console.print(f"Open alerts    curl -H 'Authorization: Bearer {credentials.get('admin_token', '…')}' "
                  f"'{base}/api/v1/alerts?status=open'")  # fmt: skip
    console.print(f"OsmAnd gateway http://{host}:{osmand_port}/?id=…&lat=…&lon=…")
    console.print(
        f"TCP gateways   watch {host}:5093, gt06 {host}:5023, h02 {host}:5013 (a quarter of the fleet each)"
    )
    console.print(f"Admin          {credentials.get('admin_email')} / {credentials.get('admin_password')}")
    console.print(
        f"Caregiver      {credentials.get('caregiver_email')} / {credentials.get('caregiver_password')}"
    )
    console.print(f"Data           {data_dir}/ (credentials in demo-credentials.json; Ctrl-C to stop)")
    console.rule()
