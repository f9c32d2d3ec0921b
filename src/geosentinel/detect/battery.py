"""Low battery: the wearer's bracelet needs charging before it goes silent.

Battery gauges are noisy (a dip under load, a cold morning), so one ``low_battery`` event needs
:data:`READINGS_BELOW` consecutive readings below ``profile.battery_low_pct``. Once raised it is not
raised again until the battery recovered above the threshold + :data:`RECOVERY_MARGIN_PCT` or the device
is charging (hysteresis: a level hovering around the threshold alerts once). A charging device never
alerts. Readings without a battery level are ignored; so are late or duplicate readings (time not after
the newest seen), which would otherwise replay an old level over a newer one.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from geosentinel.detect.base import ReadingDetector, WearerProfile, event, reading_position
from geosentinel.model import Event, EventKind, Reading

READINGS_BELOW = 2
RECOVERY_MARGIN_PCT = 5.0


class BatteryState(msgspec.Struct, frozen=True, omit_defaults=True):
    last_time: datetime | None = None  # newest reading with a battery level
    below: int = 0  # consecutive readings below the threshold (capped at READINGS_BELOW)
    alerted: bool = False  # raised, waiting for a recovery or a charge


class BatteryDetector:
    name: str = "battery"
    state_type: type[BatteryState] = BatteryState

    def on_reading(
        self, state: BatteryState | None, reading: Reading, now: datetime, profile: WearerProfile
    ) -> tuple[BatteryState, list[Event]]:
        state = state if state is not None else BatteryState()
        pct = reading.message.battery_pct
        if pct is None or (state.last_time is not None and reading.time <= state.last_time):
            return state, []
        if reading.message.charging:
            return BatteryState(reading.time), []  # charging re-arms the alert
        threshold = profile.battery_low_pct
        if pct >= threshold:
            recovered = pct > threshold + RECOVERY_MARGIN_PCT
            return BatteryState(reading.time, 0, state.alerted and not recovered), []
        below = min(state.below + 1, READINGS_BELOW)
        if below < READINGS_BELOW or state.alerted:
            return BatteryState(reading.time, below, state.alerted), []
        lat, lon = reading_position(reading)
        low = event(
            reading.device,
            EventKind.LOW_BATTERY,
            reading.time,
            reading.received_at,
            lat,
            lon,
            battery_pct=pct,
            threshold_pct=threshold,
        )
        return BatteryState(reading.time, below, True), [low]


BATTERY = BatteryDetector()
_CONTRACT: ReadingDetector[BatteryState] = BATTERY
