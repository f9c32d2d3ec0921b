"""Geofences: where a wearer must stay (safe zones) or must not go (danger zones), and an index over them.

Pure: no I/O, no clock. Geometry is GeoJSON in WGS84 (longitude, latitude); distances are in metres.

**Metric plane.** Each fence gets its own local equirectangular projection, centred on the middle of its
bounding box (the centre for a circle): ``x = Δlon·cos(lat0)·R``, ``y = Δlat·R``. Over the few kilometres
a fence spans this is within a fraction of a percent of the geodesic, and it is affine, so shapely's
planar algorithms (distance, containment, validity) give metric answers. Circles stay analytic (distance
to the centre minus the radius) and corridors are the distance to their centre line minus half their
width, so neither is approximated by a polygonal buffer.

**Signed distance** to a fence's boundary: > 0 outside, < 0 inside. For a polygon with holes, a point in a
hole is outside (positive distance to the hole's ring).

**Index.** :class:`FenceIndex` answers, for a whole batch of fixes at once, "which fences matter to this
fix and how far is it from each": every *safe* fence of the fix's wearer (and of their organisation),
however far (being 30 km from home is worth knowing), plus every *danger* fence of the wearer or
organisation within ``near_m`` of the fix (a danger zone farther away is clearly not entered). A scope
with few danger zones (at most :data:`LISTED_DANGER_MAX`: a wearer's road or canal bank) lists them with
its safe fences, and they are measured for every fix of the scope (a bounded cost); the danger zones of
larger scopes (an organisation's ponds and motorways across a region) sit in one shapely STRtree over
their WGS84 bounding boxes grown by ``near_m``, which a batch asks through a grid of the same boxes
(:class:`_BoxGrid`: the same answers in the tree's order, without a GEOS point and a tree walk per
fix). Either way, a danger zone whose centre is farther from the
fix than its reach (its farthest point from the centre) plus ``near_m`` is left out before it is
measured, and one measured farther than ``near_m`` afterwards. So that a fix
only ever meets the fences that apply to it (and the cost per fix stays ~log(fences) however many other
organisations share the city), every scope (an organisation's org-wide fences, or one wearer's own
fences) lives in its own "lane": its boxes are translated by a per-scope offset of hundreds of degrees,
far beyond any real coordinate, and a fix is looked up at its position translated by its wearer's lane
and by its organisation's lane. The offsets stay below 10⁶ degrees, so doubles still place boxes to well
under a millimetre.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise, repeat
from operator import attrgetter
from typing import Any, Final, Literal, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import shapely  # type: ignore[import-untyped]  # shapely ships no type information

from geosentinel.detect.schedule import Schedule
from geosentinel.geodesy import EARTH_RADIUS_M

FenceKind = Literal["safe", "danger"]

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]

METRES_PER_DEGREE: Final = EARTH_RADIUS_M * math.pi / 180  # along a meridian

# Limits on what a fence may be (checked by validate_fence_geometry, i.e. by the API and the CLI).
MAX_VERTICES: Final = 10_000
MAX_RADIUS_M: Final = 100_000.0  # as the API allows
MAX_WIDTH_M: Final = 10_000.0
# A fence larger than this is not a place but a region, and the local projection would drift past 1 %.
MAX_SIZE_M: Final = 200_000.0
# Near the poles cos(latitude) vanishes and the local projection degenerates; nobody is cared for there.
MAX_LATITUDE: Final = 85.0


# -- fences -----------------------------------------------------------------------------------------------


class Fence(msgspec.Struct, frozen=True):
    """A safe zone (alert on exit) or danger zone (alert on entry) of one wearer or a whole organisation.

    ``geometry`` is a GeoJSON geometry: a ``Point`` with ``radius_m`` (a circle), a ``Polygon`` (holes
    allowed) or ``MultiPolygon``, or a ``LineString`` with ``width_m`` (a corridor of that full width).
    """

    id: str
    org_id: str
    wearer_id: str | None  # None: every wearer of the organisation
    name: str
    kind: FenceKind
    geometry: dict[str, Any]
    radius_m: float | None = None
    width_m: float | None = None
    schedule: Schedule | None = None


CIRCLE: Final = 0
POLYGON: Final = 1
CORRIDOR: Final = 2

ObjectArray = npt.NDArray[np.object_]


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A fence's geometry checked for structure, still in longitude and latitude.

    ``points`` holds the vertices as (lon, lat) rows: a circle's centre, a corridor's line, or every ring
    of every polygon one after the other (``rings``: vertices per ring, ``parts``: rings per polygon).
    """

    name: str  # the GeoJSON type, for messages
    code: int
    points: FloatArray
    size_m: float = 0.0  # a circle's radius, a corridor's half width
    rings: tuple[int, ...] = ()
    parts: tuple[int, ...] = ()


def _wrap_lon(delta: Any) -> Any:
    """A longitude difference brought into [-180, 180) (works on floats and numpy arrays)."""
    return (delta + 180.0) % 360.0 - 180.0


def _positions(raw: Any, what: str) -> FloatArray:
    """A (n, 2) array of [longitude, latitude] from GeoJSON positions (ranges are checked in bulk)."""
    try:
        array = np.asarray(raw)
    except ValueError as exc:  # ragged nesting
        raise ValueError(f"{what}: coordinates must be a list of [longitude, latitude] positions") from exc
    if array.dtype.kind not in "iuf" or array.ndim != 2 or array.shape[1] not in (2, 3) or not len(array):
        raise ValueError(f"{what}: coordinates must be a list of [longitude, latitude] positions")
    return array[:, :2].astype(np.float64)


def _plain_number(value: Any) -> bool:
    """A JSON number a float can hold (not a bool, not an int too large to convert)."""
    return isinstance(value, float) or (type(value) is int and abs(value) < 1e300)


def _point(coordinates: Any) -> FloatArray:
    """A GeoJSON Point's position: plain Python first, as most fences are circles."""
    if isinstance(coordinates, list | tuple) and len(coordinates) in (2, 3):
        lon, lat = coordinates[0], coordinates[1]
        if _plain_number(lon) and _plain_number(lat):
            return np.array([[float(lon), float(lat)]])
    raise ValueError("Point: coordinates must be a [longitude, latitude] position")


