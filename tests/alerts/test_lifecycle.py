"""Which status changes an alert allows."""

from __future__ import annotations

import pytest

from geosentinel.alerts.lifecycle import Action, Outcome, TransitionError, stops_escalation, transition
from geosentinel.model import AlertStatus

OPEN, ACK, RESOLVED = AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED


@pytest.mark.parametrize(
    ("status", "action", "outcome", "after"),
    [
        (OPEN, Action.ACKNOWLEDGE, None, ACK),
        (OPEN, Action.RESOLVE, Outcome.FALSE_ALARM, RESOLVED),
        (ACK, Action.RESOLVE, Outcome.ASSISTANCE_AT_HOME, RESOLVED),
        (ACK, Action.REOPEN, None, OPEN),
        (RESOLVED, Action.REOPEN, None, OPEN),
    ],
)
def test_allowed_changes(
    status: AlertStatus, action: Action, outcome: Outcome | None, after: AlertStatus
) -> None:
    assert transition(status, action, outcome) is after


@pytest.mark.parametrize(
    ("status", "action", "outcome", "reason"),
    [
        (ACK, Action.ACKNOWLEDGE, None, "cannot acknowledge an alert that is acknowledged"),
        (RESOLVED, Action.ACKNOWLEDGE, None, "cannot acknowledge an alert that is resolved"),
        (RESOLVED, Action.RESOLVE, Outcome.OTHER, "cannot resolve an alert that is resolved"),
        (OPEN, Action.REOPEN, None, "cannot reopen an alert that is open"),
        (OPEN, Action.RESOLVE, None, "needs an outcome"),
        (OPEN, Action.ACKNOWLEDGE, Outcome.OTHER, "only resolving takes an outcome"),
    ],
)
def test_refused_changes_say_why(
    status: AlertStatus, action: Action, outcome: Outcome | None, reason: str
) -> None:
    with pytest.raises(TransitionError, match=reason):
        transition(status, action, outcome)


def test_only_open_alerts_escalate() -> None:
    assert [stops_escalation(s) for s in (OPEN, ACK, RESOLVED)] == [False, True, True]
