"""Timelines through :func:`process`: time → bad-fix filter → detectors → next device state."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import NoReturn, cast

import msgspec
import pytest

from geosentinel.detect.alarms import ALARMS, AlarmsState
from geosentinel.detect.base import WearerProfile
from geosentinel.model import Alarm, Device, DeviceMessage, Event, EventKind, ImuWindow, Reading
from geosentinel.pipeline import stages
from geosentinel.pipeline.fixfilter import FixLimits
from geosentinel.pipeline.stages import DeviceStates, StageResult, process
from geosentinel.store import Store
from geosentinel.store.base import DeviceState

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LIMITS = FixLimits()
DEVICE = Device("dev-1", "org-1", "wearer-1", "860000000000001", "osmand")
OTHER = Device("dev-2", "org-1", "wearer-2", "860000000000002", "osmand")
VIEUX_PORT = (43.2951, 5.3744)  # Marseille
CANEBIERE = (43.2976, 5.3810)  # 600 m away
ROTONDE = (43.5263, 5.4454)  # Aix-en-Provence, 26.3 km away


class _UntouchedStore:
    """Fails the test if the cache ever reaches for the store: states are pre-applied."""

    def __getattr__(self, name: str) -> NoReturn:
        raise AssertionError(f"the store must not be used (store.{name})")


def states(*known: DeviceState) -> DeviceStates:
    cache = DeviceStates(cast(Store, _UntouchedStore()))
    cache.preload(known)
    return cache


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fix(
    time: datetime | None,
    position: tuple[float, float] | None = VIEUX_PORT,
    *,
    alarms: frozenset[Alarm] = frozenset(),
    battery: float | None = None,
    valid: bool | None = True,
    uid: str = DEVICE.unique_id,
) -> DeviceMessage:
    lat, lon = position if position is not None else (None, None)
    return DeviceMessage(
        uid, "osmand", time=time, latitude=lat, longitude=lon, valid=valid, battery_pct=battery, alarms=alarms
    )


def known(
    fix_time: datetime,
    position: tuple[float, float] = VIEUX_PORT,
    battery_pct: float | None = None,
    detectors: str = "{}",
) -> DeviceState:
    """The committed state after a good fix at ``fix_time``, received at that same instant."""
    return DeviceState(DEVICE.id, fix_time, fix_time, position[0], position[1], battery_pct, detectors)


def run(
    items: Sequence[tuple[Device, DeviceMessage, datetime]], cache: DeviceStates | None = None
) -> StageResult:
    return process(items, cache if cache is not None else states(), LIMITS)


def plain(state: DeviceState) -> DeviceState:
    """The state without its detectors' part (their own tests cover it)."""
    return msgspec.structs.replace(state, detectors="{}")


def only_state(result: StageResult) -> DeviceState:
    assert len(result.states) == 1
    return plain(result.states[0])


# -- one message ----------


def test_first_good_fix_creates_the_state() -> None:
    message = fix(at(-5))
    result = run([(DEVICE, message, T0)])
    assert result.readings == [Reading(DEVICE, message, at(-5), T0, None)]
    assert result.events == []
    assert [plain(s) for s in result.states] == [DeviceState(DEVICE.id, T0, at(-5), *VIEUX_PORT, None)]


def test_good_fix_moves_the_state() -> None:
    before = known(at(-60), battery_pct=80.0)
    result = run([(DEVICE, fix(at(-2), CANEBIERE), T0)], states(before))
    assert result.readings[0].rejected is None
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-2), *CANEBIERE, 80.0)


def test_detector_state_comes_back_from_the_stored_json() -> None:
    """An SOS pressed again 30 s after one recorded before a restart is a repeat of it."""
    saved = f'{{"alarms": {{"last": {{"sos": "{at(-32).isoformat()}"}}}}, "unknown-detector": {{"x": 1}}}}'
    result = run(
        [(DEVICE, fix(at(-2), alarms=frozenset({Alarm.SOS})), T0)], states(known(at(-60), detectors=saved))
    )
    assert [(e.kind, dict(e.details)) for e in result.events] == [(EventKind.SOS, {"repeat": True})]
    assert "unknown-detector" not in result.states[0].detectors


