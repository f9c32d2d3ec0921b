"""Score what the platform detected against the simulator's ground truth. Pure: no I/O, no clock.

The truth is the incident log of :mod:`geosentinel.sim.bracelet` (``Incident`` objects, or the JSON lines
:func:`geosentinel.sim.fleet.incident_to_json` writes); the detections are the events the platform raised,
reduced to (device, kind, time). Each truth incident is matched to the first detection of the
corresponding kind for the same device inside the incident's window; detections that no truth explains
are false alerts. The rules, windows and the reasons behind them are in ``docs/detection-scoring.md``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from geosentinel.sim.bracelet import Incident

# Truth kind -> the EventKind value that detects it.
DETECTED_AS: Mapping[str, str] = {
    "sos": "sos",
    "fall": "fall",
    "removed": "removed",
    "geofence_exit": "geofence_exit",
    "vitals": "heart_rate",
    "low_battery": "low_battery",
    "silence_start": "offline",
}
# Kinds whose truth rides on the one report that carries the alarm.
_ALARMS = frozenset({"sos", "fall", "removed"})
# A low battery stays low until the next charge (at most about a day): a repeated alert meanwhile is
# late, not false.
_LOW_BATTERY_LASTS = timedelta(hours=24)
_TEXT_KIND_WIDTH = 15


@dataclass(frozen=True, slots=True)
class Detection:
    """An event the platform raised: ``kind`` is an ``EventKind`` value ("sos", "geofence_exit", ...)."""

    unique_id: str
    kind: str
    time: datetime


@dataclass(frozen=True, slots=True)
class ScoringWindows:
    """How long after (or before) a truth incident its detection may come. Seconds."""

    alarm_before_s: float = 5.0  # the device clock may run a little ahead of the truth
    alarm_after_s: float = 60.0
    geofence_before_s: float = 0.0
    geofence_after_s: float = 600.0
    heart_rate_after_s: float = 900.0
    low_battery_after_s: float = 900.0  # TCP devices send their battery in 5-minute heartbeats only
    offline_after_intervals: float = 3.0
    offline_target_intervals: float = 2.0  # "offline detected within 2 x the expected interval"
    interval_s: float = 30.0  # the expected reporting interval, when a silence does not say
    false_geofence_lookback_s: float = 900.0
    # An incident (other than an alarm, which is never injected into a silence) is not scored when the
    # device was silent at any time within this long after it: the platform had nothing to see.
    silence_mask_s: float = 180.0


@dataclass(frozen=True, slots=True)
class AcceptanceTargets:
    """The issue's acceptance criteria; see :meth:`ScoreReport.checks`."""

    min_recall: float = 0.995
    recall_kinds: tuple[str, ...] = ("sos", "fall", "geofence_exit")
    max_false_geofence_per_wearer_day: float = 0.05
    max_false_alarms: int = 0  # false SOS and fall alerts
    min_offline_within_target: float = 0.995
    min_wearer_days: float = 200.0


@dataclass(frozen=True, slots=True)
class Miss:
    unique_id: str
    kind: str
    time: datetime


@dataclass(frozen=True, slots=True)
class KindScore:
    """Recall and latency of one truth kind. Latencies are seconds from the incident (offline: from the
    device's last report before it fell silent)."""

    kind: str
    detection_kind: str
    truth: int  # incidents scored
    masked: int  # not scored: hidden by a silence, or their window not over by the end of the run
    detected: int
    latencies_s: tuple[float, ...]
    missed: tuple[Miss, ...]
    within_target: int | None = None  # offline: detections within the target latency

    @property
    def recall(self) -> float | None:
        return self.detected / self.truth if self.truth else None

    @property
    def latency_p50_s(self) -> float | None:
        return _percentile(self.latencies_s, 50)

    @property
    def latency_p95_s(self) -> float | None:
        return _percentile(self.latencies_s, 95)

    @property
    def latency_max_s(self) -> float | None:
        return max(self.latencies_s) if self.latencies_s else None

    @property
    def within_target_share(self) -> float | None:
        """Offline: the share of silences detected within the target latency (misses count against)."""
        if self.within_target is None or not self.truth:
            return None
        return self.within_target / self.truth

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "detection_kind": self.detection_kind,
            "truth": self.truth,
            "masked": self.masked,
            "detected": self.detected,
            "recall": self.recall,
            "latency_p50_s": self.latency_p50_s,
            "latency_p95_s": self.latency_p95_s,
            "latency_max_s": self.latency_max_s,
            "missed": [{"unique_id": m.unique_id, "time": _iso(m.time)} for m in self.missed],
        }
        if self.within_target is not None:
            out["within_target"] = self.within_target
            out["within_target_share"] = self.within_target_share
        return out


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    value: float | None
    target: str
    ok: bool


