"""Whatever a client sends as a fence or a setting, the answer is a clear ValueError, never a crash.

The API turns ValueError into a 422 with its message; any other exception would be a 500.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from geosentinel.detect.base import validate_settings
from geosentinel.detect.fences import Fence, FenceIndex, validate_fence_geometry

JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
NUMBER = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6)
COORD = st.floats(min_value=-200, max_value=200) | st.just(float("nan")) | st.integers(-200, 200) | JSON
POSITION = st.lists(COORD, min_size=0, max_size=3)
GEOMETRY = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Point", "Polygon", "MultiPolygon", "LineString", "Banana", ""]) | JSON,
        "coordinates": POSITION
        | st.lists(POSITION, max_size=6)
        | st.lists(st.lists(POSITION, max_size=6), max_size=3)
        | st.lists(st.lists(st.lists(POSITION, max_size=5), max_size=2), max_size=2)
        | JSON,
    }
)


@settings(max_examples=400, deadline=None)
@given(geometry=GEOMETRY | JSON, radius=NUMBER, width=NUMBER)
def test_any_geometry_is_accepted_or_refused_with_a_reason(geometry: Any, radius: Any, width: Any) -> None:
    try:
        validate_fence_geometry(geometry, radius, width)
    except ValueError as exc:
        assert str(exc)
        return
    # What the API accepts, the pipeline can watch: the index never rejects a validated fence.
    fence = Fence("f", "o", "w", "Fuzz", "safe", geometry, radius, width)
    assert FenceIndex([fence]).rejected == []


SETTING_KEYS = st.sampled_from(
    ["heart_rate_max_bpm", "day_start", "heart_rate_baseline", "expected_interval_s", "other"]
)


@settings(max_examples=300, deadline=None)
@given(settings_=st.dictionaries(SETTING_KEYS, JSON, max_size=4))
def test_any_settings_object_is_accepted_or_refused_with_a_reason(settings_: dict[str, Any]) -> None:
    try:
        validate_settings(settings_)
    except ValueError as exc:
        assert str(exc)


def test_the_index_skips_a_stored_fence_it_cannot_use() -> None:
    bad = Fence("f1", "o", "w", "Broken", "safe", {"type": "Point", "coordinates": [5.3, 43.3]}, None)
    good = Fence("f2", "o", "w", "Home", "safe", {"type": "Point", "coordinates": [5.3, 43.3]}, 100.0)
    index = FenceIndex([bad, good])
    assert len(index) == 1 and [fence_id for fence_id, _ in index.rejected] == ["f1"]
