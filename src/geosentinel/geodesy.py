"""Distances on the Earth, shared by the bad-fix filter, the detectors and the simulator."""

from __future__ import annotations

import math
from typing import Final

EARTH_RADIUS_M: Final = 6_371_008.8  # mean Earth radius (IUGG)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine): within 0.6 % of the WGS84 geodesic, plenty for jump checks and
    movement radii of tens of metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
