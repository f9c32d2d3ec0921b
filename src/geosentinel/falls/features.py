"""Candidate impacts in a resampled stream, and the features of the window around one (pure).

A fall seen from the wrist is, in order: sometimes a short drop of ``|a|`` below 1 g (free fall), one
impact (a peak of a few g), then the arm lies still in a new orientation. The usual false alarms look
different: clapping and jogging are *periodic* (peaks before and after, the arm keeps moving), hopping too;
sitting down or lying on a bed changes posture without a hard impact. The features measure exactly these
differences, and only through quantities that do not depend on how the bracelet is worn: the magnitude
``|a|``, the gravity direction estimated by averaging (a low-pass filter), angles between such directions,
and the magnitude ``|ω|`` of the rotation rate.

The window spans :data:`PRE_S` before the impact and :data:`POST_S` after. A window cut short by the start
or the end of the recording (or a device window shorter than that) uses the samples it has: every
statistic is a mean, a rate or an extreme over the samples available, so a shorter span gives a noisier
but unbiased value, never a padded one (padding with the last posture would fake stillness). An impact
needs at least :data:`MIN_PRE_S` before it and :data:`MIN_POST_S` after it to be judged at all.
"""

from __future__ import annotations

import numpy as np

from geosentinel.falls.signals import GRID_HZ, Floats, Resampled, clipped, mean_rows, norm

TRIGGER_G = 1.8  # candidate impacts: low, so that almost every fall has one (recall first, the model sorts)
CANDIDATE_SPACING_S = 1.5  # an impact is the largest peak within this distance
PRE_S = 2.0
POST_S = 5.0
MIN_PRE_S = 0.5
MIN_POST_S = 1.5
PEAK_G = 1.8  # a "peak" in the counts of repeated peaks (the periodic activities)
STANDARD_GRAVITY = 9.80665  # m/s² per g
STILL_STD_G = 0.05  # |a| standard deviation over half a second below which the wrist rests

ACCEL_FEATURES: tuple[str, ...] = (
    "peak_g",  # |a| at the impact (clipped sensors: understates hard impacts)
    "impact_samples_over_2g",  # how long the shock lasts: a clap is one sample, a fall often longer
    "jerk_peak_g_per_s",  # largest change of the acceleration vector around the impact
    "freefall_min_g",  # lowest |a| in the second before the impact (free fall: well under 1 g)
    "freefall_s",  # time spent under 0.6 g in that second
    "descent_velocity_m_s",  # g × ∫(1 g − |a|) over that second: speed gained falling, ~0 for a swing
    "pre_std_g",  # movement before (walking, jogging, clapping)
    "pre_peak_rate_hz",  # peaks per second before the impact: periodic activities have many
    "post_peak_rate_hz",  # and after it: a fall is one impact, then nothing
    "post_max_g",  # the hardest shock after the impact has settled
    "post_std_g",  # stillness after the impact
    "post_still_fraction",  # share of the post-impact time with the wrist at rest
    "post_mean_deviation_g",  # mean ||a| - 1 g| after the impact: ~0 when lying still
    "posture_change_deg",  # angle between the gravity direction before and after: the arm ends elsewhere
    "post_orientation_spread_deg",  # how much the gravity direction still wanders after the impact
    "periodicity",  # highest autocorrelation of |a| at a lag of 0.25-1.5 s over the window
    "window_energy_g2",  # mean (|a| - 1 g)² over the window
)
GYRO_FEATURES: tuple[str, ...] = (
    "gyro_peak_dps",  # fastest rotation within a second of the impact
    "rotation_deg",  # total rotation in the second before the impact to half a second after
    "pre_gyro_mean_dps",  # rotation before: arm swinging
    "post_gyro_mean_dps",  # rotation after: should be ~0 when lying
)


def _steps(seconds: float) -> int:
    return round(seconds * GRID_HZ)


