"""Confirm or reject a fall from an IMU window: :class:`FallModel` and its verdicts.

One code path serves the server and ``falls evaluate``: samples → :func:`~geosentinel.falls.signals.resample`
→ :func:`~geosentinel.falls.features.candidate_impacts` → per candidate, the window features → model
probability. A window fires when any candidate scores at least the threshold of the scorer that judges the
window: the gyroscope model when the window has a gyroscope, the accelerometer-only model otherwise. A
whole recording (a UMAFall trial) is scored the same way, piece by piece between data gaps
(:func:`score_recording`).

Pure given the model: nothing here reads a file (except :meth:`FallModel.load`) or the clock.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from geosentinel.falls.features import candidate_impacts, window_features
from geosentinel.falls.sequence import Network, sequence_vector
from geosentinel.falls.signals import GRID_HZ, Floats, Resampled, WindowError, resample, split_at_gaps
from geosentinel.falls.trees import CompiledTrees

# The trees as plain arrays (numpy .npz, read with allow_pickle=False: a model file holds numbers, never
# code), and fall_model.json beside it: variants, features, thresholds, provenance. The service needs
# no scikit-learn to load it: a cold start takes milliseconds, not the seconds importing
# scikit-learn costs.
MODEL_FILE = "fall_model.npz"


class Estimator(Protocol):
    def predict_proba(self, x: Floats) -> Floats: ...


@dataclass(frozen=True, slots=True)
class FallVerdict:
    """The judgement of one window."""

    probability: float  # of the best candidate impact (0.0 when there is none)
    is_fall: bool  # probability >= threshold
    threshold: float
    impact_offset_s: float | None  # the best candidate, seconds after the window's first sample
    features: dict[str, float] = field(default_factory=dict)  # the model's inputs for the best candidate
    candidates: int = 0  # impacts strong enough to be judged


@dataclass(frozen=True, slots=True)
class Scorer:
    """One estimator, the feature names it reads (in order) and its decision threshold; optionally a
    network on the window's sequence (:mod:`~geosentinel.falls.sequence`), whose probability is averaged
    with the estimator's (equal weights: two views of the same window, neither tuned to win)."""

    estimator: Estimator
    feature_names: tuple[str, ...]
    threshold: float
    network: Network | None = None
    # What computes: the estimator's trees compiled to arrays when it is gradient boosting (same numbers,
    # ~10x faster on one window), else the estimator itself.
    _compiled: Estimator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled: Estimator = self.estimator
        if not isinstance(compiled, CompiledTrees):
            try:
                compiled = CompiledTrees.of(self.estimator)
            except ValueError:
                pass
        object.__setattr__(self, "_compiled", compiled)

    @property
    def trees(self) -> CompiledTrees:
        """The compiled trees (what is saved); ValueError for an estimator that is not gradient boosting."""
        if not isinstance(self._compiled, CompiledTrees):
            raise ValueError("only gradient-boosting models can be saved")
        return self._compiled

    def probabilities(self, rows: list[dict[str, float]], sequences: Floats | None = None) -> Floats:
        """Fall probability of each feature row (NaN for a feature the row lacks); with a network, each
        row's sequence vector (same order) is needed too."""
        if not rows:
            return np.zeros(0)
        matrix = np.array([[row.get(name, np.nan) for name in self.feature_names] for row in rows])
        trees = np.asarray(self._compiled.predict_proba(matrix)[:, 1], dtype=np.float64)
        if self.network is None:
            return trees
        if sequences is None or len(sequences) != len(rows):
            raise ValueError("this scorer needs each window's sequence vector")
        return np.asarray((trees + self.network.probabilities(sequences)) / 2.0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class FallModel:
    """Two scorers: one for windows with a gyroscope, one for accelerometer-only windows."""

    accel: Scorer  # accelerometer features only
    gyro: Scorer | None = None  # accelerometer and gyroscope features; None: accel serves every window
    metadata: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def load(path: Path | None = None) -> FallModel:
        """The model in ``path`` (a ``.npz`` file with its ``.json`` beside it); default: the shipped
        one, loaded once per process."""
        return _load(path.resolve()) if path is not None else _shipped()

    def scorers(self) -> dict[str, Scorer]:
        return {"accel": self.accel} | ({"gyro": self.gyro} if self.gyro is not None else {})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {}
        for name, scorer in self.scorers().items():
            arrays |= scorer.trees.arrays(name)
            if scorer.network is not None:
                arrays |= scorer.network.arrays(name)
        with path.open("wb") as handle:  # (a file handle: savez would add ".npz" to any other name)
            np.savez_compressed(handle, allow_pickle=False, **arrays)
        variants = {
            name: {"features": list(scorer.feature_names), "threshold": scorer.threshold}
            for name, scorer in self.scorers().items()
        }
        document = {**self.metadata, "variants": variants}
        path.with_suffix(".json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")

    def scorer_for(self, stream: Resampled) -> Scorer:
        return self.gyro if self.gyro is not None and stream.gyro_dps is not None else self.accel

    def score_stream(self, stream: Resampled) -> FallVerdict:
        """Every candidate impact of a resampled stream; the verdict of the most fall-like one."""
        scorer = self.scorer_for(stream)
        impacts = candidate_impacts(stream.magnitude_g)
        if not impacts:
            return FallVerdict(0.0, False, scorer.threshold, None)
        rows = [window_features(stream, impact) for impact in impacts]
        sequences = (
            np.array([sequence_vector(stream, impact) for impact in impacts])
            if scorer.network is not None
            else None
        )
        scores = scorer.probabilities(rows, sequences)
        best = int(np.argmax(scores))
        probability = float(scores[best])
        used = {name: rows[best][name] for name in scorer.feature_names if name in rows[best]}
        return FallVerdict(
            probability, probability >= scorer.threshold, scorer.threshold, impacts[best] / GRID_HZ, used,
            len(impacts),
        )  # fmt: skip

    def score_window(
        self,
        t_s: ArrayLike,
        accel_g: ArrayLike,
        gyro_t_s: ArrayLike | None = None,
        gyro_dps: ArrayLike | None = None,
    ) -> FallVerdict:
        """The verdict on a window a device sent: timestamps in seconds (any base), n×3 accelerometer
        in g, optionally the gyroscope in °/s with its own timestamps. Raises
        :class:`~geosentinel.falls.signals.WindowError` for a window that cannot be judged.

        ``impact_offset_s`` counts from the window's earliest sample.
        """
        return self.score_stream(resample(t_s, accel_g, gyro_t_s, gyro_dps))


def recording_streams(
    t_s: Floats, accel_g: Floats, gyro_t_s: Floats | None = None, gyro_dps: Floats | None = None
) -> list[Resampled]:
    """A whole recording (sorted timestamps) as the windows a device could have sent: one per stretch
    between data gaps. Stretches too short to judge are left out, and a gyroscope stream that does not
    cover a stretch is left out of it."""
    streams = []
    for piece in split_at_gaps(t_s):
        try:
            streams.append(_resample_piece(t_s[piece], accel_g[piece], gyro_t_s, gyro_dps))
        except WindowError:
            continue
    return streams


def score_recording(
    model: FallModel,
    t_s: Floats,
    accel_g: Floats,
    gyro_t_s: Floats | None = None,
    gyro_dps: Floats | None = None,
) -> FallVerdict:
    """The verdict on a whole recording: the most fall-like of its stretches' verdicts
    (``impact_offset_s`` from the recording's first sample)."""
    best = FallVerdict(0.0, False, model.accel.threshold, None)
    for stream in recording_streams(t_s, accel_g, gyro_t_s, gyro_dps):
        verdict = model.score_stream(stream)
        if verdict.impact_offset_s is None:
            continue
        margin = verdict.probability - verdict.threshold  # stretches may be judged by different scorers
        if best.impact_offset_s is None or margin > best.probability - best.threshold:
            best = _shifted(verdict, stream.start_s - float(t_s[0]))
    return best


def _resample_piece(
    t_s: Floats, accel_g: Floats, gyro_t_s: Floats | None, gyro_dps: Floats | None
) -> Resampled:
    if gyro_t_s is not None and gyro_dps is not None:
        inside = (gyro_t_s >= t_s[0]) & (gyro_t_s <= t_s[-1])
        try:
            return resample(t_s, accel_g, gyro_t_s[inside], gyro_dps[inside])
        except WindowError:
            pass  # the gyroscope has its own gaps: judge this stretch on the accelerometer alone
    return resample(t_s, accel_g)


def _shifted(verdict: FallVerdict, seconds: float) -> FallVerdict:
    assert verdict.impact_offset_s is not None
    return FallVerdict(
        verdict.probability, verdict.is_fall, verdict.threshold, verdict.impact_offset_s + seconds,
        verdict.features, verdict.candidates,
    )  # fmt: skip


def _load(path: Path) -> FallModel:
    metadata = json.loads(path.with_suffix(".json").read_text())
    try:
        # Our own handle: np.load leaks the one it opens when the file is not a valid archive.
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as arrays:
            scorers = {
                name: Scorer(
                    CompiledTrees.from_arrays(arrays, name),
                    tuple(variant["features"]),
                    float(variant["threshold"]),
                    Network.from_arrays(arrays, name),
                )
                for name, variant in metadata["variants"].items()
            }
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a usable fall model: {exc}") from exc
    return FallModel(scorers["accel"], scorers.get("gyro"), metadata)


@cache
def _shipped() -> FallModel:
    with resources.as_file(resources.files("geosentinel.falls") / "data" / MODEL_FILE) as path:
        return _load(path)
