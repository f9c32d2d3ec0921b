"""Pure model of one safety bracelet and the elderly person wearing it.

No I/O and no wall clock: the caller passes tz-aware UTC times to :meth:`Bracelet.step` and a seeded
``random.Random``, so a timeline is fully determined by (seed, start, the sequence of ``now`` values)
and tests can replay a whole day in milliseconds.

The wearer lives at a street node ("home"), stays indoors most of the time (poor GPS: 15-40 m) and,
in the daytime, goes for walks to a place 300-1500 m away along the streets, possibly sits there for a
few minutes, and walks back the same way. The device reports every ``interval_s`` seconds. Incidents
are injected as Poisson processes (SOS presses, silences, battery failures) and every incident, plus
walk starts and ends, is recorded as an :class:`Incident`: the ground truth detection is scored against.
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

from geosentinel.sim.streets import LatLon, StreetGraph, bearing_deg, distance_m, offset

IncidentKind = Literal["sos", "silence_start", "silence_end", "low_battery", "walk_start", "walk_end"]

LOW_BATTERY_PCT = 15.0
MIN_WALK_M = 300.0
MAX_WALK_M = 1500.0
KNOTS_PER_MPS = 3600.0 / 1852.0
DEFAULT_SOS_PER_HOUR = 0.4
DEFAULT_SILENCE_PER_HOUR = 0.05
DEFAULT_LOW_BATTERY_PER_DAY = 1.0

_CHARGE_RATE_PCT_H = 25.0  # a bracelet charges fully in about four hours
_WALK_START_HOURS = (8, 19)  # local hours during which a walk may begin
_ALTITUDE_RANGE_M = {"marseille": (5.0, 90.0), "aix": (150.0, 220.0)}
_NEVER = datetime.max.replace(tzinfo=UTC)

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
    """One position report, as the device would send it over OsmAnd."""

    unique_id: str
    time: datetime
    latitude: float
    longitude: float
    speed_knots: float
    bearing_deg: float
    altitude_m: float
    accuracy_m: float
    battery_pct: float
    alarm: str | None = None


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


@dataclass(frozen=True, slots=True)
class BraceletConfig:
    interval_s: float = 30.0
    rates: IncidentRates = IncidentRates()
    wild_fix_probability: float = 0.005  # a multipath/cold-start fix hundreds of metres off
    walks_per_day: float = 3.0
    initial_walk_probability: float = 0.2  # so a fresh fleet already shows some wearers moving


@dataclass(frozen=True, slots=True)
class Wearer:
    """The per-person constants, drawn once from the bracelet's random generator."""

    home: int
    walk_speed_mps: float
    drain_pct_h: float
    charge_from_min: int  # local minute of the day the bracelet goes on its charger
    charge_until_min: int
    altitude_m: float


@dataclass(frozen=True, slots=True)
class _Walk:
    """An out-and-back walk along ``points``; the wearer may sit at the far end for ``dwell_s``."""

    start: datetime
    points: tuple[LatLon, ...]
    cumulative_m: tuple[float, ...]
    speed_mps: float
    dwell_s: float

    @property
    def one_way_m(self) -> float:
        return self.cumulative_m[-1] / 2

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=math.ceil(2 * self.one_way_m / self.speed_mps + self.dwell_s))

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


def _make_walk(start: datetime, route: list[LatLon], speed_mps: float, dwell_s: float) -> _Walk:
    points = route + route[-2::-1]  # there and back the same way
    cumulative = [0.0]
    for a, b in itertools.pairwise(points):
        cumulative.append(cumulative[-1] + distance_m(a, b))
    return _Walk(start, tuple(points), tuple(cumulative), speed_mps, dwell_s)


def _as_utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("naive datetime: the simulator only takes tz-aware times")
    return t.astimezone(UTC)


