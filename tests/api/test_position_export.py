"""A wearer's fixes as GeoJSON, GPX 1.1 and CSV files (api/position_export.py): exact values, oldest first."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import gpxpy
import orjson

from geosentinel.api.position_export import CSV_COLUMNS, to_csv, to_geojson, to_gpx
from geosentinel.store.base import Position

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
NEWEST_FIRST = [
    Position(T0 + timedelta(minutes=1), T0 + timedelta(minutes=1, seconds=2), "dev-1", 43.3001, 5.3702, 8.5,
             3.2, 77.0, None),
    Position(T0, T0 + timedelta(seconds=3), "dev-1", 43.3, 5.37, None, None, None, "null_island"),
]  # fmt: skip


def test_geojson_is_a_feature_collection_of_points_oldest_first() -> None:
    document = orjson.loads(to_geojson(NEWEST_FIRST))
    assert document["type"] == "FeatureCollection"
    first, second = document["features"]
    assert first == {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [5.37, 43.3]},
        "properties": {"time": "2026-05-01T08:00:00+00:00", "received_at": "2026-05-01T08:00:03+00:00",
                       "accuracy_m": None, "speed_kmh": None, "battery_pct": None, "device_id": "dev-1"},
    }  # fmt: skip
    assert second["geometry"]["coordinates"] == [5.3702, 43.3001]
    assert second["properties"]["speed_kmh"] == 3.2 and second["properties"]["battery_pct"] == 77.0
    with_rejected = orjson.loads(to_geojson(NEWEST_FIRST, with_rejected=True))["features"]
    assert [f["properties"]["rejected"] for f in with_rejected] == ["null_island", None]
    assert orjson.loads(to_geojson([])) == {"type": "FeatureCollection", "features": []}


def test_gpx_is_one_track_of_one_segment_with_utc_times() -> None:
    paris = timezone(timedelta(hours=2))
    local = [Position(T0.astimezone(paris), T0, "dev-1", 43.3, 5.37, None, None, None, None)]
    text = to_gpx(NEWEST_FIRST + local, "Jeanne")
    assert 'version="1.1"' in text and 'xmlns="http://www.topografix.com/GPX/1/1"' in text
    assert "<time>2026-05-01T08:00:00Z</time>" in text and "+02:00" not in text
    parsed = gpxpy.parse(text)
    assert [t.name for t in parsed.tracks] == ["Jeanne"]
    (segment,) = parsed.tracks[0].segments
    points = [(p.latitude, p.longitude) for p in segment.points]
    assert points == [(43.3, 5.37), (43.3, 5.37), (43.3001, 5.3702)]
    assert [p.time for p in segment.points] == [T0, T0, T0 + timedelta(minutes=1)]


def test_csv_has_a_header_and_a_row_per_fix() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(NEWEST_FIRST))))
    assert rows == [
        list(CSV_COLUMNS),
        ["2026-05-01T08:00:00+00:00", "2026-05-01T08:00:03+00:00", "dev-1", "43.3", "5.37", "", "", "",
         "null_island"],
        ["2026-05-01T08:01:00+00:00", "2026-05-01T08:01:02+00:00", "dev-1", "43.3001", "5.3702", "8.5", "3.2",
         "77.0", ""],
    ]  # fmt: skip
    assert to_csv([]) == ",".join(CSV_COLUMNS) + "\r\n"