def test_process_does_not_touch_the_cache() -> None:
    before = known(at(-60))
    cache = states(before)
    run([(DEVICE, fix(at(-2), CANEBIERE, alarms=frozenset({Alarm.SOS})), T0)], cache)
    assert cache.get(DEVICE.id).state == before
    assert cache.get(DEVICE.id).detectors == {}


def test_null_island_is_stored_but_does_not_move_the_state() -> None:
    before = known(at(-60))
    message = fix(at(-2), (0.0, 0.0))
    result = run([(DEVICE, message, T0)], states(before))
    assert result.readings == [Reading(DEVICE, message, at(-2), T0, "null_island")]
    assert not result.readings[0].position_ok
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-60), *VIEUX_PORT)


def test_null_island_as_first_message_leaves_no_fix() -> None:
    result = run([(DEVICE, fix(at(-2), (0.0, 0.0)), T0)])
    assert only_state(result) == DeviceState(DEVICE.id, T0)


def test_invalid_fix_does_not_move_the_state() -> None:
    before = known(at(-60))
    result = run([(DEVICE, fix(at(-2), CANEBIERE, valid=False), T0)], states(before))
    assert result.readings[0].rejected == "invalid_fix"
    assert result.readings[0].time == at(-2)
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-60), *VIEUX_PORT)


def test_late_fix_is_stored_but_the_state_keeps_the_newer_fix() -> None:
    before = known(at(-60), CANEBIERE)
    late = fix(at(-600), VIEUX_PORT)  # buffered while offline, delivered now
    result = run([(DEVICE, late, T0)], states(before))
    assert result.readings == [Reading(DEVICE, late, at(-600), T0, None)]
    assert result.readings[0].position_ok
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-60), *CANEBIERE)


def test_fix_at_the_same_time_as_the_state_replaces_it() -> None:
    before = known(at(-60), VIEUX_PORT)
    result = run([(DEVICE, fix(at(-60), CANEBIERE), T0)], states(before))
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-60), *CANEBIERE)


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        pytest.param(at(601), "time_future", id="future"),
        pytest.param(at(86_400 * 365 * 3), "time_future", id="years-ahead"),
        pytest.param(T0 - timedelta(days=365, seconds=1), "time_too_old", id="too-old"),
    ],
)
def test_wild_clock_is_replaced_by_the_receive_time(sent: datetime, reason: str) -> None:
    before = known(at(-60))
    message = fix(sent, CANEBIERE)
    result = run([(DEVICE, message, T0)], states(before))
    assert result.readings == [Reading(DEVICE, message, T0, T0, reason)]
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-60), *VIEUX_PORT)


def test_time_within_the_future_margin_is_kept() -> None:
    result = run([(DEVICE, fix(at(600)), T0)])
    assert result.readings[0].time == at(600)
    assert result.readings[0].rejected is None
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(600), *VIEUX_PORT)


def test_message_without_time_uses_the_receive_time() -> None:
    result = run([(DEVICE, fix(None), T0)])
    assert result.readings[0].time == T0
    assert only_state(result) == DeviceState(DEVICE.id, T0, T0, *VIEUX_PORT)


def test_device_time_zone_is_applied_before_the_filter() -> None:
    paris = Device("dev-1", "org-1", "wearer-1", "860000000000001", "osmand", timezone="Europe/Paris")
    # 12:59 wall time in Paris (winter, +1) is 11:59 UTC: one minute old, not 59 minutes in the future.
    message = fix(datetime(2026, 3, 10, 12, 59, tzinfo=UTC))
    result = run([(paris, message, T0)])
    assert result.readings == [Reading(paris, message, at(-60), T0, None)]


def test_impossible_jump_does_not_move_the_state() -> None:
    before = known(at(-60))
    result = run([(DEVICE, fix(at(-1), ROTONDE), T0)], states(before))
    assert result.readings[0].rejected == "impossible_jump"
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-60), *VIEUX_PORT)


# -- alarms through the pipeline ----------


