"""``geosentinel``: run the service, manage organisations and devices, decode frames, simulate a fleet."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import typer

from geosentinel.alerts.cli import alerts_app, contact_app, policy_app
from geosentinel.auth import WeakPassword, hash_password, new_token
from geosentinel.cli_support import DEFAULT_DB, Db, OrgName
from geosentinel.cli_support import fail as _fail
from geosentinel.cli_support import org_id as _org_id
from geosentinel.cli_support import store as _store
from geosentinel.detect.fences import validate_fence_geometry
from geosentinel.detect.schedule import Schedule
from geosentinel.falls.cli import falls_app
from geosentinel.model import Locale, Region, Role
from geosentinel.protocols import DEVICE_PROTOCOLS
from geosentinel.protocols.base import DecodeError
from geosentinel.store import Scope, StoreError

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
org_app = typer.Typer(help="Organisations (tenants).", no_args_is_help=True)
user_app = typer.Typer(help="User accounts.", no_args_is_help=True)
wearer_app = typer.Typer(help="Wearers: the people who wear the bracelets.", no_args_is_help=True)
device_app = typer.Typer(help="Devices (bracelets, watches, trackers).", no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)
geofence_app = typer.Typer(
    help="Safe zones (alert on exit) and danger zones (alert on entry).", no_args_is_help=True
)
for sub, name in ((org_app, "org"), (user_app, "user"), (wearer_app, "wearer"), (device_app, "device"),
                  (token_app, "token"), (geofence_app, "geofence")):  # fmt: skip
    app.add_typer(sub, name=name)
app.add_typer(falls_app, name="falls")
for sub, name in ((alerts_app, "alerts"), (contact_app, "contact"), (policy_app, "policy")):
    app.add_typer(sub, name=name)


@app.command("serve")
def serve_command(
    db: Db = DEFAULT_DB,
    host: Annotated[str, typer.Option(envvar="GEOSENTINEL_HOST")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(envvar="GEOSENTINEL_HTTP_PORT", help="API and docs.")] = 8000,
    osmand_port: Annotated[int, typer.Option(envvar="GEOSENTINEL_OSMAND_PORT")] = 5055,
    partitions: Annotated[int, typer.Option(min=1, max=64, help="Pipeline partitions.")] = 4,
    gateway_workers: Annotated[
        int,
        typer.Option(
            min=0,
            max=32,
            envvar="GEOSENTINEL_GATEWAY_WORKERS",
            help="Processes that hold device connections (HTTP and TCP) and decode their traffic "
            "(0: all in this process).",
        ),
    ] = 0,
    writer_process: Annotated[
        bool,
        typer.Option(
            envvar="GEOSENTINEL_WRITER_PROCESS",
            help="Commit ingested readings from a process of its own (for thousands of devices: the "
            "core's event loop then has its interpreter to itself).",
        ),
    ] = False,
    watch_port: Annotated[int, typer.Option(envvar="GEOSENTINEL_WATCH_PORT", help="0 disables.")] = 5093,
    gt06_port: Annotated[int, typer.Option(envvar="GEOSENTINEL_GT06_PORT", help="0 disables.")] = 5023,
    h02_port: Annotated[int, typer.Option(envvar="GEOSENTINEL_H02_PORT", help="0 disables.")] = 5013,
    mqtt: Annotated[
        str | None, typer.Option(envvar="GEOSENTINEL_MQTT", help="Broker URL, e.g. mqtt://127.0.0.1:1883.")
    ] = None,
    max_connections_per_address: Annotated[
        int, typer.Option(min=1, help="TCP device connections allowed from one address.")
    ] = 5000,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="GEOSENTINEL_PUBLIC_URL",
            help="The API's address as recipients reach it, for acknowledgement links in notifications.",
        ),
    ] = None,
    notify_retry_delays: Annotated[
        str, typer.Option(help="Seconds between delivery tries of a notification, comma-separated.")
    ] = "5,15,45,120,300",
) -> None:
    """Run the API, the device gateways and the alert notifications.

    Acknowledgement links are signed with the secret in the environment variable GEOSENTINEL_SECRET_KEY
    (at least 32 characters; never on the command line, where other users could read it). Without it,
    notifications go out without a link.
    """
    from geosentinel.app import Settings, run, serve  # the web stack loads only for the commands using it

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from geosentinel.transports.tcp_gateway import TcpLimits

    settings = Settings(
        db, host, http_port, osmand_port, partitions, gateway_workers, watch_port=watch_port,
        gt06_port=gt06_port, h02_port=h02_port, mqtt_url=mqtt,
        tcp_limits=TcpLimits(max_connections_per_address=max_connections_per_address),
        writer_process=writer_process,
        public_url=public_url, secret_key=_secret_key(), retry_delays_s=_delays(notify_retry_delays),
    )  # fmt: skip
    run(serve(settings))


MIN_SECRET_CHARS = 32


def _delays(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise _fail(f"--notify-retry-delays: numbers of seconds separated by commas, not {text!r}") from None
    if any(not 0 < d <= 86_400 for d in delays):
        raise _fail("--notify-retry-delays: each delay between 0 and 86400 seconds")
    return delays


def _secret_key() -> bytes | None:
    secret = os.environ.get("GEOSENTINEL_SECRET_KEY")
    if not secret:
        return None
    if len(secret) < MIN_SECRET_CHARS:
        raise _fail(f"GEOSENTINEL_SECRET_KEY must be at least {MIN_SECRET_CHARS} characters")
    return secret.encode()


@app.command("gateway-worker", hidden=True)
def gateway_worker(
    link: Annotated[str, typer.Option(help="The core's link socket.")],
    host: Annotated[str, typer.Option()],
    osmand_port: Annotated[int, typer.Option()],
    watch_port: Annotated[int, typer.Option(help="0: not served.")] = 0,
    gt06_port: Annotated[int, typer.Option(help="0: not served.")] = 0,
    h02_port: Annotated[int, typer.Option(help="0: not served.")] = 0,
    max_connections_per_address: Annotated[int, typer.Option(min=1)] = 5000,
) -> None:
    """A device-gateway worker process (started by `serve --gateway-workers`)."""
    from geosentinel.app import run
    from geosentinel.transports.tcp_gateway import TcpLimits
    from geosentinel.transports.workers import run_worker

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ports = {"watch": watch_port, "gt06": gt06_port, "h02": h02_port}
    limits = TcpLimits(max_connections_per_address=max_connections_per_address)
    run(run_worker(link, host, osmand_port, {n: p for n, p in ports.items() if p}, limits))


@app.command("writer-process", hidden=True)
def writer_process(
    fd: Annotated[int, typer.Option(help="The socket to the core, inherited.")],
    db: Db = DEFAULT_DB,
) -> None:
    """The pipeline's commits in a process of their own (started by `serve --writer-process`)."""
    from geosentinel.app import run
    from geosentinel.pipeline.writer_process import run_child

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(run_child(fd, db))


