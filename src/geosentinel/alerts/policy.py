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

A step names contacts by id, or by their place in the wearer's own list (``wearer:1``, ``wearer:2``: the
French téléassistance charter's two contacts per subscriber, see :mod:`.templates`). A step that names
nobody for this wearer (no second contact) gives its turn to the next step at once, so a missing contact
never delays the ones after it.

A fall waits ``fall_grace_s`` (default 60 s) before its first step, as wrist devices do before calling,
so a wearer can cancel a false alarm; the alert is open (and shown) meanwhile. An SOS never waits.

Pure: :func:`plan` takes the escalation's position and the time, and says what to send and when to look
again. The caller persists both in one transaction, so a restart resumes exactly where it was.
"""

from __future__ import annotations

from collections.abc import Sequence
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
DEFAULT_FALL_GRACE_S: Final = 60
MAX_FALL_GRACE_S: Final = 600
WEARER_CONTACT: Final = "wearer:"  # ``wearer:N``: the wearer's N-th own contact (1-based)
# A contact reference: an id (uuid) or ``wearer:N``.
ContactRef = Annotated[str, msgspec.Meta(pattern=r"^(wearer:[1-9]|[0-9A-Za-z-]{1,36})$")]


class Step(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Tell ``contacts`` (contact ids or ``wearer:N``), ``delay_s`` seconds after the step before (the first
    step: after the alert opened)."""

    contacts: Annotated[list[ContactRef], msgspec.Meta(min_length=1, max_length=50)]
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
    fall_grace_s: Annotated[int, msgspec.Meta(ge=0, le=MAX_FALL_GRACE_S)] = DEFAULT_FALL_GRACE_S

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
    policy: Policy,
    kind: EventKind,
    position: Position,
    due: datetime,
    now: datetime,
    zone: ZoneInfo,
    wearer_contacts: Sequence[str] = (),
) -> Plan:
    """The step due at ``due`` (≤ ``now``) from ``position``, and when the next one is due.

    The next step is timed from ``due`` (when this step was due), not from ``now``, so a service that was
    down or busy for a while does not push every later step back: it sends what is overdue in turn, each
    at its own due time. A low-severity alert due during quiet hours is put off to their end.
    ``wearer_contacts`` (the wearer's own contacts, in order) resolve the steps' ``wearer:N`` references;
    a step left with nobody gives its turn to the next one.
    """
    if now.tzinfo is None or due.tzinfo is None:
        raise ValueError("naive datetime: escalations only take tz-aware times")
    severity = policy.severity_of(kind)
    if severity == "low":
        if policy.quiet_hours is not None and _quiet(policy.quiet_hours, now, zone):
            return Plan((), None, position, _quiet_end(policy.quiet_hours, now, zone))
        first = _first_reaching(policy, 0, wearer_contacts)
        step_index = 0 if first is None else first
        contacts = resolve(policy.steps[step_index].contacts, wearer_contacts)
        return Plan(contacts, Position(position.round, step_index), Position(1, 0), None)
    index = min(position.step, len(policy.steps) - 1)  # the policy may have lost steps since
    reaching = _first_reaching(policy, index, wearer_contacts)
    if reaching is None:  # nobody left in this round: it ends now
        index, contacts = len(policy.steps) - 1, ()
    else:
        index, contacts = reaching, resolve(policy.steps[reaching].contacts, wearer_contacts)
    sent = Position(position.round, index)
    following = index + 1
    if following < len(policy.steps):
        return Plan(
            contacts, sent, Position(position.round, following),
            due + timedelta(seconds=policy.steps[following].delay_s),
        )  # fmt: skip
    if policy.repeat_after_s is None or position.round + 1 >= policy.max_rounds:
        return Plan(contacts, sent, Position(position.round + 1, 0), None)
    # Again from the first step; its own delay counts from the repeat.
    again = due + timedelta(seconds=policy.repeat_after_s + policy.steps[0].delay_s)
    return Plan(contacts, sent, Position(position.round + 1, 0), again)


def resolve(refs: Sequence[str], wearer_contacts: Sequence[str]) -> tuple[str, ...]:
    """Contact ids for a step's references (``wearer:N`` beyond the wearer's list: nobody), deduplicated."""
    ids: list[str] = []
    for ref in refs:
        if ref.startswith(WEARER_CONTACT):
            rank = int(ref[len(WEARER_CONTACT) :])
            if rank <= len(wearer_contacts):
                ids.append(wearer_contacts[rank - 1])
        else:
            ids.append(ref)
    return tuple(dict.fromkeys(ids))


def _first_reaching(policy: Policy, start: int, wearer_contacts: Sequence[str]) -> int | None:
    """The first step from ``start`` that reaches somebody for this wearer."""
    for index in range(start, len(policy.steps)):
        if resolve(policy.steps[index].contacts, wearer_contacts):
            return index
    return None


def first_due(policy: Policy, kind: EventKind, opened_at: datetime) -> datetime:
    """When the first step of an alert opened at ``opened_at`` is due (a fall: after its grace period)."""
    grace = policy.fall_grace_s if kind is EventKind.FALL else 0
    return opened_at + timedelta(seconds=policy.steps[0].delay_s + grace)


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
