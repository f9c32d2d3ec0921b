"""`geosentinel simulate` drives bracelets against a running service over the network."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from geosentinel.sim.fleet import demo_unique_ids
from geosentinel.store import open_store
from geosentinel.testing import ServiceProcess, add_devices, provision

pytestmark = pytest.mark.e2e


def test_simulated_bracelets_are_stored(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gs.db'}"
    tenant = provision(db, "Sim", "700000000000000", "s@example.org")
    add_devices(db, tenant.org_id, demo_unique_ids(3))
    service = ServiceProcess(db, tmp_path / "serve.log").start()
    truth = tmp_path / "truth.jsonl"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "geosentinel", "simulate", "--osmand-url", service.osmand,
             "--devices", "3", "--interval", "1", "--duration", "4", "--seed", "3", "--truth", str(truth)],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
    finally:
        service.stop()
    match = re.search(r"sent (\d+), stored (\d+), failed (\d+), rejected (\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    sent, stored, failed, rejected = map(int, match.groups())
    assert sent >= 9 and stored == sent and failed == rejected == 0
    store = open_store(db)
    try:
        assert store.count_readings() == stored
    finally:
        store.close()
    for line in truth.read_text().splitlines():  # every incident line is valid JSON with its keys
        incident = json.loads(line)
        assert {"time", "unique_id", "kind"} <= incident.keys()
