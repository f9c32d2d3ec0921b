"""The window around an impact as a fixed-length sequence, and the small network that scores it (pure).

The hand-made features (:mod:`geosentinel.falls.features`) summarise a window in 21 numbers chosen in
advance; the sequence keeps its shape: how ``|a|`` rises and falls around the impact, how the arm turns
towards its final posture, when the rotation stops. A small multilayer perceptron (one hidden layer) reads
it, and the shipped model averages its probability with the boosted trees' (the two make different
mistakes: in leave-one-subject-out screens the average found more falls at the same false alarms than
either alone).

The sequence spans :data:`PRE_STEPS` grid steps before the impact and :data:`POST_STEPS` after it, in
orientation-invariant channels, in this order (the gyroscope last, so that an accelerometer-only network
reads a prefix of the same vector, :data:`ACCEL_LENGTH` long):

1. ``log |a|`` (g, clipped to 0.05-8 g): the impact, free fall, stillness;
2. the angle between the gravity direction (a 0.5 s moving average of the acceleration) and the
   window's **final** posture (its last second), in right angles: how and when the arm reaches it;
3. the same against the window's **first** second: how far it turned from where it was;
4. ``|ω|`` in units of 250 °/s (zeros without a gyroscope).

Each channel keeps the second around the impact at the full 20 Hz (its shape matters) and is pooled
elsewhere into 0.2 s blocks (mean, maximum, standard deviation). A window cut short by the recording's
edges is filled, per channel, with the mean of what it has: the network needs a fixed length, and the
mean is neutral where the last value would fake stillness.

The network's weights are plain arrays (like the trees): no scikit-learn, no pickle at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from geosentinel.falls.signals import Floats, Resampled, clipped, mean_rows, norm

PRE_STEPS = 40  # 2 s at 20 Hz, as the feature window
POST_STEPS = 100  # 5 s
FULL_RATE_STEPS = 20  # ±1 s around the impact kept sample by sample
BLOCK = 4  # elsewhere, 0.2 s blocks
GRAVITY_STEPS = 10  # 0.5 s moving average: the gravity direction
POSTURE_STEPS = 20  # the first and the last second: the postures the angles refer to
GYRO_SCALE_DPS = 250.0
CHANNELS = 4
_FULL = 2 * FULL_RATE_STEPS + 1
_POOLED = (PRE_STEPS - FULL_RATE_STEPS + POST_STEPS - FULL_RATE_STEPS) // BLOCK
CHANNEL_LENGTH = _FULL + 3 * _POOLED
LENGTH = CHANNELS * CHANNEL_LENGTH
ACCEL_LENGTH = (CHANNELS - 1) * CHANNEL_LENGTH  # the accelerometer channels: a prefix


# Speed: a sequence is ~140 grid points per channel, so numpy's per-call overhead is most of its cost.
# Below, the wrappers of ``mean``, ``std`` and ``np.linalg.norm`` are replaced by the
# reductions and ufuncs they call (the same operations in the same order: the same bits, which the
# shipped model was trained on).


def _moving_mean(values: Floats, width: int) -> Floats:
    """Centred moving average of each column, edges repeated (``width`` rows per mean)."""
    before, after = width // 2, width - 1 - width // 2
    padded = np.concatenate(
        [np.repeat(values[:1], before, axis=0), values, np.repeat(values[-1:], after, axis=0)]
    )
    sums = np.empty((len(padded) + 1, values.shape[1]))
    sums[0] = 0.0
    np.cumsum(padded, axis=0, out=sums[1:])
    return np.asarray((sums[width:] - sums[:-width]) / width, dtype=np.float64)


def _unit(vector: Floats) -> Floats:
    return np.asarray(vector / max(norm(vector), 1e-9), dtype=np.float64)


def sequence_vector(stream: Resampled, impact: int) -> Floats:
    """The :data:`LENGTH` numbers the network reads for the candidate at grid index ``impact``."""
    n = len(stream)
    lo, hi = max(0, impact - PRE_STEPS), min(n, impact + POST_STEPS + 1)
    # The gravity average needs a little context beyond the window's edges.
    ctx_lo, ctx_hi = max(0, lo - GRAVITY_STEPS), min(n, hi + GRAVITY_STEPS)
    accel = stream.accel_g[ctx_lo:ctx_hi]
    gravity = _moving_mean(accel, GRAVITY_STEPS)[lo - ctx_lo : hi - ctx_lo]
    direction = gravity / np.maximum(np.linalg.norm(gravity, axis=1, keepdims=True), 1e-9)
    final = _unit(mean_rows(direction[-POSTURE_STEPS:]))
    first = _unit(mean_rows(direction[:POSTURE_STEPS]))
    start = lo - (impact - PRE_STEPS)  # where the available samples sit in the full-length sequence
    full = np.empty((CHANNELS, PRE_STEPS + POST_STEPS + 1))
    available = full[:, start : start + hi - lo]
    np.log(clipped(stream.accel_norm_g[lo:hi], 0.05, 8.0), out=available[0])
    available[1] = np.degrees(np.arccos(clipped(direction @ final, -1.0, 1.0))) / 90.0
    available[2] = np.degrees(np.arccos(clipped(direction @ first, -1.0, 1.0))) / 90.0
    if stream.gyro_norm_dps is not None:
        np.divide(stream.gyro_norm_dps[lo:hi], GYRO_SCALE_DPS, out=available[3])
    else:
        available[3] = 0.0
    if available.shape[1] < full.shape[1]:  # cut by the window's edges: the rest is each channel's mean
        means = np.add.reduce(available, axis=1) / available.shape[1]
        full[:, :start] = means[:, None]
        full[:, start + available.shape[1] :] = means[:, None]
    # All channels pooled at once, then laid out channel by channel.
    centre = full[:, PRE_STEPS - FULL_RATE_STEPS : PRE_STEPS + FULL_RATE_STEPS + 1]
    rest = np.concatenate(
        [full[:, : PRE_STEPS - FULL_RATE_STEPS], full[:, PRE_STEPS + FULL_RATE_STEPS + 1 :]], axis=1
    ).reshape(CHANNELS, -1, BLOCK)
    sums = np.add.reduce(rest, axis=2, keepdims=True)
    mean = sums / BLOCK
    deviation = rest - mean
    std = np.sqrt(np.add.reduce(deviation * deviation, axis=2) / BLOCK)
    pooled = [centre, mean[:, :, 0], np.maximum.reduce(rest, axis=2), std]
    return np.concatenate(pooled, axis=1).ravel()


@dataclass(frozen=True, slots=True)
class Network:
    """Several one-hidden-layer perceptrons (ReLU, logistic output) on standardised inputs; the fall
    probability is their mean. ``width`` inputs: the first ``width`` entries of a sequence vector."""

    mean: Floats  # width
    scale: Floats  # width
    hidden_weights: Floats  # members × width × hidden
    hidden_bias: Floats  # members × hidden
    output_weights: Floats  # members × hidden
    output_bias: Floats  # members

    @property
    def width(self) -> int:
        return len(self.mean)

    @staticmethod
    def of(scaler: Any, members: list[Any]) -> Network:
        """From a fitted ``StandardScaler`` and binary ``MLPClassifier``\\ s with one ReLU hidden layer."""
        for member in members:
            if member.activation != "relu" or len(member.coefs_) != 2 or member.out_activation_ != "logistic":
                raise ValueError("only one-hidden-layer ReLU classifiers with a logistic output")
        return Network(
            mean=np.asarray(scaler.mean_, dtype=np.float64),
            scale=np.asarray(scaler.scale_, dtype=np.float64),
            # Rounded to float32, as saved (half the file; ~1e-7 on a probability): the model that is
            # measured and thresholded is exactly the one shipped.
            hidden_weights=np.stack([m.coefs_[0] for m in members]).astype(np.float32).astype(np.float64),
            hidden_bias=np.stack([m.intercepts_[0] for m in members]).astype(np.float64),
            output_weights=np.stack([m.coefs_[1][:, 0] for m in members]).astype(np.float64),
            output_bias=np.array([m.intercepts_[1][0] for m in members], dtype=np.float64),
        )

    def probabilities(self, sequences: Floats) -> Floats:
        """Fall probability of each row of ``sequences`` (rows at least :attr:`width` long)."""
        x = (np.asarray(sequences, dtype=np.float64)[:, : self.width] - self.mean) / self.scale
        hidden = np.maximum(
            np.einsum("nd,mdh->mnh", x, self.hidden_weights) + self.hidden_bias[:, None, :], 0.0
        )
        raw = np.einsum("mnh,mh->mn", hidden, self.output_weights) + self.output_bias[:, None]
        return np.asarray((1.0 / (1.0 + np.exp(-raw))).mean(axis=0), dtype=np.float64)

    def arrays(self, prefix: str) -> dict[str, NDArray[Any]]:
        fields = ("mean", "scale", "hidden_bias", "output_weights", "output_bias")
        out = {f"{prefix}.net.{name}": getattr(self, name) for name in fields}
        out[f"{prefix}.net.hidden_weights"] = self.hidden_weights.astype(np.float32)  # exact: see of()
        return out

    @staticmethod
    def from_arrays(arrays: Mapping[str, NDArray[Any]], prefix: str) -> Network | None:
        """The network saved by :meth:`arrays`, None when the file has none for ``prefix``; ValueError when
        its arrays do not fit together."""
        if f"{prefix}.net.mean" not in arrays:
            return None
        try:
            parts = {
                name: np.asarray(arrays[f"{prefix}.net.{name}"], dtype=np.float64)
                for name in (
                    "mean",
                    "scale",
                    "hidden_weights",
                    "hidden_bias",
                    "output_weights",
                    "output_bias",
                )
            }
        except KeyError as exc:
            raise ValueError(f"model file lacks {exc}") from None
        network = Network(**parts)
        members, width, hidden = (
            network.hidden_weights.shape if network.hidden_weights.ndim == 3 else (0, 0, 0)
        )
        if not (
            0 < width <= LENGTH
            and network.mean.shape == network.scale.shape == (width,)
            and network.hidden_bias.shape == network.output_weights.shape == (members, hidden)
            and network.output_bias.shape == (members,)
            and members > 0
            and bool(np.all(network.scale > 0))
        ):
            raise ValueError("model file: network arrays do not fit together")
        return network