@pytest.mark.parametrize(
    ("position", "sent", "reason"),
    [
        pytest.param((0.0, 0.0), at(-2), "null_island", id="null-island"),
        pytest.param(CANEBIERE, at(-2), "invalid_fix", id="invalid"),
        pytest.param(ROTONDE, at(-2), "impossible_jump", id="impossible-jump"),
    ],
)
def test_sos_with_a_rejected_position_has_no_position(
    position: tuple[float, float], sent: datetime, reason: str
) -> None:
    before = known(at(-60))
    message = fix(sent, position, alarms=frozenset({Alarm.SOS}), valid=reason != "invalid_fix")
    result = run([(DEVICE, message, T0)], states(before))
    assert result.readings[0].rejected == reason
    assert result.events == [Event("org-1", "wearer-1", "dev-1", EventKind.SOS, sent, T0, None, None)]


def test_sos_with_a_future_clock_is_at_the_receive_time_without_position() -> None:
    message = fix(at(3600), CANEBIERE, alarms=frozenset({Alarm.SOS}))
    result = run([(DEVICE, message, T0)])
    assert result.events == [Event("org-1", "wearer-1", "dev-1", EventKind.SOS, T0, T0, None, None)]


def test_sos_with_a_good_fix_carries_it() -> None:
    message = fix(at(-2), CANEBIERE, alarms=frozenset({Alarm.SOS}))
    result = run([(DEVICE, message, T0)], states(known(at(-60))))
    assert result.events == [Event("org-1", "wearer-1", "dev-1", EventKind.SOS, at(-2), T0, *CANEBIERE)]


def test_sos_without_a_fix_still_raises_and_keeps_the_state_fix() -> None:
    before = known(at(-60))
    result = run([(DEVICE, fix(at(-2), None, alarms=frozenset({Alarm.SOS})), T0)], states(before))
    assert result.readings[0].rejected is None
    assert result.events == [Event("org-1", "wearer-1", "dev-1", EventKind.SOS, at(-2), T0, None, None)]
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-60), *VIEUX_PORT)


@pytest.mark.parametrize(
    "position",
    [pytest.param(None, id="no-fix"), pytest.param((0.0, 0.0), id="null-island")],
)
def test_sos_with_a_wild_clock_and_no_usable_fix_is_at_the_receive_time(
    position: tuple[float, float] | None,
) -> None:
    message = fix(at(2 * 86_400), position, alarms=frozenset({Alarm.SOS}))
    result = run([(DEVICE, message, T0)])
    assert result.readings[0].time == T0
    assert [e.time for e in result.events] == [T0]


# -- battery and last_seen ----------


def test_battery_is_carried_into_the_state_and_kept_when_absent() -> None:
    before = known(at(-60), battery_pct=80.0)
    result = run(
        [
            (DEVICE, fix(at(-30), None, battery=41.5), at(-29)),
            (DEVICE, fix(at(-10), None), at(-9)),
        ],
        states(before),
    )
    assert only_state(result) == DeviceState(DEVICE.id, at(-9), at(-60), *VIEUX_PORT, 41.5)


def test_battery_of_a_rejected_fix_still_counts() -> None:
    result = run([(DEVICE, fix(at(-2), (0.0, 0.0), battery=7.0), T0)], states(known(at(-60))))
    assert only_state(result).battery_pct == 7.0


def test_last_seen_never_goes_back() -> None:
    before = DeviceState(DEVICE.id, at(30), at(-60), *VIEUX_PORT)
    result = run([(DEVICE, fix(at(-2), CANEBIERE), T0)], states(before))
    assert only_state(result) == DeviceState(DEVICE.id, at(30), at(-2), *CANEBIERE)


# -- several messages in one call ----------


def test_second_message_is_checked_against_the_first_one() -> None:
    first, second = fix(at(-70), VIEUX_PORT), fix(at(-10), ROTONDE)  # 26 km in 60 s
    alone = run([(DEVICE, second, T0)])
    assert alone.readings[0].rejected is None
    result = run([(DEVICE, first, at(-69)), (DEVICE, second, T0)])
    assert [r.rejected for r in result.readings] == [None, "impossible_jump"]
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-70), *VIEUX_PORT)