@app.command()
def migrate(db: Db = DEFAULT_DB) -> None:
    """Create or upgrade the database schema."""
    _store(db).close()
    typer.echo("schema is up to date")


@org_app.command("create")
def org_create(
    name: str,
    region: Annotated[Region, typer.Option()] = Region.EU,
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Paris.")] = "Europe/Paris",
    locale: Annotated[Locale, typer.Option()] = Locale.FR,
    db: Db = DEFAULT_DB,
) -> None:
    """Create an organisation."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(f"unknown time zone {timezone!r}") from exc
    store = _store(db)
    try:
        org = store.create_org(name, region, timezone, locale)
    except StoreError as exc:
        raise _fail(f"organisation {name!r} already exists") from exc
    finally:
        store.close()
    typer.echo(org.id)


@org_app.command("retention")
def org_retention(
    name: str,
    days: Annotated[int, typer.Option(min=1, max=36_500, help="Keep readings, events, resolved alerts.")],
    db: Db = DEFAULT_DB,
) -> None:
    """Set how long an organisation's health data is kept (default 365 days; `geosentinel purge`)."""
    store = _store(db)
    try:
        store.set_retention(_org_id(store, name), days)
    finally:
        store.close()
    typer.echo(f"{name}: {days} days")


@app.command()
def purge(db: Db = DEFAULT_DB) -> None:
    """Delete what is older than each organisation's retention (the service also does it every day)."""
    store = _store(db)
    try:
        deleted = store.purge_expired(datetime.now(UTC))
    finally:
        store.close()
    summary = ", ".join(f"{table} {count}" for table, count in sorted(deleted.items()) if count)
    typer.echo(f"deleted: {summary}" if summary else "nothing to purge")


