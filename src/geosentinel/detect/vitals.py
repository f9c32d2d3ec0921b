"""Vital signs outside the wearer's limits: heart rate, SpO2, skin temperature.

Wrist sensors are noisy (a loose strap, a moving arm), so each quantity has its own hysteresis: an
episode is reported after :data:`READINGS_TO_ALERT` consecutive abnormal readings of that quantity, each
within :data:`STREAK_WINDOW` of the previous one, and ends after :data:`READINGS_TO_END` consecutive normal
readings; an episode raises at most one event. One noisy reading therefore never alerts. Values no body
can have (:data:`PLAUSIBLE`) are sensor errors: ignored, they neither start nor break a streak.

Heart rate is also compared with the wearer's own baseline (``profile.heart_rate_baseline``): limits fit
for most people miss a resting 95 bpm in someone who usually sits at 60. The baseline is robust and
bounded: hourly means over the last 7 days (≤ 168 values, plus the hour being accumulated), baseline =
median of those, spread = 1.4826 × MAD (a standard deviation that ignores outliers). Once
:data:`BASELINE_MIN_HOURS` hours are known, ``|hr − baseline| > max(4 × spread, 25 bpm)`` counts as
abnormal, under the same heart-rate hysteresis (``reason="baseline"``; the fixed limits win when both
apply).

The baseline is a *resting* heart rate: walking raises the heart rate by 15-30 bpm, and a baseline rule
that ignored it would alert on every walk (it did: 2.6 false alerts per wearer-day over 200 simulated
days). A reading counts as active when it shows movement (speed above :data:`ACTIVE_SPEED_KMH`) or the
step counter went up; for :data:`RECOVERY` after that, heart rates neither feed the baseline nor are
compared with it (the fixed limits still apply).

Late readings (not after the newest reading of that quantity) are ignored by the hysteresis: replaying an
old value would break or complete a streak out of order. A late heart rate still feeds the baseline when
it falls in the hour being accumulated (completed hours are never reopened); an exact duplicate does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

import msgspec

from geosentinel.detect.base import ReadingDetector, WearerProfile, event, reading_position
from geosentinel.model import Event, EventKind, ExtraValue, Reading

READINGS_TO_ALERT = 2
READINGS_TO_END = 2
STREAK_WINDOW = timedelta(minutes=10)

# Outside these the sensor is wrong, not the wearer (bounds inclusive; a heart rate must be above 0).
PLAUSIBLE: dict[EventKind, tuple[float, float]] = {
    EventKind.HEART_RATE: (0.0, 250.0),
    EventKind.SPO2: (50.0, 100.0),
    EventKind.TEMPERATURE: (25.0, 45.0),
}

BASELINE_HOURS_KEPT = 7 * 24
BASELINE_MIN_HOURS = 24
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution x this = its standard deviation
BASELINE_SPREADS = 4.0
BASELINE_MIN_DEVIATION_BPM = 25.0  # a very steady wearer must not alert on an ordinary 15 bpm change

ACTIVE_SPEED_KMH = 1.5  # faster than shuffling about the flat
RECOVERY = timedelta(minutes=10)  # the heart rate of an elderly walker takes minutes to settle

Finding = dict[str, ExtraValue]  # why a value is abnormal: the details of the event it may raise


class Track(msgspec.Struct, frozen=True, omit_defaults=True):
    """Hysteresis of one quantity."""

    last_time: datetime | None = None  # newest reading of this quantity (older ones are late)
    pending: datetime | None = None  # an abnormal reading waiting for a confirming one
    alerted: bool = False  # in an episode already reported
    normal_run: int = 0  # consecutive normal readings during the episode


class HeartBaseline(msgspec.Struct, frozen=True, omit_defaults=True):
    """The wearer's usual heart rate, from hourly means (hour number since the epoch, mean bpm)."""

    hours: tuple[tuple[int, float], ...] = ()  # completed hours of the last 7 days
    hour: int | None = None  # the hour being accumulated
    total_bpm: float = 0.0
    count: int = 0
    # Computed when an hour completes (not at every reading); None until enough hours are known.
    baseline_bpm: float | None = None
    spread_bpm: float = 0.0


