"""Read a folder with the UMAFall layout: ``trials.csv``, ``subjects.csv``, ``signals/Subject_XX.csv.gz``.

Only the **wrist** node is kept (the product is a bracelet). Each subject file is long format, one row per
sample (``trial_id, position, sensor, t_ms, x, y, z``); accelerometer and gyroscope are separate streams
with their own timestamps, so each is kept with its own time base and aligned later by the resampler.
Subjects without falls (the older volunteers did ADL only) load like any other. A trial listed in
``trials.csv`` without wrist accelerometer samples is skipped and reported in :attr:`Dataset.skipped`.
"""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

POSITION = "wrist"
MIN_SAMPLES = 10  # fewer wrist samples than this is not a recording


class DatasetError(ValueError):
    """The folder does not have the UMAFall layout (missing table, missing column)."""


@dataclass(frozen=True, slots=True)
class Stream:
    """One sensor stream: times in seconds from the start of the recording, n×3 values."""

    t_s: NDArray[np.float64]
    xyz: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Trial:
    trial_id: str
    subject: str
    is_fall: bool
    activity: str
    accel_g: Stream
    gyro_dps: Stream | None  # None when the trial has no wrist gyroscope samples

    @property
    def duration_s(self) -> float:
        return float(self.accel_g.t_s[-1] - self.accel_g.t_s[0])

    @property
    def peak_g(self) -> float:
        """The largest raw |a| of the trial (what a plain threshold detector looks at)."""
        return float(np.sqrt((self.accel_g.xyz**2).sum(axis=1)).max())


@dataclass(frozen=True, slots=True)
class Dataset:
    trials: tuple[Trial, ...]
    skipped: tuple[str, ...]  # trial ids listed but without usable wrist accelerometer data

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted({t.subject for t in self.trials}))


_TRIAL_COLUMNS = {"trial_id", "subject", "is_fall", "activity"}


def load(folder: Path, subjects: set[str] | None = None) -> Dataset:
    """Every wrist trial of the folder (optionally only those of ``subjects``), in ``trials.csv`` order."""
    table = folder / "trials.csv"
    if not table.is_file():
        raise DatasetError(f"{folder} has no trials.csv (not a UMAFall-layout folder)")
    with table.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = _TRIAL_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{table} lacks the columns {sorted(missing)}")
        rows = [r for r in reader if subjects is None or r["subject"] in subjects]
    samples: dict[str, dict[str, list[tuple[float, float, float, float]]]] = {}
    for subject in sorted({r["subject"] for r in rows}):
        samples.update(_read_subject(folder / "signals" / f"{subject}.csv.gz"))
    trials: list[Trial] = []
    skipped: list[str] = []
    for row in rows:
        streams = samples.get(row["trial_id"], {})
        accel = _stream(streams.get("acc", []))
        if accel is None:
            skipped.append(row["trial_id"])
            continue
        is_fall = row["is_fall"].strip() == "1"
        gyro = _stream(streams.get("gyro", []))
        trials.append(Trial(row["trial_id"], row["subject"], is_fall, row["activity"], accel, gyro))
    return Dataset(tuple(trials), tuple(skipped))


def _read_subject(path: Path) -> dict[str, dict[str, list[tuple[float, float, float, float]]]]:
    """Wrist samples of one subject file, by trial then sensor (``acc``/``gyro``)."""
    if not path.is_file():
        raise DatasetError(f"missing signal file {path}")
    by_trial: dict[str, dict[str, list[tuple[float, float, float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if header[:7] != ["trial_id", "position", "sensor", "t_ms", "x", "y", "z"]:
            raise DatasetError(f"{path}: unexpected header {header}")
        for trial_id, position, sensor, t_ms, x, y, z in reader:
            if position == POSITION:
                by_trial[trial_id][sensor].append((float(t_ms) / 1000.0, float(x), float(y), float(z)))
    return by_trial


def _stream(rows: list[tuple[float, float, float, float]]) -> Stream | None:
    if len(rows) < MIN_SAMPLES:
        return None
    values = np.asarray(rows, dtype=np.float64)
    values = values[np.argsort(values[:, 0], kind="stable")]  # timestamps are jittery, sometimes unordered
    return Stream(values[:, 0] - values[0, 0], values[:, 1:4])
