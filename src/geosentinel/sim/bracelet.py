"""Pure model of one safety bracelet and the elderly person wearing it.

No I/O and no wall clock: the caller passes tz-aware UTC times to :meth:`Bracelet.step` and a seeded
``random.Random``, so a timeline is fully determined by (seed, start, the sequence of ``now`` values)
and tests can replay a whole day in milliseconds.

The wearer lives at a street node ("home") inside a circular safe zone, stays indoors most of the time
and, in the daytime, goes for walks to a place 300-1500 m away along the streets, possibly sits there for
a few minutes, and walks back the same way; now and then they wander off 1.5-3 km, at any hour. The
device reports every ``interval_s`` seconds: a GPS fix with time-correlated noise (worse indoors), now and
then a wild fix, and during indoor "cell-only" spells a coarse cell-tower position; plus heart rate, SpO2,
temperature and a daily step counter. Incidents are injected as Poisson processes (SOS presses, falls,
heart-rate anomalies, silences, battery failures) and every incident, plus walk starts and ends and the
safe-zone exits of the true path, is recorded as an :class:`Incident`: the ground truth detection is
scored against (see ``docs/detection-scoring.md``).
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import timezone as fixed_timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from geosentinel.geodesy import EARTH_RADIUS_M
from geosentinel.sim.streets import LatLon, StreetGraph, bearing_deg, distance_m, offset

IncidentKind = Literal[
    "sos",
    "fall",
    "removed",
    "vitals",
    "geofence_exit",
    "silence_start",
    "silence_end",
    "low_battery",
    "walk_start",
    "walk_end",
]
AlarmKind = Literal["sos", "fall", "removed"]
PositionSource = Literal["gps", "cell"]

LOW_BATTERY_PCT = 15.0
OFF_CHARGER_AFTER_FAULT = timedelta(minutes=45)
MIN_WALK_M = 300.0
MAX_WALK_M = 1500.0
MIN_WANDER_M = 1500.0
MAX_WANDER_M = 3000.0
SAFE_ZONE_RADIUS_M = (250.0, 600.0)
# A truth geofence_exit is an excursion that goes this far beyond the boundary and lasts this long: a
# brief poke-out along a street that skirts the boundary is not something a caregiver must hear about.
EXIT_MIN_DISTANCE_M = 50.0
EXIT_MIN_DURATION_S = 120.0
# Two excursions separated by less than this back inside are one: stepping back over the line for a few
# seconds is not coming home, and the platform (rightly) sees a single exit.
EXIT_MERGE_GAP_S = 60.0
KNOTS_PER_MPS = 3600.0 / 1852.0
DEFAULT_SOS_PER_HOUR = 0.4
DEFAULT_SILENCE_PER_HOUR = 0.05
DEFAULT_LOW_BATTERY_PER_DAY = 1.0
DEFAULT_FALL_PER_DAY = 0.2
DEFAULT_VITALS_PER_DAY = 0.1
DEFAULT_WANDER_PER_DAY = 0.3
DEFAULT_REMOVED_PER_DAY = 0.0
DEFAULT_CELL_ONLY_PER_DAY = 2.0
HIGH_HEART_RATE_BPM = (140.0, 170.0)
LOW_HEART_RATE_BPM = (30.0, 38.0)

_CHARGE_RATE_PCT_H = 25.0  # a bracelet charges fully in about four hours
_WALK_START_HOURS = (8, 19)  # local hours during which a walk may begin
_ALTITUDE_RANGE_M = {"marseille": (5.0, 90.0), "aix": (150.0, 220.0)}
_NEVER = datetime.max.replace(tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)

# GPS: per-axis error sigma per wearer, outdoors (open sky, walking) and indoors (at home). The error is
# an AR(1) process with this time constant: real receivers drift, they do not jump independently every
# fix, and three "independent" bad fixes in a row are far likelier when they are not independent.
_SIGMA_OUTDOOR_M = (5.0, 10.0)
_SIGMA_INDOOR_M = (12.0, 30.0)
_GPS_NOISE_TAU_S = 60.0
_WILD_FIX_M = (200.0, 800.0)
_WILD_CONFIDENT_SHARE = 0.5  # wild fixes claiming 5-10 m, as multipath fixes often do
# Indoor spells without GPS: the position is the serving cell's estimate, one of the few towers that
# serve the home, hundreds of metres off.
_CELL_ERROR_M = (200.0, 1000.0)
_CELL_ACCURACY_M = (500.0, 1500.0)
_CELL_SPELL_MIN = (10, 60)
_HOME_TOWERS = 3
_PRIMARY_TOWER_SHARE = 0.8
# Vitals. A walking heart rate is kept at most at 105 bpm on average so that noise alone (sigma 3) never
# reaches the usual 120 bpm alert threshold: those would be false alerts of the simulator's making.
_HEART_NOISE_BPM = 3.0
_WALKING_HEART_MAX_BPM = 105.0
_SPO2_EVERY = 10  # SpO2 and temperature are spot measurements: every tenth report
_ANOMALY_MIN = (10, 30)
_HIGH_ANOMALY_SHARE = 0.6
_STEPS_PER_M = (1.45, 1.8)  # short elderly strides, about 1.6 steps a metre
_POTTER_STEPS_PER_H = (100.0, 400.0)  # moving about the flat while awake
_DEFAULT_INTERVAL_S = 30.0

Handler = Callable[[datetime, list["Report"]], None]


def _local_timezone() -> tzinfo:
    try:
        return ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:
        # No tz database on the machine: winter time is close enough for a daily rhythm.
        return fixed_timezone(timedelta(hours=1))


_LOCAL_TZ = _local_timezone()


@dataclass(frozen=True, slots=True)
class Report:
    """One report, as the device would send it over OsmAnd.

    ``source`` is ``"cell"`` for a cell-tower estimate (an indoor spell without GPS), ``"gps"`` otherwise.
    Vitals are ``None`` when not measured in this report (every few reports, never while charging);
    ``steps`` is the day's cumulative step count (reset at local midnight).
    """

    unique_id: str
    time: datetime
    latitude: float
    longitude: float
    speed_knots: float
    bearing_deg: float
    altitude_m: float
    accuracy_m: float
    battery_pct: float
    alarm: str | None = None  # "sos", "fall" or "removed"
    heart_rate_bpm: float | None = None
    spo2_pct: float | None = None
    temperature_c: float | None = None
    steps: int | None = None
    source: PositionSource = "gps"


@dataclass(frozen=True, slots=True)
class Incident:
    """A ground-truth event; the position is the true one, without GPS noise."""

    time: datetime
    unique_id: str
    kind: IncidentKind
    latitude: float
    longitude: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncidentRates:
    """Mean rates of the injected incidents, per bracelet. Zero disables a kind."""

    sos_per_hour: float = DEFAULT_SOS_PER_HOUR
    silence_per_hour: float = DEFAULT_SILENCE_PER_HOUR
    low_battery_per_day: float = DEFAULT_LOW_BATTERY_PER_DAY
    fall_per_day: float = DEFAULT_FALL_PER_DAY
    vitals_per_day: float = DEFAULT_VITALS_PER_DAY
    wander_per_day: float = DEFAULT_WANDER_PER_DAY
    removed_per_day: float = DEFAULT_REMOVED_PER_DAY


@dataclass(frozen=True, slots=True)
class BraceletConfig:
    interval_s: float = _DEFAULT_INTERVAL_S
    rates: IncidentRates = IncidentRates()
    wild_fix_probability: float = 0.005  # a multipath/cold-start fix hundreds of metres off
    walks_per_day: float = 3.0
    initial_walk_probability: float = 0.2  # so a fresh fleet already shows some wearers moving
    cell_only_per_day: float = DEFAULT_CELL_ONLY_PER_DAY  # indoor spells without GPS
    # What makes an excursion out of the safe zone a truth geofence_exit (see docs/detection-scoring.md).
    exit_min_distance_m: float = EXIT_MIN_DISTANCE_M
    exit_min_duration_s: float = EXIT_MIN_DURATION_S


@dataclass(frozen=True, slots=True)
class CellTower:
    """Where a cell tower serving the home puts the wearer: an offset from home and a claimed accuracy."""

    east_m: float
    north_m: float
    accuracy_m: float


@dataclass(frozen=True, slots=True)
class Wearer:
    """The per-person constants, drawn once from the bracelet's random generator."""

    home: int
    walk_speed_mps: float
    drain_pct_h: float
    charge_from_min: int  # local minute of the day the bracelet goes on its charger
    charge_until_min: int
    altitude_m: float
    safe_zone_radius_m: float = 400.0
    sigma_outdoor_m: float = 7.0
    sigma_indoor_m: float = 20.0
    resting_heart_bpm: float = 70.0
    walking_heart_delta_bpm: float = 20.0
    heart_every: int = 1  # heart rate in one report out of this many
    spo2_pct: float = 97.0
    temperature_c: float = 36.6
    steps_per_m: float = 1.6
    potter_steps_per_h: float = 200.0
    towers: tuple[CellTower, ...] = ()


