"""How far the wearer may really be from a reported position, and how that position was obtained.

GPS, Wi-Fi and cell-tower positions differ by two orders of magnitude in accuracy; detectors that compare
positions with boundaries (geofences) must know which one they hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final, Literal

import numpy as np

from geosentinel.model import DeviceMessage

Source = Literal["gps", "wifi", "cell"]

# How far from the reported position the wearer may really be (metres), when the device gives no accuracy.
GPS_BASE_M: Final = 10.0  # a consumer GNSS receiver's error floor under open sky
GPS_PER_HDOP_M: Final = 5.0  # ~ the receiver's range error, multiplied by the geometry's dilution (HDOP)
GPS_DEFAULT_M: Final = 15.0  # a GPS fix with no HDOP: a typical outdoor fix
WIFI_M: Final = 60.0  # Wi-Fi positioning in a town: tens of metres, up to ~100
CELL_M: Final = 800.0  # cell-tower (LBS) positioning: hundreds of metres in town, kilometres outside
# A reported accuracy this coarse can only come from Wi-Fi or the cell network.
WIFI_GRADE_M: Final = 50.0
CELL_GRADE_M: Final = 300.0
# Names devices and decoders use for where a position came from (extras["position_source"]).
_SOURCES: Final[dict[str, Source]] = {
    "gps": "gps",
    "gnss": "gps",
    "wifi": "wifi",
    "cell": "cell",
    "lbs": "cell",
}


def _grade(accuracy_m: float) -> Source:
    """The source a reported accuracy implies: nothing but the cell network is that coarse, and so on."""
    if accuracy_m >= CELL_GRADE_M:
        return "cell"
    return "wifi" if accuracy_m >= WIFI_GRADE_M else "gps"


def position_uncertainty_m(message: DeviceMessage) -> tuple[float, Source]:
    """How far (metres) the wearer may be from the message's position, and how it was obtained.

    The device's own accuracy wins when it gives one (0 means "unknown" on some devices); otherwise it is
    estimated from what the message says about the fix. ``extras["position_source"]`` names the source
    when the decoder knows it; else a coarse accuracy implies Wi-Fi (≥ 50 m) or cell (≥ 300 m) positioning.
    """
    raw = message.extras.get("position_source") if message.extras else None
    declared = _SOURCES.get(raw.lower()) if isinstance(raw, str) else None
    accuracy = message.accuracy_m
    if accuracy is not None and math.isfinite(accuracy) and accuracy > 0:
        return accuracy, declared if declared is not None else _grade(accuracy)
    if declared == "cell" or (declared is None and message.valid is False and message.cells):
        return CELL_M, "cell"
    if declared == "wifi":
        return WIFI_M, "wifi"
    if message.hdop is not None and math.isfinite(message.hdop) and message.hdop > 0:
        return GPS_BASE_M + GPS_PER_HDOP_M * message.hdop, "gps"
    return GPS_DEFAULT_M, "gps"


def positions_uncertainty_m(
    messages: Sequence[DeviceMessage],
    accuracy: Sequence[float | None],
    extras: Sequence[Mapping[str, object]],
) -> tuple[list[float], list[bool]]:
    """:func:`position_uncertainty_m` for many messages (``accuracy`` and ``extras``: their
    ``accuracy_m`` and ``extras``, already read): each one's uncertainty, and whether it is not a cell
    position. Exactly the same answers; the usual message (a usable accuracy, no declared source) is
    answered in numpy, the others one by one."""
    usual = np.array(accuracy, dtype=np.float64)  # None is NaN
    with np.errstate(invalid="ignore"):
        plain = np.isfinite(usual) & (usual > 0)
    if any(extras):
        declared = [bool(e) and e.get("position_source") is not None for e in extras]
        plain &= ~np.array(declared, dtype=bool)
    uncertainty: list[float] = usual.tolist()
    non_cell: list[bool] = (usual < CELL_GRADE_M).tolist()
    if not plain.all():
        for i in np.flatnonzero(~plain).tolist():
            uncertainty[i], source = position_uncertainty_m(messages[i])
            non_cell[i] = source != "cell"
    return uncertainty, non_cell