@dataclass(frozen=True, slots=True)
class ScoreReport:
    wearer_days: float
    kinds: tuple[KindScore, ...]
    false_alerts: Mapping[str, tuple[Detection, ...]]  # detection kind -> detections no truth explains
    unscored: Mapping[str, int] = field(default_factory=dict)  # detection kinds the truth cannot judge
    offline_target_intervals: float = 2.0

    def kind(self, kind: str) -> KindScore | None:
        return next((k for k in self.kinds if k.kind == kind), None)

    def false_count(self, detection_kind: str) -> int:
        return len(self.false_alerts.get(detection_kind, ()))

    def false_per_wearer_day(self, detection_kind: str) -> float | None:
        if self.wearer_days <= 0:
            return None
        return self.false_count(detection_kind) / self.wearer_days

    def checks(self, targets: AcceptanceTargets = AcceptanceTargets()) -> tuple[Check, ...]:
        """Each acceptance criterion with its value; a kind without any truth fails its recall check."""
        days = self.wearer_days
        out = [Check("wearer-days", days, f">= {targets.min_wearer_days:g}", days >= targets.min_wearer_days)]
        for name in targets.recall_kinds:
            score = self.kind(name)
            recall = score.recall if score else None
            ok = recall is not None and recall >= targets.min_recall
            out.append(Check(f"{name} recall", recall, f">= {targets.min_recall:.1%}", ok))
        per_day = self.false_per_wearer_day("geofence_exit")
        limit = targets.max_false_geofence_per_wearer_day
        ok = per_day is not None and per_day <= limit
        out.append(Check("false geofence alerts per wearer-day", per_day, f"<= {limit:g}", ok))
        for name in ("sos", "fall"):
            count = self.false_count(name)
            ok = count <= targets.max_false_alarms
            out.append(Check(f"false {name} alerts", count, f"<= {targets.max_false_alarms}", ok))
        offline = self.kind("silence_start")
        share = offline.within_target_share if offline else None
        minimum = targets.min_offline_within_target
        ok = share is not None and share >= minimum
        name = f"offline within {self.offline_target_intervals:g} x interval"
        out.append(Check(name, share, f">= {minimum:.1%}", ok))
        return tuple(out)

    def passed(self, targets: AcceptanceTargets = AcceptanceTargets()) -> bool:
        return all(check.ok for check in self.checks(targets))

    def to_json(self, targets: AcceptanceTargets = AcceptanceTargets()) -> dict[str, Any]:
        return {
            "wearer_days": self.wearer_days,
            "kinds": [k.to_json() for k in self.kinds],
            "false_alerts": {
                kind: {
                    "count": len(found),
                    "per_wearer_day": self.false_per_wearer_day(kind),
                    "detections": [{"unique_id": d.unique_id, "time": _iso(d.time)} for d in found],
                }
                for kind, found in sorted(self.false_alerts.items())
            },
            "unscored": dict(sorted(self.unscored.items())),
            "acceptance": [
                {"name": c.name, "value": c.value, "target": c.target, "ok": c.ok}
                for c in self.checks(targets)
            ],
            "passed": self.passed(targets),
        }

    def to_text(self, targets: AcceptanceTargets = AcceptanceTargets()) -> str:
        """A plain-text report (monospace tables; prints as is in a terminal or inside Rich)."""
        w = _TEXT_KIND_WIDTH
        lines = [
            f"Detection score over {self.wearer_days:g} wearer-days",
            "",
            f"{'truth':<{w}}{'detected as':<{w}}{'truth':>7}{'masked':>8}{'found':>7}{'recall':>9}"
            f"{'p50 s':>9}{'p95 s':>9}{'max s':>9}",
        ]
        for k in self.kinds:
            lines.append(
                f"{k.kind:<{w}}{k.detection_kind:<{w}}{k.truth:>7}{k.masked:>8}{k.detected:>7}"
                f"{_pct(k.recall):>9}{_num(k.latency_p50_s):>9}{_num(k.latency_p95_s):>9}"
                f"{_num(k.latency_max_s):>9}"
            )
        offline = self.kind("silence_start")
        if offline is not None and offline.truth:
            lines.append(
                f"offline detected within {self.offline_target_intervals:g} x interval of the last report: "
                f"{_pct(offline.within_target_share)}"
            )
        lines += ["", f"{'false alerts':<{w}}{'count':>7}{'per wearer-day':>16}"]
        for kind in sorted(set(DETECTED_AS.values())):
            per_day = self.false_per_wearer_day(kind)
            lines.append(f"{kind:<{w}}{self.false_count(kind):>7}{_num(per_day, 3):>16}")
        if self.unscored:
            others = ", ".join(f"{kind} {count}" for kind, count in sorted(self.unscored.items()))
            lines.append(f"not scored (no truth to compare with): {others}")
        lines += ["", "acceptance"]
        for check in self.checks(targets):
            value = check.value if isinstance(check.value, int) else _num(check.value, 4)
            lines.append(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {value} (target {check.target})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True, slots=True)
