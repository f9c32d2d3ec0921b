"""Escalation policies: who is told about an open alert, when, and again until someone takes it.

A policy is an ordered list of steps (e.g. the caregiver on duty now, the family after 5 minutes, the
organisation's on-call line after 10), each with its contacts and its delay after the step before. When
the last step has gone out and nobody has acknowledged, the policy starts again from the first step after
``repeat_after_s``, up to ``max_rounds`` rounds in all. Acknowledging or resolving the alert stops it.

Severity decides how hard it pushes. ``critical`` (SOS, fall, bracelet removed) and ``high`` (left a safe
zone, abnormal vital signs, inactivity) go through every step. ``low`` (low battery, power off, device
offline) only tells the first step's contacts, once, and never during the organisation's quiet hours
(by default 21:00-08:00 local time): it waits for the morning. A policy may move a kind to another
severity.

Pure: :func:`plan` takes the escalation's position and the time, and says what to send and when to look
again. The caller persists both in one transaction, so a restart resumes exactly where it was.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

import msgspec

from geosentinel.model import EventKind

Severity = Literal["critical", "high", "low"]

DEFAULT_SEVERITY: Final[dict[EventKind, Severity]] = {
    EventKind.SOS: "critical",
    EventKind.FALL: "critical",
    EventKind.REMOVED: "critical",
    EventKind.GEOFENCE_EXIT: "high",
    EventKind.GEOFENCE_ENTER: "high",
    EventKind.HEART_RATE: "high",
    EventKind.SPO2: "high",
    EventKind.TEMPERATURE: "high",
    EventKind.INACTIVITY: "high",
    EventKind.LOW_BATTERY: "low",
    EventKind.POWER_OFF: "low",
    EventKind.OFFLINE: "low",
}

MAX_STEPS: Final = 20
MAX_DELAY_S: Final = 7 * 24 * 3600


class Step(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Tell ``contacts`` (contact ids), ``delay_s`` seconds after the step before (the first step: after
    the alert opened)."""

    contacts: Annotated[list[str], msgspec.Meta(min_length=1, max_length=50)]
    delay_s: Annotated[int, msgspec.Meta(ge=0, le=MAX_DELAY_S)] = 0


class QuietHours(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Local times (the organisation's zone) between which low-severity alerts wait."""

    start: Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "21:00"
    end: Annotated[str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "08:00"


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    steps: Annotated[list[Step], msgspec.Meta(min_length=1, max_length=MAX_STEPS)]
    repeat_after_s: Annotated[int, msgspec.Meta(ge=60, le=MAX_DELAY_S)] | None = 600
    max_rounds: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    quiet_hours: QuietHours | None = msgspec.field(default_factory=QuietHours)
    severity: dict[EventKind, Severity] = msgspec.field(default_factory=dict)  # overrides by kind

    def severity_of(self, kind: EventKind) -> Severity:
        return self.severity.get(kind) or DEFAULT_SEVERITY.get(kind, "high")


class PolicyError(ValueError):
    """A policy document that cannot be used (the message says why)."""


_decoder = msgspec.json.Decoder(Policy)


def parse_policy(document: bytes | str) -> Policy:
    try:
        return _decoder.decode(document)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise PolicyError(f"invalid escalation policy: {exc}") from exc


def policy_json(policy: Policy) -> str:
    return msgspec.json.encode(policy).decode()


class Position(msgspec.Struct, frozen=True):
    """Where an escalation stands: the next step to send (0-based) in round ``round`` (0-based)."""

    round: int = 0
    step: int = 0


class Plan(msgspec.Struct, frozen=True):
    """What to do now: tell ``contacts`` (empty: nothing due yet, e.g. quiet hours), as step ``sent``
    of the policy; then look again at ``next_due`` from ``next_position`` (``None``: the escalation is
    over, every round sent)."""

    contacts: tuple[str, ...]
    sent: Position | None
    next_position: Position
    next_due: datetime | None


def plan(
    policy: Policy, kind: EventKind, position: Position, due: datetime, now: datetime, zone: ZoneInfo
) -> Plan:
    """The step due at ``due`` (≤ ``now``) from ``position``, and when the next one is due.

    The next step is timed from ``due`` (when this step was due), not from ``now``, so a service that was
    down or busy for a while does not push every later step back: it sends what is overdue in turn, each
    at its own due time. A low-severity alert due during quiet hours is put off to their end.
    """
    if now.tzinfo is None or due.tzinfo is None:
        raise ValueError("naive datetime: escalations only take tz-aware times")
    severity = policy.severity_of(kind)
    if severity == "low":
        if policy.quiet_hours is not None and _quiet(policy.quiet_hours, now, zone):
            return Plan((), None, position, _quiet_end(policy.quiet_hours, now, zone))
        return Plan(tuple(policy.steps[0].contacts), position, Position(1, 0), None)
    if position.step >= len(policy.steps):  # the policy lost steps since: this round is over
        position = Position(position.round, len(policy.steps) - 1)
    step = policy.steps[position.step]
    following = position.step + 1
    if following < len(policy.steps):
        return Plan(
            tuple(step.contacts), position, Position(position.round, following),
            due + timedelta(seconds=policy.steps[following].delay_s),
        )  # fmt: skip
    if policy.repeat_after_s is None or position.round + 1 >= policy.max_rounds:
        return Plan(tuple(step.contacts), position, Position(position.round + 1, 0), None)
    # Again from the first step; its own delay counts from the repeat.
    again = due + timedelta(seconds=policy.repeat_after_s + policy.steps[0].delay_s)
    return Plan(tuple(step.contacts), position, Position(position.round + 1, 0), again)


def first_due(policy: Policy, opened_at: datetime) -> datetime:
    """When the first step of an alert opened at ``opened_at`` is due."""
    return opened_at + timedelta(seconds=policy.steps[0].delay_s)


def _minutes(value: str) -> int:
    parsed = time.fromisoformat(value)
    return parsed.hour * 60 + parsed.minute


def _quiet(quiet: QuietHours, now: datetime, zone: ZoneInfo) -> bool:
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = _minutes(quiet.start), _minutes(quiet.end)
    if start == end:
        return False
    return start <= minute < end if start < end else minute >= start or minute < end


def _quiet_end(quiet: QuietHours, now: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after ``now`` when quiet hours are over (DST-safe: local wall time resolved in
    the zone, the same day or the next)."""
    local = now.astimezone(zone)
    end = time.fromisoformat(quiet.end)
    for days in (0, 1):
        day = (local + timedelta(days=days)).date()
        candidate = datetime.combine(day, end, tzinfo=zone)
        if candidate > now:
            return candidate.astimezone(now.tzinfo)
    raise AssertionError("quiet hours end within a day")  # pragma: no cover


def default_policy(contacts: list[str]) -> Policy:
    """A policy for an organisation that has set none: every contact at once, again every 10 minutes."""
    return Policy([Step(contacts)])
