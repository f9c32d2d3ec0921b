"""Real wrist motion for simulated bracelets: windows recorded around falls and daily activities.

A bracelet that feels a fall sends the motion window around the impact with its alarm, and the server's
classifier confirms it (:mod:`geosentinel.detect.falls`). The windows are real recordings (UMAFall, wrist
sensor, about 20 Hz with the samples' own jittery times), cut 4 s before to 6 s after each trial's peak by
``scripts/build_imu_windows.py`` and shipped in the package (CC BY 4.0, see ``ATTRIBUTION``).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

Sample = tuple[float, float, float]
# Where the peak sits in each window (see scripts/build_imu_windows.py): the alarm's moment.
PEAK_OFFSET = timedelta(seconds=4)


@dataclass(frozen=True, slots=True)
class RecordedWindow:
    trial: str
    activity: str
    is_fall: bool
    accel_t_ms: tuple[float, ...]
    accel_g: tuple[Sample, ...]
    gyro_t_ms: tuple[float, ...]
    gyro_dps: tuple[Sample, ...]

    def payload(self, impact: datetime) -> dict[str, Any]:
        """The ``imu`` object of a JSON v1 up message, placed so that the peak falls at ``impact``."""
        start = impact - PEAK_OFFSET
        body: dict[str, Any] = {
            "start": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "t_ms": list(self.accel_t_ms),
            "accel_g": [list(s) for s in self.accel_g],
        }
        if self.gyro_dps:
            body["gyro_t_ms"], body["gyro_dps"] = list(self.gyro_t_ms), [list(s) for s in self.gyro_dps]
        return body


@cache
def recorded_windows() -> tuple[RecordedWindow, ...]:
    raw = json.loads(
        gzip.decompress(resources.files("geosentinel.sim").joinpath("data/imu_windows.json.gz").read_bytes())
    )
    return tuple(
        RecordedWindow(
            w["trial"], w["activity"], w["is_fall"], tuple(w["accel_t_ms"]), tuple(map(tuple, w["accel_g"])),
            tuple(w["gyro_t_ms"]), tuple(map(tuple, w["gyro_dps"])),
        )
        for w in raw["windows"]
    )  # fmt: skip


ATTRIBUTION = (
    "UMAFall (E. Casilari, J. A. Santoyo-Ramón, J. M. Cano-García, Universidad de Málaga, "
    "doi:10.6084/m9.figshare.4214283), CC BY 4.0"
)


def fall_window(unique_id: str, time: datetime) -> RecordedWindow:
    """A recorded fall for this device's fall at ``time``: picked by a hash of both, so replays send the
    same window and the simulator's random draws (and so its timelines) stay as they were."""
    falls = [w for w in recorded_windows() if w.is_fall]
    return falls[zlib.crc32(f"{unique_id}@{time.isoformat()}".encode()) % len(falls)]
