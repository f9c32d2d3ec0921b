"""The shared UMAFall extract, and small UMAFall-layout folders cut from it."""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from geosentinel.falls import umafall

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [
    Path(os.environ.get("GEOSENTINEL_UMAFALL", "/nonexistent")),
    ROOT.parent / "shared" / "data" / "falls" / "umafall",  # ../shared beside the checkout
]


def umafall_dir() -> Path | None:
    return next((p for p in CANDIDATES if (p / "trials.csv").is_file()), None)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    found = umafall_dir()
    if found is None:
        pytest.skip(f"the UMAFall extract is not here (looked in {[str(p) for p in CANDIDATES]})")
    return found


@pytest.fixture(scope="session")
def dataset(data_dir: Path) -> umafall.Dataset:
    """Three subjects: two who fell, one older volunteer with ADL only."""
    return umafall.load(data_dir, {"Subject_08", "Subject_16", "Subject_01"})


def trial(dataset: umafall.Dataset, trial_id: str) -> umafall.Trial:
    return next(t for t in dataset.trials if t.trial_id == trial_id)


SubsetMaker = Callable[[Sequence[str], int | None], Path]


@pytest.fixture
def umafall_subset(data_dir: Path, tmp_path: Path) -> SubsetMaker:
    """``make(subjects, trials_per_subject)``: a UMAFall-layout folder in tmp_path with those subjects
    (at most that many trials each, falls and ADL alternating as listed)."""

    def make(subjects: Sequence[str], per_subject: int | None) -> Path:
        folder = tmp_path / "umafall-subset"
        (folder / "signals").mkdir(parents=True)
        with (data_dir / "trials.csv").open(newline="") as handle:
            reader = csv.DictReader(handle)
            fields = list(reader.fieldnames or [])
            rows = [r for r in reader if r["subject"] in subjects]
        kept: list[dict[str, str]] = []
        for subject in subjects:
            mine = [r for r in rows if r["subject"] == subject]
            falls, adl = [r for r in mine if r["is_fall"] == "1"], [r for r in mine if r["is_fall"] == "0"]
            mixed = (
                [r for pair in zip(falls, adl, strict=False) for r in pair]
                + falls[len(adl) :]
                + adl[len(falls) :]
            )
            kept += mixed[:per_subject] if per_subject else mixed
        with (folder / "trials.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fields)
            writer.writeheader()
            writer.writerows(kept)
        (folder / "subjects.csv").write_text((data_dir / "subjects.csv").read_text())
        ids = {r["trial_id"] for r in kept}
        for subject in subjects:
            with gzip.open(data_dir / "signals" / f"{subject}.csv.gz", "rt") as src:
                lines = [line for n, line in enumerate(src) if n == 0 or line.split(",", 1)[0] in ids]
            with gzip.open(folder / "signals" / f"{subject}.csv.gz", "wt") as dst:
                dst.writelines(lines)
        return folder

    return make
