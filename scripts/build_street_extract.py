"""Build the compact walking-street extract that ships inside the simulator package.

Dev-time tool: the product never reads ``../shared`` at run time, it reads the file this script writes.

Usage (from the repository root)::

    .venv/bin/python scripts/build_street_extract.py \
        ../shared/data/osm src/geosentinel/sim/data/streets.json.gz

For each city it reads ``<city>_ways.geojson`` (OpenStreetMap ``highway=*`` LineStrings), keeps the
walkable ways that are not tunnels (no GPS fix underground, and tunnel footways are mostly metro
corridors), rounds every vertex to 1e-5 degree (about 1 m), splits the ways at every vertex and keys
graph nodes by the rounded coordinate, so crossing ways that share a vertex become connected. Only the
largest connected component is kept, so any two nodes have a route between them. Every vertex is kept:
street curves stay exact and the file stays small thanks to the encoding below.

Output: gzipped JSON ::

    {"attribution": "© OpenStreetMap contributors, ODbL 1.0 ...",
     "format": "...",
     "cities": {"marseille": {"nodes": [[dlon_e5, dlat_e5], ...], "edges": [[da, db], ...]}, ...}}

Both lists are delta-encoded integers, because consecutive entries are close and small numbers
compress far better (about 200 kB instead of 600 kB):

* ``nodes[i]`` is ``(lon_e5, lat_e5)`` of node i minus that of node i-1 (node -1 is ``(0, 0)``);
  lon = lon_e5 / 1e5 degrees. Nodes are numbered in depth-first order so neighbours get close numbers.
* ``edges[k]`` is ``[a_k - a_(k-1), b_k - a_k]`` for the undirected edge ``(a_k, b_k)``, with edges
  sorted by ``(a, b)``, ``a < b`` and ``a_(-1) = 0``.

The data is a derivative database of OpenStreetMap: © OpenStreetMap contributors, ODbL 1.0. Keep the
attribution field.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import networkx as nx  # type: ignore[import-untyped]

CITIES = ("marseille", "aix")
SCALE = 100_000  # 1e-5 degree, about 1.1 m of latitude
ATTRIBUTION = (
    "© OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright). "
    "Derived from the OSM highway ways of central Marseille and central Aix-en-Provence "
    "(data of August 2021)."
)
FORMAT = (
    "nodes: delta-encoded [lon*1e5, lat*1e5] integers (node -1 = [0, 0]); "
    "edges: undirected node-index pairs (a < b) sorted by (a, b), each stored as [a - previous a, b - a]"
)

Coord = tuple[int, int]


def walkable_lines(geojson: dict[str, Any]) -> Iterator[list[Coord]]:
    """Rounded vertex lists of the walkable, above-ground ways."""
    for feature in geojson["features"]:
        props = feature["properties"]
        geometry = feature["geometry"]
        if not props.get("walkable") or props.get("brunnel") == "tunnel":
            continue
        if geometry["type"] != "LineString":
            continue
        yield [(round(lon * SCALE), round(lat * SCALE)) for lon, lat in geometry["coordinates"]]


def build_graph(lines: Iterable[list[Coord]]) -> Any:
    """Split at every vertex: rounding may merge two vertices of a way, so self-loops are skipped."""
    graph = nx.Graph()
    for line in lines:
        for a, b in itertools.pairwise(line):
            if a != b:
                graph.add_edge(a, b)
    return graph


def largest_component(graph: Any) -> Any:
    nodes = max(nx.connected_components(graph), key=len)
    return graph.subgraph(nodes).copy()


def depth_first_order(graph: Any) -> list[Coord]:
    """Start from the smallest coordinate so the output is deterministic."""
    start = min(graph.nodes)
    return list(nx.dfs_preorder_nodes(graph, start))


def encode_city(graph: Any) -> dict[str, list[list[int]]]:
    order = depth_first_order(graph)
    index = {coord: i for i, coord in enumerate(order)}
    nodes: list[list[int]] = []
    prev_lon, prev_lat = 0, 0
    for lon, lat in order:
        nodes.append([lon - prev_lon, lat - prev_lat])
        prev_lon, prev_lat = lon, lat
    pairs = sorted(tuple(sorted((index[u], index[v]))) for u, v in graph.edges)
    edges: list[list[int]] = []
    prev_a = 0
    for a, b in pairs:
        edges.append([a - prev_a, b - a])
        prev_a = a
    return {"nodes": nodes, "edges": edges}


def build(source_dir: Path) -> dict[str, Any]:
    cities: dict[str, Any] = {}
    for city in CITIES:
        geojson = json.loads((source_dir / f"{city}_ways.geojson").read_text(encoding="utf-8"))
        graph = largest_component(build_graph(walkable_lines(geojson)))
        cities[city] = encode_city(graph)
        print(f"{city}: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges")
    return {"attribution": ATTRIBUTION, "format": FORMAT, "cities": cities}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source_dir", type=Path, help="folder holding <city>_ways.geojson")
    parser.add_argument("output", type=Path, help="the .json.gz to write")
    args = parser.parse_args()
    payload = json.dumps(build(args.source_dir), separators=(",", ":"), ensure_ascii=False).encode()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical between runs, so rebuilding shows no spurious git diff.
    args.output.write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
