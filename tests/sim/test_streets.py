"""The packaged street extract and the graph built from it."""

from __future__ import annotations

import itertools
import random

import pytest

from geosentinel.sim.streets import (
    StreetGraph,
    attribution,
    bearing_deg,
    distance_m,
    offset,
    path_length_m,
)

# bbox (W, S, E, N) of each extract, from shared/data/osm/README.md
BBOXES = {"marseille": (5.35, 43.26, 5.42, 43.33), "aix": (5.42, 43.51, 5.47, 43.55)}


def test_cities_and_attribution() -> None:
    assert StreetGraph.cities() == ("aix", "marseille")
    assert "© OpenStreetMap contributors" in attribution()
    assert "ODbL" in attribution()


def test_unknown_city_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown city"):
        StreetGraph.load("paris")


@pytest.mark.parametrize("city", ["marseille", "aix"])
def test_graph_is_large_and_inside_its_bbox(city: str) -> None:
    graph = StreetGraph.load(city)
    assert StreetGraph.load(city) is graph  # cached
    assert graph.city == city
    assert len(graph) > 10_000
    assert graph.edge_count() >= len(graph) - 1  # connected: at least a spanning tree
    west, south, east, north = BBOXES[city]
    for node in range(0, len(graph), 97):
        lat, lon = graph.position(node)
        assert south - 1e-4 <= lat <= north + 1e-4
        assert west - 1e-4 <= lon <= east + 1e-4


def test_distance_bearing_offset() -> None:
    vieux_port = (43.2951, 5.3740)
    assert distance_m(vieux_port, vieux_port) == 0.0
    one_degree_north = (44.2951, 5.3740)
    assert distance_m(vieux_port, one_degree_north) == pytest.approx(111_195, rel=1e-3)
    moved = offset(vieux_port, 30.0, 40.0)
    assert distance_m(vieux_port, moved) == pytest.approx(50.0, abs=0.01)
    assert bearing_deg(vieux_port, offset(vieux_port, 0.0, 100.0)) == pytest.approx(0.0, abs=0.01)
    assert bearing_deg(vieux_port, offset(vieux_port, 100.0, 0.0)) == pytest.approx(90.0, abs=0.01)
    assert bearing_deg(vieux_port, offset(vieux_port, -100.0, 0.0)) == pytest.approx(270.0, abs=0.01)


def test_route_follows_edges_and_is_shortest() -> None:
    graph = StreetGraph.load("aix")
    rng = random.Random(7)
    start = graph.random_node(rng)
    reach = graph.reachable_within(start, 1500.0)
    assert reach[start] == 0.0
    assert all(d <= 1500.0 for d in reach.values())
    far = [node for node, d in reach.items() if d > 1000.0]
    end = rng.choice(far)
    route = graph.route(start, end)
    assert route[0] == graph.position(start)
    assert route[-1] == graph.position(end)
    assert path_length_m(route) == pytest.approx(reach[end], rel=1e-9)
    # Every hop is a street segment: it joins two neighbouring nodes.
    by_position = {graph.position(n): n for n in range(len(graph))}
    for a, b in itertools.pairwise(route):
        assert by_position[b] in graph.neighbours(by_position[a])


def test_random_node_is_deterministic() -> None:
    graph = StreetGraph.load("marseille")
    first = [graph.random_node(random.Random(3)) for _ in range(3)]
    assert len(set(first)) == 1
    assert 0 <= first[0] < len(graph)
