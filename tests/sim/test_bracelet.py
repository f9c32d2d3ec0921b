"""Pure timelines of one bracelet, with fixed seeds: no network, no wall clock."""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
PARIS = ZoneInfo("Europe/Paris")
# 06:00 UTC = 08:00 in Marseille (summer time): the wearer's day starts.
MORNING = datetime(2025, 6, 2, 6, 0, tzinfo=UTC)
QUIET = IncidentRates(
    sos_per_hour=0.0,
    silence_per_hour=0.0,
    low_battery_per_day=0.0,
    fall_per_day=0.0,
    vitals_per_day=0.0,
    wander_per_day=0.0,
)


def make(seed: int = 1, city: str = "marseille", **config: object) -> Bracelet:
    settings: dict[str, object] = {"rates": QUIET, "wild_fix_probability": 0.0, "cell_only_per_day": 0.0}
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
        assert report.accuracy_m <= 2 * 10.0  # outdoors sigma is 5-10 m, the accuracy 1-2 sigma
        assert 0.8 * 0.9 * 0.85 <= report.speed_knots / (3600 / 1852) <= 1.4 * 1.1 * 1.15
    at_home = [r for r in reports if r.time < first.time]
    assert all(r.accuracy_m >= 12.0 for r in at_home)  # indoors sigma is 12-30 m


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
    rates = replace(QUIET, sos_per_hour=3.0, silence_per_hour=0.0, low_battery_per_day=0.0)
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
    rates = replace(QUIET, sos_per_hour=0.0, silence_per_hour=1.0, low_battery_per_day=0.0)
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
        # What offline latency is measured from: the last report the platform could have received.
        assert datetime.fromisoformat(start.details["last_report"]) == before
        assert start.details["interval_s"] == 30.0
    # Outside the silences the reports keep their pace.
    gaps = [b - a for a, b in itertools.pairwise(times) if b - a != timedelta(seconds=30)]
    assert len(gaps) == len(ends)


def test_low_battery_crossing_matches_the_reports() -> None:
    rates = replace(QUIET, sos_per_hour=0.0, silence_per_hour=0.0, low_battery_per_day=4.0)
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
    rates = IncidentRates(
        sos_per_hour=1.0,
        silence_per_hour=0.3,
        low_battery_per_day=2.0,
        fall_per_day=6.0,
        vitals_per_day=6.0,
        wander_per_day=4.0,
        removed_per_day=3.0,
    )
    settings: dict[str, object] = {"rates": rates, "wild_fix_probability": 0.01, "cell_only_per_day": 6.0}
    fine = run(make(seed=9, city="aix", **settings), hours=14, step_s=2.0)
    coarse = run(make(seed=9, city="aix", **settings), hours=14, step_s=900.0)
    assert fine[0] == coarse[0]
    # Same incidents; a low-battery crossing is only noticed at the next event, so between batches of
    # different sizes two incidents may come out in another order.
    assert _in_order(fine[1]) == _in_order(coarse[1])
    kinds = {i.kind for i in fine[1]}
    assert kinds >= {"sos", "fall", "removed", "vitals", "walk_start", "geofence_exit", "silence_start"}
    assert {r.source for r in fine[0]} == {"gps", "cell"}
    other = run(make(seed=10, city="aix", **settings), hours=14, step_s=900.0)
    assert other[0] != fine[0]


def _in_order(incidents: list[Incident]) -> list[Incident]:
    return sorted(incidents, key=lambda i: (i.time, i.kind))


def test_naive_times_are_refused() -> None:
    bracelet = make()
    with pytest.raises(ValueError, match="naive"):
        bracelet.step(datetime(2025, 6, 2, 12, 0))


# -- safe zone, noise, vitals and the new incidents ----------------------------------------------------


def make_home(seed: int, **config: Any) -> Bracelet:
    """A wearer who stays in: every report is taken at home."""
    return make(seed=seed, walks_per_day=1e-9, initial_walk_probability=0.0, **config)