@dataclass(frozen=True, slots=True)
class ZoneExcursion:
    """A stretch of a walk spent outside the safe zone (true path), from the outward crossing back in."""

    start: datetime
    end: datetime
    max_out_m: float  # deepest point beyond the boundary

    def is_exit(
        self, min_distance_m: float = EXIT_MIN_DISTANCE_M, min_duration_s: float = EXIT_MIN_DURATION_S
    ) -> bool:
        """Deep and long enough to be a truth ``geofence_exit`` (not an ambiguous poke-out)."""
        long_enough = (self.end - self.start).total_seconds() >= min_duration_s
        return self.max_out_m >= min_distance_m and long_enough


@dataclass(frozen=True, slots=True)
class _Walk:
    """An out-and-back walk along ``points``; the wearer may sit at the far end for ``dwell_s``."""

    start: datetime
    points: tuple[LatLon, ...]
    cumulative_m: tuple[float, ...]
    speed_mps: float
    dwell_s: float
    wandering: bool = False

    @property
    def one_way_m(self) -> float:
        return self.cumulative_m[-1] / 2

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=math.ceil(2 * self.one_way_m / self.speed_mps + self.dwell_s))

    def travelled_m(self, t: datetime) -> float:
        """Distance walked along the path at ``t`` (the dwell adds none)."""
        elapsed = (t - self.start).total_seconds()
        out_s = self.one_way_m / self.speed_mps
        if elapsed <= out_s:
            distance = elapsed * self.speed_mps
        elif elapsed < out_s + self.dwell_s:
            distance = self.one_way_m
        else:
            distance = self.one_way_m + (elapsed - out_s - self.dwell_s) * self.speed_mps
        return min(max(distance, 0.0), self.cumulative_m[-1])

    def seconds_at(self, distance: float) -> float:
        """Seconds from the start until the wearer is ``distance`` metres along the path (the first time)."""
        if distance <= self.one_way_m:
            return distance / self.speed_mps
        return self.dwell_s + distance / self.speed_mps

    def state(self, t: datetime) -> tuple[LatLon, float, float]:
        """(position, speed m/s, bearing) at ``t``."""
        elapsed = (t - self.start).total_seconds()
        out_s = self.one_way_m / self.speed_mps
        if elapsed < out_s:
            distance, speed = elapsed * self.speed_mps, self.speed_mps
        elif elapsed < out_s + self.dwell_s:
            distance, speed = self.one_way_m, 0.0
        else:
            distance = self.one_way_m + (elapsed - out_s - self.dwell_s) * self.speed_mps
            speed = self.speed_mps if distance < self.cumulative_m[-1] else 0.0
        position, bearing = self._locate(min(distance, self.cumulative_m[-1]))
        return position, speed, bearing

    def _locate(self, distance: float) -> tuple[LatLon, float]:
        i = min(bisect_right(self.cumulative_m, distance), len(self.points) - 1)
        a, b = self.points[i - 1], self.points[i]
        span = self.cumulative_m[i] - self.cumulative_m[i - 1]
        frac = (distance - self.cumulative_m[i - 1]) / span if span > 0 else 0.0
        position = (a[0] + (b[0] - a[0]) * frac, a[1] + (b[1] - a[1]) * frac)
        return position, bearing_deg(a, b)