def _ring(raw: Any, what: str) -> FloatArray:
    ring = _positions(raw, what)
    if len(ring) < 4:
        raise ValueError(f"{what}: a ring needs at least 4 positions (the first repeated last)")
    if ring[0, 0] != ring[-1, 0] or ring[0, 1] != ring[-1, 1]:
        raise ValueError(f"{what}: a ring must be closed (its last position equal to its first)")
    return ring


def _polygon_rings(raw: Any, what: str) -> list[FloatArray]:
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError(f"{what}: coordinates must be a list of rings (the outer ring first)")
    return [_ring(ring, f"{what} ring {i}") for i, ring in enumerate(raw)]


def _length(value: float | None, name: str, limit: float, geometry_type: str) -> float:
    if value is None:
        raise ValueError(f"a {geometry_type} fence needs {name}")
    if not _plain_number(value) or math.isnan(value):
        raise ValueError(f"{name} must be a number of metres")
    metres = float(value)
    if not 0 < metres <= limit:  # False for NaN too
        raise ValueError(f"{name} must be more than 0 and at most {limit:g} m (got {metres:g})")
    return metres


def _unexpected(value: float | None, name: str, geometry_type: str) -> None:
    if value is not None:
        raise ValueError(f"{name} does not apply to a {geometry_type} fence")


def _too_many(vertices: int, geometry_type: str) -> None:
    if vertices > MAX_VERTICES:
        raise ValueError(f"{geometry_type} has {vertices} vertices, more than {MAX_VERTICES}")


def _circle(coordinates: Any, radius_m: float | None, width_m: float | None) -> _Parsed:
    _unexpected(width_m, "width_m", "Point")
    radius = _length(radius_m, "radius_m", MAX_RADIUS_M, "Point (circle)")
    return _Parsed("Point", CIRCLE, _point(coordinates), radius)


def _polygons(geometry_type: str, coordinates: Any, radius_m: float | None, width_m: float | None) -> _Parsed:
    _unexpected(radius_m, "radius_m", geometry_type)
    _unexpected(width_m, "width_m", geometry_type)
    if geometry_type == "Polygon":
        polygons = [_polygon_rings(coordinates, "Polygon")]
    else:
        if not isinstance(coordinates, list | tuple) or not coordinates:
            raise ValueError("MultiPolygon: coordinates must be a non-empty list of polygons")
        polygons = [_polygon_rings(p, f"MultiPolygon polygon {i}") for i, p in enumerate(coordinates)]
    rings = [ring for polygon in polygons for ring in polygon]
    _too_many(sum(len(ring) for ring in rings), geometry_type)
    points = rings[0] if len(rings) == 1 else np.concatenate(rings)
    sizes = tuple(len(ring) for ring in rings)
    return _Parsed(geometry_type, POLYGON, points, 0.0, sizes, tuple(len(p) for p in polygons))


def _corridor(coordinates: Any, radius_m: float | None, width_m: float | None) -> _Parsed:
    _unexpected(radius_m, "radius_m", "LineString")
    half_width = _length(width_m, "width_m", MAX_WIDTH_M, "LineString (corridor)") / 2
    points = _positions(coordinates, "LineString")
    _too_many(len(points), "LineString")
    if not (points != points[0]).any():
        raise ValueError("LineString: a corridor needs at least 2 distinct positions")
    return _Parsed("LineString", CORRIDOR, points, half_width)


def _parse(geometry: Mapping[str, Any], radius_m: float | None, width_m: float | None) -> _Parsed:
    if not isinstance(geometry, Mapping):
        raise ValueError("the geometry must be a GeoJSON geometry object")
    geometry_type = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if coordinates is None:
        raise ValueError("the geometry has no coordinates")
    if geometry_type == "Point":
        return _circle(coordinates, radius_m, width_m)
    if geometry_type in ("Polygon", "MultiPolygon"):
        return _polygons(str(geometry_type), coordinates, radius_m, width_m)
    if geometry_type == "LineString":
        return _corridor(coordinates, radius_m, width_m)
    raise ValueError(
        f"unsupported geometry type {geometry_type!r}: expected Point (a circle with radius_m), Polygon,"
        " MultiPolygon or LineString (a corridor with width_m)"
    )


# The rest is done for many fences at once: per-fence numpy calls on ten-vertex arrays cost more than the
# arithmetic, and building shapely geometries one by one costs tens of microseconds each.

_LIMITS: Final = np.array([180.0, MAX_LATITUDE])


@dataclass(frozen=True, slots=True)
class _Vertices:
    """Every vertex of many fences in one array, and where each fence's vertices start."""

    points: FloatArray
    starts: IndexArray
    counts: IndexArray
    low: FloatArray  # per fence: min (lon, lat)
    high: FloatArray  # per fence: max (lon, lat)

    @classmethod
    def of(cls, parsed: Sequence[_Parsed]) -> _Vertices:
        counts = np.array([len(p.points) for p in parsed], dtype=np.intp)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
        if not parsed:
            empty = np.empty((0, 2))
            return cls(empty, starts[:0], counts, empty, empty)
        points = np.concatenate([p.points for p in parsed])
        low, high = np.minimum.reduceat(points, starts), np.maximum.reduceat(points, starts)
        return cls(points, starts, counts, low, high)


def _extent_errors(parsed: Sequence[_Parsed]) -> list[str | None]:
    """Why each fence's coordinates cannot be used (out of range, too large), or None."""
    vertices = _Vertices.of(parsed)
    errors: list[str | None] = [None] * len(parsed)
    if not parsed:
        return errors
    bad_vertex = ~(np.abs(vertices.points) <= _LIMITS).all(axis=1)  # NaN is bad too
    bad = np.logical_or.reduceat(bad_vertex, vertices.starts)
    for i in np.flatnonzero(bad).tolist():
        points, what = parsed[i].points, parsed[i].name
        if not np.isfinite(points).all():
            errors[i] = f"{what}: coordinates must be finite numbers"
        elif (np.abs(points[:, 0]) > 180.0).any():
            errors[i] = f"{what}: longitude out of range -180…180"
        else:
            errors[i] = f"{what}: latitude out of range -{MAX_LATITUDE:g}…{MAX_LATITUDE:g}"
    # A fence crossing the antimeridian spans ~360° here, hence is refused as too large.
    lat0 = (vertices.low[:, 1] + vertices.high[:, 1]) / 2
    span = (vertices.high - vertices.low) * np.column_stack((np.cos(np.radians(lat0)), np.ones_like(lat0)))
    too_large = (span.max(axis=1) * METRES_PER_DEGREE > MAX_SIZE_M) & ~bad
    for i in np.flatnonzero(too_large).tolist():
        errors[i] = f"{parsed[i].name} spans more than {MAX_SIZE_M / 1000:g} km"
    return errors


