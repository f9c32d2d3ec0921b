"""Fall classifier: model load time and per-window scoring time over real UMAFall wrist windows.

Each window is what a bracelet would send around a candidate impact (2.5 s before, 5 s after, with the
gyroscope), cut from every UMAFall trial; the shipped model scores each one through
``FallModel.score_window`` (resampling, candidates, features, model), as the server does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import sklearn  # type: ignore[import-untyped]

from geosentinel.falls import umafall
from geosentinel.falls.classifier import FallModel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "falls" / "umafall"
BEFORE_S, AFTER_S = 2.5, 5.0
# In a fresh interpreter, as the service starts: importing the classifier (numpy; no scikit-learn), then
# loading the shipped model file.
LOAD_SNIPPET = """
import time
started = time.perf_counter()
from geosentinel.falls.classifier import FallModel
imported = time.perf_counter()
FallModel.load()
print(imported - started, time.perf_counter() - imported)
"""


def windows(dataset: umafall.Dataset, count: int) -> list[tuple[np.ndarray, ...]]:
    """Windows around every |a| peak above 1.8 g of every trial (about 1.5 per trial), cycled to ``count``."""
    found = []
    for trial in dataset.trials:
        t, accel, gyro = trial.accel_g.t_s, trial.accel_g.xyz, trial.gyro_dps
        magnitude = np.linalg.norm(accel, axis=1)
        for peak in t[(magnitude > 1.8) & (magnitude == np.maximum.accumulate(magnitude))][:3]:
            keep = (t >= peak - BEFORE_S) & (t <= peak + AFTER_S)
            if gyro is None:
                continue
            gkeep = (gyro.t_s >= peak - BEFORE_S) & (gyro.t_s <= peak + AFTER_S)
            found.append((t[keep], accel[keep], gyro.t_s[gkeep], gyro.xyz[gkeep]))
    return [found[i % len(found)] for i in range(count)]


def load_times(runs: int) -> tuple[list[float], list[float]]:
    """(import seconds, load seconds) of each run, each in a fresh interpreter."""
    imports, loads = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET], capture_output=True, text=True, check=True)
        imported, loaded = (float(v) for v in out.stdout.split())
        imports.append(imported)
        loads.append(loaded)
    return imports, loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--windows", type=int, default=3000)
    parser.add_argument("--load-runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    imports, loads = load_times(args.load_runs)
    model = FallModel.load()
    dataset = umafall.load(args.data)
    sample = windows(dataset, args.windows)
    for window in sample[:50]:  # warm-up
        model.score_window(*window)
    timings, errors, fired = [], 0, 0
    for window in sample:
        started = time.perf_counter()
        try:
            fired += model.score_window(*window).is_fall
        except ValueError:
            errors += 1
        timings.append(time.perf_counter() - started)
    timings.sort()
    shipped = Path(__file__).resolve().parents[1] / "src/geosentinel/falls/data/fall_model.npz"
    result = {
        "model_bytes": shipped.stat().st_size,
        "import_s_median": round(statistics.median(imports), 3),  # the classifier's modules, once per process
        "load_s_runs": [round(v, 4) for v in loads],
        "load_s_median": round(statistics.median(loads), 4),  # the model file, libraries already imported
        "windows": len(sample),
        "distinct_windows": len({id(w) for w in sample}),  # real windows, repeated up to the count
        "window_s": BEFORE_S + AFTER_S,
        "score_ms_median": round(1000 * statistics.median(timings), 3),
        "score_ms_p99": round(1000 * timings[int(0.99 * (len(timings) - 1))], 3),
        "score_ms_max": round(1000 * timings[-1], 3),
        "refused_windows": errors,
        "fired_windows": fired,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
