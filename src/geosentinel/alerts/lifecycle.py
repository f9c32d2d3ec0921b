"""An alert's life: open → acknowledged (someone took it) → resolved (with an outcome), and back.

Pure: :func:`transition` checks a change and says what it is; the store applies it and writes it to the
alert's audit trail with who made it, when and their note.

- *acknowledge*: an open alert only. It stops the escalation: a person has it.
- *resolve*: an open or acknowledged alert, with an outcome (the caregiver may resolve at once).
- *reopen*: a resolved alert (resolved by mistake, or the situation came back) or an acknowledged one
  (the person who took it cannot go after all). Escalation starts again from its first step.
- *arrive*: someone reached the wearer (recorded when it happened, possibly afterwards). An open alert is
  thereby taken (acknowledged); an acknowledged or resolved one keeps its status.
- *cancel*: the wearer cancelled a fall alarm on the device before any contact was told (the fall grace
  period, see :mod:`.policy`): the alert is resolved as a false alarm by the device.

The system reopens an acknowledged alert itself when a new SOS or fall (not a device's repeat of the same
one) arrives while it is acknowledged: the wearer is asking again, so whoever took it has not arrived.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from geosentinel.model import AlertStatus, EventKind


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    ARRIVE = "arrive"
    CANCEL = "cancel"


class Outcome(StrEnum):
    """How an alert ended (the French téléassistance and EN 50134 practice of coding every call)."""

    FALSE_ALARM = "false_alarm"
    REASSURED_BY_PHONE = "reassured_by_phone"
    ASSISTANCE_AT_HOME = "assistance_at_home"
    EMERGENCY_SERVICES = "emergency_services"
    BACK_ONLINE = "back_online"  # the system's: a device came back
    OTHER = "other"


_MOVES: Final[dict[Action, tuple[frozenset[AlertStatus], AlertStatus]]] = {
    Action.ACKNOWLEDGE: (frozenset({AlertStatus.OPEN}), AlertStatus.ACKNOWLEDGED),
    Action.RESOLVE: (frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED}), AlertStatus.RESOLVED),
    Action.REOPEN: (frozenset({AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED}), AlertStatus.OPEN),
    Action.ARRIVE: (frozenset(AlertStatus), AlertStatus.ACKNOWLEDGED),  # resolved stays resolved
    Action.CANCEL: (frozenset({AlertStatus.OPEN}), AlertStatus.RESOLVED),
}
# A person taking the alert: the "acknowledged" instant of the service figures (alerts.service_levels).
TAKING_ACTIONS: Final = frozenset({Action.ACKNOWLEDGE, Action.RESOLVE, Action.ARRIVE})

# New events of these kinds reopen an acknowledged alert (see the module).
REOPENING_KINDS: Final = frozenset({EventKind.SOS, EventKind.FALL})


class TransitionError(ValueError):
    """A change the alert's status does not allow (e.g. acknowledging a resolved alert)."""


def transition(status: AlertStatus, action: Action, outcome: Outcome | None = None) -> AlertStatus:
    """The status after ``action``; raises :class:`TransitionError` when it is not allowed."""
    allowed, after = _MOVES[action]
    if status not in allowed:
        raise TransitionError(f"cannot {action.value} an alert that is {status.value}")
    if action is Action.RESOLVE and outcome is None:
        raise TransitionError("resolving an alert needs an outcome")
    if action is not Action.RESOLVE and outcome is not None:
        raise TransitionError(f"only resolving takes an outcome, not {action.value}")
    if action is Action.ARRIVE and status is AlertStatus.RESOLVED:
        return status
    return after


def wearer_may_cancel(status: AlertStatus, kind: EventKind, first_step_sent: bool) -> bool:
    """A wearer's cancel from the device closes a fall alert only while no contact has been told: after
    that a person is on it, and the cancel is only shown on the alert's timeline."""
    return kind is EventKind.FALL and status is AlertStatus.OPEN and not first_step_sent


def stops_escalation(status: AlertStatus) -> bool:
    return status is not AlertStatus.OPEN
