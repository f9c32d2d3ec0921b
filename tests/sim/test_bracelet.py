"""Pure timelines of one bracelet, with fixed seeds: no network, no wall clock."""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from geosentinel.sim.bracelet import (
    LOW_BATTERY_PCT,
    Bracelet,
    BraceletConfig,
    Incident,
    IncidentRates,
    Report,
)
from geosentinel.sim.streets import LatLon, StreetGraph, distance_m

UID = "861000000000001"
# 06:00 UTC = 08:00 in Marseille (summer time): the wearer's day starts.
MORNING = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)
QUIET = IncidentRates(sos_per_hour=0.0, silence_per_hour=0.0, low_battery_per_day=0.0)


def make(seed: int = 1, city: str = "marseille", **config: object) -> Bracelet:
    settings: dict[str, object] = {"rates": QUIET, "wild_fix_probability": 0.0}
    settings.update(config)
    return Bracelet(UID, StreetGraph.load(city), random.Random(seed), MORNING, BraceletConfig(**settings))  # type: ignore[arg-type]


def run(bracelet: Bracelet, hours: float, step_s: float = 60.0) -> tuple[list[Report], list[Incident]]:
    reports: list[Report] = []
    incidents: list[Incident] = []
    for now in _ticks(MORNING, hours, step_s):
        reports += bracelet.step(now)
        incidents += bracelet.take_incidents()
    return reports, incidents


def _ticks(start: datetime, hours: float, step_s: float) -> Iterator[datetime]:
    for i in range(1, math.ceil(hours * 3600 / step_s) + 1):
        yield start + timedelta(seconds=i * step_s)


def _position(report: Report) -> LatLon:
    return report.latitude, report.longitude


class SegmentIndex:
    """Street segments bucketed in a coarse lat/lon grid, to find the nearest street quickly."""

    CELL = 0.002  # degrees: about 220 m x 160 m, at least the largest tolerance used below

    def __init__(self, graph: StreetGraph) -> None:
        self.cells: dict[tuple[int, int], list[tuple[LatLon, LatLon]]] = defaultdict(list)
        for a in range(len(graph)):
            for b in graph.neighbours(a):
                if a < b:
                    self._add(graph.position(a), graph.position(b))

    def _key(self, point: LatLon) -> tuple[int, int]:
        return math.floor(point[0] / self.CELL), math.floor(point[1] / self.CELL)

    def _add(self, p: LatLon, q: LatLon) -> None:
        (i0, j0), (i1, j1) = self._key(p), self._key(q)
        for i in range(min(i0, i1), max(i0, i1) + 1):
            for j in range(min(j0, j1), max(j0, j1) + 1):
                self.cells[i, j].append((p, q))

    def near(self, point: LatLon, tolerance_m: float) -> bool:
        i, j = self._key(point)
        segments = [s for di in (-1, 0, 1) for dj in (-1, 0, 1) for s in self.cells.get((i + di, j + dj), [])]
        return any(_segment_distance_m(point, p, q) <= tolerance_m for p, q in segments)


def _segment_distance_m(point: LatLon, p: LatLon, q: LatLon) -> float:
    # Local flat frame in metres around `point`.
    k_lat = 111_195.0
    k_lon = k_lat * math.cos(math.radians(point[0]))
    px, py = (p[1] - point[1]) * k_lon, (p[0] - point[0]) * k_lat
    qx, qy = (q[1] - point[1]) * k_lon, (q[0] - point[0]) * k_lat
    dx, dy = qx - px, qy - py
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(px * dx + py * dy) / length2))
    return math.hypot(px + t * dx, py + t * dy)


@pytest.fixture(scope="module")
def marseille_index() -> SegmentIndex:
    return SegmentIndex(StreetGraph.load("marseille"))


def test_reports_every_interval() -> None:
    bracelet = make(interval_s=30.0)
    reports, _ = run(bracelet, hours=6, step_s=47.0)
    times = [r.time for r in reports]
    assert MORNING <= times[0] < MORNING + timedelta(seconds=30)
    assert all(b - a == timedelta(seconds=30) for a, b in itertools.pairwise(times))
    assert len(reports) >= 6 * 120 - 1
    assert {r.unique_id for r in reports} == {UID}
    assert all(r.time.tzinfo is UTC and r.alarm is None for r in reports)


def test_walks_stay_near_home_and_on_streets(marseille_index: SegmentIndex) -> None:
    bracelet = make(seed=4, walks_per_day=12.0, initial_walk_probability=1.0)
    reports, incidents = run(bracelet, hours=10)
    starts = [i for i in incidents if i.kind == "walk_start"]
    ends = [i for i in incidents if i.kind == "walk_end"]
    assert len(starts) >= 3
    assert len(ends) in (len(starts), len(starts) - 1)
    for walk in starts:
        assert 300.0 <= walk.details["one_way_m"] <= 1500.0
    for end in ends:
        assert distance_m((end.latitude, end.longitude), bracelet.home) < 0.01
    assert max(distance_m(_position(r), bracelet.home) for r in reports) > 250.0
    for report in reports:
        assert distance_m(_position(report), bracelet.home) < 2000.0
        # 4 x the 68 % radius: a miss has a probability of about 1e-8 per fix.
        assert marseille_index.near(_position(report), 4 * report.accuracy_m)
        assert 5.0 <= report.accuracy_m <= 40.0
        assert 0.0 <= report.bearing_deg < 360.0


