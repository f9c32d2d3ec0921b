"""Resampling: any rate, jitter or small gaps give the same features; impact peaks survive; bad input is
a WindowError, never a crash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from geosentinel.falls import features
from geosentinel.falls.signals import GRID_HZ, WindowError, resample, split_at_gaps

IMPACT_S = 3.0


def fall_motion(t: np.ndarray) -> np.ndarray:
    """A continuous fall seen from the wrist: upright, 0.3 s of free fall, a 6 g shock of ~40 ms,
    then lying still with the arm turned 90°."""
    upright = np.array([0.0, 0.0, 1.0])
    lying = np.array([1.0, 0.0, 0.0])
    turned = np.clip((t - (IMPACT_S - 0.3)) / 0.6, 0.0, 1.0)[:, None]
    gravity = upright * (1 - turned) + lying * turned
    gravity /= np.linalg.norm(gravity, axis=1)[:, None]
    freefall = np.where((t > IMPACT_S - 0.35) & (t < IMPACT_S - 0.02), 0.7, 0.0)[:, None]
    shock = 5.0 * np.exp(-(((t - IMPACT_S) / 0.02) ** 2))[:, None]
    return np.asarray(gravity * (1 - freefall) + shock * lying, dtype=np.float64)


def sampled(
    rate_hz: float, rng: np.random.Generator, jitter_s: float = 0.0, drop: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, 9.0, 1 / rate_hz) + rng.uniform(-jitter_s, jitter_s, int(np.ceil(9.0 * rate_hz)))
    t = np.sort(t[(t >= 0) & (rng.random(len(t)) >= drop)])
    return t, fall_motion(t) + rng.normal(0, 0.01, (len(t), 3))


def features_of(t: np.ndarray, accel: np.ndarray) -> dict[str, float]:
    stream = resample(t, accel)
    impacts = features.candidate_impacts(stream.magnitude_g)
    assert len(impacts) == 1, impacts
    assert abs(impacts[0] / GRID_HZ - IMPACT_S) <= 0.1
    return features.window_features(stream, impacts[0])


def test_20_and_50_hz_jittered_or_gappy_give_close_features() -> None:
    rng = np.random.default_rng(7)
    # Sampled so that one sample lands on the shock, as the 20 Hz grid would see it.
    reference = features_of(*sampled(50.0, rng))
    variants = {
        "20 Hz": sampled(20.0, rng),
        "20 Hz jittered": sampled(20.0, rng, jitter_s=0.012),
        "50 Hz jittered, 10 % lost": sampled(50.0, rng, jitter_s=0.005, drop=0.1),
        "25 Hz": sampled(25.0, rng),
    }
    tolerance = {"posture_change_deg": 8.0, "post_std_g": 0.03, "post_mean_deviation_g": 0.03,
                 "freefall_min_g": 0.15, "pre_std_g": 0.05, "post_still_fraction": 0.1}  # fmt: skip
    for name, (t, accel) in variants.items():
        got = features_of(t, accel)
        for feature, allowed in tolerance.items():
            assert abs(got[feature] - reference[feature]) <= allowed, (
                name,
                feature,
                got[feature],
                reference[feature],
            )
    assert reference["posture_change_deg"] == pytest.approx(90.0, abs=5.0)


def test_a_short_peak_between_grid_points_is_kept() -> None:
    t = np.arange(0.0, 4.0, 0.02)  # 50 Hz: three samples per two grid steps
    accel = np.tile([0.0, 0.0, 1.0], (len(t), 1))
    spike = int(np.argmin(np.abs(t - 2.02)))  # 2.02 s: 20 ms from the nearest 20 Hz grid point
    accel[spike] = [0.0, 6.5, 1.0]
    stream = resample(t, accel)
    assert stream.magnitude_g.max() == pytest.approx(np.linalg.norm([0.0, 6.5, 1.0]))
    linear = np.interp(np.arange(len(stream)) / GRID_HZ, t, np.linalg.norm(accel, axis=1))
    assert linear.max() < 4.5  # what linear resampling would have kept


def test_order_repeats_and_time_base_do_not_matter() -> None:
    rng = np.random.default_rng(3)
    t, accel = sampled(20.0, rng, jitter_s=0.01)
    shuffled = rng.permutation(len(t))
    again = resample(1.7e9 + t[shuffled], accel[shuffled])  # epoch seconds, unordered
    doubled = resample(np.concatenate([t, t]), np.concatenate([accel, accel]))
    base = resample(t, accel)
    np.testing.assert_allclose(again.accel_g, base.accel_g, atol=1e-6)
    np.testing.assert_allclose(doubled.accel_g, base.accel_g)


def test_axes_are_clipped_like_the_training_sensor() -> None:
    t = np.arange(0.0, 3.0, 0.05)
    accel = np.tile([0.0, 0.0, 1.0], (len(t), 1))
    accel[30] = [15.0, -12.0, 1.0]  # a 16 g device
    assert resample(t, accel).accel_g[30].tolist() == [8.0, -8.0, 1.0]


@pytest.mark.parametrize(
    ("t", "message"),
    [
        (np.arange(0, 1.5, 0.05), "less than"),
        (np.concatenate([np.arange(0, 2, 0.05), np.arange(3.5, 6, 0.05)]), "gap"),
        (np.arange(0, 10, 0.2), "Hz on average"),
        (np.array([0.0, np.nan, 0.1]), "NaN"),
        (np.array([]), "0 samples"),
    ],
)
def test_unusable_windows_say_why(t: np.ndarray, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        resample(t, np.ones((len(t), 3)))


def test_gyroscope_must_cover_the_window() -> None:
    t = np.arange(0.0, 6.0, 0.05)
    with pytest.raises(WindowError, match="cover"):
        resample(t, np.ones((len(t), 3)), t[:80], np.zeros((80, 3)))
    with pytest.raises(WindowError, match="together"):
        resample(t, np.ones((len(t), 3)), t, None)


def test_split_at_gaps() -> None:
    t = np.array([0.0, 0.1, 0.2, 2.0, 2.1, 5.0])
    assert split_at_gaps(t) == [slice(0, 3), slice(3, 5), slice(5, 6)]


VALUES = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(-20, 20)
    | st.sampled_from([0.0, 1e308, -1e308])
)
TIMES = st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 30) | st.sampled_from([0.0, 1e300])


@settings(max_examples=300, deadline=None)
@given(
    t=st.lists(TIMES, max_size=300),
    accel=hnp.arrays(np.float64, st.tuples(st.integers(0, 300), st.sampled_from([3, 2])), elements=VALUES),
    with_gyro=st.booleans(),
)
def test_any_input_is_resampled_or_refused_with_a_reason(
    t: list[float], accel: np.ndarray, with_gyro: bool
) -> None:
    gyro = accel[::-1] if with_gyro else None
    try:
        stream = resample(t, accel, t if with_gyro else None, gyro)
    except WindowError:
        return
    assert np.isfinite(stream.accel_g).all() and np.abs(stream.accel_g).max() <= 8.0
    for impact in features.candidate_impacts(stream.magnitude_g):
        assert all(np.isfinite(v) for v in features.window_features(stream, impact).values())


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(8.5, 60.0),
    jitter=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**32 - 1),
    duration=st.floats(1.5, 20.0),
    scale=st.floats(0.0, 1e6),
)
def test_plausible_but_noisy_windows_never_crash(
    rate: float, jitter: float, seed: int, duration: float, scale: float
) -> None:
    rng = np.random.default_rng(seed)
    count = int(duration * rate)
    t = np.sort(rng.uniform(0, duration, count)) if jitter > 0.25 else np.arange(count) / rate
    accel = rng.normal(0, 1, (count, 3)) * scale
    try:
        stream = resample(t, accel, t, accel * 50)
    except WindowError:
        return
    for impact in features.candidate_impacts(stream.magnitude_g):
        row = features.window_features(stream, impact)
        assert set(row) == {*features.ACCEL_FEATURES, *features.GYRO_FEATURES}
        assert all(np.isfinite(v) for v in row.values())
