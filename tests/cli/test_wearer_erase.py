"""``geosentinel wearer erase``: asks first (unless ``--yes``), then erases and says what went."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from geosentinel.store import Scope, open_store


def gs(*args: str, db: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "geosentinel", *args, "--db", db],
        capture_output=True, text=True, timeout=60, check=False, input=stdin,
    )  # fmt: skip


def test_erase_asks_then_erases_the_wearer_and_their_device(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert gs("org", "create", "Probe", db=db).returncode == 0
    wearer_id = gs("wearer", "add", "--org", "Probe", "--name", "Jeanne", db=db).stdout.splitlines()[-1]
    added = gs("device", "add", "--org", "Probe", "--wearer", wearer_id, "--unique-id", "861001000719969",
               "--protocol", "osmand", db=db)  # fmt: skip
    assert added.returncode == 0, added.stderr
    base = ("wearer", "erase", "--org", "Probe", "--wearer", wearer_id)

    declined = gs(*base, db=db, stdin="n\n")
    assert declined.returncode == 1 and "Jeanne" in declined.stdout  # asked, by name; nothing done
    erased = gs(*base, "--yes", db=db)
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.strip() == "erased: devices 1, wearers 1"
    again = gs(*base, "--yes", db=db)
    assert again.returncode == 1 and f"no wearer {wearer_id} in 'Probe'" in again.stderr

    store = open_store(db)
    try:
        org = store.org_by_name("Probe")
        assert org is not None and store.wearers(Scope(org.id)) == []
        assert store.device_by_unique_id("861001000719969") is None
        (erasure,) = store.audit_entries(Scope(org.id))
        assert erasure.action == "erase" and erasure.actor.startswith("cli:") and erasure.wearer_ids == []
    finally:
        store.close()
