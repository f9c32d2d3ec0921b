"""Distances on the Earth, shared by the bad-fix filter, the detectors and the simulator."""

from __future__ import annotations

import math
from typing import Final

EARTH_RADIUS_M: Final = 6_371_008.8  # mean Earth radius (IUGG)
_RADIANS: Final = math.pi / 180


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine): within 0.6 % of the WGS84 geodesic, plenty for jump checks and
    movement radii of tens of metres."""
    p1, p2 = lat1 * _RADIANS, lat2 * _RADIANS  # math.radians, without a call each (several per reading)
    half_dp, half_dl = (p2 - p1) / 2, (lon2 - lon1) * _RADIANS / 2
    h = math.sin(half_dp) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(half_dl) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