@dataclass(frozen=True, slots=True)
class _Shapes:
    """Fences' geometry as the index computes with it, one entry per fence.

    Each fence has its own metric plane centred on the middle of its bounding box. Polygons become
    shapely MultiPolygons (one part for a Polygon: same answers) in that plane; ``area`` is used for
    containment and ``line`` (their boundary: every ring) for distance. Corridors keep their centre line
    in ``line``. Circles need neither: their distance is computed from the centre. Small polygons and
    corridors also have their edges in ``segments``, measured in numpy rather than through GEOS.
    """

    code: npt.NDArray[np.int8]
    lat0: FloatArray
    lon0: FloatArray
    metres_per_lon: FloatArray
    size_m: FloatArray
    bbox: FloatArray  # (n, 4) WGS84 min lon, min lat, max lon, max lat, including radius or half width
    area: ObjectArray
    line: ObjectArray
    segments: _Segments
    # In the fence's plane, how far from its centre (0, 0) any point of it is at most: the farthest vertex
    # plus the radius or half width. A point farther than reach + d from the centre is more than d away.
    reach: FloatArray

    @classmethod
    def build(cls, parsed: Sequence[_Parsed]) -> _Shapes:
        vertices = _Vertices.of(parsed)
        code = np.array([p.code for p in parsed], dtype=np.int8)
        size_m = np.array([p.size_m for p in parsed], dtype=np.float64)
        lon0, lat0 = ((vertices.low + vertices.high) / 2).T if parsed else (np.empty(0), np.empty(0))
        metres_per_lon = METRES_PER_DEGREE * np.cos(np.radians(lat0))
        # Every vertex in its own fence's plane.
        owner = np.repeat(np.arange(len(parsed)), vertices.counts)
        xy = vertices.points - np.column_stack((lon0, lat0))[owner]
        xy[:, 0] = _wrap_lon(xy[:, 0]) * metres_per_lon[owner]
        xy[:, 1] *= METRES_PER_DEGREE
        area = np.full(len(parsed), None, dtype=object)
        line = np.full(len(parsed), None, dtype=object)
        polygon = np.flatnonzero(code == POLYGON)
        if len(polygon):
            area[polygon] = _multipolygons(
                [parsed[i] for i in polygon.tolist()], xy[(code == POLYGON)[owner]]
            )
            shapely.prepare(area[polygon])  # containment is tested over and over
            line[polygon] = shapely.boundary(area[polygon])
        corridor = np.flatnonzero(code == CORRIDOR)
        if len(corridor):
            offsets = np.concatenate(([0], np.cumsum(vertices.counts[corridor])))
            line[corridor] = shapely.from_ragged_array(
                shapely.GeometryType.LINESTRING, xy[(code == CORRIDOR)[owner]], (offsets,)
            )
        bbox = _grown_boxes(vertices, np.where(code == POLYGON, 0.0, size_m))
        segments = _Segments.of(parsed, code, vertices.counts, owner, xy)
        far = np.maximum.reduceat(np.hypot(xy[:, 0], xy[:, 1]), vertices.starts) if parsed else size_m
        reach = far + np.where(code == POLYGON, 0.0, size_m)
        return cls(code, lat0, lon0, metres_per_lon, size_m, bbox, area, line, segments, reach)


# Polygons and corridors with at most this many vertices are measured in numpy, edge by edge, for a whole
# batch at once: GEOS costs about a microsecond per call, more than a dozen edges in numpy. Bigger ones go
# through GEOS, whose prepared geometries index their edges instead of scanning them all.
NUMPY_MAX_VERTICES: Final = 64


@dataclass(frozen=True, slots=True)
class _Segments:
    """The edges of small polygons and corridors, in their fences' planes."""

    # (6, n), one row per quantity so that gathered edges are contiguous: each edge's start (ax, ay), the
    # y of its end, its direction (dx, dy = end - start) and its squared length (1 for a degenerate edge,
    # whose projection is then 0): computed once here rather than for every pair.
    edges: FloatArray
    start: IndexArray  # per fence: its first edge
    count: IndexArray  # per fence: its number of edges; 0 for circles and fences measured by GEOS

    @classmethod
    def of(
        cls,
        parsed: Sequence[_Parsed],
        code: npt.NDArray[np.int8],
        counts: IndexArray,
        owner: IndexArray,
        xy: FloatArray,
    ) -> _Segments:
        # A vertex and the next one form an edge when both are on the same ring (polygons) or line.
        ring_sizes = [size for p in parsed for size in (p.rings or (len(p.points),))]
        ring = np.repeat(np.arange(len(ring_sizes)), ring_sizes)
        small = (code != CIRCLE) & (counts <= NUMPY_MAX_VERTICES)
        edge = (ring[:-1] == ring[1:]) & small[owner[:-1]]
        count = np.bincount(owner[:-1][edge], minlength=len(parsed)).astype(np.intp)
        (ax, ay), (bx, by) = xy[:-1][edge].T, xy[1:][edge].T
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        edges = np.ascontiguousarray(np.vstack((ax, ay, by, dx, dy, np.where(length2 > 0, length2, 1.0))))
        return cls(edges, np.cumsum(count) - count, count)

    def measure(
        self, start: IndexArray, count: IndexArray, x: FloatArray, y: FloatArray
    ) -> tuple[FloatArray, BoolArray]:
        """Each point's distance to its fence's nearest edge (the fence's ``count`` edges from ``start``),
        and whether it is inside (even-odd rule: holes and the parts of a valid MultiPolygon come out
        right). Every fence must have edges."""
        first = np.cumsum(count) - count  # where each point's edges start among all gathered edges
        which = np.repeat(start - first, count) + np.arange(int(count.sum()))
        # np.take rather than indexing: numpy's fancy indexing along a second axis is many times slower.
        ax, ay, by, dx, dy, length2 = np.take(self.edges, which, axis=1)
        px, py = np.repeat(x, count), np.repeat(y, count)
        # In place where possible: these arrays hold every edge of every pair of the batch.
        qx, qy = px - ax, py - ay
        along = qx * dx
        along += qy * dy
        along /= length2
        np.clip(along, 0.0, 1.0, out=along)
        ex, ey = along * dx, along * dy
        np.subtract(qx, ex, out=ex)
        np.subtract(qy, ey, out=ey)
        np.square(ex, out=ex)
        np.square(ey, out=ey)
        ex += ey
        distance: FloatArray = np.sqrt(np.minimum.reduceat(ex, first))
        # A ray from the point towards +x crosses the edges that straddle its y, to its right.
        straddles = (ay > py) != (by > py)
        crossing_x = qy * dx
        crossing_x /= np.where(straddles, dy, 1.0)
        crossing_x += ax
        inside: BoolArray = np.add.reduceat(straddles & (px < crossing_x), first) % 2 == 1
        return distance, inside


