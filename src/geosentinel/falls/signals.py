"""IMU samples onto a uniform 20 Hz grid, keeping impact peaks (pure: no I/O, no clock).

Bracelets sample at 20-50 Hz with jitter, repeated timestamps and dropped packets; the classifier was
trained on ~20 Hz wrist data (UMAFall). Everything is therefore brought onto one grid of
:data:`GRID_HZ` before any feature is computed, so the same motion gives the same features whatever the
device's rate.

Linear resampling would cut a short impact peak by several g (a 50 ms spike between two grid points).
Instead each grid point takes the sample nearest to it (within half a grid step), as a whole vector, so
the orientation stays that of a real sample, except where an **extreme** falls within that half step: a
local maximum of ``|a|`` of at least :data:`KEEP_PEAKS_FROM_G` (an impact) or a local minimum of at most
:data:`KEEP_VALLEYS_TO_G` (free fall) takes the grid point instead. Extremes therefore survive, and the
rest is not biased: taking the largest sample everywhere (an earlier version) inflated
``|a|`` during motion at 50 Hz, where each grid point has 2-3 samples to choose from, and moved a clapping
trial's verdict. Grid points without any sample are linearly interpolated between their neighbours.

Axes are clipped where the training data saturates (:data:`SATURATION_G`, :data:`GYRO_SATURATION_DPS`):
a device with a wider range must not show the model magnitudes it has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike, NDArray

GRID_HZ = 20.0  # the training data's rate: a 50 Hz device is brought down to it, never the reverse
SATURATION_G = 8.0  # per axis, as in the training data
GYRO_SATURATION_DPS = 257.0  # per axis, as in the training data
KEEP_PEAKS_FROM_G = 1.5  # a local maximum of |a| this high is kept on the grid (below: nearest sample)
KEEP_VALLEYS_TO_G = 0.6  # and a local minimum this low (free fall)
KEEP_PEAKS_FROM_DPS = 100.0  # peaks of |ω|
MAX_GAP_S = 1.0  # a longer hole is lost data, not jitter: the window is refused
MIN_RATE_HZ = 8.0  # the slowest UMAFall trial is 8.3 Hz
MIN_DURATION_S = 2.0
MAX_DURATION_S = 600.0  # longer input is not a window around one event (and would cost memory)
MAX_SAMPLES = 200_000

Floats = NDArray[np.float64]


def clipped(values: ArrayLike, low: float, high: float) -> Floats:
    """``np.clip`` (NaN stays NaN): the same ufuncs without its Python wrappers, which cost more than the
    clipping on the few hundred values of a window."""
    return np.asarray(np.minimum(np.maximum(values, low), high))


def mean_rows(values: Floats) -> Floats:
    """``ndarray.mean(axis=0)``: the column sums divided by the row count."""
    return np.asarray(np.add.reduce(values, axis=0) / len(values), dtype=np.float64)


def norm(vector: Floats) -> float:
    """``np.linalg.norm`` of a vector (its square root of a dot product), without its dispatching."""
    return float(np.sqrt(np.dot(vector, vector)))


class WindowError(ValueError):
    """The samples cannot be scored: too short, too gappy, malformed or not finite."""


@dataclass(frozen=True, slots=True)
class Resampled:
    """Samples on the uniform grid: ``t_s[i] = start_s + i / GRID_HZ``."""

    start_s: float  # time of the first grid point, in the caller's time base
    accel_g: Floats  # n×3, axes clipped at ±SATURATION_G
    gyro_dps: Floats | None  # n×3 on the same grid, or None without a usable gyroscope
    # Per grid point, computed once here: every candidate's features and sequence read them. |a| comes
    # two ways, as the features and the sequence have always computed it (the last bit may differ, and
    # the shipped model was trained on each as it is).
    magnitude_g: Floats = field(init=False, repr=False, compare=False)  # |a| (an einsum)
    accel_norm_g: Floats = field(init=False, repr=False, compare=False)  # |a| (np.linalg.norm)
    gyro_norm_dps: Floats | None = field(init=False, repr=False, compare=False)  # |ω| (np.linalg.norm)

    def __post_init__(self) -> None:
        accel = self.accel_g
        object.__setattr__(self, "magnitude_g", np.sqrt(np.einsum("ij,ij->i", accel, accel)))
        object.__setattr__(self, "accel_norm_g", np.linalg.norm(accel, axis=1))
        gyro = None if self.gyro_dps is None else np.linalg.norm(self.gyro_dps, axis=1)
        object.__setattr__(self, "gyro_norm_dps", gyro)

    def __len__(self) -> int:
        return len(self.accel_g)


def resample(
    t_s: ArrayLike,
    accel_g: ArrayLike,
    gyro_t_s: ArrayLike | None = None,
    gyro_dps: ArrayLike | None = None,
    max_duration_s: float = MAX_DURATION_S,
) -> Resampled:
    """The window on the grid; :class:`WindowError` explains any input that cannot be used.

    Timestamps are seconds in any base (device clock, epoch); order and repeats do not matter. The
    gyroscope has its own timestamps (it is a separate stream on most sensors); give both or neither.
    """
    times, accel = _checked(t_s, accel_g, "accelerometer", max_duration_s)
    accel = clipped(accel, -SATURATION_G, SATURATION_G)
    start = float(times[0])
    count = int(np.floor((times[-1] - start) * GRID_HZ)) + 1
    accel_grid = _onto_grid(times - start, accel, count, KEEP_PEAKS_FROM_G, KEEP_VALLEYS_TO_G)
    gyro_grid = None
    if (gyro_t_s is None) != (gyro_dps is None):
        raise WindowError("give the gyroscope's timestamps and values together")
    if gyro_t_s is not None and gyro_dps is not None:
        gyro_times, gyro = _checked(gyro_t_s, gyro_dps, "gyroscope", max_duration_s)
        if gyro_times[0] > start + MAX_GAP_S or gyro_times[-1] < times[-1] - MAX_GAP_S:
            raise WindowError("the gyroscope does not cover the accelerometer's time span")
        gyro = clipped(gyro, -GYRO_SATURATION_DPS, GYRO_SATURATION_DPS)
        gyro_grid = _onto_grid(gyro_times - start, gyro, count, KEEP_PEAKS_FROM_DPS, -np.inf)
    return Resampled(start, accel_grid, gyro_grid)


def _checked(t_s: ArrayLike, values: ArrayLike, name: str, max_duration_s: float) -> tuple[Floats, Floats]:
    """Sorted finite timestamps and n×3 finite values, or WindowError."""
    try:
        times = np.asarray(t_s, dtype=np.float64)
        samples = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WindowError(f"{name}: not numbers ({exc})") from exc
    if times.ndim != 1 or samples.ndim != 2 or samples.shape[1:] != (3,) or len(samples) != len(times):
        raise WindowError(
            f"{name}: expected n timestamps and n×3 values, got {times.shape} and {samples.shape}"
        )
    if len(times) > MAX_SAMPLES:
        raise WindowError(f"{name}: {len(times)} samples is more than the {MAX_SAMPLES} accepted")
    if len(times) < 2:
        raise WindowError(f"{name}: {len(times)} samples")
    if not (np.isfinite(times).all() and np.isfinite(samples).all()):
        raise WindowError(f"{name}: NaN or infinite values")
    with np.errstate(over="ignore", invalid="ignore"):  # 1e308 - -1e308 is inf: refused just below
        steps = times[1:] - times[:-1]  # (np.diff, without its wrapper)
        if float(steps.min()) < 0.0:  # (devices mostly send samples in order: then nothing to sort)
            order = np.argsort(times, kind="stable")
            times, samples = times[order], samples[order]
            steps = times[1:] - times[:-1]
        span = float(times[-1] - times[0])
    if not np.isfinite(span) or span > max_duration_s:
        raise WindowError(f"{name}: spans {span:.3g} s, more than {max_duration_s:g} s")
    if span < MIN_DURATION_S:
        raise WindowError(f"{name}: spans {span:.3g} s, less than the {MIN_DURATION_S:g} s needed")
    if (len(times) - 1) / span < MIN_RATE_HZ:
        raise WindowError(f"{name}: {(len(times) - 1) / span:.3g} Hz on average, below {MIN_RATE_HZ:g} Hz")
    if (gap := float(steps.max())) > MAX_GAP_S:
        raise WindowError(f"{name}: a {gap:.3g} s gap, more than {MAX_GAP_S:g} s")
    return times, samples


def _onto_grid(offsets_s: Floats, values: Floats, count: int, peak_from: float, valley_to: float) -> Floats:
    """Per grid point, the nearest sample within half a step (interpolation where there is none), except
    where an extreme of the magnitude falls in that half step: a local minimum of at most ``valley_to``
    or a local maximum of at least ``peak_from`` (which wins) takes the grid point."""
    position = offsets_s * GRID_HZ
    slot = clipped(np.rint(position).astype(np.int64), 0, count - 1)
    order = np.lexsort((np.abs(position - slot), slot))  # by slot, nearest sample first
    by_slot = slot[order]
    # The first (nearest) sample of each slot: what np.unique(by_slot, return_index=True) finds, without
    # sorting again what lexsort has just sorted.
    first = np.flatnonzero(np.concatenate(([True], by_slot[1:] != by_slot[:-1])))
    filled = by_slot[first]
    kept = values[order[first]]
    if len(values) >= 3:
        magnitude = np.sqrt(np.einsum("ij,ij->i", values, values))
        before, here, after = magnitude[:-2], magnitude[1:-1], magnitude[2:]  # views: sample i + 1
        no_valleys = valley_to < 0.0  # (a magnitude never is: the gyroscope's case)
        valleys = (
            np.zeros(0, dtype=np.intp)
            if no_valleys
            else np.flatnonzero((here <= before) & (here <= after) & (here <= valley_to)) + 1
        )
        peaks = np.flatnonzero((here >= before) & (here >= after) & (here >= peak_from)) + 1
        for found, sign in ((valleys, -1.0), (peaks, 1.0)):
            if len(found) == 0:
                continue
            # The most extreme last: it wins its slot; a sample replaces the slot's only if more extreme.
            extremes = found[np.argsort(sign * magnitude[found], kind="stable")]
            where = np.searchsorted(filled, slot[extremes])
            current = np.sqrt(np.einsum("ij,ij->i", kept[where], kept[where]))
            more = sign * magnitude[extremes] > sign * current
            kept[where[more]] = values[extremes[more]]
    if len(filled) == count:
        return kept
    grid = np.arange(count, dtype=np.float64)
    return np.column_stack([np.interp(grid, filled, kept[:, axis]) for axis in range(3)])


def split_at_gaps(t_s: Floats, max_gap_s: float = MAX_GAP_S) -> list[slice]:
    """Index ranges of a sorted recording between holes longer than ``max_gap_s``.

    A long recording with lost packets is scored piece by piece, each piece as a window a device could
    have sent; used by the trial scorer, never to paper over a gappy device window.
    """
    breaks = np.flatnonzero(np.diff(t_s) > max_gap_s) + 1
    edges = [0, *breaks.tolist(), len(t_s)]
    return [slice(a, b) for a, b in pairwise(edges) if b > a]