def test_walking_reports_are_outdoor_fixes_at_walking_speed() -> None:
    bracelet = make(seed=4, walks_per_day=12.0, initial_walk_probability=1.0)
    reports, incidents = run(bracelet, hours=10)
    first = next(i for i in incidents if i.kind == "walk_start")
    walking = [r for r in reports if first.time < r.time < first.time + timedelta(minutes=3)]
    assert walking
    for report in walking:
        assert report.accuracy_m <= 10.0
        assert 0.8 * 0.9 * 0.85 <= report.speed_knots / (3600 / 1852) <= 1.4 * 1.1 * 1.15
    at_home = [r for r in reports if r.time < first.time]
    assert all(r.accuracy_m >= 15.0 for r in at_home)


def test_battery_drains_monotonically_in_the_day_and_charges_at_night() -> None:
    bracelet = make(seed=2, walks_per_day=6.0)
    day, _ = run(bracelet, hours=10)  # 08:00-18:00 local: far from the charging hours
    levels = [r.battery_pct for r in day]
    assert all(b <= a for a, b in itertools.pairwise(levels))
    assert 0.5 * 10 - 0.2 <= levels[0] - levels[-1] <= 2 * 1.0 * 10 + 0.2
    night, _ = run_more(bracelet, MORNING + timedelta(hours=10), hours=16)
    assert max(r.battery_pct for r in night) == 100.0
    assert all(1.0 <= r.battery_pct <= 100.0 for r in night)


def run_more(bracelet: Bracelet, since: datetime, hours: float) -> tuple[list[Report], list[Incident]]:
    reports: list[Report] = []
    incidents: list[Incident] = []
    for now in _ticks(since, hours, 60.0):
        reports += bracelet.step(now)
        incidents += bracelet.take_incidents()
    return reports, incidents


def test_sos_is_one_alarm_report_at_the_incident_time() -> None:
    rates = IncidentRates(sos_per_hour=3.0, silence_per_hour=0.0, low_battery_per_day=0.0)
    bracelet = make(seed=5, rates=rates, interval_s=30.0)
    reports, incidents = run(bracelet, hours=8, step_s=13.0)
    sos = [i for i in incidents if i.kind == "sos"]
    alarms = [r for r in reports if r.alarm is not None]
    assert len(sos) >= 10
    assert [r.time for r in alarms] == [i.time for i in sos]
    assert all(r.alarm == "sos" for r in alarms)
    assert len({r.time for r in reports}) == len(reports)  # never two reports in the same second
    for incident, report in zip(sos, alarms, strict=True):
        assert distance_m((incident.latitude, incident.longitude), _position(report)) <= 4 * report.accuracy_m
    # The presses come on top of the regular reports, which keep their pace.
    first = reports[0].time
    on_grid = [r.time for r in reports if (r.time - first).total_seconds() % 30 == 0]
    assert all(r.alarm == "sos" for r in reports if r.time not in set(on_grid))
    assert all(b - a == timedelta(seconds=30) for a, b in itertools.pairwise(on_grid))


def test_silence_is_a_gap_matching_its_incidents() -> None:
    rates = IncidentRates(sos_per_hour=0.0, silence_per_hour=1.0, low_battery_per_day=0.0)
    bracelet = make(seed=6, rates=rates)
    reports, incidents = run(bracelet, hours=24, step_s=61.0)
    starts = [i for i in incidents if i.kind == "silence_start"]
    ends = [i for i in incidents if i.kind == "silence_end"]
    assert len(starts) >= 3
    times = [r.time for r in reports]
    for start, end in zip(starts, ends, strict=False):
        assert timedelta(minutes=20) <= end.time - start.time <= timedelta(minutes=120)
        assert end.details["duration_s"] == (end.time - start.time).total_seconds()
        assert not [t for t in times if start.time <= t < end.time]
        assert end.time in times  # the device comes back with a report at once
        before = max(t for t in times if t < start.time)
        assert start.time - before <= timedelta(seconds=30)
    # Outside the silences the reports keep their pace.
    gaps = [b - a for a, b in itertools.pairwise(times) if b - a != timedelta(seconds=30)]
    assert len(gaps) == len(ends)


def test_low_battery_crossing_matches_the_reports() -> None:
    rates = IncidentRates(sos_per_hour=0.0, silence_per_hour=0.0, low_battery_per_day=4.0)
    bracelet = make(seed=8, rates=rates)
    reports, incidents = run(bracelet, hours=36, step_s=300.0)
    lows = [i for i in incidents if i.kind == "low_battery"]
    assert len(lows) >= 1
    for low in lows:
        assert low.details["injected"] is True
        before = [r for r in reports if r.time <= low.time]
        after = [r for r in reports if r.time > low.time]
        assert before[-1].battery_pct >= LOW_BATTERY_PCT
        assert after[0].battery_pct < LOW_BATTERY_PCT
        fault_since = datetime.fromisoformat(low.details["fault_since"])
        assert timedelta(minutes=29) <= low.time - fault_since <= timedelta(minutes=91)


def test_deterministic_for_a_seed_and_any_stepping() -> None:
    rates = IncidentRates(sos_per_hour=1.0, silence_per_hour=0.3, low_battery_per_day=2.0)
    fine = run(make(seed=9, city="aix", rates=rates, wild_fix_probability=0.01), hours=8, step_s=2.0)
    coarse = run(make(seed=9, city="aix", rates=rates, wild_fix_probability=0.01), hours=8, step_s=900.0)
    assert fine == coarse
    assert {i.kind for i in fine[1]} >= {"sos", "walk_start"}
    other = run(make(seed=10, city="aix", rates=rates), hours=8, step_s=900.0)
    assert other[0] != fine[0]


def test_naive_times_are_refused() -> None:
    bracelet = make()
    with pytest.raises(ValueError, match="naive"):
        bracelet.step(datetime(2025, 6, 2, 12, 0))