def _multipolygons(parsed: Sequence[_Parsed], xy: FloatArray) -> ObjectArray:
    """MultiPolygons from the (projected) vertices of polygon fences, in one shapely call."""
    ring_sizes = [size for p in parsed for size in p.rings]
    part_sizes = [size for p in parsed for size in p.parts]
    offsets = (
        np.concatenate(([0], np.cumsum(ring_sizes))),
        np.concatenate(([0], np.cumsum(part_sizes))),
        np.concatenate(([0], np.cumsum([len(p.parts) for p in parsed]))),
    )
    built: ObjectArray = shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, xy, offsets)
    return built


def _grown_boxes(vertices: _Vertices, grow_m: FloatArray) -> FloatArray:
    """Bounding boxes grown by a distance (a circle's radius, a corridor's half width), in degrees."""
    dlat = grow_m / METRES_PER_DEGREE
    edge_lat = np.minimum(np.maximum(np.abs(vertices.low[:, 1]), np.abs(vertices.high[:, 1])) + dlat, 89.0)
    dlon = np.minimum(grow_m / (METRES_PER_DEGREE * np.cos(np.radians(edge_lat))), 180.0)
    return np.column_stack(
        (
            vertices.low[:, 0] - dlon,
            vertices.low[:, 1] - dlat,
            vertices.high[:, 0] + dlon,
            vertices.high[:, 1] + dlat,
        )
    )


_REASON = re.compile(r"(?P<what>[^\[]+)\[(?P<x>\S+) (?P<y>\S+)\]")


def _invalid_reason(geometry: Any, lat0: float, lon0: float) -> str:
    """GEOS's reason a polygon is invalid, with its location turned back into longitude and latitude."""
    reason = str(shapely.is_valid_reason(geometry))
    match = _REASON.fullmatch(reason)
    if match is None:
        return reason
    lon = lon0 + float(match["x"]) / (METRES_PER_DEGREE * math.cos(math.radians(lat0)))
    lat = lat0 + float(match["y"]) / METRES_PER_DEGREE
    return f"{match['what'].strip()} near longitude {lon:.6f}, latitude {lat:.6f}"


def validate_fence_geometry(
    geometry: Mapping[str, Any], radius_m: float | None, width_m: float | None
) -> None:
    """Raise ``ValueError`` (with a message meant for the person drawing the fence) unless it is usable.

    Checks the GeoJSON type and structure, coordinate ranges, the radius (circles) or width (corridors),
    the vertex count (at most :data:`MAX_VERTICES`), the overall size (at most :data:`MAX_SIZE_M`), and
    that polygons are valid (closed rings, no self-intersection, holes inside their shell).
    """
    parsed = _parse(geometry, radius_m, width_m)
    (error,) = _extent_errors([parsed])
    if error is not None:
        raise ValueError(error)
    if parsed.code == POLYGON:
        shapes = _Shapes.build([parsed])
        if not shapely.is_valid(shapes.area[0]):
            reason = _invalid_reason(shapes.area[0], float(shapes.lat0[0]), float(shapes.lon0[0]))
            raise ValueError(f"invalid {parsed.name}: {reason}")


# -- the index --------------------------------------------------------------------------------------------


class FixQuery(msgspec.Struct, frozen=True, gc=False):
    """A good fix of a wearer, as the index is asked about it (a Struct: cheap to build per reading)."""

    org_id: str
    wearer_id: str | None
    latitude: float
    longitude: float


class Relation(msgspec.Struct, frozen=True, gc=False):
    """A fence that matters to a fix, and the fix's signed distance to its boundary (> 0: outside).

    A Struct rather than a NamedTuple: built in C, so building hundreds of thousands costs little.
    """

    fence: Fence
    distance_m: float


class FencePairs(NamedTuple):
    """Every (fix, fence) pair of a batch and the fix's signed distance to that fence, ordered by fix.

    The arrays :meth:`FenceIndex.relations` builds its relations from: ``fence`` holds positions in
    :attr:`FenceIndex.fences`; a fix's pairs are in the same order as its relations.
    """

    fix: IndexArray
    fence: IndexArray
    distance_m: FloatArray
    safe: BoolArray  # the fence is a safe zone (else a danger zone)
    id_object: npt.NDArray[np.int64]  # id() of the fence's id string (see FenceIndex.id_objects)


Scope = tuple[str, str | None]  # (organisation, wearer); wearer None: the organisation's org-wide fences
_ORG_ID: Final = attrgetter("org_id")
_WEARER_ID: Final = attrgetter("wearer_id")
_LATITUDE: Final = attrgetter("latitude")
_LONGITUDE: Final = attrgetter("longitude")

