"""A wearer's stored fixes as files: GeoJSON, GPX 1.1 and CSV (``GET …/positions?format=…``).

Each takes the fixes as the store answers them (newest first) and writes them oldest first, as a track is
read. Times are ISO-8601 with their offset (UTC, as stored); GPX writes them in UTC (``…Z``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC
from typing import Any, Final

import gpxpy.gpx
import orjson

from geosentinel.store.base import Position

MEDIA_TYPES: Final = {"geojson": "application/geo+json", "gpx": "application/gpx+xml", "csv": "text/csv"}
CSV_COLUMNS: Final = (
    "time", "received_at", "device_id", "latitude", "longitude", "accuracy_m", "speed_kmh", "battery_pct",
    "rejected",
)  # fmt: skip


def to_geojson(positions: Sequence[Position], with_rejected: bool = False) -> bytes:
    """A FeatureCollection of Point features; ``rejected`` is a property only when rejected fixes were
    asked for (the other properties are always there, null when unknown)."""
    features: list[dict[str, Any]] = []
    for p in reversed(positions):
        properties: dict[str, Any] = {
            "time": p.time.isoformat(), "received_at": p.received_at.isoformat(),
            "accuracy_m": p.accuracy_m, "speed_kmh": p.speed_kmh, "battery_pct": p.battery_pct,
            "device_id": p.device_id,
        }  # fmt: skip
        if with_rejected:
            properties["rejected"] = p.rejected
        geometry = {"type": "Point", "coordinates": [p.longitude, p.latitude]}
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def to_gpx(positions: Sequence[Position], track_name: str) -> str:
    """A GPX 1.1 document: one track, one segment, a point per fix with its time in UTC."""
    document = gpxpy.gpx.GPX()
    document.creator = "GeoSentinel"
    track = gpxpy.gpx.GPXTrack(name=track_name)
    segment = gpxpy.gpx.GPXTrackSegment()
    for p in reversed(positions):
        segment.points.append(gpxpy.gpx.GPXTrackPoint(p.latitude, p.longitude, time=p.time.astimezone(UTC)))
    track.segments.append(segment)
    document.tracks.append(track)
    return document.to_xml(version="1.1")


def to_csv(positions: Sequence[Position]) -> str:
    """A header row (:data:`CSV_COLUMNS`), then a row per fix; empty cells for unknown values (None)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in reversed(positions):
        writer.writerow(
            (p.time.isoformat(), p.received_at.isoformat(), p.device_id, p.latitude, p.longitude,
             p.accuracy_m, p.speed_kmh, p.battery_pct, p.rejected)
        )  # fmt: skip
    return out.getvalue()