def _local_minute(t: datetime) -> int:
    local = t.astimezone(_LOCAL_TZ)
    return local.hour * 60 + local.minute


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
        self._battery = rng.uniform(40.0, 100.0)
        self._battery_time = start
        self._fast_drain: tuple[float, datetime] | None = None  # (extra %/h, since) of a battery fault
        self._walk: _Walk | None = None
        self._silence: tuple[datetime, datetime] | None = None  # (start, end) of the current silence
        self._incidents: list[Incident] = []
        self._next_report = start + timedelta(seconds=math.floor(rng.uniform(0, self.config.interval_s)))
        walk_now = rng.random() < self.config.initial_walk_probability
        self._next_walk = start if walk_now else self._after(start, self._mean_walk_gap_s())
        rates = self.config.rates
        self._next_sos = self._after_rate(start, rates.sos_per_hour)
        self._next_silence = self._after_rate(start, rates.silence_per_hour)
        self._next_battery_fault = self._after_rate(start, rates.low_battery_per_day / 24)

    # -- public -------------------------------------------------------------------------------------

    @property
    def home(self) -> LatLon:
        return self.streets.position(self.wearer.home)

    @property
    def battery_pct(self) -> float:
        return self._battery

    @property
    def walking(self) -> bool:
        return self._walk is not None

    def next_report_at(self) -> datetime:
        """Earliest time the next report may be due (a wake-up hint for the driver, never late)."""
        regular = self._silence[1] if self._silence else self._next_report
        return min(regular, self._next_sos)

    def true_position(self, t: datetime) -> LatLon:
        """Where the wearer really is at ``t``, for ``t`` at or after the last ``step``."""
        return self._true_state(_as_utc(t))[0]

    def is_charging(self, t: datetime) -> bool:
        return self._in_charge_window(_as_utc(t)) and self._walk is None and self._fast_drain is None

    def step(self, now: datetime) -> list[Report]:
        """Advance the simulation to ``now`` and return the reports due meanwhile, in time order."""
        now = _as_utc(now)
        reports: list[Report] = []
        while True:
            when, handler = self._next_event()
            if when > now:
                return reports
            self._advance_battery(when)
            handler(when, reports)

    def take_incidents(self) -> list[Incident]:
        """The incidents recorded since the previous call, in time order."""
        taken = sorted(self._incidents, key=lambda incident: incident.time)
        self._incidents.clear()
        return taken

    # -- event loop ---------------------------------------------------------------------------------

    def _next_event(self) -> tuple[datetime, Handler]:
        # On ties the first entry wins, which keeps the order of same-second events deterministic.
        candidates: list[tuple[datetime, Handler]] = [
            (self._walk.end if self._walk else self._next_walk, self._on_walk_transition),
            (self._next_silence, self._on_silence),
            (self._silence[1] if self._silence else self._next_report, self._on_report),
            (self._next_sos, self._on_sos),
            (self._next_battery_fault, self._on_battery_fault),
        ]
        return min(candidates, key=lambda candidate: candidate[0])

    def _on_report(self, t: datetime, reports: list[Report]) -> None:
        if self._silence is not None:
            self._record(t, "silence_end", {"duration_s": (t - self._silence[0]).total_seconds()})
            self._silence = None
        alarm = None
        if self._next_sos == t:  # an SOS on a report tick rides on that report: one report per second
            alarm = self._fire_sos(t)
        reports.append(self._report(t, alarm))
        self._next_report = t + timedelta(seconds=self.config.interval_s)

    def _on_sos(self, t: datetime, reports: list[Report]) -> None:
        if self._silence is not None:
            # A silent device cannot send the press: skip it rather than log a truth nobody could see.
            self._next_sos = self._after_rate(t, self.config.rates.sos_per_hour)
            return
        reports.append(self._report(t, self._fire_sos(t)))

    def _fire_sos(self, t: datetime) -> str:
        self._record(t, "sos", {"walking": self._walk is not None})
        self._next_sos = self._after_rate(t, self.config.rates.sos_per_hour)
        return "sos"

    def _on_silence(self, t: datetime, reports: list[Report]) -> None:
        duration_s = float(self._rng.randint(20 * 60, 120 * 60))
        end = t + timedelta(seconds=duration_s)
        self._silence = (t, end)
        self._record(t, "silence_start", {"duration_s": duration_s, "until": _iso(end)})
        # The next silence is drawn from the end of this one, so silences never overlap.
        self._next_silence = self._after_rate(end, self.config.rates.silence_per_hour)

    def _on_battery_fault(self, t: datetime, reports: list[Report]) -> None:
        self._next_battery_fault = self._after_rate(t, self.config.rates.low_battery_per_day / 24)
        if self._fast_drain is not None or self._battery < LOW_BATTERY_PCT + 5:
            return
        # Drain fast enough to cross the threshold 30-90 minutes from now.
        hours = self._rng.uniform(0.5, 1.5)
        self._fast_drain = ((self._battery - LOW_BATTERY_PCT + 1) / hours, t)

    def _on_walk_transition(self, t: datetime, reports: list[Report]) -> None:
        if self._walk is not None:
            self._record(t, "walk_end", {"distance_m": round(self._walk.cumulative_m[-1], 1)})
            self._walk = None
            self._next_walk = self._after(t, self._mean_walk_gap_s())
        elif _WALK_START_HOURS[0] * 60 <= _local_minute(t) < _WALK_START_HOURS[1] * 60:
            self._start_walk(t)
        else:
            self._next_walk = self._next_morning(t)

    def _start_walk(self, t: datetime) -> None:
        destination = self._pick_destination()
        if destination is None:  # a home cut off at the map edge: stay in, try again later
            self._next_walk = self._after(t, self._mean_walk_gap_s())
            return
        route = self.streets.route(self.wearer.home, destination)
        speed = self.wearer.walk_speed_mps * self._rng.uniform(0.9, 1.1)
        dwell_s = self._rng.choice([0.0, 0.0, self._rng.uniform(60.0, 900.0)])
        self._walk = _make_walk(t, route, speed, dwell_s)
        details = {
            "destination": [route[-1][0], route[-1][1]],
            "one_way_m": round(self._walk.one_way_m, 1),
            "speed_mps": round(speed, 2),
            "dwell_s": round(dwell_s),
            "until": _iso(self._walk.end),
        }
        self._record(t, "walk_start", details)

    def _pick_destination(self) -> int | None:
        """A node 300-1500 m away along the streets, or None when there is none.

        Searched anew for each walk (some 30 ms): keeping the thousands of candidates per wearer would
        cost far more memory than a large fleet should, and computing them up front slows its start.
        """
        reach = self.streets.reachable_within(self.wearer.home, MAX_WALK_M)
        candidates = [node for node, d in reach.items() if d >= MIN_WALK_M]
        return self._rng.choice(candidates) if candidates else None

    # -- state --------------------------------------------------------------------------------------

    def _true_state(self, t: datetime) -> tuple[LatLon, float, float]:
        if self._walk is not None and t >= self._walk.start:
            return self._walk.state(t)
        return self.home, 0.0, 0.0

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

    def _on_low_battery(self, crossed: datetime) -> None:
        details: dict[str, Any] = {"threshold_pct": LOW_BATTERY_PCT, "injected": self._fast_drain is not None}
        if self._fast_drain is not None:
            details["fault_since"] = _iso(self._fast_drain[1])
        # The fault is one bad discharge: back to the normal drain once the threshold is crossed.
        self._fast_drain = None
        self._record(crossed, "low_battery", details)

    def _record(self, t: datetime, kind: IncidentKind, details: dict[str, Any]) -> None:
        lat, lon = self._true_state(t)[0]
        self._incidents.append(Incident(t, self.unique_id, kind, round(lat, 6), round(lon, 6), details))

    # -- measurements -------------------------------------------------------------------------------

    def _report(self, t: datetime, alarm: str | None) -> Report:
        position, speed_mps, bearing = self._true_state(t)
        outdoors = self._walk is not None
        accuracy = self._rng.uniform(5.0, 10.0) if outdoors else self._rng.uniform(15.0, 40.0)
        latitude, longitude = self._gps_fix(position, accuracy)
        if speed_mps > 0:
            speed_mps *= self._rng.uniform(0.85, 1.15)
            bearing = (bearing + self._rng.gauss(0.0, 10.0)) % 360.0
        else:
            speed_mps = abs(self._rng.gauss(0.0, 0.1))  # a still receiver still reads some speed
            bearing = 0.0
        altitude = self.wearer.altitude_m + self._rng.gauss(0.0, 3.0 if outdoors else 8.0)
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
        )

    def _gps_fix(self, position: LatLon, accuracy_m: float) -> LatLon:
        """A noisy fix whose error is consistent with the reported accuracy (a 68 % radius)."""
        if self._rng.random() < self.config.wild_fix_probability:
            # The receiver still claims its usual accuracy: that is what makes such a fix wild.
            angle = self._rng.uniform(0.0, 2 * math.pi)
            distance = self._rng.uniform(150.0, 500.0)
            return offset(position, distance * math.sin(angle), distance * math.cos(angle))
        sigma = accuracy_m / 1.51  # per-axis sigma whose 2-D 68 % radius is accuracy_m
        return offset(position, self._rng.gauss(0.0, sigma), self._rng.gauss(0.0, sigma))

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
    return Wearer(
        home=streets.random_node(rng),
        walk_speed_mps=rng.uniform(0.8, 1.4),
        drain_pct_h=rng.uniform(0.5, 1.0),
        charge_from_min=rng.randint(21 * 60, 23 * 60),
        charge_until_min=rng.randint(6 * 60 + 30, 8 * 60),
        altitude_m=rng.uniform(low, high),
    )


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