# Lanes: each scope's danger boxes are moved this far from the others (degrees). A fix (|lon| ≤ 180,
# |lat| ≤ 90) can only fall in a neighbouring lane's box if that box grew by more than 40° of longitude
# or 25° of latitude past the world's edge: growth is capped at 40° of longitude and near_m at
# MAX_NEAR_M (9° of latitude), so a fix never meets another scope's fences.
LANE_WIDTH_DEG: Final = 400.0
LANE_HEIGHT_DEG: Final = 200.0
LANES_PER_ROW: Final = 1024
MAX_NEAR_M: Final = 1_000_000.0
MAX_GROWTH_LON_DEG: Final = 40.0
# A scope (an organisation's org-wide fences, a wearer's own) with at most this many danger zones has them
# measured for every fix of the scope instead of looked up in the tree: a bounded cost per fix.
LISTED_DANGER_MAX: Final = 16


_RECORD: Final = np.dtype(
    [
        ("lon0", np.float64),
        ("lat0", np.float64),
        ("metres_per_lon", np.float64),
        ("size", np.float64),
        ("reach", np.float64),
        ("id_object", np.int64),
        ("edges_from", np.int64),
        ("edges", np.int32),
        ("code", np.int8),
        ("safe", np.bool_),
    ],
    align=True,
)