# Speed: a window has one to four candidates of ~150 grid points, so the cost here is numpy's per-call
# overhead, not arithmetic. These are numpy's own mean and standard deviation (the same reductions and
# divisions, so the same bits: the shipped model was trained on them) without the Python wrappers of
# ``ndarray.mean`` and ``ndarray.std``, which cost more than the sums themselves on arrays this small.


def _mean(values: Floats) -> float:
    return float(np.add.reduce(values) / len(values))


def _std(values: Floats) -> float:
    centred = values - np.add.reduce(values) / len(values)
    return float(np.sqrt(np.add.reduce(centred * centred) / len(values)))


def candidate_impacts(magnitude_g: Floats) -> list[int]:
    """Grid indices of candidate impacts, in time order: peaks of ``|a|`` of at least
    :data:`TRIGGER_G` that are the largest within :data:`CANDIDATE_SPACING_S` and have enough context
    (:data:`MIN_PRE_S` before, :data:`MIN_POST_S` after) to be judged."""
    m = magnitude_g
    if len(m) < 3:
        return []
    inner = m[1:-1]
    # Local maxima; on a plateau (a saturated sensor) its first sample.
    peaks = np.flatnonzero((inner >= m[:-2]) & (inner > m[2:]) & (inner >= TRIGGER_G)) + 1
    spacing = _steps(CANDIDATE_SPACING_S)
    kept: list[int] = []
    for index in peaks[np.argsort(-m[peaks], kind="stable")].tolist():  # largest first, earliest on ties
        if all(abs(index - k) > spacing for k in kept):
            kept.append(index)
    first, last = _steps(MIN_PRE_S), len(m) - 1 - _steps(MIN_POST_S)
    return sorted(k for k in kept if first <= k <= last)


def window_features(stream: Resampled, impact: int) -> dict[str, float]:
    """The features of the window around ``impact`` (a grid index): every name of
    :data:`ACCEL_FEATURES`, plus :data:`GYRO_FEATURES` when the stream has a gyroscope."""
    m = stream.magnitude_g
    features = _impact(m, stream.accel_g, impact)
    features |= _before_after(m, impact)
    features |= _posture(stream.accel_g, stream.accel_norm_g, impact)
    features |= _rhythm(m, impact)
    if stream.gyro_norm_dps is not None:
        features |= _rotation(stream.gyro_norm_dps, impact)
    return features


def _span(length: int, impact: int, start_s: float, end_s: float) -> slice:
    """Grid slice from ``impact + start_s`` to ``impact + end_s``, cut to the recording."""
    return slice(max(0, impact + _steps(start_s)), min(length, impact + _steps(end_s) + 1))


def _impact(m: Floats, accel: Floats, impact: int) -> dict[str, float]:
    around = _span(len(m), impact, -0.5, 0.5)
    before = _span(len(m), impact, -1.0, -0.05)
    jerk = np.linalg.norm(np.diff(accel[around], axis=0), axis=1) * GRID_HZ
    fall = m[before]
    return {
        "peak_g": float(m[impact]),
        "impact_samples_over_2g": float(np.count_nonzero(m[around] > 2.0)),
        "jerk_peak_g_per_s": float(jerk.max()) if len(jerk) else 0.0,
        "freefall_min_g": float(fall.min()) if len(fall) else 1.0,
        "freefall_s": float(np.count_nonzero(fall < 0.6)) / GRID_HZ,
        "descent_velocity_m_s": STANDARD_GRAVITY * float(np.add.reduce(1.0 - fall)) / GRID_HZ,
    }


def _peak_rate(m: Floats) -> float:
    """Peaks of at least :data:`PEAK_G` per second."""
    if len(m) < 3:
        return 0.0
    inner = m[1:-1]
    peaks = np.count_nonzero((inner >= m[:-2]) & (inner > m[2:]) & (inner >= PEAK_G))
    return float(peaks) * GRID_HZ / len(m)