@dataclass(slots=True)
class _Anomaly:
    """A heart-rate anomaly in progress: readings around ``level`` within ``bounds``."""

    end: datetime
    level: float
    bounds: tuple[float, float]


def _make_walk(
    start: datetime, route: list[LatLon], speed_mps: float, dwell_s: float, wandering: bool = False
) -> _Walk:
    points = route + route[-2::-1]  # there and back the same way
    cumulative = [0.0]
    for a, b in itertools.pairwise(points):
        cumulative.append(cumulative[-1] + distance_m(a, b))
    return _Walk(start, tuple(points), tuple(cumulative), speed_mps, dwell_s, wandering)


def _zone_excursions(walk: _Walk, center: LatLon, radius_m: float) -> list[ZoneExcursion]:
    """The stretches of ``walk`` outside the circle, from the exact crossings of the true path.

    Each path segment is intersected with the circle in a local flat frame (the same approximation as
    :func:`~geosentinel.sim.streets.distance_m`); path distances then map to times through the walk's
    speed and dwell. Times are rounded up to whole seconds: the first second outside, the first back in.
    """
    k_lat = math.radians(1.0) * EARTH_RADIUS_M
    k_lon = k_lat * math.cos(math.radians(center[0]))
    xy = [((lon - center[1]) * k_lon, (lat - center[0]) * k_lat) for lat, lon in walk.points]
    r2 = radius_m * radius_m
    spans: list[list[float]] = []  # [from m, to m, deepest distance from the centre]
    for i in range(1, len(xy)):
        (ax, ay), (bx, by) = xy[i - 1], xy[i]
        dx, dy = bx - ax, by - ay
        a = dx * dx + dy * dy
        if a == 0.0:
            continue
        s0, length = walk.cumulative_m[i - 1], walk.cumulative_m[i] - walk.cumulative_m[i - 1]
        b = 2 * (ax * dx + ay * dy)
        disc = b * b - 4 * a * (ax * ax + ay * ay - r2)
        cuts = [0.0, 1.0]
        if disc > 0:
            root = math.sqrt(disc)
            cuts[1:1] = [u for u in ((-b - root) / (2 * a), (-b + root) / (2 * a)) if 0.0 < u < 1.0]
        # Between cuts a piece is wholly inside or outside: its midpoint says which. The distance to the
        # centre is convex along a segment, so the deepest point of a piece is one of its ends.
        for u0, u1 in itertools.pairwise(cuts):
            mid = (u0 + u1) / 2
            if (ax + mid * dx) ** 2 + (ay + mid * dy) ** 2 <= r2:
                continue
            deepest = max(math.hypot(ax + u * dx, ay + u * dy) for u in (u0, u1))
            if spans and abs(spans[-1][1] - (s0 + u0 * length)) < 1e-6:
                spans[-1][1] = s0 + u1 * length
                spans[-1][2] = max(spans[-1][2], deepest)
            else:
                spans.append([s0 + u0 * length, s0 + u1 * length, deepest])
    excursions: list[ZoneExcursion] = []
    for start_m, end_m, deepest in spans:
        start = _ceil_time(walk.start, walk.seconds_at(start_m))
        end = _ceil_time(walk.start, walk.seconds_at(end_m))
        out_m = deepest - radius_m
        if excursions and (start - excursions[-1].end).total_seconds() < EXIT_MERGE_GAP_S:
            last = excursions.pop()
            start, out_m = last.start, max(out_m, last.max_out_m)
        excursions.append(ZoneExcursion(start, end, round(out_m, 1)))
    return excursions


def _ceil_time(start: datetime, seconds: float) -> datetime:
    # The epsilon keeps a crossing computed a hair past a whole second on that second.
    return start + timedelta(seconds=math.ceil(seconds - 1e-6))


