"""Fence geometry, schedules, validation, position uncertainty and the batch index."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import pytest
import shapely  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.detect import fences as fences_module
from geosentinel.detect.fences import (
    MAX_NEAR_M,
    MAX_VERTICES,
    METRES_PER_DEGREE,
    Fence,
    FenceIndex,
    FixQuery,
    _BoxGrid,
    validate_fence_geometry,
)
from geosentinel.detect.schedule import Schedule, Window, schedule_active
from geosentinel.detect.uncertainty import (
    CELL_M,
    GPS_DEFAULT_M,
    WIFI_M,
    position_uncertainty_m,
    positions_uncertainty_m,
)
from geosentinel.geodesy import distance_m
from geosentinel.model import CellTower, DeviceMessage

PARIS = ZoneInfo("Europe/Paris")
CENTRE = (43.2965, 5.3698)  # Marseille, Vieux-Port


def offset(origin: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    """The point ``north_m`` north and ``east_m`` east of ``origin`` (local flat-earth, as the index)."""
    lat, lon = origin
    return lat + north_m / METRES_PER_DEGREE, lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat)))


def lonlat(origin: tuple[float, float], north_m: float, east_m: float) -> list[float]:
    lat, lon = offset(origin, north_m, east_m)
    return [lon, lat]


def square(origin: tuple[float, float], half_m: float) -> list[list[float]]:
    """A closed square ring of side 2 × ``half_m`` around ``origin`` (GeoJSON order: counter-clockwise)."""
    corners = [(-half_m, -half_m), (-half_m, half_m), (half_m, half_m), (half_m, -half_m)]
    ring = [lonlat(origin, n, e) for n, e in corners]
    return [*ring, ring[0]]


def circle(
    fence_id: str = "home",
    radius: float = 200.0,
    centre: tuple[float, float] = CENTRE,
    *,
    kind: str = "safe",
    org: str = "org-1",
    wearer: str | None = "w-1",
) -> Fence:
    geometry = {"type": "Point", "coordinates": [centre[1], centre[0]]}
    return Fence(fence_id, org, wearer, fence_id.title(), kind, geometry, radius)  # type: ignore[arg-type]


def polygon(
    fence_id: str, rings: list[list[list[float]]], *, kind: str = "safe", wearer: str | None = "w-1"
) -> Fence:
    return Fence(fence_id, "org-1", wearer, fence_id, kind, {"type": "Polygon", "coordinates": rings})  # type: ignore[arg-type]


def corridor(fence_id: str, line: list[list[float]], width: float, *, kind: str = "safe") -> Fence:
    geometry = {"type": "LineString", "coordinates": line}
    return Fence(fence_id, "org-1", "w-1", fence_id, kind, geometry, None, width)  # type: ignore[arg-type]


def fix(point: tuple[float, float], wearer: str | None = "w-1", org: str = "org-1") -> FixQuery:
    return FixQuery(org, wearer, point[0], point[1])


def distances(index: FenceIndex, point: tuple[float, float], wearer: str | None = "w-1") -> dict[str, float]:
    (found,) = index.relations([fix(point, wearer)])
    return {r.fence.id: r.distance_m for r in found}


def paris(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


# -- schedules --------------------------------------------------------------------------------------------


def window(start: str, end: str, days: tuple[int, ...] = tuple(range(7))) -> Schedule:
    return Schedule((Window(days, start, end),))


def active_minutes(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    times = []
    t = start
    while t < end:
        if schedule.active(t, PARIS):
            times.append(t)
        t += timedelta(minutes=1)
    return times


def test_day_window() -> None:
    s = window("09:00", "17:30", (0,))  # Mondays; 2026-01-05 is a Monday, Paris is UTC+1 in winter
    assert not s.active(paris(2026, 1, 5, 7, 59), PARIS)
    assert s.active(paris(2026, 1, 5, 8, 0), PARIS)
    assert s.active(paris(2026, 1, 5, 16, 29), PARIS)
    assert not s.active(paris(2026, 1, 5, 16, 30), PARIS)  # the end is excluded
    assert not s.active(paris(2026, 1, 6, 8, 0), PARIS)  # Tuesday


def test_night_window_belongs_to_the_day_it_starts() -> None:
    s = window("21:00", "07:00", (4,))  # Friday night; 2026-01-09 is a Friday
    assert not s.active(paris(2026, 1, 9, 19, 59), PARIS)
    assert s.active(paris(2026, 1, 9, 20, 0), PARIS)  # Friday 21:00
    assert s.active(paris(2026, 1, 10, 5, 59), PARIS)  # Saturday 06:59
    assert not s.active(paris(2026, 1, 10, 6, 0), PARIS)  # Saturday 07:00
    assert not s.active(paris(2026, 1, 10, 20, 30), PARIS)  # Saturday night is not Friday night
    assert not s.active(paris(2026, 1, 9, 3, 0), PARIS)  # Friday 04:00 belongs to Thursday night


def test_window_to_midnight_and_full_day() -> None:
    evening = window("22:00", "00:00", (0,))
    assert evening.active(paris(2026, 1, 5, 22, 59), PARIS)  # Monday 23:59
    assert not evening.active(paris(2026, 1, 5, 23, 0), PARIS)  # Tuesday 00:00
    whole_day = window("08:00", "08:00", (0,))  # 24 hours from Monday 08:00
    assert whole_day.active(paris(2026, 1, 6, 6, 59), PARIS)
    assert not whole_day.active(paris(2026, 1, 6, 7, 0), PARIS)


def test_spring_forward_skipped_hour_never_happens() -> None:
    # 2026-03-29 (Sunday): at 01:00 UTC Paris jumps from 02:00 CET to 03:00 CEST.
    skipped = window("02:00", "03:00", (6,))
    assert active_minutes(skipped, paris(2026, 3, 28, 22), paris(2026, 3, 29, 4)) == []
    half = window("01:30", "02:30", (6,))  # only its half before the jump exists
    found = active_minutes(half, paris(2026, 3, 28, 22), paris(2026, 3, 29, 4))
    assert (found[0], found[-1], len(found)) == (paris(2026, 3, 29, 0, 30), paris(2026, 3, 29, 0, 59), 30)


def test_spring_forward_night_is_an_hour_shorter() -> None:
    night = window("21:00", "07:00", (5,))  # Saturday night 2026-03-28 → Sunday
    found = active_minutes(night, paris(2026, 3, 28, 12), paris(2026, 3, 29, 12))
    assert found[0] == paris(2026, 3, 28, 20)  # 21:00 CET
    assert found[-1] == paris(2026, 3, 29, 4, 59)  # 06:59 CEST
    assert len(found) == 9 * 60


def test_fall_back_repeated_hour_happens_twice() -> None:
    # 2026-10-25 (Sunday): at 01:00 UTC Paris goes back from 03:00 CEST to 02:00 CET.
    repeated = window("02:00", "03:00", (6,))
    found = active_minutes(repeated, paris(2026, 10, 24, 22), paris(2026, 10, 25, 4))
    assert found[0] == paris(2026, 10, 25, 0, 0)  # 02:00 CEST
    assert found[-1] == paris(2026, 10, 25, 1, 59)  # 02:59 CET
    assert len(found) == 120
    night = window("21:00", "07:00", (5,))
    found = active_minutes(night, paris(2026, 10, 24, 12), paris(2026, 10, 25, 12))
    assert (found[0], found[-1], len(found)) == (paris(2026, 10, 24, 19), paris(2026, 10, 25, 5, 59), 11 * 60)


def test_no_schedule_is_always_active_and_naive_times_are_refused() -> None:
    assert schedule_active(None, paris(2026, 1, 1), PARIS)
    with pytest.raises(ValueError, match="timezone-aware"):
        window("08:00", "09:00").active(datetime(2026, 1, 1, 8, 30), PARIS)


@pytest.mark.parametrize(
    "raw",
    [
        {"windows": []},
        {"windows": [{"days": [], "start": "08:00", "end": "09:00"}]},
        {"windows": [{"days": [7], "start": "08:00", "end": "09:00"}]},
        {"windows": [{"days": [0], "start": "24:00", "end": "09:00"}]},
        {"windows": [{"days": [0], "start": "8:00", "end": "09:00"}]},
        {"windows": [{"days": [0], "start": "08:00", "end": "09:60"}]},
    ],
)
def test_bad_schedules_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(raw, Schedule)


def test_schedule_json_round_trip() -> None:
    s = Schedule((Window((0, 1, 2, 3, 4), "21:00", "07:00"), Window((5, 6), "00:00", "00:00")))
    assert msgspec.json.decode(msgspec.json.encode(s), type=Schedule) == s


# -- validation -------------------------------------------------------------------------------------------

RING = square(CENTRE, 100.0)
HOLE = square(CENTRE, 30.0)[::-1]
LINE = [lonlat(CENTRE, 0, -500), lonlat(CENTRE, 0, 0), lonlat(CENTRE, 300, 400)]


@pytest.mark.parametrize(
    ("geometry", "radius", "width"),
    [
        pytest.param({"type": "Point", "coordinates": [5.3698, 43.2965]}, 200.0, None, id="circle"),
        pytest.param({"type": "Point", "coordinates": [5.3698, 43.2965, 12.0]}, 5, None, id="circle-3d"),
        pytest.param({"type": "Polygon", "coordinates": [RING]}, None, None, id="polygon"),
        pytest.param({"type": "Polygon", "coordinates": [RING, HOLE]}, None, None, id="polygon-hole"),
        pytest.param(
            {"type": "MultiPolygon", "coordinates": [[RING], [square(offset(CENTRE, 0, 500), 50)]]},
            None,
            None,
            id="multipolygon",
        ),
        pytest.param({"type": "LineString", "coordinates": LINE}, None, 40.0, id="corridor"),
    ],
)
def test_valid_geometries(geometry: dict[str, Any], radius: float | None, width: float | None) -> None:
    validate_fence_geometry(geometry, radius, width)
    FenceIndex([Fence("f", "o", None, "f", "safe", geometry, radius, width)])  # and the index takes it


BOWTIE = [lonlat(CENTRE, 0, 0), lonlat(CENTRE, 100, 100), lonlat(CENTRE, 100, 0), lonlat(CENTRE, 0, 100)]
MANY = [lonlat(CENTRE, 1000 * math.sin(a / 1000), 1000 * math.cos(a / 1000)) for a in range(6300)]


@pytest.mark.parametrize(
    ("geometry", "radius", "width", "message"),
    [
        pytest.param([1, 2], 10.0, None, "GeoJSON geometry object", id="not-a-mapping"),
        pytest.param({"type": "Point"}, 10.0, None, "no coordinates", id="no-coordinates"),
        pytest.param({"type": "Circle", "coordinates": [5, 43]}, 10.0, None, "unsupported", id="bad-type"),
        pytest.param({"type": "Point", "coordinates": [5, 43]}, None, None, "needs radius_m", id="no-radius"),
        pytest.param({"type": "Point", "coordinates": [5, 43]}, -5.0, None, "more than 0", id="neg-radius"),
        pytest.param({"type": "Point", "coordinates": [5, 43]}, 0.0, None, "more than 0", id="zero-radius"),
        pytest.param({"type": "Point", "coordinates": [5, 43]}, math.nan, None, "number", id="nan-radius"),
        pytest.param({"type": "Point", "coordinates": [5, 43]}, 2e5, None, "at most", id="huge-radius"),
        pytest.param({"type": "Point", "coordinates": [5, 43]}, 10.0, 5.0, "width_m does not", id="width"),
        pytest.param({"type": "Point", "coordinates": [5, 95]}, 10.0, None, "latitude", id="lat-range"),
        pytest.param({"type": "Point", "coordinates": [185, 43]}, 10.0, None, "longitude", id="lon-range"),
        pytest.param({"type": "Point", "coordinates": ["5", "43"]}, 10.0, None, "position", id="strings"),
        pytest.param({"type": "Point", "coordinates": [5]}, 10.0, None, "position", id="short"),
        pytest.param({"type": "Point", "coordinates": [True, 43]}, 10.0, None, "position", id="bool"),
        pytest.param({"type": "Point", "coordinates": [10**400, 43]}, 10.0, None, "position", id="huge-int"),
        pytest.param(
            {"type": "Point", "coordinates": [5, 43]}, 10**400, None, "number", id="huge-radius-int"
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, "x"], [0, 0]]]},
            None,
            None,
            "positions",
            id="string-in-ring",
        ),
        pytest.param({"type": "LineString", "coordinates": LINE}, None, None, "needs width_m", id="no-width"),
        pytest.param({"type": "LineString", "coordinates": LINE}, None, -3.0, "more than 0", id="neg-width"),
        pytest.param(
            {"type": "LineString", "coordinates": [LINE[0], LINE[0]]}, None, 10.0, "distinct", id="dot-line"
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [RING]}, 50.0, None, "radius_m does not", id="radius"
        ),
        pytest.param({"type": "Polygon", "coordinates": []}, None, None, "list of rings", id="no-rings"),
        pytest.param({"type": "Polygon", "coordinates": [RING[:-1]]}, None, None, "closed", id="open-ring"),
        pytest.param(
            {"type": "Polygon", "coordinates": [RING[:3]]}, None, None, "at least 4", id="short-ring"
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[*BOWTIE, BOWTIE[0]]]},
            None,
            None,
            "Self-intersection",
            id="bowtie",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [HOLE[::-1], RING]},
            None,
            None,
            "Hole",
            id="hole-outside-shell",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[*MANY, *MANY[:3900], MANY[0]]]},
            None,
            None,
            f"more than {MAX_VERTICES}",
            id="too-many-vertices",
        ),
        pytest.param(
            {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]},
            None,
            None,
            "spans more than",
            id="too-large",
        ),
        pytest.param({"type": "MultiPolygon", "coordinates": []}, None, None, "non-empty", id="empty-multi"),
    ],
)
def test_invalid_geometries(geometry: Any, radius: float | None, width: float | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_fence_geometry(geometry, radius, width)


def test_invalid_polygon_reason_is_located_in_degrees() -> None:
    with pytest.raises(ValueError, match=r"Self-intersection near longitude 5\.3\d+, latitude 43\.29\d+"):
        validate_fence_geometry({"type": "Polygon", "coordinates": [[*BOWTIE, BOWTIE[0]]]}, None, None)


# -- signed distances -------------------------------------------------------------------------------------


def test_circle_distances_match_the_great_circle() -> None:
    index = FenceIndex([circle(radius=200.0)])
    rng = random.Random(7)
    for _ in range(200):
        metres = rng.uniform(0, 5000)
        bearing = rng.uniform(0, 2 * math.pi)
        point = offset(CENTRE, metres * math.cos(bearing), metres * math.sin(bearing))
        expected = distance_m(CENTRE[0], CENTRE[1], point[0], point[1]) - 200.0
        # Within 0.2 % of the great circle (plus rounding): far better than any fix.
        assert distances(index, point)["home"] == pytest.approx(expected, rel=2e-3, abs=0.01)


def test_circle_inside_and_outside() -> None:
    index = FenceIndex([circle(radius=200.0)])
    assert distances(index, CENTRE)["home"] == pytest.approx(-200.0)
    assert distances(index, offset(CENTRE, 150, 0))["home"] == pytest.approx(-50.0)
    assert distances(index, offset(CENTRE, 0, -260))["home"] == pytest.approx(60.0)


def test_polygon_with_hole() -> None:
    # A 1 km square with a 400 m square hole: a point in the hole is outside the fence.
    index = FenceIndex([polygon("park", [square(CENTRE, 500), square(CENTRE, 200)[::-1]])])
    assert distances(index, CENTRE)["park"] == pytest.approx(200.0)
    assert distances(index, offset(CENTRE, 0, 300))["park"] == pytest.approx(-100.0)  # in the ring
    assert distances(index, offset(CENTRE, 0, 480))["park"] == pytest.approx(-20.0)
    assert distances(index, offset(CENTRE, 0, 700))["park"] == pytest.approx(200.0)
    assert distances(index, offset(CENTRE, 800, 800))["park"] == pytest.approx(300 * math.sqrt(2))


def test_multipolygon() -> None:
    far = offset(CENTRE, 0, 2000)
    geometry = {"type": "MultiPolygon", "coordinates": [[square(CENTRE, 100)], [square(far, 100)]]}
    index = FenceIndex([Fence("two", "org-1", "w-1", "two", "safe", geometry)])
    assert distances(index, CENTRE)["two"] == pytest.approx(-100.0)
    assert distances(index, far)["two"] == pytest.approx(-100.0)
    assert distances(index, offset(CENTRE, 0, 1000))["two"] == pytest.approx(900.0)


def test_corridor() -> None:
    # A 100 m wide corridor along a 1 km west-east street, then 300 m north.
    line = [lonlat(CENTRE, 0, -500), lonlat(CENTRE, 0, 500), lonlat(CENTRE, 300, 500)]
    index = FenceIndex([corridor("route", line, 100.0)])
    # (The corridor's projection is centred on its middle, not on CENTRE: millimetres apart.)
    assert distances(index, offset(CENTRE, 30, 0))["route"] == pytest.approx(-20.0, abs=0.01)
    assert distances(index, offset(CENTRE, -80, 0))["route"] == pytest.approx(30.0, abs=0.01)
    assert distances(index, offset(CENTRE, 0, -560))["route"] == pytest.approx(10.0, abs=0.01)  # past the end
    assert distances(index, offset(CENTRE, 150, 530))["route"] == pytest.approx(-20.0, abs=0.01)  # north leg


def star(rng: random.Random, centre: tuple[float, float], vertices: int, radius: float) -> list[list[float]]:
    """A closed star-shaped ring (always simple), counter-clockwise."""
    ring = []
    for k in range(vertices):
        angle = 2 * math.pi * k / vertices
        r = radius * rng.uniform(0.5, 1.0)
        ring.append(lonlat(centre, r * math.sin(angle), r * math.cos(angle)))
    return [*ring, ring[0]]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), vertices=st.integers(3, 120))
def test_numpy_and_geos_measure_the_same(seed: int, vertices: int) -> None:
    """Small fences are measured in numpy, big ones through GEOS: both give the same signed distances."""
    rng = random.Random(seed)
    line = [lonlat(CENTRE, rng.uniform(-900, 900), rng.uniform(-900, 900)) for _ in range(vertices)]
    fences = [
        polygon("star", [star(rng, CENTRE, vertices, 400.0)]),
        polygon("holed", [star(rng, CENTRE, vertices, 800.0), star(rng, CENTRE, vertices, 300.0)[::-1]]),
        Fence(
            "two", "org-1", "w-1", "two", "safe",
            {"type": "MultiPolygon", "coordinates": [[star(rng, offset(CENTRE, 0, -900), vertices, 200.0)],
                                                     [star(rng, offset(CENTRE, 0, 900), vertices, 200.0)]]},
        ),
        corridor("route", line, rng.uniform(10, 200)),
    ]  # fmt: skip
    points = [offset(CENTRE, rng.uniform(-1200, 1200), rng.uniform(-1200, 1200)) for _ in range(200)]
    queries = [fix(p) for p in points]
    found = {}
    for limit in (0, 10**6):  # everything through GEOS, then everything in numpy
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fences_module, "NUMPY_MAX_VERTICES", limit)
            index = FenceIndex(fences)
        found[limit] = [{r.fence.id: r.distance_m for r in rs} for rs in index.relations(queries)]
    for geos, numpy in zip(found[0], found[10**6], strict=True):
        assert geos.keys() == numpy.keys()
        for fence_id, distance in geos.items():
            assert numpy[fence_id] == pytest.approx(distance, abs=1e-6)


# -- which fences a fix meets -----------------------------------------------------------------------------


def test_applicability_by_organisation_and_wearer() -> None:
    fences = [
        circle("mine", wearer="w-1"),
        circle("theirs", wearer="w-2"),
        circle("everyone", wearer=None),
        circle("other-org", org="org-2", wearer=None),
        circle("pond", kind="danger", wearer=None, radius=30.0),
        circle("my-road", kind="danger", wearer="w-1", radius=30.0),
        circle("their-road", kind="danger", wearer="w-2", radius=30.0),
    ]
    index = FenceIndex(fences)
    assert set(distances(index, CENTRE, "w-1")) == {"mine", "everyone", "pond", "my-road"}
    assert set(distances(index, CENTRE, "w-2")) == {"theirs", "everyone", "pond", "their-road"}
    assert set(distances(index, CENTRE, "w-3")) == {"everyone", "pond"}
    assert set(distances(index, CENTRE, None)) == {"everyone", "pond"}
    (other,) = index.relations([fix(CENTRE, "w-1", org="org-2")])
    assert [r.fence.id for r in other] == ["other-org"]
    assert [f.id for f in index.for_wearer("org-1", "w-1")] == ["everyone", "pond", "mine", "my-road"]
    assert [f.id for f in index.for_wearer("org-1", None)] == ["everyone", "pond"]
    assert index.for_wearer("org-9", "w-1") == []


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 400), spread=st.sampled_from([1.0, 10.0, 1000.0]))
def test_the_box_grid_finds_what_the_strtree_finds_in_its_order(seed: int, count: int, spread: float) -> None:
    # Boxes from a metre to hundreds of kilometres wide (several levels), points inside, outside and
    # exactly on edges and corners: the same (point, box) pairs, in the same order, as STRtree.query.
    rng = np.random.default_rng(seed)
    x0, y0 = rng.uniform(0, 50, count), rng.uniform(0, 50, count)
    width = rng.uniform(1e-5, 0.05, count) * rng.choice([1.0, spread], count)
    height = width * rng.uniform(0.3, 3.0, count)
    x1, y1 = x0 + width, y0 + height
    tree = shapely.STRtree(shapely.box(x0, y0, x1, y1))
    rank = np.empty(count, dtype=np.intp)
    rank[tree.query(shapely.box(x0.min(), y0.min(), x1.max(), y1.max()))] = np.arange(count)
    grid = _BoxGrid(x0, y0, x1, y1, rank)
    pick = rng.integers(0, count, 300)
    px = np.concatenate((rng.uniform(-5, 60, 700), x0[pick], x1[pick], rng.uniform(x0[pick], x1[pick])))
    py = np.concatenate((rng.uniform(-5, 60, 700), y0[pick], y1[pick], y1[pick]))
    expected_point, expected_box = tree.query(shapely.points(px, py))
    found_point, found_box = grid.query(px, py)
    assert found_point.tolist() == expected_point.tolist()
    assert found_box.tolist() == expected_box.tolist()


def test_a_wearer_id_used_in_two_organisations_meets_each_ones_own_fences() -> None:
    # Plans are looked up by wearer id and checked against the fix's organisation: an id that two
    # organisations both use (or one reused elsewhere without fences of its own) must not mix them.
    index = FenceIndex(
        [
            circle("a-home", wearer="w-1"),
            circle("a-all", wearer=None),
            circle("b-home", org="org-2", wearer="w-1"),
            circle("c-all", org="org-3", wearer=None),
            circle("c-other", org="org-3", wearer="w-2"),
        ]
    )
    queries = [
        fix(CENTRE, "w-1", org="org-1"),
        fix(CENTRE, "w-1", org="org-2"),
        fix(CENTRE, "w-1", org="org-3"),
        fix(CENTRE, "w-2", org="org-1"),
        fix(CENTRE, "w-2", org="org-3"),
        fix(CENTRE, "w-1", org="org-9"),
    ]
    found = [[r.fence.id for r in rs] for rs in index.relations(queries)]
    assert found == [["a-all", "a-home"], ["b-home"], ["c-all"], ["a-all"], ["c-all", "c-other"], []]
    single = FenceIndex([circle("a-home", wearer="w-1"), circle("c-all", org="org-3", wearer=None)])
    found = [[r.fence.id for r in rs] for rs in single.relations(queries)]
    assert found == [["a-home"], [], ["c-all"], [], ["c-all"], []]


def test_far_safe_fences_are_always_given_far_danger_zones_are_not() -> None:
    far = offset(CENTRE, 20_000, 0)  # 20 km north of home, beside a pond
    index = FenceIndex(
        [
            circle("home", radius=200.0),
            circle("near-pond", 50.0, offset(far, 0, 1_900), kind="danger", wearer=None),
            circle("far-pond", 50.0, offset(far, 0, 2_500), kind="danger", wearer=None),
            circle("corner-pond", 50.0, offset(far, 1_800, 1_800), kind="danger", wearer=None),  # in the box
        ]
    )
    found = distances(index, far)
    assert set(found) == {"home", "near-pond"}
    assert found["home"] == pytest.approx(19_800.0, rel=1e-3)
    assert found["near-pond"] == pytest.approx(1_850.0, abs=0.5)
    assert set(distances(FenceIndex(index.fences, near_m=500.0), far)) == {"home"}


def test_batch_is_the_same_as_one_fix_at_a_time() -> None:
    rng = random.Random(3)
    fences: list[Fence] = []
    for i in range(300):
        centre = offset(CENTRE, rng.uniform(-3000, 3000), rng.uniform(-3000, 3000))
        wearer = None if i % 10 == 0 else f"w-{i % 7}"
        kind = "danger" if i % 3 == 0 else "safe"
        if i % 3 == 1:
            fences.append(polygon(f"p{i}", [square(centre, rng.uniform(20, 300))], kind=kind, wearer=wearer))
        else:
            fences.append(
                circle(f"c{i}", centre=centre, radius=rng.uniform(20, 300), kind=kind, wearer=wearer)
            )
    fences.append(corridor("road", [lonlat(CENTRE, -3000, 0), lonlat(CENTRE, 3000, 0)], 30.0, kind="danger"))
    index = FenceIndex(fences)
    queries = [
        fix(offset(CENTRE, rng.uniform(-4000, 4000), rng.uniform(-4000, 4000)), f"w-{rng.randrange(9)}")
        for _ in range(500)
    ]
    batch = index.relations(queries)
    assert batch == [index.relations([q])[0] for q in queries]
    for query, found in zip(queries, batch, strict=True):
        ids = [r.fence.id for r in found]
        assert len(ids) == len(set(ids))
        applicable = index.for_wearer(query.org_id, query.wearer_id)
        assert {f.id for f in applicable if f.kind == "safe"} <= set(ids)
        assert set(ids) <= {f.id for f in applicable}
    # Exactly the danger zones within near_m of the fix, and every safe zone.
    everything = FenceIndex(fences, near_m=MAX_NEAR_M)
    for q, found, every in zip(queries, batch, everything.relations(queries), strict=True):
        assert {r.fence.id for r in every} == {f.id for f in index.for_wearer(q.org_id, q.wearer_id)}
        expected = {r.fence.id for r in every if r.fence.kind == "safe" or r.distance_m <= index.near_m}
        assert {r.fence.id for r in found} == expected


@pytest.mark.parametrize("listed", [0, 25, 1_000])
def test_danger_zones_listed_or_in_the_tree_are_found_alike(listed: int) -> None:
    """Scopes with few danger zones list them in their plan, the others look fixes up in the tree (and
    far ones are left out by their reach before measuring): both find exactly the danger zones within
    near_m, with the same distances."""
    rng = random.Random(11)
    fences: list[Fence] = []
    for i in range(400):
        centre = offset(CENTRE, rng.uniform(-6000, 6000), rng.uniform(-6000, 6000))
        wearer = None if i % 4 == 0 else f"w-{i % 9}"  # 100 org-wide, ~33 per wearer
        kind = "danger" if i % 3 else "safe"
        if i % 5 == 1:
            fences.append(polygon(f"p{i}", [square(centre, rng.uniform(20, 400))], kind=kind, wearer=wearer))
        elif i % 5 == 2:
            end = offset(centre, rng.uniform(-900, 900), rng.uniform(-900, 900))
            line = [[centre[1], centre[0]], [end[1], end[0]]]
            fences.append(
                Fence(f"r{i}", "org-1", wearer, f"r{i}", kind, {"type": "LineString", "coordinates": line},
                      None, rng.uniform(10, 80))  # type: ignore[arg-type]
            )  # fmt: skip
        else:
            fences.append(
                circle(f"c{i}", centre=centre, radius=rng.uniform(20, 300), kind=kind, wearer=wearer)
            )
    queries = [
        fix(offset(CENTRE, rng.uniform(-7000, 7000), rng.uniform(-7000, 7000)), f"w-{rng.randrange(11)}")
        for _ in range(400)
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fences_module, "LISTED_DANGER_MAX", listed)
        index = FenceIndex(fences)
    everything = FenceIndex(fences, near_m=MAX_NEAR_M)
    for found, every in zip(index.relations(queries), everything.relations(queries), strict=True):
        expected = {r.fence.id: r.distance_m for r in every if r.fence.kind == "safe" or r.distance_m <= 2000}
        assert {r.fence.id: r.distance_m for r in found} == expected


def test_a_dense_city_of_other_wearers_is_never_met() -> None:
    rng = random.Random(5)
    others = [
        circle(f"c{i}", centre=offset(CENTRE, rng.uniform(-500, 500), rng.uniform(-500, 500)),
               kind="danger" if i % 2 else "safe", wearer=f"other-{i}", org=f"org-{i % 50}")
        for i in range(20_000)
    ]  # fmt: skip
    index = FenceIndex([*others, circle("home"), circle("stairs", kind="danger", radius=5.0, wearer=None)])
    assert set(distances(index, CENTRE)) == {"home", "stairs"}


def test_unusable_fences_are_left_out_and_reported() -> None:
    bad = Fence("bad", "org-1", "w-1", "bad", "safe", {"type": "Point", "coordinates": [5, 43]}, None)
    index = FenceIndex([bad, circle("home")])
    assert len(index) == 1
    assert index.rejected == [("bad", "a Point (circle) fence needs radius_m")]
    assert set(distances(index, CENTRE)) == {"home"}


def test_fixes_off_the_world_meet_no_danger_and_no_distance() -> None:
    index = FenceIndex([circle("home"), circle("pond", 30.0, kind="danger", wearer=None)])
    for point in [(95.0, CENTRE[1]), (CENTRE[0], 365.0), (math.nan, CENTRE[1]), (CENTRE[0], math.inf)]:
        found = distances(index, point)
        assert list(found) == ["home"]
        assert math.isnan(found["home"])
    with pytest.raises(ValueError, match="near_m"):
        FenceIndex([], near_m=-1.0)


def test_empty_index() -> None:
    index = FenceIndex.empty()
    assert len(index) == 0
    assert index.relations([]) == []
    assert index.relations([fix(CENTRE), fix(CENTRE, None)]) == [[], []]


@settings(max_examples=200, deadline=None)
@given(
    north=st.floats(-3000, 3000),
    east=st.floats(-3000, 3000),
    half=st.floats(5, 1000),
)
def test_signed_distance_sign_matches_containment(north: float, east: float, half: float) -> None:
    index = FenceIndex([polygon("sq", [square(CENTRE, half)])])
    d = distances(index, offset(CENTRE, north, east))["sq"]
    outside = max(abs(north), abs(east)) - half
    assert d == pytest.approx(
        outside if outside <= 0 else math.hypot(max(abs(north) - half, 0), max(abs(east) - half, 0)), abs=1e-3
    )


# -- uncertainty ------------------------------------------------------------------------------------------


def message(**fields: Any) -> DeviceMessage:
    return DeviceMessage("860000000000001", "watch", latitude=43.3, longitude=5.4, **fields)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"accuracy_m": 8.0}, (8.0, "gps"), id="reported-gps"),
        pytest.param({"accuracy_m": 75.0}, (75.0, "wifi"), id="reported-wifi-grade"),
        pytest.param({"accuracy_m": 1200.0}, (1200.0, "cell"), id="reported-cell-grade"),
        pytest.param({"accuracy_m": 300.0}, (300.0, "cell"), id="cell-grade-boundary"),
        pytest.param({"accuracy_m": 50.0}, (50.0, "wifi"), id="wifi-grade-boundary"),
        pytest.param(
            {"accuracy_m": 30.0, "extras": {"position_source": "wifi"}}, (30.0, "wifi"), id="declared-wins"
        ),
        pytest.param({"accuracy_m": 0.0, "hdop": 1.2}, (16.0, "gps"), id="zero-accuracy-is-unknown"),
        pytest.param({"hdop": 2.0, "satellites": 6}, (20.0, "gps"), id="hdop"),
        pytest.param({"satellites": 9}, (GPS_DEFAULT_M, "gps"), id="satellites-only"),
        pytest.param({}, (GPS_DEFAULT_M, "gps"), id="nothing"),
        pytest.param({"extras": {"position_source": "wifi"}}, (WIFI_M, "wifi"), id="wifi"),
        pytest.param({"extras": {"position_source": "cell"}}, (CELL_M, "cell"), id="cell"),
        pytest.param({"extras": {"position_source": "LBS"}}, (CELL_M, "cell"), id="lbs"),
        pytest.param(
            {"valid": False, "cells": (CellTower(208, 1, 1, 2),)}, (CELL_M, "cell"), id="invalid-with-cells"
        ),
    ],
)
def test_position_uncertainty(fields: dict[str, Any], expected: tuple[float, str]) -> None:
    assert position_uncertainty_m(message(**fields)) == expected


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "accuracy_m": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
                "hdop": st.one_of(st.none(), st.floats(0, 20)),
                "valid": st.booleans(),
                "cells": st.just((CellTower(208, 1, 1, 2),)),
                "extras": st.one_of(
                    st.just({}),
                    st.fixed_dictionaries(
                        {"position_source": st.sampled_from(["gps", "GNSS", "wifi", "cell", "lbs", "x", 3])}
                    ),
                    st.just({"source": "wifi"}),
                ),
            },
        ),
        max_size=20,
    )
)
def test_positions_uncertainty_is_position_uncertainty_for_each(fields: list[dict[str, Any]]) -> None:
    messages = [message(**f) for f in fields]
    uncertainty, non_cell = positions_uncertainty_m(
        messages, [m.accuracy_m for m in messages], [m.extras for m in messages]
    )
    expected = [position_uncertainty_m(m) for m in messages]
    assert uncertainty == [u for u, _ in expected]
    assert non_cell == [source != "cell" for _, source in expected]