def _moving_std(values: Floats, width: int) -> Floats:
    """Standard deviation of every run of ``width`` consecutive values (empty if there are fewer)."""
    if len(values) < width:
        return np.zeros(0)
    sums = np.concatenate([[0.0], np.cumsum(values)])
    squares = np.concatenate([[0.0], np.cumsum(values * values)])
    mean = (sums[width:] - sums[:-width]) / width
    variance = (squares[width:] - squares[:-width]) / width - mean * mean
    return np.asarray(np.sqrt(np.maximum(variance, 0.0)), dtype=np.float64)


def _before_after(m: Floats, impact: int) -> dict[str, float]:
    pre = m[_span(len(m), impact, -PRE_S, -0.3)]
    post = m[_span(len(m), impact, 0.5, POST_S)]
    settled = m[_span(len(m), impact, 1.0, POST_S)]
    if len(settled) < _steps(0.5):  # a short window: settling is judged on what there is
        settled = post
    half_second = _steps(0.5)
    moving_std = _moving_std(settled, half_second)
    still = np.count_nonzero(moving_std < STILL_STD_G) / len(moving_std) if len(moving_std) else 0.0
    return {
        "pre_std_g": _std(pre) if len(pre) else 0.0,
        "pre_peak_rate_hz": _peak_rate(pre),
        "post_peak_rate_hz": _peak_rate(post),
        "post_max_g": float(settled.max()),
        "post_std_g": _std(settled),
        "post_still_fraction": float(still),
        "post_mean_deviation_g": _mean(np.abs(settled - 1.0)),
    }


def _angle_deg(a: Floats, b: Floats) -> float:
    norms = norm(a) * norm(b)
    if norms < 1e-9:
        return 0.0
    return float(np.degrees(np.arccos(clipped(np.dot(a, b) / norms, -1.0, 1.0))))


def _posture(accel: Floats, norm_g: Floats, impact: int) -> dict[str, float]:
    pre = accel[_span(len(accel), impact, -PRE_S, -0.5)]
    span = _span(len(accel), impact, 1.0, POST_S)
    if len(accel[span]) < _steps(0.5):
        span = _span(len(accel), impact, 0.5, POST_S)
    if len(pre) == 0:
        pre = accel[max(0, impact - _steps(MIN_PRE_S)) : impact]
    post = accel[span]
    gravity_after = mean_rows(post)
    norms = norm_g[span] * max(norm(gravity_after), 1e-9)
    cosines = clipped(post @ gravity_after / np.maximum(norms, 1e-9), -1.0, 1.0)
    return {
        "posture_change_deg": _angle_deg(mean_rows(pre), gravity_after),
        "post_orientation_spread_deg": _mean(np.degrees(np.arccos(cosines))),
    }


def _rhythm(m: Floats, impact: int) -> dict[str, float]:
    window = m[_span(len(m), impact, -PRE_S, POST_S)]
    centred = window - np.add.reduce(window) / len(window)
    energy = float(np.dot(centred, centred))
    best = 0.0
    if energy > 1e-9:
        lags = range(_steps(0.25), min(_steps(1.5), len(window) - _steps(1.0)) + 1)
        # The largest product divided once: rounding keeps order, so it is the largest quotient.
        products = [float(np.dot(centred[:-lag], centred[lag:])) for lag in lags]
        best = max(best, max(products, default=0.0) / energy)
    return {"periodicity": best, "window_energy_g2": _mean((window - 1.0) ** 2)}


def _rotation(speed: Floats, impact: int) -> dict[str, float]:
    around = speed[_span(len(speed), impact, -1.0, 1.0)]
    turn = speed[_span(len(speed), impact, -1.0, 0.5)]
    pre = speed[_span(len(speed), impact, -PRE_S, -0.5)]
    post = speed[_span(len(speed), impact, 1.0, POST_S)]
    if len(post) < _steps(0.5):
        post = speed[_span(len(speed), impact, 0.5, POST_S)]
    return {
        "gyro_peak_dps": float(around.max()),
        "rotation_deg": float(np.add.reduce(turn)) / GRID_HZ,
        "pre_gyro_mean_dps": _mean(pre) if len(pre) else 0.0,
        "post_gyro_mean_dps": _mean(post),
    }