def _as_utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("naive datetime: the simulator only takes tz-aware times")
    return t.astimezone(UTC)


def _local_minute(t: datetime) -> int:
    local = t.astimezone(_LOCAL_TZ)
    return local.hour * 60 + local.minute


def _next_local(t: datetime, minute_of_day: int) -> datetime:
    """The first time after ``t`` the local clock reads ``minute_of_day`` (minutes after midnight)."""
    local = t.astimezone(_LOCAL_TZ)
    hour, minute = divmod(minute_of_day, 60)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local:
        candidate = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return candidate.astimezone(UTC)


class Bracelet:
    """One wearer and their device. Drive it with :meth:`step`; collect truth with :meth:`take_incidents`."""

    def __init__(
        self,
        unique_id: str,
        streets: StreetGraph,
        rng: random.Random,
        start: datetime,
        config: BraceletConfig | None = None,
    ) -> None:
        self.unique_id = unique_id
        self.streets = streets
        self.config = config or BraceletConfig()
        if self.config.interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._rng = rng
        # Whole seconds: devices send integer timestamps, so truth and reports line up exactly.
        start = _as_utc(start).replace(microsecond=0)
        self.wearer = _draw_wearer(streets, rng)
        self._home = streets.position(self.wearer.home)
        self._battery = rng.uniform(40.0, 100.0)
        self._battery_time = start
        self._fast_drain: tuple[float, datetime] | None = None  # (extra %/h, since) of a battery fault
        # After a faulty discharge the bracelet stays off its charger until someone notices the alert.
        self._off_charger_until: datetime | None = None
        self._steps = 0.0
        self._steps_time = start
        self._steps_reset = _next_local(start, 0)  # the pedometer restarts at local midnight
        self._walk: _Walk | None = None
        self._silence: tuple[datetime, datetime] | None = None  # (start, end) of the current silence
        self._cell: tuple[datetime, int] | None = None  # (end, main tower) of an indoor spell without GPS
        self._anomaly: _Anomaly | None = None
        self._noise = (0.0, 0.0)  # the GPS error east and north, in units of sigma (the AR(1) state)
        self._noise_time: datetime | None = None
        self._reports_sent = 0
        self._last_report: datetime | None = None
        self._incidents: list[Incident] = []
        # Truth known ahead of its time (the safe-zone exits of a walk, computed when it starts), handed
        # out once the simulation reaches it so that take_incidents stays in time order.
        self._pending: list[Incident] = []
        self._next_report = start + timedelta(seconds=math.floor(rng.uniform(0, self.config.interval_s)))
        walk_now = rng.random() < self.config.initial_walk_probability
        self._next_walk = start if walk_now else self._after(start, self._mean_walk_gap_s())
        rates = self.config.rates
        self._next_alarm: dict[AlarmKind, datetime] = {"sos": self._after_rate(start, rates.sos_per_hour)}
        self._next_silence = self._after_rate(start, rates.silence_per_hour)
        self._next_battery_fault = self._after_rate(start, rates.low_battery_per_day / 24)
        self._next_alarm["fall"] = self._after_rate(start, rates.fall_per_day / 24)
        self._next_alarm["removed"] = self._after_rate(start, rates.removed_per_day / 24)
        self._next_vitals = self._after_rate(start, rates.vitals_per_day / 24)
        self._next_wander = self._after_rate(start, rates.wander_per_day / 24)
        self._next_cell = self._after_rate(start, self.config.cell_only_per_day / 24)

    # -- public -------------------------------------------------------------------------------------

    @property
    def home(self) -> LatLon:
        return self._home

    @property
    def safe_zone(self) -> tuple[float, float, float]:
        """(latitude, longitude, radius in metres) of the wearer's safe zone, a circle around home."""
        return self._home[0], self._home[1], self.wearer.safe_zone_radius_m

    @property
    def battery_pct(self) -> float:
        return self._battery

    @property
    def walking(self) -> bool:
        return self._walk is not None

    def next_report_at(self) -> datetime:
        """Earliest time the next report may be due (a wake-up hint for the driver, never late)."""
        regular = self._silence[1] if self._silence else self._next_report
        return min(regular, *self._next_alarm.values())

    def true_position(self, t: datetime) -> LatLon:
        """Where the wearer really is at ``t``, for ``t`` at or after the last ``step``."""
        return self._true_state(_as_utc(t))[0]

    def is_charging(self, t: datetime) -> bool:
        t = _as_utc(t)
        if self._off_charger_until is not None and t < self._off_charger_until:
            return False
        return self._in_charge_window(t) and self._walk is None and self._fast_drain is None

    def step(self, now: datetime) -> list[Report]:
        """Advance the simulation to ``now`` and return the reports due meanwhile, in time order."""
        now = _as_utc(now)
        reports: list[Report] = []
        while True:
            when, handler = self._next_event()
            if when > now:
                self._release(now)
                return reports
            self._advance_battery(when)
            self._advance_steps(when)
            handler(when, reports)

    def take_incidents(self) -> list[Incident]:
        """The incidents recorded since the previous call, in time order."""
        taken = sorted(self._incidents, key=lambda incident: incident.time)
        self._incidents.clear()
        return taken

    # -- event loop ---------------------------------------------------------------------------------

    def _next_event(self) -> tuple[datetime, Handler]:
        # On ties the first entry wins, which keeps the order of same-second events deterministic.
        alarms = self._next_alarm
        candidates: list[tuple[datetime, Handler]] = [
            (self._walk.end if self._walk else self._next_walk, self._on_walk_transition),
            (self._next_silence, self._on_silence),
            (self._silence[1] if self._silence else self._next_report, self._on_report),
            (alarms["sos"], self._on_sos),
            (self._next_battery_fault, self._on_battery_fault),
            (alarms["fall"], self._on_fall),
            (alarms["removed"], self._on_removed),
            (self._next_vitals, self._on_vitals),
            (self._next_wander, self._on_wander),
            (self._next_cell, self._on_cell_spell),
        ]
        return min(candidates, key=lambda candidate: candidate[0])

    def _release(self, now: datetime) -> None:
        if self._pending and min(i.time for i in self._pending) <= now:
            self._incidents += [i for i in self._pending if i.time <= now]
            self._pending = [i for i in self._pending if i.time > now]

    def _on_report(self, t: datetime, reports: list[Report]) -> None:
        if self._silence is not None:
            self._record(t, "silence_end", {"duration_s": (t - self._silence[0]).total_seconds()})
            self._silence = None
        alarm = None
        for kind, due in self._next_alarm.items():
            # An alarm on a report tick rides on that report: one report per second.
            if due == t and (kind != "fall" or not self.is_charging(t)):
                alarm = self._fire_alarm(kind, t)
                break
        reports.append(self._report(t, alarm))
        self._next_report = t + timedelta(seconds=self.config.interval_s)

    def _on_sos(self, t: datetime, reports: list[Report]) -> None:
        self._on_alarm("sos", t, reports)

    def _on_fall(self, t: datetime, reports: list[Report]) -> None:
        self._on_alarm("fall", t, reports)

    def _on_removed(self, t: datetime, reports: list[Report]) -> None:
        self._on_alarm("removed", t, reports)

    def _on_alarm(self, kind: AlarmKind, t: datetime, reports: list[Report]) -> None:
        if self._silence is not None:
            # A silent device cannot send the alarm: skip it rather than log a truth nobody could see.
            self._next_alarm[kind] = self._after_rate(t, self._alarm_rate(kind))
            return
        if kind == "fall" and self.is_charging(t):
            # On its charger the bracelet is off the wrist and feels no fall: the fall happens once the
            # wearer has it on again (mornings are a common time for falls anyway).
            self._next_alarm[kind] = self._postponed(t)
            return
        if self._last_report == t:
            # Another report already went out this second: the alarm goes in the next second's.
            self._next_alarm[kind] = t + _ONE_SECOND
            return
        reports.append(self._report(t, self._fire_alarm(kind, t)))

    def _fire_alarm(self, kind: AlarmKind, t: datetime) -> str:
        self._record(t, kind, {"walking": self._walk is not None})
        self._next_alarm[kind] = self._after_rate(t, self._alarm_rate(kind))
        return kind

    def _alarm_rate(self, kind: AlarmKind) -> float:
        rates = self.config.rates
        if kind == "sos":
            return rates.sos_per_hour
        return (rates.fall_per_day if kind == "fall" else rates.removed_per_day) / 24

    def _on_silence(self, t: datetime, reports: list[Report]) -> None:
        duration_s = float(self._rng.randint(20 * 60, 120 * 60))
        end = t + timedelta(seconds=duration_s)
        self._silence = (t, end)
        details: dict[str, Any] = {"duration_s": duration_s, "until": _iso(end)}
        # What offline detection is timed from: the platform cannot know the device went quiet before
        # the last report it got.
        details["last_report"] = _iso(self._last_report) if self._last_report else None
        details["interval_s"] = self.config.interval_s
        self._record(t, "silence_start", details)
        # The next silence is drawn from the end of this one, so silences never overlap.
        self._next_silence = self._after_rate(end, self.config.rates.silence_per_hour)

    def _on_battery_fault(self, t: datetime, reports: list[Report]) -> None:
        self._next_battery_fault = self._after_rate(t, self.config.rates.low_battery_per_day / 24)
        if self._fast_drain is not None or self._battery < LOW_BATTERY_PCT + 5:
            return
        # Drain fast enough to cross the threshold 30-90 minutes from now.
        hours = self._rng.uniform(0.5, 1.5)
        self._fast_drain = ((self._battery - LOW_BATTERY_PCT + 1) / hours, t)

    def _on_vitals(self, t: datetime, reports: list[Report]) -> None:
        rate = self.config.rates.vitals_per_day / 24
        end = t + timedelta(seconds=self._rng.randint(_ANOMALY_MIN[0] * 60, _ANOMALY_MIN[1] * 60))
        if self._silence is not None or self.is_charging(t) or self._in_charge_window(end):
            # Only while the bracelet is worn and talking, or the truth would be invisible by design.
            self._next_vitals = self._postponed(t)
            return
        high = self._rng.random() < _HIGH_ANOMALY_SHARE
        bounds = HIGH_HEART_RATE_BPM if high else LOW_HEART_RATE_BPM
        level = round(self._rng.uniform(*bounds))
        self._anomaly = _Anomaly(end, level, bounds)
        details = {
            "type": "high" if high else "low",
            "heart_rate_bpm": level,
            "range_bpm": list(bounds),
            "duration_s": (end - t).total_seconds(),
            "until": _iso(end),
        }
        self._record(t, "vitals", details)
        self._next_vitals = self._after_rate(end, rate)

    def _postponed(self, t: datetime) -> datetime:
        """When an incident that needs the bracelet worn and talking may happen instead of ``t``."""
        if self._silence is not None:
            return self._silence[1] + timedelta(seconds=self._rng.randint(1, 600))
        return _next_local(t, self.wearer.charge_until_min) + timedelta(seconds=self._rng.randint(1, 3600))

    def _on_wander(self, t: datetime, reports: list[Report]) -> None:
        if self._walk is not None:
            self._next_wander = self._walk.end + timedelta(seconds=60)  # wanders off once back home
            return
        self._next_wander = self._after_rate(t, self.config.rates.wander_per_day / 24)
        self._start_walk(t, wandering=True)

    def _on_cell_spell(self, t: datetime, reports: list[Report]) -> None:
        self._next_cell = self._after_rate(t, self.config.cell_only_per_day / 24)
        if self._walk is not None or not self.wearer.towers:
            return  # outdoors the receiver has the sky
        minutes = self._rng.randint(*_CELL_SPELL_MIN)
        self._cell = (t + timedelta(minutes=minutes), self._rng.randrange(len(self.wearer.towers)))

    def _on_walk_transition(self, t: datetime, reports: list[Report]) -> None:
        if self._walk is not None:
            self._record(t, "walk_end", {"distance_m": round(self._walk.cumulative_m[-1], 1)})
            self._walk = None
            self._next_walk = self._after(t, self._mean_walk_gap_s())
        elif _WALK_START_HOURS[0] * 60 <= _local_minute(t) < _WALK_START_HOURS[1] * 60:
            self._start_walk(t)
        else:
            self._next_walk = self._next_morning(t)

    def _start_walk(self, t: datetime, wandering: bool = False) -> None:
        low, high = (MIN_WANDER_M, MAX_WANDER_M) if wandering else (MIN_WALK_M, MAX_WALK_M)
        destination = self._pick_destination(low, high)
        if destination is None:  # a home cut off at the map edge: stay in, try again later
            if not wandering:
                self._next_walk = self._after(t, self._mean_walk_gap_s())
            return
        route = self.streets.route(self.wearer.home, destination)
        if wandering:  # lost and slower, and may sit somewhere a long while
            speed = self.wearer.walk_speed_mps * self._rng.uniform(0.8, 1.0)
            dwell_s = self._rng.uniform(0.0, 1200.0)
        else:
            speed = self.wearer.walk_speed_mps * self._rng.uniform(0.9, 1.1)
            dwell_s = self._rng.choice([0.0, 0.0, self._rng.uniform(60.0, 900.0)])
        walk = _make_walk(t, route, speed, dwell_s, wandering)
        self._walk = walk
        self._cell = None  # outdoors: GPS again
        excursions = _zone_excursions(walk, self._home, self.wearer.safe_zone_radius_m)
        details = {
            "destination": [route[-1][0], route[-1][1]],
            "one_way_m": round(walk.one_way_m, 1),
            "speed_mps": round(speed, 2),
            "dwell_s": round(dwell_s),
            "until": _iso(walk.end),
            "wandering": wandering,
            # Every stretch outside the safe zone, exits or not: a scorer needs the ambiguous ones too,
            # so that an alert during a shallow or brief poke-out is not held against the platform.
            "zone_exits": [
                {"from": _iso(e.start), "until": _iso(e.end), "max_out_m": e.max_out_m} for e in excursions
            ],
        }
        self._record(t, "walk_start", details)
        for excursion in excursions:
            if excursion.is_exit(self.config.exit_min_distance_m, self.config.exit_min_duration_s):
                self._pending.append(self._exit_incident(walk, excursion))

    def _exit_incident(self, walk: _Walk, excursion: ZoneExcursion) -> Incident:
        lat, lon = walk.state(excursion.start)[0]
        details = {
            "until": _iso(excursion.end),
            "duration_s": (excursion.end - excursion.start).total_seconds(),
            "max_distance_out_m": excursion.max_out_m,
            "radius_m": round(self.wearer.safe_zone_radius_m, 1),
            "wandering": walk.wandering,
        }
        return Incident(
            excursion.start, self.unique_id, "geofence_exit", round(lat, 6), round(lon, 6), details
        )

    def _pick_destination(self, min_m: float, max_m: float) -> int | None:
        """A node ``min_m``-``max_m`` away along the streets, or None when there is none.

        Searched anew for each walk (some 20 ms, 70 for a wander): keeping the thousands of candidates
        per wearer would cost far more memory than a large fleet should, and computing them up front
        slows its start.
        """
        reach = self.streets.reachable_within(self.wearer.home, max_m)
        candidates = [node for node, d in reach.items() if d >= min_m]
        return self._rng.choice(candidates) if candidates else None

    # -- state --------------------------------------------------------------------------------------

    def _true_state(self, t: datetime) -> tuple[LatLon, float, float]:
        if self._walk is not None and t >= self._walk.start:
            return self._walk.state(t)
        return self._home, 0.0, 0.0

    def _in_charge_window(self, t: datetime) -> bool:
        minute = _local_minute(t)
        return minute >= self.wearer.charge_from_min or minute < self.wearer.charge_until_min

    def _advance_battery(self, t: datetime) -> None:
        """Integrate the battery up to ``t``; the state is constant between two events."""
        hours = (t - self._battery_time).total_seconds() / 3600
        if hours <= 0:
            return
        start = self._battery_time
        self._battery_time = t
        if self.is_charging(start):
            self._battery = min(100.0, self._battery + _CHARGE_RATE_PCT_H * hours)
            return
        rate = self.wearer.drain_pct_h * (2.0 if self._walk is not None else 1.0)
        rate += self._fast_drain[0] if self._fast_drain else 0.0
        level = self._battery - rate * hours
        if self._battery >= LOW_BATTERY_PCT > level:
            self._on_low_battery(start + timedelta(hours=(self._battery - LOW_BATTERY_PCT) / rate))
        self._battery = max(1.0, level)

    def _advance_steps(self, t: datetime) -> None:
        """Count the steps up to ``t``: the walked distance, plus pottering about while awake at home."""
        while self._steps_reset <= t:
            self._steps = 0.0
            self._steps_time = self._steps_reset
            self._steps_reset = _next_local(self._steps_reset, 0)
        start = self._steps_time
        if t <= start:
            return
        self._steps_time = t
        if self._walk is not None:
            walked = self._walk.travelled_m(t) - self._walk.travelled_m(start)
            self._steps += walked * self.wearer.steps_per_m
        elif not self._in_charge_window(start):
            self._steps += (t - start).total_seconds() / 3600 * self.wearer.potter_steps_per_h

    def _on_low_battery(self, crossed: datetime) -> None:
        details: dict[str, Any] = {"threshold_pct": LOW_BATTERY_PCT, "injected": self._fast_drain is not None}
        if self._fast_drain is not None:
            details["fault_since"] = _iso(self._fast_drain[1])
        # The fault is one bad discharge: back to the normal drain once the threshold is crossed. It went
        # unnoticed (that is the point of the alert), so the bracelet is not on its charger for a while.
        if self._fast_drain is not None:
            self._off_charger_until = crossed + OFF_CHARGER_AFTER_FAULT
        self._fast_drain = None
        self._record(crossed, "low_battery", details)

    def _record(self, t: datetime, kind: IncidentKind, details: dict[str, Any]) -> None:
        lat, lon = self._true_state(t)[0]
        self._incidents.append(Incident(t, self.unique_id, kind, round(lat, 6), round(lon, 6), details))

    # -- measurements -------------------------------------------------------------------------------

    def _report(self, t: datetime, alarm: str | None) -> Report:
        position, speed_mps, bearing = self._true_state(t)
        walking = self._walk is not None
        if self._cell is not None and t >= self._cell[0]:
            self._cell = None
        source: PositionSource = "gps"
        if self._cell is not None:
            (latitude, longitude), accuracy = self._cell_fix(self._cell[1])
            source = "cell"
            speed_mps, bearing = 0.0, 0.0
        else:
            sigma = self.wearer.sigma_outdoor_m if walking else self.wearer.sigma_indoor_m
            (latitude, longitude), accuracy = self._gps_fix(t, position, sigma)
            if speed_mps > 0:
                speed_mps *= self._rng.uniform(0.85, 1.15)
                bearing = (bearing + self._rng.gauss(0.0, 10.0)) % 360.0
            else:
                speed_mps = abs(self._rng.gauss(0.0, 0.1))  # a still receiver still reads some speed
                bearing = 0.0
        altitude = self.wearer.altitude_m + self._rng.gauss(0.0, 3.0 if walking else 8.0)
        heart, spo2, temperature = self._vitals(t, walking, speed_mps > 0.3)
        self._reports_sent += 1
        self._last_report = t
        # The battery is floored, not rounded, so 14.96 % reads below the 15 % threshold it has crossed.
        return Report(
            unique_id=self.unique_id,
            time=t,
            latitude=round(latitude, 6),
            longitude=round(longitude, 6),
            speed_knots=round(speed_mps * KNOTS_PER_MPS, 2),
            bearing_deg=round(bearing, 1),
            altitude_m=round(altitude, 1),
            accuracy_m=round(accuracy, 1),
            battery_pct=math.floor(self._battery * 10) / 10,
            alarm=alarm,
            heart_rate_bpm=heart,
            spo2_pct=spo2,
            temperature_c=temperature,
            steps=math.floor(self._steps),
            source=source,
        )

    def _gps_fix(self, t: datetime, position: LatLon, sigma: float) -> tuple[LatLon, float]:
        """A noisy fix and its claimed accuracy (1-2 sigma: about the 68 % radius, as Android reports it)."""
        gap_s = math.inf if self._noise_time is None else (t - self._noise_time).total_seconds()
        rho = math.exp(-gap_s / _GPS_NOISE_TAU_S)
        fresh = math.sqrt(1.0 - rho * rho)  # keeps the error's spread at sigma whatever the gap
        east = rho * self._noise[0] + fresh * self._rng.gauss(0.0, 1.0)
        north = rho * self._noise[1] + fresh * self._rng.gauss(0.0, 1.0)
        self._noise, self._noise_time = (east, north), t
        accuracy = sigma * self._rng.uniform(1.0, 2.0)
        if self._rng.random() < self.config.wild_fix_probability:
            # Multipath or a cold start: far off, and often claiming a tight accuracy all the same.
            angle = self._rng.uniform(0.0, 2 * math.pi)
            distance = self._rng.uniform(*_WILD_FIX_M)
            if self._rng.random() < _WILD_CONFIDENT_SHARE:
                accuracy = self._rng.uniform(5.0, 10.0)
            return offset(position, distance * math.sin(angle), distance * math.cos(angle)), accuracy
        return offset(position, sigma * east, sigma * north), accuracy

    def _cell_fix(self, main_tower: int) -> tuple[LatLon, float]:
        """The serving cell's estimate: mostly the main tower of this spell, sometimes a neighbour."""
        towers = self.wearer.towers
        index = main_tower if self._rng.random() < _PRIMARY_TOWER_SHARE else self._rng.randrange(len(towers))
        tower = towers[index]
        return offset(self._home, tower.east_m, tower.north_m), tower.accuracy_m

    def _vitals(self, t: datetime, walking: bool, moving: bool) -> tuple[float | None, ...]:
        """(heart rate, SpO2, temperature) measured in this report; nothing while off the wrist charging."""
        if self.is_charging(t):
            return None, None, None
        wearer, rng = self.wearer, self._rng
        anomaly = self._anomaly
        if anomaly is not None and t >= anomaly.end:
            anomaly = self._anomaly = None
        heart = None
        if anomaly is not None:  # measured at every report while the anomaly lasts
            low, high = anomaly.bounds
            heart = float(round(min(high, max(low, anomaly.level + rng.gauss(0.0, _HEART_NOISE_BPM)))))
        elif self._reports_sent % wearer.heart_every == 0:
            effort = 0.0
            if walking:  # half the effort while sitting down at the far end of a walk
                effort = wearer.walking_heart_delta_bpm * (1.0 if moving else 0.5)
            heart = float(round(wearer.resting_heart_bpm + effort + rng.gauss(0.0, _HEART_NOISE_BPM)))
        if self._reports_sent % _SPO2_EVERY:
            return heart, None, None
        spo2 = float(round(min(99.0, max(94.0, wearer.spo2_pct + rng.gauss(0.0, 0.8)))))
        temperature = round(min(37.2, max(36.0, wearer.temperature_c + rng.gauss(0.0, 0.15))), 1)
        return heart, spo2, temperature

    # -- timing -------------------------------------------------------------------------------------

    def _mean_walk_gap_s(self) -> float:
        day_hours = _WALK_START_HOURS[1] - _WALK_START_HOURS[0]
        return day_hours * 3600 / max(self.config.walks_per_day, 1e-6)

    def _after(self, t: datetime, mean_s: float) -> datetime:
        """``t`` plus an exponential delay, in whole seconds (at least one, so time always advances)."""
        return t + timedelta(seconds=max(1, math.ceil(self._rng.expovariate(1.0 / mean_s))))

    def _after_rate(self, t: datetime, per_hour: float) -> datetime:
        return self._after(t, 3600.0 / per_hour) if per_hour > 0 else _NEVER

    def _next_morning(self, t: datetime) -> datetime:
        local = t.astimezone(_LOCAL_TZ)
        if local.hour >= _WALK_START_HOURS[0]:
            local += timedelta(days=1)
        morning = local.replace(hour=_WALK_START_HOURS[0], minute=0, second=0, microsecond=0)
        return morning.astimezone(UTC) + timedelta(seconds=self._rng.randint(0, 3 * 3600))


