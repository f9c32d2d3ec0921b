"""Geofence throughput: fixes/s through the fence index and the geofence detector, on one core.

Method
------
A synthetic Marseille/Aix area (lat 43.20–43.60, lon 5.30–5.50, about 44 × 16 km) holds ``--fences``
fences (default 100,000) for 30,000 wearers in 30 organisations, placed with a fixed seed so that runs
are comparable. Every wearer has a home (a safe circle of 100–200 m); the other fences, around homes,
are a neighbourhood (a safe circle or 6–12-vertex polygon of 1–2.5 km), a danger spot (a circle or
polygon of 40–300 m: a crossing, a canal bank) or a corridor (the morning walk to the day centre: a safe
3–6-vertex line, 40–80 m wide, watched on weekdays 08:30–09:30; or a main road, a danger corridor);
2 % are org-wide danger zones (ponds, quarries, motorways) anywhere in the area. The mix comes out at
about 60 % circles, 30 % polygons and 10 % corridors, 57 % safe and 43 % danger.

``--fixes`` readings (default 200,000, 150 ms apart: 8 hours from 09:00 local time) come from one
bracelet per wearer, drawn at random: 85 % within ~30 m of home, 15 % wandering ~1.5 km away; 80 % GPS
(5–15 m), 15 % Wi-Fi (60 m), 5 % cell (800 m). They are built before timing: the pipeline has them.

Timed, in this one process (one core): building the index (``build_s``); then, per run, the whole
stream in batches of ``--batch`` readings (2,000, as the pipeline's batches) doing what the pipeline does
per batch: one ``geofence_batch`` call, from the readings and their devices' states to the devices' new
states and the readings' events (states start empty each run). Inside it: the good fixes' positions and
uncertainties, the fence index's (fix, fence) pairs and signed distances (``FenceIndex.measure``), and
the hysteresis detector. ``relations_only_per_s`` is one ``FixQuery`` per reading and one
``FenceIndex.relations`` call per batch, without the detector. With ``--reference``, also the
reading-by-reading path the batch call replaces (``relations`` per batch, then ``geofence_step`` per
reading; ``reference_per_s``), and a check that both raise as many events. Figures are fixes per second,
the median over ``--runs`` runs, by wall clock and by this process's CPU time (``*_per_cpu_s``: less
disturbed when other work shares the cores). As in the service once serving (``app.py``), long-lived
objects are frozen out of the garbage collector and young collections run every 50,000 allocations.

    .venv/bin/python bench/geofence.py --fences 100000 --fixes 200000 --runs 5 --out var/bench/geofence.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geosentinel.detect.base import WearerProfile
from geosentinel.detect.fences import METRES_PER_DEGREE, Fence, FenceIndex, FixQuery, Relation
from geosentinel.detect.geofence import GeofenceState, geofence_batch, geofence_step
from geosentinel.detect.schedule import Schedule, Window
from geosentinel.model import Device, DeviceMessage, Reading

LAT = (43.20, 43.60)
LON = (5.30, 5.50)
WEARERS = 30_000
ORGS = 30
ORG_WIDE_SHARE = 0.02
START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / METRES_PER_DEGREE, lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat)))


def random_place(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(*LAT), rng.uniform(*LON)


Shape = tuple[dict[str, Any], float | None, float | None]  # geometry, radius_m, width_m


def circle(rng: random.Random, lat: float, lon: float, size: tuple[float, float]) -> Shape:
    return {"type": "Point", "coordinates": [lon, lat]}, rng.uniform(*size), None


def polygon(rng: random.Random, lat: float, lon: float, size: tuple[float, float]) -> Shape:
    # A star-shaped ring (angles in order, radii jittered): always a valid simple polygon.
    count = rng.randint(6, 12)
    radius = rng.uniform(*size)
    ring = []
    for k in range(count):
        angle = 2 * math.pi * k / count
        r = radius * rng.uniform(0.6, 1.0)
        plat, plon = offset(lat, lon, r * math.sin(angle), r * math.cos(angle))
        ring.append([plon, plat])
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}, None, None


def corridor(rng: random.Random, lat: float, lon: float, width: tuple[float, float]) -> Shape:
    heading = rng.uniform(0, 2 * math.pi)
    line = [[lon, lat]]
    for _ in range(rng.randint(2, 5)):
        heading += rng.uniform(-0.8, 0.8)
        step = rng.uniform(200, 600)
        lat, lon = offset(lat, lon, step * math.sin(heading), step * math.cos(heading))
        line.append([lon, lat])
    return {"type": "LineString", "coordinates": line}, None, rng.uniform(*width)


# The walk to the day centre is only watched when it happens (weekdays, 08:30–09:30 local time).
MORNING_WALK = Schedule((Window((0, 1, 2, 3, 4), "08:30", "09:30"),))


def org_wide_zone(rng: random.Random) -> tuple[str, Shape]:
    """A pond, a quarry (danger areas) or a motorway (a danger corridor), anywhere in the area."""
    lat, lon = random_place(rng)
    pick = rng.random()
    if pick < 0.5:
        return "danger", circle(rng, lat, lon, (30, 300))
    if pick < 0.8:
        return "danger", polygon(rng, lat, lon, (50, 400))
    return "danger", corridor(rng, lat, lon, (40, 120))


def wearer_fence(rng: random.Random, home: tuple[float, float]) -> tuple[str, Shape, Schedule | None]:
    """One more fence of a wearer: their neighbourhood (safe), a danger spot near home, or a route."""
    pick = rng.random()
    if pick < 0.30:  # the neighbourhood: a large safe zone around home
        lat, lon = offset(*home, rng.gauss(0, 150), rng.gauss(0, 150))
        shape = circle if rng.random() < 0.5 else polygon
        return "safe", shape(rng, lat, lon, (1000, 2500)), None
    if pick < 0.85:  # a busy crossing, a canal bank, a building site
        lat, lon = offset(*home, rng.gauss(0, 900), rng.gauss(0, 900))
        shape = circle if rng.random() < 0.5 else polygon
        return "danger", shape(rng, lat, lon, (40, 300)), None
    if rng.random() < 0.67:  # the route to the day centre, from home
        return "safe", corridor(rng, *home, (40, 80)), MORNING_WALK
    lat, lon = offset(*home, rng.gauss(0, 900), rng.gauss(0, 900))
    return "danger", corridor(rng, lat, lon, (20, 60)), None  # a main road


def make_fences(count: int, rng: random.Random) -> tuple[list[Fence], list[tuple[float, float]]]:
    homes = [random_place(rng) for _ in range(WEARERS)]
    fences: list[Fence] = []
    for i in range(int(count * ORG_WIDE_SHARE)):
        kind, (geometry, radius, width) = org_wide_zone(rng)
        fences.append(Fence(f"z{i}", f"org-{i % ORGS}", None, f"Zone {i}", kind, geometry, radius, width))  # type: ignore[arg-type]
    # Every wearer's home (a safe circle) first, then more fences around homes, until the count.
    for i in range(count - len(fences)):
        w = i % WEARERS
        schedule = None
        if i < WEARERS:
            kind, (geometry, radius, width) = "safe", circle(rng, *homes[w], (100, 200))
        else:
            kind, (geometry, radius, width), schedule = wearer_fence(rng, homes[w])
        org, wearer = f"org-{w % ORGS}", f"w-{w}"
        fences.append(Fence(f"f{i}", org, wearer, f"Fence {i}", kind, geometry, radius, width, schedule))  # type: ignore[arg-type]
    return fences, homes


def make_readings(count: int, homes: Sequence[tuple[float, float]], rng: random.Random) -> list[Reading]:
    devices = [
        Device(f"d-{w}", f"org-{w % ORGS}", f"w-{w}", f"8600{w:011d}", "watch") for w in range(WEARERS)
    ]
    readings = []
    for i in range(count):
        w = rng.randrange(WEARERS)
        lat, lon = homes[w]
        spread = 60.0 if rng.random() < 0.85 else 3000.0
        lat, lon = offset(lat, lon, rng.gauss(0, spread / 2), rng.gauss(0, spread / 2))
        source = rng.random()
        if source < 0.80:
            accuracy, extras = rng.uniform(5, 15), {}
        elif source < 0.95:
            accuracy, extras = 60.0, {"source": "wifi"}
        else:
            accuracy, extras = 800.0, {"source": "cell"}
        t = START + timedelta(milliseconds=150 * i)  # 200,000 fixes over ~8 h, in time order
        device = devices[w]
        message = DeviceMessage(
            device.unique_id, "watch", time=t, latitude=lat, longitude=lon, accuracy_m=accuracy, extras=extras
        )
        readings.append(Reading(device, message, t, t + timedelta(seconds=2)))
    return readings


def queries(batch: Sequence[Reading]) -> list[FixQuery]:
    return [
        FixQuery(r.device.org_id, r.device.wearer_id, r.message.latitude, r.message.longitude)  # type: ignore[arg-type]
        for r in batch
    ]


@dataclass(frozen=True, slots=True)
class Timing:
    wall_s: float
    cpu_s: float  # this process's CPU time: less disturbed than wall time when the cores are shared


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_: object) -> None:
        self.timing = Timing(time.perf_counter() - self._wall, time.process_time() - self._cpu)


def run_full(
    index: FenceIndex, batches: Sequence[Sequence[Reading]], profile: WearerProfile
) -> tuple[Timing, int]:
    """One pass as the pipeline does it: per batch, one ``geofence_batch`` call from the readings and
    the devices' states to their new states and the readings' events."""
    states: dict[str, GeofenceState | None] = {}
    events = 0
    with Stopwatch() as watch:
        for batch in batches:
            updated, raised = geofence_batch(states, batch, index, lambda _: profile)
            states.update(updated)
            events += sum(map(len, raised))
    return watch.timing, events


def count_pairs(index: FenceIndex, batches: Sequence[Sequence[Reading]]) -> int:
    """How many (fix, fence) pairs the stream has (not timed)."""
    return sum(len(relations) for batch in batches for relations in index.relations(queries(batch)))


def run_reference(
    index: FenceIndex, batches: Sequence[Sequence[Reading]], profile: WearerProfile
) -> tuple[Timing, int]:
    """The same, one reading at a time: ``FenceIndex.relations`` per batch, then ``geofence_step``."""
    states: dict[str, GeofenceState] = {}
    events = 0
    with Stopwatch() as watch:
        for batch in batches:
            found = index.relations(queries(batch))
            for reading, relations in zip(batch, found, strict=True):
                device_id = reading.device.id
                state, raised = geofence_step(
                    states.get(device_id), reading, relations, reading.received_at, profile
                )
                states[device_id] = state
                events += len(raised)
    return watch.timing, events


def run_relations(index: FenceIndex, batches: Sequence[Sequence[Reading]]) -> Timing:
    found: list[list[Relation]] = []
    with Stopwatch() as watch:
        for batch in batches:
            found = index.relations(queries(batch))
    del found
    return watch.timing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fences", type=int, default=100_000)
    parser.add_argument("--fixes", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--reference", action="store_true", help="also time relations + geofence_step reading by reading"
    )
    args = parser.parse_args()

    rng = random.Random(args.seed)
    fences, homes = make_fences(args.fences, rng)
    readings = make_readings(args.fixes, homes, rng)
    batches = [readings[i : i + args.batch] for i in range(0, len(readings), args.batch)]
    shapes = Counter(fence.geometry["type"] for fence in fences)
    kinds = Counter(fence.kind for fence in fences)

    with Stopwatch() as watch:
        index = FenceIndex(fences)
    build = watch.timing
    assert not index.rejected, index.rejected[:3]
    print(f"{len(index):,} fences ({dict(shapes)}, {dict(kinds)}) indexed in {build.wall_s:.2f} s")
    # As the service once serving (app.py): long-lived objects out of the collector's reach, young
    # collections every 50,000 allocations.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

    profile = WearerProfile()
    pairs = count_pairs(index, batches)
    full: list[Timing] = []
    only: list[Timing] = []
    reference: list[Timing] = []
    for run in range(args.runs):
        timing, event_count = run_full(index, batches, profile)
        full.append(timing)
        only.append(run_relations(index, batches))
        line = (
            f"run {run + 1}: {len(readings) / timing.wall_s:,.0f} fixes/s (geofence_batch),"
            f" {len(readings) / only[-1].wall_s:,.0f} fixes/s (relations only)"
        )
        if args.reference:
            timing, reference_events = run_reference(index, batches, profile)
            assert reference_events == event_count, (reference_events, event_count)
            reference.append(timing)
            line += f", {len(readings) / timing.wall_s:,.0f} fixes/s (relations + geofence_step)"
        print(f"{line}; {pairs / len(readings):.2f} relations per fix, {event_count} events")

    def rates(timings: list[Timing], cpu: bool = False) -> list[float]:
        return [len(readings) / (t.cpu_s if cpu else t.wall_s) for t in timings]

    result = {
        "fences": len(index),
        "fence_shapes": dict(shapes),
        "fence_kinds": dict(kinds),
        "fixes": len(readings),
        "batch": args.batch,
        "build_s": round(build.wall_s, 3),
        "fixes_per_s_runs": [round(v) for v in rates(full)],
        "fixes_per_s_median": round(statistics.median(rates(full))),
        "relations_only_per_s": round(statistics.median(rates(only))),
        "fixes_per_cpu_s_median": round(statistics.median(rates(full, cpu=True))),
        "relations_only_per_cpu_s": round(statistics.median(rates(only, cpu=True))),
        **(
            {
                "reference_per_s": round(statistics.median(rates(reference))),
                "reference_per_cpu_s": round(statistics.median(rates(reference, cpu=True))),
            }
            if reference
            else {}
        ),
        "relations_per_fix": round(pairs / len(readings), 2),
        "events_per_run": event_count,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
