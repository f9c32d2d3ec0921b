"""Build the dashboard's offline street extract of central Marseille and Aix-en-Provence.

Dev-time tool, like ``build_street_extract.py``: the product never reads ``../shared`` at run time, it
reads the file this script writes (committed, and shipped in the package)::

    .venv/bin/python scripts/build_dashboard_basemap.py \
        ../shared/data/osm src/geosentinel/dashboard/static/basemap/streets.json

For each city it reads ``<city>_ways.geojson`` and ``<city>_areas.geojson`` (OpenStreetMap, see that
folder's README) and keeps what a caregiver needs to recognise where a wearer is, at a few hundred kB:

* streets in three layers, ``major`` (motorways, trunk, primary and secondary roads), ``tertiary`` and
  ``minor`` (residential, unclassified, pedestrian and living streets), without tunnels, simplified
  (Douglas-Peucker, 2 to 3 m);
* the water (the sea from the OSM coastline, and the harbours, lakes and rivers larger than a swimming
  pool) and the larger parks and woods (``green``), simplified by about 5 m.

Output: JSON ``{"attribution", "licence", "source", "scale", "cities": [{"name", "bbox"}], "layers":
{"major": [line, ...], "tertiary": [...], "minor": [...], "water": [polygon, ...], "green": [...]}}``.
A line is one flat list of integers ``[x0, y0, dx1, dy1, ...]``: the first vertex in units of 1/scale
degree (longitude, latitude), then each vertex minus the previous one; a polygon is a list of such rings
(outer ring first). The data is a derivative database of OpenStreetMap: © OpenStreetMap contributors,
ODbL 1.0; the attribution is shown on the map.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from shapely import simplify
from shapely.geometry import LineString, MultiPolygon, Polygon, shape

CITIES = ("marseille", "aix")
SCALE = 100_000  # 1e-5 degree, about 1.1 m of latitude
ATTRIBUTION = "© OpenStreetMap contributors"
LICENCE = (
    "Open Database License (ODbL) 1.0, https://opendatacommons.org/licenses/odbl/1-0/ "
    "(https://www.openstreetmap.org/copyright)"
)
SOURCE = (
    "OpenStreetMap via the z14 vector tiles of tokenless-tiles/provence-alpes-cote-d-azur (OSM data of "
    "August 2021), extracted to GeoJSON in shared/data/osm; streets and areas selected and simplified by "
    "scripts/build_dashboard_basemap.py"
)
STREET_LAYERS = {
    "major": {"motorway", "trunk", "primary", "secondary", "motorway_link", "trunk_link", "primary_link",
              "secondary_link"},
    "tertiary": {"tertiary", "tertiary_link"},
    "minor": {"residential", "unclassified", "pedestrian", "living_street"},
}  # fmt: skip
LINE_TOLERANCE = {"major": 2e-5, "tertiary": 2e-5, "minor": 3e-5}  # degrees
AREA_TOLERANCE = 5e-5
MIN_AREA = 3e-7  # square degrees, about 2,700 m² at 43° N: parks, not lawns; harbours, not pools


def _ints(coords: Iterable[tuple[float, ...]]) -> list[int]:
    flat: list[int] = []
    px = py = 0
    for x, y, *_ in coords:
        ix, iy = round(x * SCALE), round(y * SCALE)
        if flat and (ix, iy) == (px, py):
            continue
        flat += [ix - px, iy - py] if flat else [ix, iy]
        px, py = ix, iy
    return flat


def _polygons(geometry: Any) -> Iterator[Polygon]:
    if isinstance(geometry, Polygon):
        yield geometry
    elif isinstance(geometry, MultiPolygon):
        yield from geometry.geoms


def _rings(polygon: Polygon) -> list[list[int]]:
    rings = [_ints(polygon.exterior.coords)] + [_ints(r.coords) for r in polygon.interiors]
    return [r for r in rings if len(r) >= 8]  # at least four vertices


def streets(features: list[dict[str, Any]]) -> dict[str, list[list[int]]]:
    layers: dict[str, list[list[int]]] = {name: [] for name in STREET_LAYERS}
    for feature in features:
        props = feature["properties"]
        if props.get("brunnel") == "tunnel":
            continue
        for name, kinds in STREET_LAYERS.items():
            if props.get("highway") in kinds:
                line = simplify(LineString(feature["geometry"]["coordinates"]), LINE_TOLERANCE[name])
                flat = _ints(line.coords)
                if len(flat) >= 4:
                    layers[name].append(flat)
    return layers


AREA_LAYERS = {"ocean": "water", "lake": "water", "river": "water", "grass": "green", "wood": "green"}


def areas(features: list[dict[str, Any]]) -> dict[str, list[list[list[int]]]]:
    layers: dict[str, list[list[list[int]]]] = {"water": [], "green": []}
    for feature in features:
        kind = feature["properties"].get("class")
        layer = AREA_LAYERS.get(kind)
        if layer is None or feature["geometry"]["type"] not in ("Polygon", "MultiPolygon"):
            continue
        for polygon in _polygons(simplify(shape(feature["geometry"]), AREA_TOLERANCE)):
            if kind != "ocean" and polygon.area < MIN_AREA:
                continue
            rings = _rings(polygon)
            if rings:
                layers[layer].append(rings)
    return layers


def build(folder: Path) -> dict[str, Any]:
    layers: dict[str, list[Any]] = {"major": [], "tertiary": [], "minor": [], "water": [], "green": []}
    cities = []
    for city in CITIES:
        ways = json.loads((folder / f"{city}_ways.geojson").read_text())["features"]
        for name, found in streets(ways).items():
            layers[name] += found
        shapes = json.loads((folder / f"{city}_areas.geojson").read_text())["features"]
        for name, polygons in areas(shapes).items():
            layers[name] += polygons
        xs = [x for f in ways for x, _ in f["geometry"]["coordinates"]]
        ys = [y for f in ways for _, y in f["geometry"]["coordinates"]]
        bbox = [round(min(xs), 4), round(min(ys), 4), round(max(xs), 4), round(max(ys), 4)]
        cities.append({"name": city, "bbox": bbox})
    return {
        "attribution": ATTRIBUTION,
        "licence": LICENCE,
        "source": SOURCE,
        "scale": SCALE,
        "cities": cities,
        "layers": layers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with <city>_ways.geojson and <city>_areas.geojson")
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    extract = build(args.source)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(extract, separators=(",", ":"), ensure_ascii=False) + "\n")
    counts = {name: len(items) for name, items in extract["layers"].items()}
    print(f"{args.output}: {args.output.stat().st_size / 1000:.0f} kB, {counts}")


if __name__ == "__main__":
    main()
