"""The CLI as the probes and operators use it: separate processes, the documented output contract."""

from __future__ import annotations

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
