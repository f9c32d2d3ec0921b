"""Per-wearer detection settings: what a caregiver may override, checked before it is stored."""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from geosentinel.detect.base import (
    CACHED_STATE_BYTES,
    SETTABLE,
    WearerProfile,
    encode_states,
    profile_from_settings,
    profile_settings,
    validate_settings,
)


def test_overrides_apply_in_the_organisation_time_zone() -> None:
    profile = profile_from_settings("Asia/Shanghai", {"heart_rate_max_bpm": 110, "day_start": "07:30"})
    assert profile.timezone == ZoneInfo("Asia/Shanghai")
    assert profile.heart_rate_max_bpm == 110 and profile.day_start == time(7, 30)
    assert profile.spo2_min_pct == WearerProfile().spo2_min_pct  # the rest stays at the defaults


def test_settings_round_trip_through_their_json_form() -> None:
    shown = profile_settings(profile_from_settings("Europe/Paris", {"inactivity_hours": 2}))
    assert set(shown) == SETTABLE and "timezone" not in shown
    assert profile_from_settings("Europe/Paris", shown) == profile_from_settings(
        "Europe/Paris", {"inactivity_hours": 2}
    )


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"timezone": "UTC"}, "unknown detection settings: timezone"),
        ({"heart_rate_max": 100}, "unknown detection settings"),
        ({"heart_rate_max_bpm": "fast"}, "must be a number"),
        ({"heart_rate_max_bpm": True}, "must be a number"),
        ({"heart_rate_max_bpm": float("nan")}, "must be a number"),
        ({"battery_low_pct": -1}, "out of range"),
        ({"expected_interval_s": 2}, "out of range"),
        ({"day_start": "25:00"}, "HH:MM"),
        ({"day_end": 8}, "HH:MM"),
        ({"heart_rate_baseline": "yes"}, "true or false"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        validate_settings(settings)


def test_learned_interval_can_be_restored() -> None:
    assert validate_settings({"expected_interval_s": None}) == {"expected_interval_s": None}


def test_cached_encoding_gives_the_same_json_as_a_fresh_one() -> None:
    class Counter(msgspec.Struct, frozen=True, omit_defaults=True):
        count: int = 0
        note: str | None = None

    cache: dict[str, tuple[msgspec.Struct, msgspec.Raw]] = {}
    big = Counter(2, "x" * CACHED_STATE_BYTES)  # large enough to be kept encoded
    states: dict[str, msgspec.Struct] = {"a": Counter(1), "b": big}
    for step in range(5):
        assert encode_states(states, cache) == encode_states(states)
        assert msgspec.json.decode(encode_states(states, cache)) == msgspec.json.decode(
            msgspec.json.encode(states)
        )
        states = {**states, "a": Counter(step + 10)}  # one state replaced, the other the same object
        if step == 2:
            states["c"] = Counter()  # a detector's first state
    assert set(cache) == {"b"} and cache["b"][0] is big  # only the large state is kept encoded
    states["b"] = Counter(3)  # the large state became small: its stale encoding is dropped
    assert encode_states(states, cache) == encode_states(states)
    assert cache == {}
