"""Trial-level detection figures: sensitivity, specificity, F1, by activity, by subject, false alarms/hour.

A trial counts once: it *fired* if the detector fired at least once in it. With ADL-only subjects the
sensitivity is undefined and reported as ``None`` (likewise specificity without ADL trials).

False alarms per hour divide the ADL trials that fired by the ADL time recorded. The ADL clips are short,
scripted and chosen to be hard (clapping, jogging, hopping), while a real day is mostly quiet, and each
clip counts at most once: the figure is a rough, optimistic bound, not a field estimate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Outcome:
    trial_id: str
    subject: str
    is_fall: bool
    activity: str
    duration_s: float
    score: float
    fired: bool


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def summarise(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """The headline figures of a set of trial outcomes."""
    items = list(outcomes)
    falls = [o for o in items if o.is_fall]
    adl = [o for o in items if not o.is_fall]
    hits = sum(o.fired for o in falls)
    false_alarms = sum(o.fired for o in adl)
    fired = hits + false_alarms
    precision = _ratio(hits, fired)
    sensitivity = _ratio(hits, len(falls))
    f1 = None
    if precision is not None and sensitivity is not None and precision + sensitivity > 0:
        f1 = round(2 * precision * sensitivity / (precision + sensitivity), 4)
    adl_hours = sum(o.duration_s for o in adl) / 3600
    return {
        "n_falls": len(falls),
        "n_adl": len(adl),
        "detected_falls": hits,
        "missed_falls": len(falls) - hits,
        "false_alarms": false_alarms,
        "sensitivity": sensitivity,
        "specificity": _ratio(len(adl) - false_alarms, len(adl)),
        "precision": precision,
        "f1": f1,
        "adl_hours": round(adl_hours, 3),
        "false_alarms_per_adl_hour": round(false_alarms / adl_hours, 2) if adl_hours > 0 else None,
    }


def by_activity(outcomes: Iterable[Outcome]) -> dict[str, dict[str, Any]]:
    """Per activity: trials, how many fired, and which (falls missed, ADL that fired)."""
    groups: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.activity].append(outcome)
    table = {}
    for activity in sorted(groups):
        group = groups[activity]
        fired = sum(o.fired for o in group)
        wrong = [o.trial_id for o in group if o.fired != o.is_fall]
        table[activity] = {
            "is_fall": group[0].is_fall,
            "trials": len(group),
            "fired": fired,
            "rate": round(fired / len(group), 4),
            "errors": wrong,  # missed falls, or ADL trials that fired
        }
    return table


def by_subject(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    subjects = sorted({o.subject for o in outcomes})
    return {s: summarise(o for o in outcomes if o.subject == s) for s in subjects}


def report(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Headline figures plus the per-activity and per-subject tables."""
    return {**summarise(outcomes), "by_activity": by_activity(outcomes), "by_subject": by_subject(outcomes)}
