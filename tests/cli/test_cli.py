"""The CLI as the probes and operators use it: separate processes, the documented output contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from geosentinel.store import Scope, open_store


def gs(*args: str, db: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "geosentinel", *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_provisioning_prints_ids_and_a_token_on_the_last_line(db: str) -> None:
    gs("org", "create", "Probe", "--region", "eu", "--timezone", "Europe/Paris", "--locale", "fr", db=db)
    gs("user", "create", "--org", "Probe", "--email", "p@example.org", "--password", "Correct-Horse-9",
       "--role", "admin", db=db)  # fmt: skip
    wearer_id = gs("wearer", "add", "--org", "Probe", "--name", "Jeanne", db=db).stdout.splitlines()[-1]
    gs("device", "add", "--org", "Probe", "--wearer", wearer_id, "--unique-id", "861001000719969",
       "--protocol", "osmand", db=db)  # fmt: skip
    token = gs("token", "create", "--email", "p@example.org", db=db).stdout.splitlines()[-1]
    assert token.startswith("gs_") and len(token) > 40
    store = open_store(db)
    try:
        org = store.org_by_name("Probe")
        assert org is not None and org.timezone == "Europe/Paris"
        assert [w.name for w in store.wearers(Scope(org.id))] == ["Jeanne"]
        device = store.device_by_unique_id("861001000719969")
        assert device is not None and device.wearer_id == wearer_id
        found = store.user_by_email("p@example.org")
        assert found is not None and found[1].startswith("$argon2")  # never the password itself
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("org", "create", "X", "--timezone", "Mars/Olympus"), "unknown time zone"),
        (("org", "create", "X", "--region", "us"), "region"),
        (("wearer", "add", "--org", "Nobody", "--name", "N"), "no organisation named 'Nobody'"),
        (("user", "create", "--org", "Nobody", "--email", "a@b.c", "--password", "short"), "at least 10"),
        (
            ("device", "add", "--org", "Nobody", "--unique-id", "1", "--protocol", "carrier-pigeon"),
            "protocol",
        ),
        (("token", "create", "--email", "nobody@example.org"), "no user"),
    ],
)
def test_mistakes_get_a_clear_error_and_a_non_zero_exit(db: str, args: tuple[str, ...], says: str) -> None:
    result = gs(*args, db=db, ok=False)
    assert result.returncode != 0
    assert says in result.stderr


def test_duplicates_are_refused_with_a_message(db: str) -> None:
    gs("org", "create", "Probe", db=db)
    again = gs("org", "create", "Probe", db=db, ok=False)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_decode_prints_json_lines_with_the_documented_fields(db: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "geosentinel", "decode", "--protocol", "osmand",
         "/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=10&alarm=sos"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    import json

    (message,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert message["device_id"] == "123456" and message["time"] == "2013-08-22T13:14:27Z"
    assert message["latitude"] == 60.0 and message["speed_kmh"] == pytest.approx(18.52)
    assert message["alarms"] == ["sos"]


def _org_and_wearer(db: str) -> str:
    gs("org", "create", "Probe", "--region", "eu", "--timezone", "Europe/Paris", "--locale", "fr", db=db)
    return gs("wearer", "add", "--org", "Probe", "--name", "Jeanne", db=db).stdout.splitlines()[-1]


def test_geofence_add_circle_polygon_and_corridor(db: str, tmp_path: Path) -> None:
    wearer_id = _org_and_wearer(db)
    home = gs("geofence", "add", "--org", "Probe", "--wearer", wearer_id, "--name", "Home", "--kind", "safe",
              "--circle", "43.2965,5.3698,200", "--schedule", "21:00-07:00", db=db)  # fmt: skip
    park = tmp_path / "park.geojson"
    ring = [[5.37, 43.29], [5.38, 43.29], [5.38, 43.30], [5.37, 43.30], [5.37, 43.29]]
    park.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    gs(
        "geofence",
        "add",
        "--org",
        "Probe",
        "--name",
        "Park",
        "--kind",
        "danger",
        "--geojson",
        str(park),
        db=db,
    )
    canal = tmp_path / "canal.geojson"
    canal.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": {
        "type": "LineString", "coordinates": [[5.36, 43.29], [5.37, 43.30]]}}))  # fmt: skip
    gs("geofence", "add", "--org", "Probe", "--name", "Canal", "--kind", "danger", "--geojson", str(canal),
       "--width", "30", db=db)  # fmt: skip
    listed = json.loads(gs("geofence", "list", "--org", "Probe", db=db).stdout)
    by_name = {f["properties"]["name"]: f for f in listed["features"]}
    assert by_name["Home"]["id"] == home.stdout.splitlines()[-1]
    assert by_name["Home"]["properties"]["radius_m"] == 200
    assert by_name["Home"]["properties"]["schedule"][0]["start"] == "21:00"
    assert by_name["Park"]["properties"]["wearer_id"] is None  # organisation-wide
    assert by_name["Canal"]["properties"]["width_m"] == 30


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--circle", "43.2965,5.3698"), "--circle must be LAT,LON,RADIUS_M"),
        (("--circle", "43.2965,5.3698,-5"), "radius"),
        (("--circle", "93.2965,5.3698,50"), "latitude"),
        ((), "exactly one of --circle"),
        (("--circle", "43.2965,5.3698,50", "--schedule", "25:00-07:00"), "schedule"),
        (("--circle", "43.2965,5.3698,50", "--kind", "maybe"), "--kind must be safe or danger"),
    ],
)
def test_geofence_add_refuses_bad_shapes(db: str, args: tuple[str, ...], says: str) -> None:
    _org_and_wearer(db)
    result = gs("geofence", "add", "--org", "Probe", "--name", "X", *args, db=db, ok=False)
    assert result.returncode == 1
    assert says in result.stderr, result.stderr


def test_wearer_settings_show_change_and_reset(db: str) -> None:
    wearer_id = _org_and_wearer(db)
    base = ("wearer", "settings", "--org", "Probe", "--wearer", wearer_id)
    shown = json.loads(gs(*base, db=db).stdout)
    assert shown["overrides"] == {} and shown["settings"]["heart_rate_max_bpm"] == 120.0
    changed = json.loads(
        gs(*base, "--set", "heart_rate_max_bpm=110", "--set", "day_start=07:30", db=db).stdout
    )
    assert changed["overrides"] == {"heart_rate_max_bpm": 110, "day_start": "07:30"}
    assert changed["settings"]["day_start"] == "07:30"
    refused = gs(*base, "--set", "heart_rate_max_bpm=fast", db=db, ok=False)
    assert refused.returncode == 1 and "must be a number" in refused.stderr
    assert json.loads(gs(*base, "--reset", db=db).stdout)["overrides"] == {}


def test_alerts_contacts_and_policies_from_the_terminal(db: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from geosentinel.alerts.engine import OPENS_ALERT
    from geosentinel.model import Event, EventKind
    from geosentinel.store.base import IngestBatch

    gs("org", "create", "Care", "--region", "eu", "--timezone", "Europe/Paris", "--locale", "fr", db=db)
    wearer_id = gs("wearer", "add", "--org", "Care", "--name", "Jeanne", db=db).stdout.splitlines()[-1]
    gs(
        "device",
        "add",
        "--org",
        "Care",
        "--wearer",
        wearer_id,
        "--unique-id",
        "42",
        "--protocol",
        "osmand",
        db=db,
    )
    contact_id = gs("contact", "add", "--org", "Care", "--name", "Nurse", "--url", "json://user:s3cret@h/x",
                    "--url", "mailto://127.0.0.1:25?to=a@example.org", db=db).stdout.strip()  # fmt: skip
    listed = gs("contact", "list", "--org", "Care", db=db).stdout
    assert contact_id in listed and "s3cret" not in listed
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"steps": [{"contacts": [contact_id]}]}))
    policy_id = gs("policy", "add", "--org", "Care", "--name", "Day", "--file", str(policy), "--default",
                   db=db).stdout.strip()  # fmt: skip
    gs("policy", "assign", "--org", "Care", "--wearer", wearer_id, "--policy", policy_id, db=db)
    policy.write_text(json.dumps({"steps": [{"contacts": ["nobody"]}]}))
    refused = gs("policy", "add", "--org", "Care", "--name", "Bad", "--file", str(policy), db=db, ok=False)
    assert refused.returncode == 1 and "unknown contacts: nobody" in refused.stderr

    store = open_store(db)
    try:
        device = store.device_by_unique_id("42")
        assert device is not None
        now = datetime.now(UTC)
        sos = Event(device.org_id, wearer_id, device.id, EventKind.SOS, now, now, 43.3, 5.4)
        store.ingest_now(IngestBatch([], [sos], [], OPENS_ALERT))
    finally:
        store.close()
    (alert,) = json.loads(gs("alerts", "list", "--org", "Care", "--json", db=db).stdout)
    assert alert["status"] == "open"
    assert gs("alerts", "ack", alert["id"], "--org", "Care", "--by", "marie", "--note", "j'y vais",
              db=db).stdout.split() == [alert["id"], "acknowledged"]  # fmt: skip
    again = gs("alerts", "ack", alert["id"], "--org", "Care", "--by", "marie", db=db, ok=False)
    assert again.returncode == 1 and "cannot acknowledge an alert that is acknowledged" in again.stderr
    gs("alerts", "resolve", alert["id"], "--org", "Care", "--by", "marie", "--outcome", "false_alarm", db=db)
    timeline = json.loads(gs("alerts", "timeline", alert["id"], "--org", "Care", db=db).stdout)
    assert [(t["action"], t["actor"], t["note"]) for t in timeline["transitions"]] == [
        ("open", "system", None), ("acknowledge", "cli:marie", "j'y vais"), ("resolve", "cli:marie", None)
    ]  # fmt: skip


def test_retention_is_set_per_organisation_and_purge_reports_what_it_deleted(db: str) -> None:
    gs("org", "create", "Keeper", db=db)
    assert gs("org", "retention", "Keeper", "--days", "30", db=db).stdout.strip() == "Keeper: 30 days"
    assert gs("org", "retention", "Keeper", "--days", "0", db=db, ok=False).returncode != 0
    assert gs("org", "retention", "Nobody", "--days", "30", db=db, ok=False).returncode != 0
    assert gs("purge", db=db).stdout.strip() == "nothing to purge"