def test_safe_zone_is_a_circle_around_home() -> None:
    radii = []
    for seed in range(20):
        bracelet = make(seed=seed)
        lat, lon, radius = bracelet.safe_zone
        assert (lat, lon) == bracelet.home
        radii.append(radius)
    assert all(250.0 <= r <= 600.0 for r in radii)
    assert max(radii) - min(radii) > 150.0  # drawn per wearer


def _excursions_by_the_second(
    distances: list[tuple[datetime, float]], radius: float
) -> list[tuple[datetime, datetime, float]]:
    """(first second outside, first second back in, deepest metres out), merging re-entries < 60 s."""
    found: list[tuple[datetime, datetime, float]] = []
    outside_since: datetime | None = None
    deepest = 0.0
    for t, d in distances:
        if d > radius:
            outside_since = outside_since or t
            deepest = max(deepest, d - radius)
        elif outside_since is not None:
            if found and (outside_since - found[-1][1]).total_seconds() < 60:
                outside_since, deepest = found[-1][0], max(deepest, found.pop()[2])
            found.append((outside_since, t, deepest))
            outside_since, deepest = None, 0.0
    return found


def test_geofence_exits_follow_the_true_path() -> None:
    bracelet = make(seed=4, walks_per_day=12.0, initial_walk_probability=1.0)
    _, _, radius = bracelet.safe_zone
    distances: list[tuple[datetime, float]] = []
    incidents: list[Incident] = []
    for now in _ticks(MORNING, 10, 1.0):  # every second: the true path at the truth's resolution
        bracelet.step(now)
        incidents += bracelet.take_incidents()
        distances.append((now, distance_m(bracelet.true_position(now), bracelet.home)))
    exits = [i for i in incidents if i.kind == "geofence_exit"]
    walks = [i for i in incidents if i.kind == "walk_start"]
    excursions = _excursions_by_the_second(distances, radius)
    qualifying = [e for e in excursions if e[2] >= 50.0 and (e[1] - e[0]).total_seconds() >= 120]
    assert len(exits) >= 3 and len(qualifying) == len(exits)
    second = timedelta(seconds=1)
    for exit_, (start, end, deepest) in zip(exits, qualifying, strict=True):
        assert abs(exit_.time - start) <= second  # the outward crossing, to the second
        assert abs(datetime.fromisoformat(exit_.details["until"]) - end) <= second
        assert exit_.details["max_distance_out_m"] == pytest.approx(deepest, abs=1.5)
        assert exit_.details["radius_m"] == round(radius, 1)
        assert distance_m((exit_.latitude, exit_.longitude), bracelet.home) == pytest.approx(radius, abs=2.0)
    # The walks list every excursion, exits and ambiguous poke-outs alike.
    listed = [e for w in walks for e in w.details["zone_exits"]]
    assert len(listed) == len(excursions)
    for item, (start, end, deepest) in zip(listed, excursions, strict=True):
        assert abs(datetime.fromisoformat(item["from"]) - start) <= second
        assert abs(datetime.fromisoformat(item["until"]) - end) <= second
        assert item["max_out_m"] == pytest.approx(deepest, abs=1.5)


