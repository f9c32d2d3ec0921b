"""Simulated days at full speed: bracelets → OsmAnd decoding → the real pipeline and store, on a fake clock.

Detection is scored over hundreds of wearer-days; replaying them in real time would take months. This
runs the same path as the service (OsmAnd decoder, :class:`~geosentinel.pipeline.runner.Pipeline`, its
detectors, the store and its alert rules) but drives time itself: every ``step`` of simulated time it
hands the pipeline what the bracelets sent meanwhile, waits until it is committed, and runs the sweep
of time-driven detectors (offline, inactivity) as the service does every few seconds. Each simulated
wearer gets a safe zone around home, as a care organisation would set one up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from geosentinel.model import DeviceMessage, Locale, Region
from geosentinel.pipeline.runner import Outcome, Pipeline
from geosentinel.protocols import osmand
from geosentinel.sim.bracelet import Bracelet, BraceletConfig, Incident
from geosentinel.sim.fleet import demo_unique_ids
from geosentinel.sim.scoring import Detection
from geosentinel.sim.speakers import osmand_query
from geosentinel.sim.streets import StreetGraph
from geosentinel.store import Scope, Store

ORG_NAME = "Simulated days"
TIMEZONE = "Europe/Paris"


class SteppedClock:
    """The pipeline's clock, moved by the runner."""

    def __init__(self, now: datetime) -> None:
        self.time = now

    def now(self) -> datetime:
        return self.time


@dataclass(frozen=True, slots=True)
class DaysResult:
    incidents: list[Incident]
    wearer_days: float
    end: datetime
    readings: int
    interval_s: float
    start: datetime


def provision(store: Store, bracelets: list[Bracelet]) -> str:
    """An organisation with one wearer, one OsmAnd device and one safe zone per bracelet."""
    org = store.create_org(ORG_NAME, Region.EU, TIMEZONE, Locale.FR)
    for bracelet in bracelets:
        wearer = store.create_wearer(org.id, f"Wearer {bracelet.unique_id[-4:]}")
        store.create_device(org.id, wearer.id, bracelet.unique_id, "osmand")
        lat, lon, radius = bracelet.safe_zone
        geometry = {"type": "Point", "coordinates": [lon, lat]}
        store.create_geofence(org.id, wearer.id, "Home", "safe", geometry, radius)
    return org.id


def make_bracelets(
    wearers: int, start: datetime, seed: int, config: BraceletConfig | None = None
) -> list[Bracelet]:
    bracelets = []
    for unique_id in demo_unique_ids(wearers):
        rng = random.Random(f"{seed}:{unique_id}")
        city = rng.choice(StreetGraph.cities())
        bracelets.append(Bracelet(unique_id, StreetGraph.load(city), rng, start, config))
    return bracelets


async def run_days(
    store: Store,
    wearers: int,
    days: float,
    seed: int = 1,
    start: datetime | None = None,
    step: timedelta = timedelta(seconds=10),  # the service sweeps every 5 s: this is the pessimistic side
    config: BraceletConfig | None = None,
    progress: Callable[[float], None] | None = None,
    on_start: Callable[[str, SteppedClock], Awaitable[None]] | None = None,
    on_step: Callable[[datetime], Awaitable[None]] | None = None,
) -> DaysResult:
    """Simulate ``wearers`` × ``days`` through the pipeline into ``store``; returns the truth.

    ``on_start`` gets the organisation and the clock once provisioned; ``on_step`` runs after every step
    (e.g. the alert dispatcher and simulated caregivers, see :mod:`.service_week`)."""
    start = start or datetime(2026, 3, 23, 0, 0, tzinfo=UTC)  # a week that crosses the spring DST change
    bracelets = make_bracelets(wearers, start, seed, config)
    org_id = await asyncio.to_thread(provision, store, bracelets)
    clock = SteppedClock(start)
    if on_start is not None:
        await on_start(org_id, clock)
    # The background sweep and fence refresh are driven by hand here, on simulated time.
    pipeline = Pipeline(store, clock, partitions=1, sweep_interval_s=1e9, refresh_interval_s=1e9)
    await pipeline.prepare()
    pipeline.start()
    incidents: list[Incident] = []
    readings = 0
    end = start + timedelta(days=days)
    try:
        t = start
        while t < end:
            t = min(t + step, end)
            clock.time = t
            messages = [_message(report) for b in bracelets for report in b.step(t)]
            outcomes = await asyncio.gather(*(pipeline.offer([m]) for m in messages))
            failed = [o for o in outcomes if o is not Outcome.STORED]
            if failed:
                raise RuntimeError(f"the pipeline refused simulated readings: {failed[:3]}")
            readings += len(messages)
            await pipeline.sweep_now()
            if on_step is not None:
                await on_step(t)
            if progress is not None:
                progress((t - start) / (end - start))
        for bracelet in bracelets:
            incidents.extend(bracelet.take_incidents())
    finally:
        await pipeline.stop()
    interval = (config or BraceletConfig()).interval_s
    return DaysResult(sorted(incidents, key=lambda i: i.time), wearers * days, end, readings, interval, start)


def _message(report: Any) -> DeviceMessage:
    # The simulator's values need no percent-encoding (digits, ids, alarm names): join them directly.
    query = "&".join(f"{key}={value}" for key, value in osmand_query(report).items())
    return osmand.decode_text(query).messages[0]


def detections(store: Store, org_id: str) -> list[Detection]:
    """Every event the platform raised for the organisation, as the scorer reads them."""
    scope = Scope(org_id)
    unique_ids = {d.id: d.unique_id for d in store.devices(scope)}
    found: list[Detection] = []
    offset = 0
    while True:
        page = store.events(scope, limit=5000, offset=offset)
        # Repeats count: a second press within the window is seen (attached to the same alert).
        found.extend(Detection(unique_ids[e.device_id], e.kind.value, e.time) for e in page)
        if len(page) < 5000:
            return found
        offset += len(page)