def test_messages_are_applied_in_order_and_the_last_good_fix_wins() -> None:
    timeline = [
        (fix(at(-50), VIEUX_PORT, battery=90.0), at(-49), None),
        (fix(at(-40), (0.0, 0.0), battery=89.0), at(-39), "null_island"),
        (fix(at(-30), CANEBIERE), at(-29), None),
        (fix(at(-45), VIEUX_PORT), at(-20), None),  # late: stored, does not move the state back
        (fix(at(-10), ROTONDE), at(-9), "impossible_jump"),
    ]
    result = run([(DEVICE, m, received) for m, received, _ in timeline])
    assert [r.message for r in result.readings] == [m for m, _, _ in timeline]
    assert [r.rejected for r in result.readings] == [reason for _, _, reason in timeline]
    assert only_state(result) == DeviceState(DEVICE.id, at(-9), at(-30), *CANEBIERE, 89.0)


def test_devices_in_one_call_keep_separate_states() -> None:
    other_fix = fix(at(-20), ROTONDE, uid=OTHER.unique_id, battery=55.0)
    result = run(
        [
            (DEVICE, fix(at(-30), VIEUX_PORT), at(-29)),
            (OTHER, other_fix, at(-19)),  # far from DEVICE's fix, but it is another device
            (DEVICE, fix(at(-10), CANEBIERE), at(-9)),
        ]
    )
    assert [(r.device.id, r.rejected) for r in result.readings] == [
        ("dev-1", None),
        ("dev-2", None),
        ("dev-1", None),
    ]
    assert [plain(s) for s in result.states] == [
        DeviceState(DEVICE.id, at(-9), at(-10), *CANEBIERE),
        DeviceState(OTHER.id, at(-19), at(-20), *ROTONDE, 55.0),
    ]


def test_empty_batch() -> None:
    assert run([]) == StageResult([], [], {})


# -- detector isolation ----------


class _Detector:
    """A stand-in reading detector: ``react`` decides what it does with each reading."""

    state_type = AlarmsState

    def __init__(self, name: str, react: Callable[[Reading], list[Event]]) -> None:
        self.name = name
        self._react = react

    def on_reading(
        self, state: AlarmsState | None, reading: Reading, now: datetime, profile: object
    ) -> tuple[AlarmsState, list[Event]]:
        return AlarmsState(), self._react(reading)


def test_failing_detector_is_isolated_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Reading] = []

    def boom(reading: Reading) -> list[Event]:
        seen.append(reading)
        raise RuntimeError("detector exploded")

    def fall(reading: Reading) -> list[Event]:
        return [Event("org-1", "wearer-1", "dev-1", EventKind.FALL, reading.time, reading.received_at)]

    detectors = (_Detector("boom", boom), ALARMS, _Detector("fall", fall))
    monkeypatch.setattr(stages, "READING_DETECTORS", detectors)
    message = fix(at(-2), CANEBIERE, alarms=frozenset({Alarm.SOS}))
    with caplog.at_level(logging.ERROR, logger="geosentinel.pipeline.stages"):
        result = run([(DEVICE, message, T0)])

    assert result.readings == [Reading(DEVICE, message, at(-2), T0, None)]
    assert seen == result.readings
    assert result.events == [
        Event("org-1", "wearer-1", "dev-1", EventKind.SOS, at(-2), T0, *CANEBIERE),
        Event("org-1", "wearer-1", "dev-1", EventKind.FALL, at(-2), T0),
    ]
    assert only_state(result) == DeviceState(DEVICE.id, T0, at(-2), *CANEBIERE)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "geosentinel.pipeline.stages",
            logging.ERROR,
            "detector boom failed on a reading of device 860000000000001",
        )
    ]
    exc_info = caplog.records[0].exc_info
    assert exc_info is not None
    assert isinstance(exc_info[1], RuntimeError)