class FenceIndex:
    """Every fence the pipeline watches, built once when fences change and then queried per batch.

    Fences whose geometry cannot be used (the API validates, but rows may predate a rule) are left out
    and listed in :attr:`rejected` as ``(fence id, reason)`` for the caller to log: one bad row must not
    stop every other fence from being watched.
    """

    def __init__(self, fences: Sequence[Fence], near_m: float = 2000.0) -> None:
        if not 0 <= near_m <= MAX_NEAR_M:
            raise ValueError(f"near_m must be between 0 and {MAX_NEAR_M:g} m")
        self.near_m = near_m
        self.rejected: list[tuple[str, str]] = []
        parsed: list[_Parsed] = []
        candidates: list[Fence] = []
        for fence in fences:
            try:
                parsed.append(_parse(fence.geometry, fence.radius_m, fence.width_m))
            except (ValueError, TypeError) as exc:
                self.rejected.append((fence.id, str(exc)))
                continue
            candidates.append(fence)
        kept: list[Fence] = []
        usable: list[_Parsed] = []
        for fence, shape, error in zip(candidates, parsed, _extent_errors(parsed), strict=True):
            if error is not None:
                self.rejected.append((fence.id, error))
            else:
                kept.append(fence)
                usable.append(shape)
        self._fences = kept
        shapes = _Shapes.build(usable)
        self._area, self._line, self._segments = shapes.area, shapes.line, shapes.segments
        self._safe_fence = np.array([fence.kind == "safe" for fence in kept], dtype=bool)
        self._position_of = {fence.id: i for i, fence in enumerate(kept)}
        self._ids: ObjectArray = np.empty(len(kept), dtype=object)
        self._ids[:] = [fence.id for fence in kept]
        self._id_hashes: npt.NDArray[np.int64] = np.fromiter(
            map(hash, self._ids.tolist()), np.int64, len(kept)
        )
        # What measuring a pair needs of its fence, in one record: a batch's pairs meet fences all over
        # memory, and one gather of records (np.take) touches one place per pair where a gather per field
        # touches eight.
        self._table = np.empty(len(kept), dtype=_RECORD)
        self._table["lon0"], self._table["lat0"] = shapes.lon0, shapes.lat0
        self._table["metres_per_lon"], self._table["size"] = shapes.metres_per_lon, shapes.size_m
        self._table["code"], self._table["safe"] = shapes.code, self._safe_fence
        self._table["reach"] = shapes.reach
        self._table["edges_from"], self._table["edges"] = shapes.segments.start, shapes.segments.count
        self._id_objects: npt.NDArray[np.int64] = np.fromiter(
            map(id, self._ids.tolist()), np.int64, len(kept)
        )
        self._table["id_object"] = self._id_objects
        self._build_scopes(kept)
        self._build_tree(kept, shapes.bbox)

    @classmethod
    def empty(cls) -> FenceIndex:
        return cls(())

    def __len__(self) -> int:
        return len(self._fences)

    @property
    def fences(self) -> Sequence[Fence]:
        return self._fences

    @property
    def safe(self) -> BoolArray:
        """Per fence (by position in :attr:`fences`): whether it is a safe zone (else a danger zone)."""
        return self._safe_fence

    @property
    def ids(self) -> ObjectArray:
        """Each fence's id, by position in :attr:`fences`."""
        return self._ids

    @property
    def id_hashes(self) -> npt.NDArray[np.int64]:
        """Each fence id's ``hash()`` (this process's), by position in :attr:`fences`: ids as numbers."""
        return self._id_hashes

    @property
    def id_objects(self) -> npt.NDArray[np.int64]:
        """Each fence id string's ``id()``, by position in :attr:`fences`. The index holds these strings,
        so a string with the same ``id()`` is that very string: ids compared as numbers, exactly."""
        return self._id_objects

    @property
    def positions(self) -> Mapping[str, int]:
        """Each fence id's position in :attr:`fences` (the last one if several fences share an id)."""
        return self._position_of

    def for_wearer(self, org_id: str, wearer_id: str | None) -> list[Fence]:
        """The fences that apply to a wearer: the organisation's org-wide ones, then the wearer's own."""
        own = self._by_scope.get((org_id, wearer_id), []) if wearer_id is not None else []
        return [*self._by_scope.get((org_id, None), []), *own]

    # -- building ---------------------------------------------------------------------------------------

    def _build_scopes(self, fences: Sequence[Fence]) -> None:
        """Per scope: its fences (for :meth:`for_wearer`), its lane, and its plan: what a fix meets."""
        self._by_scope: dict[Scope, list[Fence]] = {}
        positions: dict[Scope, list[int]] = {}
        for i, fence in enumerate(fences):
            scope = (fence.org_id, fence.wearer_id)
            self._by_scope.setdefault(scope, []).append(fence)
            positions.setdefault(scope, []).append(i)
        # A scope with few danger zones (a wearer's own: a road, a canal bank) lists them with its safe
        # fences: measuring a few more pairs costs less than looking a fix up in the tree. Only scopes with
        # more (an organisation's ponds and motorways all over a region) get a lane in the tree.
        listed: dict[Scope, list[int]] = {}
        self._lanes: dict[Scope, int] = {}
        for scope, members in positions.items():
            danger = sum(fences[i].kind == "danger" for i in members)
            if danger > LISTED_DANGER_MAX:
                self._lanes[scope] = len(self._lanes)
                listed[scope] = [i for i in members if fences[i].kind == "safe"]
            else:
                listed[scope] = members
        # A plan lists the fences a fix always meets (safe zones, and the danger zones of small scopes)
        # and the lanes it is looked up in. A wearer's plan includes their organisation's org-wide fences,
        # so a fix needs a single lookup.
        self._plan_of: dict[Scope, int] = {}
        self._org_plan: dict[str, int] = {}
        plan_safe: list[list[int]] = []
        plan_lanes: list[list[int]] = []
        org_scopes: list[Scope] = [(org_id, None) for org_id, _ in self._by_scope]
        for scope in dict.fromkeys([*self._by_scope, *org_scopes]):
            scopes: list[Scope] = [(scope[0], None)] if scope[1] is None else [(scope[0], None), scope]
            self._plan_of[scope] = len(plan_safe)
            if scope[1] is None:
                self._org_plan[scope[0]] = len(plan_safe)
            plan_safe.append([i for s in scopes for i in listed.get(s, [])])
            plan_lanes.append([self._lanes[s] for s in scopes if s in self._lanes])
        self._plan_safe = _Ragged(plan_safe)
        self._plan_lanes = _Ragged(plan_lanes)
        # A fix's plan is found by its wearer id alone (one dictionary lookup of a string, rather than
        # building and looking up an (organisation, wearer) tuple), then checked to be of the fix's
        # organisation, by number. A wearer id with fences of its own in several organisations is left
        # out and looked up by its tuple.
        self._org_code = {org_id: code for code, org_id in enumerate(self._org_plan)}
        self._org_plan_of_code: IndexArray = np.array(list(self._org_plan.values()), dtype=np.intp)
        self._plan_org: IndexArray = np.empty(len(plan_safe), dtype=np.intp)
        for (org_id, _), plan in self._plan_of.items():
            self._plan_org[plan] = self._org_code[org_id]
        own = Counter(wearer_id for _, wearer_id in self._plan_of if wearer_id is not None)
        self._shared_wearers = frozenset(wearer_id for wearer_id, orgs in own.items() if orgs > 1)
        self._wearer_plan: dict[str | None, int] = {
            wearer_id: plan
            for (_, wearer_id), plan in self._plan_of.items()
            if wearer_id is not None and wearer_id not in self._shared_wearers
        }

    def _build_tree(self, fences: Sequence[Fence], bbox: FloatArray) -> None:
        lanes_of = self._lanes
        danger = [
            i
            for i, fence in enumerate(fences)
            if fence.kind == "danger" and (fence.org_id, fence.wearer_id) in lanes_of
        ]
        self._tree_fence: IndexArray = np.array(danger, dtype=np.intp)
        lanes = np.arange(len(self._lanes), dtype=np.float64)
        self._lane_dx: FloatArray = np.mod(lanes, LANES_PER_ROW) * LANE_WIDTH_DEG
        self._lane_dy: FloatArray = np.floor_divide(lanes, LANES_PER_ROW) * LANE_HEIGHT_DEG
        self._tree: Any = None
        if not danger:
            return
        boxes = bbox[danger]
        lane = np.array([self._lanes[(fences[i].org_id, fences[i].wearer_id)] for i in danger], dtype=np.intp)
        # Grow each box by near_m: in latitude directly, in longitude at the box's edge farthest from the
        # equator (where a degree of longitude is shortest), so the grown box holds every point within
        # near_m of the fence.
        dlat = self.near_m / METRES_PER_DEGREE
        edge_lat = np.minimum(np.maximum(np.abs(boxes[:, 1]), np.abs(boxes[:, 3])) + dlat, 89.0)
        dlon = np.minimum(
            self.near_m / (METRES_PER_DEGREE * np.cos(np.radians(edge_lat))), MAX_GROWTH_LON_DEG
        )
        dx, dy = self._lane_dx[lane], self._lane_dy[lane]
        x0, y0 = boxes[:, 0] - dlon + dx, boxes[:, 1] - dlat + dy
        x1, y1 = boxes[:, 2] + dlon + dx, boxes[:, 3] + dlat + dy
        self._tree = shapely.STRtree(shapely.box(x0, y0, x1, y1))
        # The tree answers a point with the boxes that hold it in the order of its leaves (a query of
        # everything lists that order): the grid below finds the same boxes without building a GEOS point
        # per query, and gives them in that same order.
        rank = np.empty(len(danger), dtype=np.intp)
        rank[self._tree.query(shapely.box(x0.min(), y0.min(), x1.max(), y1.max()))] = np.arange(len(danger))
        self._grid = _BoxGrid(x0, y0, x1, y1, rank)

    # -- querying ---------------------------------------------------------------------------------------

    def relations(self, fixes: Sequence[FixQuery]) -> list[list[Relation]]:
        """For each fix, the fences that matter to it with its signed distance to each (see the module).

        One STRtree query and one vectorised distance computation for the whole batch (:meth:`measure`):
        the Python work per fix is a dictionary lookup, plus building its relations. A fix outside the
        world (|lat| > 90, |lon| > 180, NaN: the bad-fix filter does not look) meets no danger zone and is
        at an unknown (NaN) distance from its safe zones, which the detector takes as "cannot tell".
        """
        count = len(fixes)
        if count == 0:
            return []
        latitude = np.fromiter(map(_LATITUDE, fixes), np.float64, count)
        longitude = np.fromiter(map(_LONGITUDE, fixes), np.float64, count)
        pairs = self.measure(list(map(_ORG_ID, fixes)), list(map(_WEARER_ID, fixes)), latitude, longitude)
        # Relations are built in C (map over a Struct type), then each fix takes its slice of them.
        fences = self._fences
        built = list(map(Relation, map(fences.__getitem__, pairs.fence.tolist()), pairs.distance_m.tolist()))
        bounds = np.searchsorted(pairs.fix, np.arange(count + 1)).tolist()
        return [built[start:end] for start, end in pairwise(bounds)]

    def measure(
        self,
        orgs: Sequence[str],
        wearers: Sequence[str | None],
        latitude: FloatArray,
        longitude: FloatArray,
    ) -> FencePairs:
        """What :meth:`relations` finds, as arrays: every (fix, fence) pair of the batch, in the same order.

        Fix i is of organisation ``orgs[i]`` and wearer ``wearers[i]`` (None: only the organisation's
        org-wide fences apply), at ``latitude[i]``, ``longitude[i]``. Fences are positions in
        :attr:`fences`. For callers that want no object per pair (the geofence detector's batch path).
        """
        count = len(orgs)
        if count == 0 or not self._fences:
            empty = np.empty(0, dtype=np.intp)
            return FencePairs(
                empty,
                empty,
                np.empty(0, dtype=np.float64),
                np.empty(0, dtype=bool),
                np.empty(0, dtype=np.int64),
            )
        on_earth = (np.abs(latitude) <= 90.0) & (np.abs(longitude) <= 180.0)  # False for NaN too
        if not on_earth.all():  # computed at (0, 0), then set to NaN: no warnings from inf or NaN
            latitude, longitude = np.where(on_earth, latitude, 0.0), np.where(on_earth, longitude, 0.0)
        pair_fix, pair_fence = self._candidates(self._plans(orgs, wearers), on_earth, latitude, longitude)
        record = np.take(self._table, pair_fence)  # (fancy indexing of records is ~20 times slower)
        # Each pair's point in its fence's plane.
        x = _wrap_lon(longitude[pair_fix] - record["lon0"]) * record["metres_per_lon"]
        y = (latitude[pair_fix] - record["lat0"]) * METRES_PER_DEGREE
        # Danger zones clearly more than near_m away (farther from their centre than their reach plus
        # near_m, with a metre to spare for rounding) are left out before measuring: they would be below.
        far = ~record["safe"] & (np.hypot(x, y) > record["reach"] + (self.near_m + 1.0))
        if far.any():
            near = np.flatnonzero(~far)
            pair_fix, pair_fence, x, y = pair_fix[near], pair_fence[near], x[near], y[near]
            record = np.take(record, near)
        distance = self._signed_distances(pair_fence, record, x, y)
        distance[~on_earth[pair_fix]] = np.nan
        # The tree finds danger zones by box: keep only those really within near_m (not the ones in the
        # boxes' corners), and every safe zone.
        safe = record["safe"]
        keep = safe | (distance <= self.near_m)
        id_object = record["id_object"]
        if not keep.all():
            pair_fix, pair_fence, distance = pair_fix[keep], pair_fence[keep], distance[keep]
            safe, id_object = safe[keep], id_object[keep]
        return FencePairs(pair_fix, pair_fence, distance, safe, id_object)

    def _plans(self, orgs: Sequence[str], wearers: Sequence[str | None]) -> IndexArray:
        """Each fix's plan: its wearer's, else its organisation's (-1: no fence applies to it)."""
        count = len(orgs)
        org = np.fromiter(map(self._org_code.get, orgs, repeat(-1)), np.intp, count)  # in C: no Python loop
        own = np.fromiter(map(self._wearer_plan.get, wearers, repeat(-1)), np.intp, count)
        plans: IndexArray = np.where(org >= 0, self._org_plan_of_code[org], -1)
        mine = (own >= 0) & (self._plan_org[own] == org)
        plans[mine] = own[mine]
        if self._shared_wearers:
            shared = self._shared_wearers
            for i in [i for i, wearer_id in enumerate(wearers) if wearer_id in shared]:
                plans[i] = self._plan_of.get((orgs[i], wearers[i]), plans[i])
        return plans

    def _candidates(
        self, plans: IndexArray, on_earth: npt.NDArray[np.bool_], latitude: FloatArray, longitude: FloatArray
    ) -> tuple[IndexArray, IndexArray]:
        """(fix, fence) index pairs, ordered by fix: each fix's safe fences and the danger fences near it."""
        known = np.flatnonzero(plans >= 0)
        pair_fix, pair_fence = self._plan_safe.expand(known, plans[known])
        if self._tree is None:
            return pair_fix, pair_fence
        # Off-world fixes are not looked up: translated by a lane, they could land in another scope's.
        searched = known[on_earth[known]]
        query_fix, lane = self._plan_lanes.expand(searched, plans[searched])
        if not len(lane):
            return pair_fix, pair_fence
        query, tree = self._grid.query(
            longitude[query_fix] + self._lane_dx[lane], latitude[query_fix] + self._lane_dy[lane]
        )
        pair_fix = np.concatenate((pair_fix, query_fix[query]))
        pair_fence = np.concatenate((pair_fence, self._tree_fence[tree]))
        order = np.argsort(pair_fix, kind="stable")
        return pair_fix[order], pair_fence[order]

    def _signed_distances(
        self, fence: IndexArray, record: npt.NDArray[np.void], x: FloatArray, y: FloatArray
    ) -> FloatArray:
        """Signed distance (metres) from each point (``x``, ``y`` in its fence's plane) to its fence
        (``record``: the fence's row of the table), grouped by kind of geometry."""
        code, size = record["code"], record["size"]
        distance = np.empty(len(record), dtype=np.float64)
        circle = code == CIRCLE
        distance[circle] = np.hypot(x[circle], y[circle]) - size[circle]
        edges = record["edges"].astype(np.intp)
        small = edges > 0
        if small.any():
            start = record["edges_from"][small].astype(np.intp)
            to_edge, inside = self._segments.measure(start, edges[small], x[small], y[small])
            signed = np.where(inside, -to_edge, to_edge)
            distance[small] = np.where(code[small] == POLYGON, signed, to_edge - size[small])
        big = ~circle & ~small
        if big.any():
            self._measure_big(np.flatnonzero(big), fence, record, x, y, distance)
        return distance

    def _measure_big(
        self,
        which: IndexArray,
        fence: IndexArray,
        record: npt.NDArray[np.void],
        x: FloatArray,
        y: FloatArray,
        out: FloatArray,
    ) -> None:
        """Polygons and corridors with too many vertices for numpy, through GEOS (their prepared
        geometries index their edges)."""
        fence = fence[which]
        code, size, px, py = record["code"][which], record["size"][which], x[which], y[which]
        corridor = code == CORRIDOR
        if corridor.any():
            to_line = shapely.distance(
                self._line[fence[corridor]], shapely.points(px[corridor], py[corridor])
            )
            out[which[corridor]] = to_line - size[corridor]
        polygon = ~corridor
        if polygon.any():
            qx, qy, shapes = px[polygon], py[polygon], fence[polygon]
            to_boundary = shapely.distance(self._line[shapes], shapely.points(qx, qy))
            inside = shapely.contains_xy(self._area[shapes], qx, qy)
            out[which[polygon]] = np.where(inside, -to_boundary, to_boundary)


