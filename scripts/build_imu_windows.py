"""Build the motion windows the simulator replays: real wrist recordings from UMAFall.

Dev-time tool: the product never reads ``../shared`` at run time, it reads the file this script writes.

Usage (from the repository root)::

    .venv/bin/python scripts/build_imu_windows.py \
        ../shared/data/falls/umafall src/geosentinel/sim/data/imu_windows.json.gz

For every activity (falls and daily activities alike), the first trial of each of the first
``--per-activity`` subjects (in subject order) that recorded it: the wrist accelerometer and gyroscope
from 4 s before to 6 s after the trial's peak |a| (cut to the recording), with the samples' own times
(jittery, about 20 Hz: the simulator sends them as a device would). No selection by what any classifier
makes of them.

Output: gzipped JSON ``{"attribution": ..., "windows": [{"trial", "activity", "is_fall", "accel_t_ms",
"accel_g", "gyro_t_ms", "gyro_dps"}, ...]}``, times in ms from the window's first sample, values rounded
to 1e-3.

Source: UMAFall (E. Casilari, J. A. Santoyo-Ramón, J. M. Cano-García, Universidad de Málaga,
doi:10.6084/m9.figshare.4214283), CC BY 4.0: keep the attribution field.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
from collections import defaultdict
from pathlib import Path

ATTRIBUTION = (
    "UMAFall: E. Casilari, J. A. Santoyo-Ramón, J. M. Cano-García, Universidad de Málaga, "
    "doi:10.6084/m9.figshare.4214283, CC BY 4.0 (wrist sensor, cut around each trial's peak)"
)
Streams = dict[tuple[str, str], list[tuple[float, float, float, float]]]  # (trial, sensor) -> (t_ms, x, y, z)
BEFORE_MS = 4000
AFTER_MS = 6000


def read_streams(path: Path) -> Streams:
    streams: Streams = defaultdict(list)
    with gzip.open(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["position"] == "wrist":
                sample = (float(row["t_ms"]), float(row["x"]), float(row["y"]), float(row["z"]))
                streams[row["trial_id"], row["sensor"]].append(sample)
    return {key: sorted(rows) for key, rows in streams.items()}


def cut(trial: str, activity: str, is_fall: bool, streams: Streams) -> dict[str, object] | None:
    accel = streams.get((trial, "acc"), [])
    if len(accel) < 40:
        return None
    peak_t = max(accel, key=lambda s: math.hypot(s[1], s[2], s[3]))[0]
    start, end = peak_t - BEFORE_MS, peak_t + AFTER_MS
    accel = [s for s in accel if start <= s[0] <= end]
    gyro = [s for s in streams.get((trial, "gyro"), []) if start <= s[0] <= end]
    origin = accel[0][0]
    return {
        "trial": trial,
        "activity": activity,
        "is_fall": is_fall,
        "accel_t_ms": [round(s[0] - origin) for s in accel],
        "accel_g": [[round(v, 3) for v in s[1:]] for s in accel],
        "gyro_t_ms": [round(s[0] - origin) for s in gyro],
        "gyro_dps": [[round(v, 2) for v in s[1:]] for s in gyro],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("umafall", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-activity", type=int, default=3)
    args = parser.parse_args()
    with (args.umafall / "trials.csv").open(newline="") as handle:
        trials = sorted(csv.DictReader(handle), key=lambda t: (t["subject"], t["trial_id"]))
    chosen: dict[str, list[dict[str, str]]] = defaultdict(list)
    for trial in trials:
        picked = chosen[trial["activity"]]
        if len(picked) < args.per_activity and all(t["subject"] != trial["subject"] for t in picked):
            picked.append(trial)
    by_subject: dict[str, list[dict[str, str]]] = defaultdict(list)
    for picked in chosen.values():
        for trial in picked:
            by_subject[trial["subject"]].append(trial)
    windows = []
    for subject, subject_trials in sorted(by_subject.items()):
        streams = read_streams(args.umafall / "signals" / f"{subject}.csv.gz")
        for trial in subject_trials:
            window = cut(trial["trial_id"], trial["activity"], trial["is_fall"] == "1", streams)
            if window is not None:
                windows.append(window)
    windows.sort(key=lambda w: (str(w["activity"]), str(w["trial"])))
    payload = {"attribution": ATTRIBUTION, "windows": windows}
    args.out.write_bytes(gzip.compress(json.dumps(payload, separators=(",", ":")).encode(), mtime=0))
    print(f"{len(windows)} windows, {args.out.stat().st_size:,} bytes -> {args.out}")


if __name__ == "__main__":
    main()