def test_failing_detector_does_not_stop_later_messages(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def flaky(reading: Reading) -> list[Event]:
        if reading.message.battery_pct == 13.0:
            raise ValueError("unlucky")
        return ALARMS.on_reading(None, reading, reading.received_at, WearerProfile())[1]

    monkeypatch.setattr(stages, "READING_DETECTORS", (_Detector("flaky", flaky),))
    sos = frozenset({Alarm.SOS})
    with caplog.at_level(logging.ERROR, logger="geosentinel.pipeline.stages"):
        result = run(
            [
                (DEVICE, fix(at(-20), alarms=sos, battery=13.0), at(-19)),
                (DEVICE, fix(at(-10), alarms=sos, battery=12.0), at(-9)),
            ]
        )
    assert len(result.readings) == 2
    assert result.events == [Event("org-1", "wearer-1", "dev-1", EventKind.SOS, at(-10), at(-9), *VIEUX_PORT)]
    assert only_state(result) == DeviceState(DEVICE.id, at(-9), at(-10), *VIEUX_PORT, 12.0)
    assert len(caplog.records) == 1


def test_failing_geofence_batch_keeps_readings_and_other_events(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: object, **kwargs: object) -> object:
        raise RuntimeError("index exploded")

    monkeypatch.setattr(stages, "geofence_batch", boom)
    message = fix(at(-2), CANEBIERE, alarms=frozenset({Alarm.SOS}))
    with caplog.at_level(logging.ERROR, logger="geosentinel.pipeline.stages"):
        result = run([(DEVICE, message, T0)])
    assert result.readings == [Reading(DEVICE, message, at(-2), T0, None)]
    assert result.events == [Event("org-1", "wearer-1", "dev-1", EventKind.SOS, at(-2), T0, *CANEBIERE)]
    assert "geofence" not in result.memories[DEVICE.id].detectors  # no state invented for it
    assert [r.getMessage() for r in caplog.records] == ["geofence detector failed on a batch of 1 readings"]


# -- motion windows ----------


def _window(peak_g: float) -> ImuWindow:
    samples = ((0.0, 0.0, 1.0),) * 20 + ((0.0, 0.0, peak_g),) + ((0.0, 0.0, 1.0),) * 19
    return ImuWindow(at(-3), tuple(50.0 * i for i in range(40)), samples)


@dataclasses.dataclass(frozen=True)
class _Verdict:
    probability: float
    is_fall: bool


def _peak_rule(window: ImuWindow) -> _Verdict:
    peak = max(abs(sample[2]) for sample in window.accel_g)
    return _Verdict(0.9 if peak > 3 else 0.1, peak > 3)


def test_motion_windows_are_judged_before_the_detectors() -> None:
    """A device fall with a quiet window is set aside (one fall_rejected event); a window with an impact
    raises the fall even without the device's alarm, with the score; readings are stored as sent."""
    fall_alarm = frozenset({Alarm.FALL})
    messages = [
        DeviceMessage(DEVICE.unique_id, "mqtt", time=at(-2), alarms=fall_alarm, imu=_window(1.2)),
        DeviceMessage(OTHER.unique_id, "mqtt", time=at(-1), imu=_window(6.0)),
    ]
    context = stages.Context(fall_scorer=_peak_rule)
    result = process([(DEVICE, messages[0], T0), (OTHER, messages[1], T0)], states(), LIMITS, context)
    assert [(e.device_id, e.kind, e.details.get("fall_score")) for e in result.events] == [
        ("dev-1", EventKind.FALL_REJECTED, 0.1),
        ("dev-2", EventKind.FALL, 0.9),
    ]
    assert [r.message.alarms for r in result.readings] == [fall_alarm, frozenset()]
    assert [r.message.extras["fall_verdict"] for r in result.readings] == ["rejected", "confirmed"]


def test_a_failing_classifier_leaves_the_device_fall_alarm_in_charge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(window: ImuWindow) -> _Verdict:
        raise RuntimeError("model file damaged")

    message = DeviceMessage(
        DEVICE.unique_id, "mqtt", time=at(-2), alarms=frozenset({Alarm.FALL}), imu=_window(6)
    )
    with caplog.at_level(logging.ERROR, logger="geosentinel.pipeline.stages"):
        result = process([(DEVICE, message, T0)], states(), LIMITS, stages.Context(fall_scorer=broken))
    assert [e.kind for e in result.events] == [EventKind.FALL]
    assert result.readings[0].message == message
    assert "fall classifier failed on a window of device 860000000000001" in caplog.text