class VitalsState(msgspec.Struct, frozen=True, omit_defaults=True):
    heart_rate: Track = msgspec.field(default_factory=Track)
    spo2: Track = msgspec.field(default_factory=Track)
    temperature: Track = msgspec.field(default_factory=Track)
    baseline: HeartBaseline = msgspec.field(default_factory=HeartBaseline)
    active_until: datetime | None = None  # heart rates before this are explained by exertion
    last_steps: int | None = None
    last_steps_time: datetime | None = None


# --- the wearer's baseline --------------------------------------------------------------------------


def _hour(time: datetime) -> int:
    return int(time.timestamp() // 3600)


def feed(baseline: HeartBaseline, time: datetime, bpm: float) -> HeartBaseline:
    """The baseline after a heart rate measured at ``time`` (ignored if from a completed hour)."""
    hour = _hour(time)
    if baseline.hour == hour:
        return msgspec.structs.replace(baseline, total_bpm=baseline.total_bpm + bpm, count=baseline.count + 1)
    if baseline.hour is not None and hour < baseline.hour:
        return baseline
    hours = baseline.hours
    if baseline.hour is not None and baseline.count:
        # A tenth of a beat is finer than any wrist sensor; rounding keeps the saved state small (it is
        # written with every reading: 168 hours of 17-digit floats were ~4 KB of JSON).
        hours = (*hours, (baseline.hour, round(baseline.total_bpm / baseline.count, 1)))
    hours = tuple(h for h in hours if h[0] > hour - BASELINE_HOURS_KEPT)  # the last 7 days, bounded
    if hours == baseline.hours:
        return HeartBaseline(hours, hour, bpm, 1, baseline.baseline_bpm, baseline.spread_bpm)
    centre, spread = _robust_stats([mean for _, mean in hours])
    return HeartBaseline(hours, hour, bpm, 1, centre, spread)


def _robust_stats(values: list[float]) -> tuple[float | None, float]:
    if len(values) < BASELINE_MIN_HOURS:
        return None, 0.0
    centre = median(values)
    return centre, MAD_TO_SIGMA * median(abs(v - centre) for v in values)


# --- what counts as abnormal --------------------------------------------------------------------------


def _outside(value: float, low: float | None, high: float | None) -> Finding | None:
    if low is not None and value < low:
        return {"value": value, "limit": low, "direction": "low", "reason": "limit"}
    if high is not None and value > high:
        return {"value": value, "limit": high, "direction": "high", "reason": "limit"}
    return None


def _heart_rate(value: float, profile: WearerProfile, baseline: HeartBaseline) -> Finding | None:
    finding = _outside(value, profile.heart_rate_min_bpm, profile.heart_rate_max_bpm)
    centre = baseline.baseline_bpm
    if finding is not None or not profile.heart_rate_baseline or centre is None:
        return finding
    margin = max(BASELINE_SPREADS * baseline.spread_bpm, BASELINE_MIN_DEVIATION_BPM)
    if abs(value - centre) <= margin:
        return None
    high = value > centre
    return {
        "value": value,
        "limit": centre + margin if high else centre - margin,
        "direction": "high" if high else "low",
        "reason": "baseline",
        "baseline": centre,
        "spread": baseline.spread_bpm,
    }


def _spo2(value: float, profile: WearerProfile, baseline: HeartBaseline) -> Finding | None:
    return _outside(value, profile.spo2_min_pct, None)


def _temperature(value: float, profile: WearerProfile, baseline: HeartBaseline) -> Finding | None:
    return _outside(value, profile.temperature_min_c, profile.temperature_max_c)


# --- hysteresis ---------------------------------------------------------------------------------------


def advance(track: Track, time: datetime, abnormal: bool) -> tuple[Track, bool]:
    """The track after an in-order reading, and whether it confirms a new episode."""
    if abnormal:
        if track.alerted:
            return Track(time, None, True, 0), False
        confirmed = track.pending is not None and time - track.pending <= STREAK_WINDOW
        # An unconfirmed abnormal reading too old to pair with this one: this one starts a new streak.
        return Track(time, None if confirmed else time, confirmed, 0), confirmed
    if track.alerted and track.normal_run + 1 < READINGS_TO_END:
        return Track(time, None, True, track.normal_run + 1), False
    return Track(time), False  # a normal reading breaks a streak; enough of them end the episode


# --- the detector -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Quantity:
    kind: EventKind
    field: str  # in VitalsState
    value: Callable[[Reading], float | None]
    judge: Callable[[float, WearerProfile, HeartBaseline], Finding | None]


QUANTITIES = (
    _Quantity(EventKind.HEART_RATE, "heart_rate", lambda r: r.message.heart_rate_bpm, _heart_rate),
    _Quantity(EventKind.SPO2, "spo2", lambda r: r.message.spo2_pct, _spo2),
    _Quantity(EventKind.TEMPERATURE, "temperature", lambda r: r.message.temperature_c, _temperature),
)


def _plausible(kind: EventKind, value: float) -> bool:
    low, high = PLAUSIBLE[kind]
    if kind is EventKind.HEART_RATE:
        return low < value <= high
    return low <= value <= high


class VitalsDetector:
    name: str = "vitals"
    state_type: type[VitalsState] = VitalsState

    def on_reading(
        self, state: VitalsState | None, reading: Reading, now: datetime, profile: WearerProfile
    ) -> tuple[VitalsState, list[Event]]:
        state = _note_activity(state if state is not None else VitalsState(), reading)
        m = reading.message
        if m.heart_rate_bpm is None and m.spo2_pct is None and m.temperature_c is None:
            return state, []  # most readings (fixes, heartbeats) carry no vital sign
        resting = state.active_until is None or reading.time >= state.active_until
        if resting:
            state = _feed_baseline(state, reading)
        # Away from rest, the baseline does not apply (an empty one): only the fixed limits do.
        baseline = state.baseline if resting else HeartBaseline()
        changes: dict[str, Track] = {}
        events: list[Event] = []
        for quantity in QUANTITIES:
            value = quantity.value(reading)
            track: Track = getattr(state, quantity.field)
            if value is None or not _plausible(quantity.kind, value) or _is_late(track, reading):
                continue
            finding = quantity.judge(value, profile, baseline)
            changes[quantity.field], confirmed = advance(track, reading.time, finding is not None)
            if confirmed and finding is not None:
                events.append(_event(reading, quantity.kind, finding))
        return (msgspec.structs.replace(state, **changes) if changes else state), events


def _note_activity(state: VitalsState, reading: Reading) -> VitalsState:
    """Remember until when the heart rate is explained by exertion (movement, or steps counted)."""
    m = reading.message
    moving = m.speed_kmh is not None and m.speed_kmh > ACTIVE_SPEED_KMH and reading.position_ok
    walked = False
    steps, steps_time = state.last_steps, state.last_steps_time
    if m.steps is not None and (steps_time is None or reading.time > steps_time):
        walked = steps is not None and m.steps > steps  # a lower count is the daily reset, not a walk
        steps, steps_time = m.steps, reading.time
    until = state.active_until
    if moving or walked:
        candidate = reading.time + RECOVERY
        until = candidate if until is None or candidate > until else until
    if until == state.active_until and steps == state.last_steps and steps_time == state.last_steps_time:
        return state
    return msgspec.structs.replace(state, active_until=until, last_steps=steps, last_steps_time=steps_time)


def _is_late(track: Track, reading: Reading) -> bool:
    return track.last_time is not None and reading.time <= track.last_time


def _feed_baseline(state: VitalsState, reading: Reading) -> VitalsState:
    bpm = reading.message.heart_rate_bpm
    if bpm is None or not _plausible(EventKind.HEART_RATE, bpm) or reading.time == state.heart_rate.last_time:
        return state  # nothing to learn, or the same reading again
    return msgspec.structs.replace(state, baseline=feed(state.baseline, reading.time, bpm))


def _event(reading: Reading, kind: EventKind, finding: Mapping[str, ExtraValue]) -> Event:
    lat, lon = reading_position(reading)
    return event(reading.device, kind, reading.time, reading.received_at, lat, lon, **finding)


VITALS = VitalsDetector()
_CONTRACT: ReadingDetector[VitalsState] = VITALS