@user_app.command("create")
def user_create(
    org: OrgName,
    email: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    role: Annotated[Role, typer.Option()] = Role.CAREGIVER,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    db: Db = DEFAULT_DB,
) -> None:
    """Create a user account."""
    try:
        password_hash = hash_password(password)
    except WeakPassword as exc:
        raise _fail(str(exc)) from exc
    store = _store(db)
    try:
        user = store.create_user(_org_id(store, org), email, password_hash, role, name or email)
    except StoreError as exc:
        raise _fail(f"a user with e-mail {email!r} already exists") from exc
    finally:
        store.close()
    typer.echo(user.id)


@wearer_app.command("add")
def wearer_add(org: OrgName, name: Annotated[str, typer.Option()], db: Db = DEFAULT_DB) -> None:
    """Add a wearer; prints the new wearer's id on the last line."""
    store = _store(db)
    try:
        wearer = store.create_wearer(_org_id(store, org), name)
    finally:
        store.close()
    typer.echo(wearer.id)


@wearer_app.command("settings")
def wearer_settings(
    org: OrgName,
    wearer: Annotated[str, typer.Option(help="Wearer id.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE override, e.g. heart_rate_max_bpm=110 (repeatable)."),
    ] = None,
    reset: Annotated[bool, typer.Option(help="Drop every override (back to the defaults).")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Show a wearer's detection thresholds, or change them (the service applies them within 30 s)."""
    from geosentinel.detect.base import profile_from_settings, profile_settings, validate_settings

    store = _store(db)
    try:
        scope = Scope(_org_id(store, org))
        if store.wearer(scope, wearer) is None:
            raise _fail(f"no wearer {wearer} in {org!r}")
        timezone, overrides = store.detection_settings([wearer])[wearer]
        if reset or set_:
            changed = {} if reset else dict(overrides)
            for item in set_ or []:
                key, sep, raw = item.partition("=")
                if not sep:
                    raise _fail(f"--set {item!r}: expected KEY=VALUE")
                try:
                    changed[key.strip()] = json.loads(raw)
                except ValueError:
                    changed[key.strip()] = raw.strip()  # times of day: 07:30
            try:
                overrides = validate_settings(changed)
            except ValueError as exc:
                raise _fail(str(exc)) from exc
            store.set_wearer_settings(scope, wearer, overrides)
        settings = profile_settings(profile_from_settings(timezone, overrides))
    finally:
        store.close()
    typer.echo(json.dumps({"timezone": timezone, "settings": settings, "overrides": overrides}, indent=2))


@wearer_app.command("erase")
def wearer_erase(
    org: OrgName,
    wearer: Annotated[str, typer.Option(help="Wearer id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Erase a wearer and everything about them and their devices, for good (right to erasure).

    A running service forgets the devices within 30 s; the API's DELETE /api/v1/wearers/{id} does at once.
    """
    store = _store(db)
    try:
        scope = Scope(_org_id(store, org))
        found = store.wearer(scope, wearer)
        if found is None:
            raise _fail(f"no wearer {wearer} in {org!r}")
        if not yes:
            typer.confirm(f"erase {found.name} ({wearer}) and all their data for good?", abort=True)
        actor = f"cli:{os.environ.get('USER') or 'unknown'}"
        deleted = store.erase_wearer(scope, wearer, actor, datetime.now(UTC))
    finally:
        store.close()
    if deleted is None:
        raise _fail(f"no wearer {wearer} in {org!r}")
    summary = ", ".join(f"{table} {count}" for table, count in sorted(deleted.items()) if count)
    typer.echo(f"erased: {summary}")


@device_app.command("add")
def device_add(
    org: OrgName,
    unique_id: Annotated[str, typer.Option(help="IMEI or the id the device reports.")],
    protocol: Annotated[str, typer.Option(help=f"One of: {', '.join(DEVICE_PROTOCOLS)}.")],
    wearer: Annotated[str | None, typer.Option(help="Wearer id (a device without one is ignored).")] = None,
    model: Annotated[str | None, typer.Option()] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone, for devices that send local time.")] = None,
    interval: Annotated[
        float | None, typer.Option(min=10, help="Seconds between reports (default: learned; for offline).")
    ] = None,
    db: Db = DEFAULT_DB,
) -> None:
    """Register a device."""
    if protocol not in DEVICE_PROTOCOLS:
        raise _fail(f"unknown protocol {protocol!r}; known: {', '.join(DEVICE_PROTOCOLS)}")
    store = _store(db)
    try:
        org_id = _org_id(store, org)
        if wearer is not None and store.wearer(Scope(org_id), wearer) is None:
            raise _fail(f"no wearer {wearer} in {org!r}")
        device = store.create_device(org_id, wearer, unique_id, protocol, model, timezone, interval)
    except StoreError as exc:
        raise _fail(f"a device with unique id {unique_id!r} already exists") from exc
    finally:
        store.close()
    typer.echo(device.id)


@geofence_app.command("add")
def geofence_add(
    org: OrgName,
    name: Annotated[str, typer.Option(help="What caregivers call the place (e.g. Home).")],
    kind: Annotated[str, typer.Option(help="safe (alert on exit) or danger (alert on entry).")] = "safe",
    wearer: Annotated[str | None, typer.Option(help="Wearer id; omit for every wearer of the org.")] = None,
    circle: Annotated[str | None, typer.Option(help="LAT,LON,RADIUS_M")] = None,
    geojson: Annotated[
        Path | None, typer.Option(help="File with a GeoJSON geometry or Feature (Polygon, LineString…).")
    ] = None,
    width: Annotated[float | None, typer.Option(help="Corridor width in metres (LineString).")] = None,
    schedule: Annotated[
        list[str] | None, typer.Option(help="Active only HH:MM-HH:MM local time, every day (repeatable).")
    ] = None,
    db: Db = DEFAULT_DB,
) -> None:
    """Add a geofence; prints its id."""
    geometry, radius = _fence_shape(circle, geojson)
    if kind not in ("safe", "danger"):
        raise _fail("--kind must be safe or danger")
    try:
        validate_fence_geometry(geometry, radius, width)
        windows = _schedule(schedule or [])
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    store = _store(db)
    try:
        org_id = _org_id(store, org)
        if wearer is not None and store.wearer(Scope(org_id), wearer) is None:
            raise _fail(f"no wearer {wearer} in {org!r}")
        fence = store.create_geofence(
            org_id, wearer, name, "safe" if kind == "safe" else "danger", geometry, radius, width, windows
        )
    finally:
        store.close()
    typer.echo(fence.id)


def _fence_shape(circle: str | None, geojson: Path | None) -> tuple[dict[str, object], float | None]:
    if (circle is None) == (geojson is None):
        raise _fail("give exactly one of --circle LAT,LON,RADIUS_M and --geojson FILE")
    if circle is not None:
        try:
            lat, lon, radius = (float(part) for part in circle.split(","))
        except ValueError as exc:
            raise _fail("--circle must be LAT,LON,RADIUS_M (e.g. 43.2965,5.3698,200)") from exc
        return {"type": "Point", "coordinates": [lon, lat]}, radius
    assert geojson is not None
    try:
        data = json.loads(geojson.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read GeoJSON from {geojson}: {exc}") from exc
    if isinstance(data, dict) and data.get("type") == "Feature":
        properties = data.get("properties") or {}
        return data.get("geometry") or {}, properties.get("radius_m")
    if not isinstance(data, dict):
        raise _fail("the GeoJSON file must hold a geometry or a Feature")
    return data, None


def _schedule(spans: list[str]) -> Schedule | None:
    if not spans:
        return None
    windows = []
    for span in spans:
        start, sep, end = span.partition("-")
        if not sep:
            raise ValueError(f"schedule {span!r}: expected HH:MM-HH:MM")
        windows.append({"days": list(range(7)), "start": start.strip(), "end": end.strip()})
    try:
        return msgspec.convert({"windows": windows}, Schedule)
    except msgspec.ValidationError as exc:
        raise ValueError(f"bad schedule: {exc}") from exc


@geofence_app.command("list")
def geofence_list(
    org: OrgName, wearer: Annotated[str | None, typer.Option()] = None, db: Db = DEFAULT_DB
) -> None:
    """List geofences as GeoJSON."""
    from geosentinel.api.routes.geofences import feature

    store = _store(db)
    try:
        fences = store.geofences(Scope(_org_id(store, org)), wearer)
    finally:
        store.close()
    typer.echo(json.dumps({"type": "FeatureCollection", "features": [feature(f) for f in fences]}, indent=2))


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option()],
    label: Annotated[str, typer.Option()] = "cli",
    db: Db = DEFAULT_DB,
) -> None:
    """Create a bearer token for a user; prints it (once) on the last line."""
    store = _store(db)
    try:
        found = store.user_by_email(email)
        if found is None:
            raise _fail(f"no user with e-mail {email!r}")
        token, digest = new_token()
        store.create_token(found[0].id, digest, label)
    finally:
        store.close()
    typer.echo(token)


@app.command()
def decode(
    protocol: Annotated[str, typer.Option(help="osmand, watch, gt06 or h02.")],
    message: Annotated[
        list[str] | None, typer.Argument(help="Frames of one connection (default: one per line on stdin).")
    ] = None,
    hex_input: Annotated[bool, typer.Option("--hex", help="Messages are hex-encoded bytes.")] = False,
    unique_id: Annotated[
        str | None, typer.Option(help="The connection's device, as if it had already logged in.")
    ] = None,
) -> None:
    """Decode frames and print each message as a JSON line, with the reply the server would send."""
    from geosentinel.protocols.replay import replay

    texts = message if message else [line.strip() for line in sys.stdin if line.strip()]
    try:
        frames = [bytes.fromhex(t) if hex_input else t.encode() for t in texts]
        rows = replay(protocol, frames, datetime.now(UTC), unique_id)
    except (DecodeError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    for row in rows:
        sys.stdout.write(json.dumps(row) + "\n")


@app.command()
def simulate(
    osmand_url: Annotated[str, typer.Option(help="The service's OsmAnd endpoint.")] = "http://127.0.0.1:5055",
    devices: Annotated[int, typer.Option(min=1, help="Bracelets, with the demo's unique ids.")] = 50,
    unique_id: Annotated[list[str] | None, typer.Option(help="Explicit unique ids (repeatable).")] = None,
    interval: Annotated[float, typer.Option(min=1.0, help="Seconds between reports.")] = 30.0,
    duration: Annotated[float | None, typer.Option(help="Wall seconds to run (default: forever).")] = None,
    speedup: Annotated[float, typer.Option(min=1.0, help="Simulated seconds per wall second.")] = 1.0,
    seed: int = 0,
    truth: Annotated[
        Path | None, typer.Option(help="Ground-truth JSON-lines log of injected incidents.")
    ] = None,
    protocol: Annotated[str, typer.Option(help="osmand, watch, gt06, h02 or mqtt.")] = "osmand",
    tcp_host: Annotated[str, typer.Option(help="The service's host for TCP protocols.")] = "127.0.0.1",
    tcp_port: Annotated[
        int | None, typer.Option(help="TCP port (default: the protocol's: watch 5093, gt06 5023, h02 5013).")
    ] = None,
    mqtt: Annotated[
        str | None, typer.Option(help="Broker URL for --protocol mqtt, e.g. mqtt://127.0.0.1:1883.")
    ] = None,
    org_id: Annotated[str | None, typer.Option(help="Organisation id (MQTT topics carry it).")] = None,
) -> None:
    """Drive simulated bracelets against a running service over the network, in any device protocol."""
    from geosentinel.sim.fleet import FleetConfig, demo_unique_ids, run_fleet

    ids = list(unique_id) if unique_id else demo_unique_ids(devices)
    config = FleetConfig(
        osmand_url=osmand_url, unique_ids=ids, interval_s=interval, duration_s=duration, speedup=speedup,
        seed=seed, truth_path=truth, protocol=protocol, tcp_host=tcp_host, tcp_port=tcp_port, mqtt_url=mqtt,
        org_id=org_id,
    )  # fmt: skip
    try:
        stats = asyncio.run(run_fleet(config))
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"sent {stats.sent}, stored {stats.ok}, failed {stats.failed}, rejected {stats.rejected}, "
        f"connections {stats.connections}"
    )


@app.command("simulate-days")
def simulate_days(
    db: Db,
    truth: Annotated[Path, typer.Option(help="Where to write the ground-truth JSON-lines log.")],
    wearers: Annotated[int, typer.Option(min=1, max=2000)] = 40,
    days: Annotated[float, typer.Option(min=0.01, help="Simulated days per wearer.")] = 5.0,
    seed: int = 1,
    report_json: Annotated[
        Path | None, typer.Option("--report", help="Also write the score as JSON.")
    ] = None,
    caregivers: Annotated[
        bool,
        typer.Option(
            "--caregivers",
            help="Also run the alert dispatcher and simulated caregivers (sim/caregivers.py), then print "
            "the service-level report.",
        ),
    ] = False,
    service_csv: Annotated[
        Path | None, typer.Option(help="With --caregivers: also write the service levels as CSV.")
    ] = None,
) -> None:
    """Run simulated wearer-days at full speed through the real pipeline into --db, then score them.

    Creates the organisation "Simulated days" (one wearer, OsmAnd device and home safe zone per
    bracelet) in a database that must not hold it yet. Prints the detection score.
    """
    from rich.progress import Progress

    from geosentinel.alerts.cli import print_report
    from geosentinel.alerts.service_levels import to_csv
    from geosentinel.sim.accelerated import ORG_NAME, detections, run_days
    from geosentinel.sim.fleet import incident_to_json
    from geosentinel.sim.scoring import score
    from geosentinel.sim.service_week import run_service_week

    store = _store(db)
    try:
        if store.org_by_name(ORG_NAME) is not None:
            raise _fail(f"{db} already holds the organisation {ORG_NAME!r}: use a fresh database")
        with Progress(transient=True) as progress:
            task = progress.add_task(f"{wearers} wearers x {days:g} days", total=1.0)

            def advance(done: float) -> None:
                progress.update(task, completed=done)

            week = None
            if caregivers:
                week = asyncio.run(run_service_week(store, wearers, days, seed, progress=advance))
                result = week.days
            else:
                result = asyncio.run(run_days(store, wearers, days, seed, progress=advance))
        with truth.open("w") as out:
            for incident in result.incidents:
                out.write(json.dumps(incident_to_json(incident)) + "\n")
        org_id = _org_id(store, ORG_NAME)
        report = score(result.incidents, detections(store, org_id), result.wearer_days, end=result.end)
    finally:
        store.close()
    typer.echo(f"{result.readings} readings, {result.wearer_days:g} wearer-days; truth in {truth}")
    typer.echo(report.to_text())
    if week is not None:
        typer.echo(
            f"{week.notifications} notifications handed over, {week.caregiver_changes} changes by people"
        )
        print_report(week.report)
        if service_csv is not None:
            service_csv.write_text(to_csv(week.report))
    if report_json is not None:
        body = report.to_json() | {
            "run": {"wearers": wearers, "days": days, "seed": seed, "readings": result.readings}
        }
        report_json.write_text(json.dumps(body, indent=2) + "\n")
    typer.echo(
        f"re-score: geosentinel score --truth {shlex.quote(str(truth))} --db {shlex.quote(db)} "
        f"--org {shlex.quote(ORG_NAME)} "
        f"--wearer-days {result.wearer_days:g} --end {result.end.isoformat()}"
    )


@app.command("score")
def score_command(
    truth: Annotated[Path, typer.Option(help="Ground-truth JSON-lines log written by the simulator.")],
    org: Annotated[
        str | None, typer.Option("--org", help="Organisation (default: wherever the truth's devices are).")
    ] = None,
    wearer_days: Annotated[
        float | None, typer.Option(help="Observed wearer-days (default: devices x span of the truth log).")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(help="End of the observed run (UTC); later incidents are not scored.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Compare the alerts the service raised with the simulator's truth log (recall, false alerts)."""
    from geosentinel.sim.accelerated import detections
    from geosentinel.sim.scoring import score

    try:
        incidents = [json.loads(line) for line in truth.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the truth log {truth}: {exc}") from exc
    if not incidents:
        raise _fail(f"the truth log {truth} is empty")
    if wearer_days is None:
        times = sorted(datetime.fromisoformat(i["time"]) for i in incidents)
        devices = len({i["unique_id"] for i in incidents})
        wearer_days = max(devices * (times[-1] - times[0]).total_seconds() / 86_400, 1e-9)
    end_utc = None if end is None else (end if end.tzinfo else end.replace(tzinfo=UTC))
    store = _store(db)
    try:
        unique_ids = {i["unique_id"] for i in incidents}
        if org is not None:
            org_ids = {_org_id(store, org)}
        else:
            org_ids = {d.org_id for d in store.devices_by_unique_ids(sorted(unique_ids)).values()}
            if not org_ids:
                raise _fail(f"none of the truth log's devices is registered in {db}")
        found = [d for o in sorted(org_ids) for d in detections(store, o) if d.unique_id in unique_ids]
        report = score(incidents, found, wearer_days, end=end_utc)
    finally:
        store.close()
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.to_text())
    if not report.passed():
        raise typer.Exit(code=2)


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its SQLite file.")] = Path("var"),
    devices: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    host: str = "127.0.0.1",
    http_port: int = 8000,
    osmand_port: int = 5055,
) -> None:
    """Seed a demo organisation and run the service with a simulated fleet (SQLite under DATA_DIR)."""
    from geosentinel.app import run
    from geosentinel.demo import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(run_demo(data_dir, devices, host, http_port, osmand_port))


def main() -> None:
    app()