class _BoxGrid:
    """Boxes (the tree's: danger zones grown by near_m, in their lanes) found by the points they hold,
    exactly as ``STRtree.query`` finds them (edges included) and in the same order (``rank``: the tree's),
    with a few numpy operations per batch rather than a GEOS point and a tree walk per query.

    Boxes are filed by size in levels of square cells, level k's cells being 2**k times the smallest
    (the boxes' median side): each box in the cells it covers on the level where it covers at most
    2 × 2 of them. A point looks at one cell per level (a handful of levels for boxes from metres to
    hundreds of kilometres), whose boxes are then checked one by one. Within a cell boxes are kept in
    tree order, so a single level needs no sorting.
    """

    def __init__(
        self, x0: FloatArray, y0: FloatArray, x1: FloatArray, y1: FloatArray, rank: IndexArray
    ) -> None:
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.rank = rank
        side = np.maximum(x1 - x0, y1 - y0)
        self.origin_x, self.origin_y = float(x0.min()), float(y0.min())
        base = float(np.median(side))
        if not base > 0:
            base = max(float(side.max()), 1e-9)
        # Cell keys (column × rows + row) must fit in 64 bits over every lane: coarser cells otherwise
        # (only for tiny boxes spread over thousands of lanes).
        span = max(float(x1.max()) - self.origin_x, float(y1.max()) - self.origin_y)
        while (span / base + 2) ** 2 >= 2.0**62:
            base *= 2
        # The level where a box covers at most two cells each way: its side at most one cell.
        level = np.maximum(np.ceil(np.log2(np.maximum(side, base) / base)), 0).astype(np.intp)
        self.levels: list[tuple[float, int, int, IndexArray, IndexArray, IndexArray]] = []
        for k in np.unique(level).tolist():
            cell = base * 2.0**k
            members = np.flatnonzero(level == k)
            members = members[np.argsort(rank[members])]
            cx0, cx1 = (
                self._cells(x0[members], self.origin_x, cell),
                self._cells(x1[members], self.origin_x, cell),
            )
            cy0, cy1 = (
                self._cells(y0[members], self.origin_y, cell),
                self._cells(y1[members], self.origin_y, cell),
            )
            columns, rows = int(cx1.max()) + 1, int(cy1.max()) + 1
            # Every (cell, box) of the level: at most 2 × 2 cells a box (up to 3 × 3 when rounding puts
            # its edges just across cell lines).
            nx, ny = cx1 - cx0 + 1, cy1 - cy0 + 1
            box = np.repeat(np.arange(len(members)), nx * ny)
            first = np.repeat(np.cumsum(nx * ny) - nx * ny, nx * ny)
            within = np.arange(len(box)) - first
            key = (cx0[box] + within // ny[box]) * rows + cy0[box] + within % ny[box]
            order = np.lexsort((box, key))  # by cell, then tree order (members are in tree order)
            key, box = key[order], members[box[order]]
            keys, start = np.unique(key, return_index=True)
            self.levels.append((cell, columns, rows, keys, np.append(start, len(key)).astype(np.intp), box))

    @staticmethod
    def _cells(value: FloatArray, origin: float, cell: float) -> npt.NDArray[np.int64]:
        cells: npt.NDArray[np.int64] = np.floor((value - origin) / cell).astype(np.int64)
        return cells

    def query(self, x: FloatArray, y: FloatArray) -> tuple[IndexArray, IndexArray]:
        """(point, box) for every box holding a point, by point, then in tree order."""
        found_point: list[IndexArray] = []
        found_box: list[IndexArray] = []
        for cell, columns, rows, keys, start, boxes in self.levels:
            cx, cy = self._cells(x, self.origin_x, cell), self._cells(y, self.origin_y, cell)
            # Off the level's cells: in none of its boxes.
            inside = np.flatnonzero((cx >= 0) & (cx < columns) & (cy >= 0) & (cy < rows))
            key = cx[inside] * rows + cy[inside]
            at = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
            hit = keys[at] == key
            point, at = inside[hit], at[hit]
            count = start[at + 1] - start[at]
            total = int(count.sum())
            point = np.repeat(point, count)
            box = boxes[np.repeat(start[at] - (np.cumsum(count) - count), count) + np.arange(total)]
            px, py = x[point], y[point]
            held = (self.x0[box] <= px) & (px <= self.x1[box]) & (self.y0[box] <= py) & (py <= self.y1[box])
            found_point.append(point[held])
            found_box.append(box[held])
        if len(found_point) == 1:
            return found_point[0], found_box[0]
        point, box = np.concatenate(found_point), np.concatenate(found_box)
        order = np.lexsort((self.rank[box], point))
        return point[order], box[order]


class _Ragged:
    """Lists of integers of varying lengths, stored flat so that many can be gathered at once."""

    def __init__(self, rows: Sequence[Sequence[int]]) -> None:
        lengths = np.array([len(row) for row in rows], dtype=np.intp)
        self.start: IndexArray = np.concatenate(([0], np.cumsum(lengths))).astype(np.intp)
        self.flat: IndexArray = np.array([v for row in rows for v in row], dtype=np.intp)

    def expand(self, owners: IndexArray, rows: IndexArray) -> tuple[IndexArray, IndexArray]:
        """``(owner, value)`` for every value of every row, in the owners' order (one row per owner)."""
        counts = self.start[rows + 1] - self.start[rows]
        total = int(counts.sum())
        first = np.repeat(self.start[rows] - (np.cumsum(counts) - counts), counts)
        return np.repeat(owners, counts), self.flat[first + np.arange(total)]