def test_exit_thresholds_are_configurable() -> None:
    def exits(**config: Any) -> tuple[list[Report], list[Incident]]:
        reports, incidents = run(make(seed=4, walks_per_day=12.0, initial_walk_probability=1.0, **config), 10)
        return reports, [i for i in incidents if i.kind == "geofence_exit"]

    reports, default = exits()
    durations = sorted(i.details["duration_s"] for i in default)
    minimum = durations[len(durations) // 2]
    strict_reports, strict = exits(exit_min_duration_s=minimum, exit_min_distance_m=100.0)
    assert strict_reports == reports  # the same day: only what counts as an exit changes
    assert 0 < len(strict) < len(default)
    for exit_ in strict:
        assert exit_.details["duration_s"] >= minimum and exit_.details["max_distance_out_m"] >= 100.0
    assert {i.time for i in strict} <= {i.time for i in default}


def test_wild_fixes_are_hundreds_of_metres_off_and_often_claim_a_good_accuracy() -> None:
    bracelet = make_home(11, wild_fix_probability=0.05)
    reports, _ = run(bracelet, hours=24, step_s=600.0)
    sigma = bracelet.wearer.sigma_indoor_m
    errors = [(distance_m(_position(r), bracelet.home), r.accuracy_m) for r in reports]
    wild = [(e, a) for e, a in errors if e > 150.0]
    normal = [(e, a) for e, a in errors if e <= 150.0]
    assert 0.03 * len(reports) <= len(wild) <= 0.07 * len(reports)
    assert all(199.5 <= e <= 800.5 for e, _ in wild)
    assert sum(a <= 10.0 for _, a in wild) >= 0.3 * len(wild)
    # Ordinary fixes: accuracy 1-2 sigma, the error within it about two times out of three.
    assert all(sigma - 0.05 <= a <= 2 * sigma + 0.05 for _, a in normal)
    assert all(e < 6 * sigma for e, _ in normal)
    assert 0.55 <= sum(e <= a for e, a in normal) / len(normal) <= 0.77


def test_gps_error_drifts_rather_than_jumping() -> None:
    bracelet = make_home(12)
    reports, _ = run(bracelet, hours=12, step_s=600.0)
    north = [(r.latitude - bracelet.home[0]) * 111_195.0 for r in reports]
    mean = sum(north) / len(north)
    var = sum((x - mean) ** 2 for x in north) / len(north)
    lag1 = sum((a - mean) * (b - mean) for a, b in itertools.pairwise(north)) / (len(north) - 1) / var
    assert 0.45 <= lag1 <= 0.75  # exp(-30 s / 60 s) = 0.61


def test_cell_only_spells_at_home() -> None:
    bracelet = make_home(13, cell_only_per_day=3.0)
    reports, _ = run(bracelet, hours=5 * 24, step_s=3600.0)
    cell = [r for r in reports if r.source == "cell"]
    assert cell
    for report in cell:
        assert 500.0 <= report.accuracy_m <= 1500.0
        assert 199.0 <= distance_m(_position(report), bracelet.home) <= 1001.0
        assert report.speed_knots == 0.0
    spells = [
        list(g) for is_cell, g in itertools.groupby(reports, key=lambda r: r.source == "cell") if is_cell
    ]
    assert 5 <= len(spells) <= 25  # 3 a day for 5 days
    for spell in spells:
        minutes = (spell[-1].time - spell[0].time).total_seconds() / 60
        assert minutes <= 2 * 60  # 10-60 min, a second spell may prolong the first
    assert sum(len(s) for s in spells) / len(reports) < 0.2


def test_new_incidents_appear_at_their_rates() -> None:
    rates = replace(QUIET, fall_per_day=4.0, vitals_per_day=2.0, wander_per_day=2.0)
    bracelet = make(seed=14, rates=rates, interval_s=60.0, walks_per_day=3.0)
    reports, incidents = run(bracelet, hours=10 * 24, step_s=3600.0)
    count = {kind: sum(i.kind == kind for i in incidents) for kind in ("fall", "vitals", "geofence_exit")}
    wanders = [i for i in incidents if i.kind == "walk_start" and i.details["wandering"]]
    assert 25 <= count["fall"] <= 55  # 40 expected
    assert 10 <= count["vitals"] <= 30  # 20 expected
    assert 10 <= len(wanders) <= 30  # 20 expected
    assert count["geofence_exit"] >= len(wanders)  # every wander leaves the zone
    for wander in wanders:
        assert 1500.0 <= wander.details["one_way_m"] <= 3000.0
        assert any(e["max_out_m"] >= 500 for e in wander.details["zone_exits"])
    falls = [i for i in incidents if i.kind == "fall"]
    assert [r.time for r in reports if r.alarm == "fall"] == [i.time for i in falls]
    # On its charger the bracelet is not worn: a fall at night is one while wandering with it on.
    assert all(i.details["walking"] for i in falls if bracelet._in_charge_window(i.time))


def test_default_rates_over_twenty_days() -> None:
    bracelet = Bracelet(UID, StreetGraph.load("marseille"), random.Random(15), MORNING)
    _, incidents = run(bracelet, hours=20 * 24, step_s=3600.0)
    count = {kind: sum(i.kind == kind for i in incidents) for kind in ("fall", "vitals", "geofence_exit")}
    wanders = sum(i.kind == "walk_start" and i.details["wandering"] for i in incidents)
    assert 1 <= count["fall"] <= 10  # 0.2 a day
    assert 1 <= count["vitals"] <= 6  # 0.1 a day
    assert 1 <= wanders <= 14  # 0.3 a day
    assert count["geofence_exit"] >= 20  # most of the three daily walks leave a 250-600 m zone


def test_heart_rate_anomalies_are_reported_at_every_report() -> None:
    rates = replace(QUIET, vitals_per_day=4.0)
    bracelet = make(seed=16, rates=rates, walks_per_day=4.0)
    reports, incidents = run(bracelet, hours=3 * 24, step_s=600.0)
    anomalies = [i for i in incidents if i.kind == "vitals"]
    assert {a.details["type"] for a in anomalies} == {"high", "low"}
    inside: set[datetime] = set()
    for anomaly in anomalies:
        until = datetime.fromisoformat(anomaly.details["until"])
        assert timedelta(minutes=10) <= until - anomaly.time <= timedelta(minutes=30)
        low, high = (140.0, 170.0) if anomaly.details["type"] == "high" else (30.0, 38.0)
        assert low <= anomaly.details["heart_rate_bpm"] <= high
        during = [r for r in reports if anomaly.time <= r.time < until]
        assert len(during) >= 19
        assert all(r.heart_rate_bpm is not None and low <= r.heart_rate_bpm <= high for r in during)
        inside |= {r.time for r in during}
    wearer = bracelet.wearer
    ordinary = [r.heart_rate_bpm for r in reports if r.time not in inside and r.heart_rate_bpm is not None]
    assert ordinary
    assert all(wearer.resting_heart_bpm - 15 <= h <= wearer.resting_heart_bpm + 30 + 15 for h in ordinary)
    assert all(h < 120 for h in ordinary)  # no false high-heart-rate from walking
    assert all(60.0 <= wearer.resting_heart_bpm <= 85.0 for _ in (1,))


def test_vitals_steps_and_the_charger() -> None:
    bracelet = make(seed=17, walks_per_day=4.0)
    reports, incidents = run(bracelet, hours=48, step_s=900.0)
    charging = [r for r in reports if bracelet._in_charge_window(r.time)]
    assert charging and all(r.heart_rate_bpm is None and r.spo2_pct is None for r in charging)
    worn = [r for r in reports if not bracelet._in_charge_window(r.time)]
    assert sum(r.heart_rate_bpm is not None for r in worn) >= len(worn) / 4 - 1
    spo2 = [r.spo2_pct for r in reports if r.spo2_pct is not None]
    temperatures = [r.temperature_c for r in reports if r.temperature_c is not None]
    assert len(spo2) >= len(worn) / 10 - 2 and all(94.0 <= v <= 99.0 for v in spo2)
    assert temperatures and all(36.0 <= v <= 37.2 for v in temperatures)
    # The pedometer counts up through the local day and restarts at local midnight.
    for a, b in itertools.pairwise(reports):
        assert b.steps is not None and a.steps is not None
        same_day = a.time.astimezone(PARIS).date() == b.time.astimezone(PARIS).date()
        assert b.steps >= a.steps if same_day else b.steps < a.steps or a.steps == 0
    for walk in (i for i in incidents if i.kind == "walk_start"):
        until = datetime.fromisoformat(walk.details["until"])
        before = max((r for r in reports if r.time <= walk.time), key=lambda r: r.time)
        after = min((r for r in reports if r.time >= until), key=lambda r: r.time)
        assert before.steps is not None and after.steps is not None
        walked = 2 * walk.details["one_way_m"] * bracelet.wearer.steps_per_m
        if before.time.date() == after.time.date():
            assert walked - 1 <= after.steps - before.steps <= walked + 200  # plus a little pottering


def test_a_whole_day_reports_every_thirty_seconds() -> None:
    # How fast a day simulates is measured by `make bench` (simulate-days), not here.
    bracelet = Bracelet(UID, StreetGraph.load("marseille"), random.Random(18), MORNING)
    reports, _ = run(bracelet, hours=24, step_s=3600.0)
    assert len(reports) >= 2880 - 1
