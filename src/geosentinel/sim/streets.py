"""The walking street graphs of the simulated cities, loaded from the extract shipped in the package.

The extract (``data/streets.json.gz``, built by ``scripts/build_street_extract.py``) is a derivative of
OpenStreetMap: © OpenStreetMap contributors, ODbL 1.0. Nodes are street vertices numbered 0..n-1,
edges are street segments weighted by their length in metres.
"""

from __future__ import annotations

import gzip
import itertools
import math
import random
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

import networkx as nx  # type: ignore[import-untyped]
import orjson

from geosentinel.geodesy import EARTH_RADIUS_M

LatLon = tuple[float, float]

_DATA_FILE = "streets.json.gz"
_SCALE = 100_000  # the extract stores coordinates as integers of 1e-5 degree


def distance_m(a: LatLon, b: LatLon) -> float:
    """Distance in metres between two (lat, lon) points.

    Equirectangular approximation: over the few kilometres a wearer walks its error is far below GPS
    noise, and it is much cheaper than haversine on the hot path.
    """
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    x = (lon2 - lon1) * math.cos((lat1 + lat2) / 2)
    return EARTH_RADIUS_M * math.hypot(x, lat2 - lat1)


def bearing_deg(a: LatLon, b: LatLon) -> float:
    """Initial course from ``a`` to ``b`` in degrees clockwise from north, in [0, 360)."""
    lat_mid = math.radians((a[0] + b[0]) / 2)
    east = math.radians(b[1] - a[1]) * math.cos(lat_mid)
    north = math.radians(b[0] - a[0])
    return math.degrees(math.atan2(east, north)) % 360.0


def offset(point: LatLon, east_m: float, north_m: float) -> LatLon:
    """The point moved by the given metres (same flat-earth approximation as :func:`distance_m`)."""
    lat, lon = point
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


def path_length_m(points: Sequence[LatLon]) -> float:
    return sum(distance_m(a, b) for a, b in itertools.pairwise(points))


class StreetGraph:
    """One city's walking graph. Build it with :meth:`load`, which caches one instance per city."""

    def __init__(self, city: str, positions: Sequence[LatLon], edges: Iterable[tuple[int, int]]) -> None:
        self.city = city
        self._positions = tuple(positions)
        self._graph: Any = nx.Graph()
        self._graph.add_nodes_from(range(len(self._positions)))
        self._graph.add_weighted_edges_from(
            ((a, b, distance_m(self._positions[a], self._positions[b])) for a, b in edges), weight="length"
        )

    @classmethod
    def load(cls, city: str) -> StreetGraph:
        """The packaged graph of ``city`` (see :meth:`cities`); loaded once, then shared."""
        return _load_city(city)

    @staticmethod
    def cities() -> tuple[str, ...]:
        """Names of the cities in the packaged extract."""
        return tuple(sorted(_payload()["cities"]))

    def __len__(self) -> int:
        return len(self._positions)

    def position(self, node: int) -> LatLon:
        return self._positions[node]

    def random_node(self, rng: random.Random) -> int:
        return rng.randrange(len(self._positions))

    def neighbours(self, node: int) -> list[int]:
        return list(self._graph.neighbors(node))

    def edge_count(self) -> int:
        return int(self._graph.number_of_edges())

    def route(self, a: int, b: int) -> list[LatLon]:
        """Shortest walking route from node ``a`` to node ``b`` as (lat, lon) points, both ends included."""
        nodes: list[int] = nx.shortest_path(self._graph, a, b, weight="length")
        return [self._positions[n] for n in nodes]

    def reachable_within(self, node: int, max_m: float) -> dict[int, float]:
        """Walking distance in metres from ``node`` to every node at most ``max_m`` away along streets."""
        lengths: dict[int, float] = nx.single_source_dijkstra_path_length(
            self._graph, node, cutoff=max_m, weight="length"
        )
        return lengths


@cache
def _payload() -> dict[str, Any]:
    blob = resources.files("geosentinel.sim").joinpath("data", _DATA_FILE).read_bytes()
    payload: dict[str, Any] = orjson.loads(gzip.decompress(blob))
    return payload


def attribution() -> str:
    """The data credit to show wherever the street data is used."""
    return str(_payload()["attribution"])


@cache
def _load_city(city: str) -> StreetGraph:
    cities = _payload()["cities"]
    if city not in cities:
        raise ValueError(f"unknown city {city!r}; known: {', '.join(sorted(cities))}")
    data = cities[city]
    return StreetGraph(city, _decode_nodes(data["nodes"]), _decode_edges(data["edges"]))


def _decode_nodes(deltas: list[list[int]]) -> list[LatLon]:
    # Delta-encoded [lon, lat] integers, see scripts/build_street_extract.py.
    positions: list[LatLon] = []
    lon = lat = 0
    for dlon, dlat in deltas:
        lon += dlon
        lat += dlat
        positions.append((lat / _SCALE, lon / _SCALE))
    return positions


def _decode_edges(deltas: list[list[int]]) -> list[tuple[int, int]]:
    edges: list[tuple[int, int]] = []
    a = 0
    for da, db in deltas:
        a += da
        edges.append((a, a + db))
    return edges