def _draw_wearer(streets: StreetGraph, rng: random.Random) -> Wearer:
    low, high = _ALTITUDE_RANGE_M.get(streets.city, (0.0, 100.0))
    home = streets.random_node(rng)
    walk_speed = rng.uniform(0.8, 1.4)
    drain = rng.uniform(0.5, 1.0)
    charge_from = rng.randint(21 * 60, 23 * 60)
    charge_until = rng.randint(6 * 60 + 30, 8 * 60)
    altitude = rng.uniform(low, high)
    radius = rng.uniform(*SAFE_ZONE_RADIUS_M)
    sigma_outdoor = rng.uniform(*_SIGMA_OUTDOOR_M)
    sigma_indoor = rng.uniform(*_SIGMA_INDOOR_M)
    resting = rng.uniform(60.0, 85.0)
    walking_delta = rng.uniform(15.0, max(15.0, min(30.0, _WALKING_HEART_MAX_BPM - resting)))
    return Wearer(
        home=home,
        walk_speed_mps=walk_speed,
        drain_pct_h=drain,
        charge_from_min=charge_from,
        charge_until_min=charge_until,
        altitude_m=altitude,
        safe_zone_radius_m=radius,
        sigma_outdoor_m=sigma_outdoor,
        sigma_indoor_m=sigma_indoor,
        resting_heart_bpm=resting,
        walking_heart_delta_bpm=walking_delta,
        heart_every=rng.choice((1, 2, 4)),
        spo2_pct=rng.uniform(95.5, 98.0),
        temperature_c=rng.uniform(36.3, 36.8),
        steps_per_m=rng.uniform(*_STEPS_PER_M),
        potter_steps_per_h=rng.uniform(*_POTTER_STEPS_PER_H),
        towers=tuple(_draw_tower(rng) for _ in range(_HOME_TOWERS)),
    )


def _draw_tower(rng: random.Random) -> CellTower:
    angle = rng.uniform(0.0, 2 * math.pi)
    distance = rng.uniform(*_CELL_ERROR_M)
    return CellTower(distance * math.sin(angle), distance * math.cos(angle), rng.uniform(*_CELL_ACCURACY_M))


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