class _Truth:
    unique_id: str
    kind: str
    time: datetime
    details: Mapping[str, Any]


def score(
    incidents: Iterable[Incident | Mapping[str, Any]],
    detections: Iterable[Detection],
    wearer_days: float,
    windows: ScoringWindows = ScoringWindows(),
    end: datetime | None = None,
) -> ScoreReport:
    """Match the truth to the detections; see the module docstring.

    ``end``: the end of the observed run. An incident whose window is not over by then is not scored
    (counted as masked): the platform may still detect it.
    """
    truths = [_truth(i) for i in incidents]
    found: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    unscored: dict[str, int] = defaultdict(int)
    all_detections = list(detections)
    for detection in all_detections:
        _aware(detection.time, "detection time")
        if detection.kind in _DETECTION_KINDS:
            found[detection.unique_id, detection.kind].append(detection.time.astimezone(UTC))
        else:
            unscored[detection.kind] += 1
    for times in found.values():
        times.sort()
    silences = _silences(truths)
    end_utc = None if end is None else _aware(end, "end").astimezone(UTC)
    kinds = tuple(
        _score_kind(kind, [t for t in truths if t.kind == kind], found, silences, windows, end_utc)
        for kind in DETECTED_AS
    )
    false_alerts = _false_alerts(truths, all_detections, windows)
    return ScoreReport(wearer_days, kinds, false_alerts, dict(unscored), windows.offline_target_intervals)


_DETECTION_KINDS = frozenset(DETECTED_AS.values())


def _score_kind(
    kind: str,
    truths: list[_Truth],
    found: Mapping[tuple[str, str], list[datetime]],
    silences: Mapping[str, list[tuple[datetime, datetime]]],
    windows: ScoringWindows,
    end: datetime | None,
) -> KindScore:
    detection_kind = DETECTED_AS[kind]
    scored = masked = detected = 0
    within: int | None = 0 if kind == "silence_start" else None
    latencies: list[float] = []
    missed: list[Miss] = []
    for truth in sorted(truths, key=lambda t: (t.time, t.unique_id)):
        lo, hi = _window(truth, windows)
        if (end is not None and hi > end) or _masked(truth, silences.get(truth.unique_id, ()), windows):
            masked += 1
            continue
        scored += 1
        times = found.get((truth.unique_id, detection_kind), [])
        i = bisect_left(times, lo)
        if i == len(times) or times[i] > hi:
            missed.append(Miss(truth.unique_id, kind, truth.time))
            continue
        detected += 1
        latency = (times[i] - _latency_origin(truth)).total_seconds()
        latencies.append(latency)
        if within is not None and latency <= windows.offline_target_intervals * _interval(truth, windows):
            within += 1
    return KindScore(kind, detection_kind, scored, masked, detected, tuple(latencies), tuple(missed), within)


def _window(truth: _Truth, windows: ScoringWindows) -> tuple[datetime, datetime]:
    """Where the detection of ``truth`` must lie, both ends included."""
    t = truth.time
    if truth.kind in _ALARMS:
        return t - _s(windows.alarm_before_s), t + _s(windows.alarm_after_s)
    if truth.kind == "geofence_exit":
        return t - _s(windows.geofence_before_s), t + _s(windows.geofence_after_s)
    if truth.kind == "vitals":
        return t, t + _s(windows.heart_rate_after_s)
    if truth.kind == "low_battery":
        # From the start of the fault's fast drain: a platform may see the drain coming.
        since = _time_detail(truth, "fault_since") or t
        return min(since, t), t + _s(windows.low_battery_after_s)
    if truth.kind == "silence_start":
        return t, t + _s(windows.offline_after_intervals * _interval(truth, windows))
    raise ValueError(f"no window for truth kind {truth.kind!r}")


def _latency_origin(truth: _Truth) -> datetime:
    if truth.kind == "silence_start":
        return _time_detail(truth, "last_report") or truth.time
    return truth.time


def _interval(truth: _Truth, windows: ScoringWindows) -> float:
    value = truth.details.get("interval_s")
    return float(value) if isinstance(value, int | float) and value > 0 else windows.interval_s


