"""Falls confirmed on the server from the bracelet's motion window.

A device that suspects a fall (its own impact threshold) may send the accelerometer window around it, with
or without raising its fall alarm. :func:`judge_window` runs the fall classifier over the window and writes
its verdict into the reading's extras, which the alarms detector reads:

- the classifier finds a fall: the reading counts as a fall alarm (``fall_verdict = "confirmed"``), even if
  the device did not raise one, and the ``fall`` event carries the score;
- it finds none: a device fall alarm on that reading is set aside (``"rejected"``) and a ``fall_rejected``
  event records why no alert was opened (the score), for whoever reviews the wearer's day;
- the window cannot be judged (too short, too gappy, corrupt): nothing changes, a device fall alarm still
  opens its alert (``"unjudged"``: a doubtful window must never hide a fall the device reported).

A device fall alarm without a window opens a ``fall`` alert as before. Pure given the scorer: no I/O, no
clock (the reading's own times are used).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

import msgspec

from geosentinel.detect.base import event, reading_position
from geosentinel.model import Alarm, Event, EventKind, ImuWindow, Reading

FALL_VERDICT: Final = "fall_verdict"  # extras key: "confirmed", "rejected" or "unjudged"
FALL_SCORE: Final = "fall_score"  # extras key: the classifier's probability of a fall (0-1)
FALL_WINDOW_ERROR: Final = "fall_window_error"  # extras key: why the window could not be judged
CONFIRMED: Final = "confirmed"
REJECTED: Final = "rejected"
UNJUDGED: Final = "unjudged"


class FallVerdict(Protocol):
    @property
    def probability(self) -> float: ...

    @property
    def is_fall(self) -> bool: ...


# Scores a window; raises ValueError when the window cannot be judged.
FallScorer = Callable[[ImuWindow], FallVerdict]


def judge_window(reading: Reading, scorer: FallScorer) -> tuple[Reading, list[Event]]:
    """The reading with the classifier's verdict on its motion window in its extras, and a
    ``fall_rejected`` event when the verdict sets a fall aside. Readings without a window are returned
    as they are."""
    message = reading.message
    if message.imu is None:
        return reading, []
    extras = dict(message.extras)
    device_alarm = Alarm.FALL in message.alarms
    try:
        verdict = scorer(message.imu)
    except ValueError as exc:
        extras[FALL_VERDICT], extras[FALL_WINDOW_ERROR] = UNJUDGED, str(exc)[:200]
        return _with_extras(reading, extras), []
    score = round(float(verdict.probability), 4)
    extras[FALL_SCORE] = score
    extras[FALL_VERDICT] = CONFIRMED if verdict.is_fall else REJECTED
    events: list[Event] = []
    if not verdict.is_fall:
        lat, lon = reading_position(reading)
        events.append(
            event(
                reading.device, EventKind.FALL_REJECTED, reading.time, reading.received_at, lat, lon,
                fall_score=score, device_alarm=device_alarm,
            )
        )  # fmt: skip
    return _with_extras(reading, extras), events


def _with_extras(reading: Reading, extras: dict[str, str | int | float | bool]) -> Reading:
    return msgspec.structs.replace(reading, message=msgspec.structs.replace(reading.message, extras=extras))


def is_fall_alarm(reading: Reading) -> bool:
    """Whether the reading raises a fall: the device's alarm unless the classifier set it aside, or the
    classifier's own finding."""
    verdict = reading.message.extras.get(FALL_VERDICT) if reading.message.imu is not None else None
    if verdict == CONFIRMED:
        return True
    return verdict != REJECTED and Alarm.FALL in reading.message.alarms