def _masked(truth: _Truth, silences: Iterable[tuple[datetime, datetime]], windows: ScoringWindows) -> bool:
    if truth.kind == "silence_start":
        return False
    # An alarm rides on a report sent before any later silence: only a silence at that very time hides it.
    after = _s(0 if truth.kind in _ALARMS else windows.silence_mask_s)
    t = truth.time
    return any(start <= t + after and t < end for start, end in silences)


def _silences(truths: Iterable[_Truth]) -> dict[str, list[tuple[datetime, datetime]]]:
    out: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for truth in truths:
        if truth.kind == "silence_start":
            out[truth.unique_id].append((truth.time, _until(truth)))
    return out


def _until(truth: _Truth) -> datetime:
    """The end of a truth with a duration (silence, heart-rate anomaly, zone exit, walk)."""
    until = _time_detail(truth, "until")
    if until is not None:
        return until
    duration = truth.details.get("duration_s")
    return truth.time + _s(float(duration) if isinstance(duration, int | float) else 0.0)


# -- false alerts ---------------------------------------------------------------------------------------


def _false_alerts(
    truths: list[_Truth], detections: list[Detection], windows: ScoringWindows
) -> dict[str, tuple[Detection, ...]]:
    """Detections of a scored kind that no truth explains, per detection kind."""
    explains: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for truth in truths:
        for kind, span in _explained_spans(truth, windows):
            explains[truth.unique_id, kind].append(span)
    out: dict[str, list[Detection]] = {kind: [] for kind in sorted(_DETECTION_KINDS)}
    for detection in sorted(detections, key=lambda d: (d.time, d.unique_id)):
        if detection.kind not in _DETECTION_KINDS:
            continue
        t = detection.time.astimezone(UTC)
        spans = explains.get((detection.unique_id, detection.kind), ())
        if not any(lo <= t <= hi for lo, hi in spans):
            out[detection.kind].append(detection)
    return {kind: tuple(found) for kind, found in out.items()}


def _explained_spans(truth: _Truth, windows: ScoringWindows) -> list[tuple[str, tuple[datetime, datetime]]]:
    """(detection kind, span) pairs: a detection of that kind inside the span is not false.

    A truth with a duration explains detections for as long as it lasts plus its matching window (a
    repeated or late alert about the same incident is not a false one); an alarm explains its window.
    """
    if truth.kind in ("walk_start", "geofence_exit"):
        return [("geofence_exit", span) for span in _outside_spans(truth, windows)]
    kind = DETECTED_AS.get(truth.kind)
    if kind is None:
        return []
    lo, hi = _window(truth, windows)
    if truth.kind in ("vitals", "silence_start"):
        hi = max(hi, _until(truth) + (hi - truth.time))
    elif truth.kind == "low_battery":
        hi = max(hi, truth.time + _LOW_BATTERY_LASTS)
    return [(kind, (lo, hi))]


def _outside_spans(truth: _Truth, windows: ScoringWindows) -> list[tuple[datetime, datetime]]:
    """When a geofence_exit alert is not false: while the wearer is truly outside the zone (an exit or
    an ambiguous poke-out alike) and up to the lookback after.

    Walks list their excursions; a walk from an older log without them counts as outside throughout.
    """
    before, lookback = _s(windows.geofence_before_s), _s(windows.false_geofence_lookback_s)
    if truth.kind == "geofence_exit":
        return [(truth.time - before, _until(truth) + lookback)]
    excursions = truth.details.get("zone_exits")
    if not isinstance(excursions, list):
        return [(truth.time, _until(truth) + lookback)]
    return [
        (_parse_time(e["from"]) - before, _parse_time(e["until"]) + lookback)
        for e in excursions
        if isinstance(e, Mapping)
    ]


# -- helpers --------------------------------------------------------------------------------------------


def _truth(item: Incident | Mapping[str, Any]) -> _Truth:
    if isinstance(item, Incident):
        return _Truth(
            item.unique_id, item.kind, _aware(item.time, "incident time").astimezone(UTC), item.details
        )
    details = item.get("details") or {}
    return _Truth(str(item["unique_id"]), str(item["kind"]), _parse_time(item["time"]), details)


def _parse_time(value: object) -> datetime:
    if isinstance(value, datetime):
        return _aware(value, "truth time").astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 time, got {value!r}")
    return _aware(datetime.fromisoformat(value), "truth time").astimezone(UTC)


def _time_detail(truth: _Truth, key: str) -> datetime | None:
    value = truth.details.get(key)
    return None if value is None else _parse_time(value)


def _aware(t: datetime, what: str) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"naive {what}: scoring only takes tz-aware times")
    return t


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _percentile(values: tuple[float, ...], p: float) -> float | None:
    """Nearest-rank percentile: always one of the values (no interpolation between two latencies)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
