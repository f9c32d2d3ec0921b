"""The shipped model: loads safely and fast, and judges real wrist windows from UMAFall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import trial
from geosentinel.falls import training, umafall
from geosentinel.falls.classifier import FallModel, score_recording
from geosentinel.falls.features import ACCEL_FEATURES, GYRO_FEATURES, candidate_impacts
from geosentinel.falls.sequence import ACCEL_LENGTH, LENGTH, Network, sequence_vector
from geosentinel.falls.signals import WindowError, resample
from geosentinel.falls.trees import CompiledTrees

SHIPPED = Path(__file__).resolve().parents[2] / "src/geosentinel/falls/data/fall_model.npz"
FALL = "Subject_08_Fall_forwardFall_2_2016-06-18_14-28-08"
CLAPPING = "Subject_01_ADL_Aplausing_1_2017-04-14_23-38-23"


def device_window(
    recording: umafall.Trial, before_s: float = 2.5, after_s: float = 5.0
) -> tuple[np.ndarray, ...]:
    """What a bracelet would send: the samples from ``before_s`` before the largest |a| to ``after_s``
    after it, in epoch seconds, accelerometer and gyroscope."""
    t, accel = recording.accel_g.t_s, recording.accel_g.xyz
    peak = t[int(np.argmax(np.linalg.norm(accel, axis=1)))]
    keep = (t >= peak - before_s) & (t <= peak + after_s)
    assert recording.gyro_dps is not None
    gt, gyro = recording.gyro_dps.t_s, recording.gyro_dps.xyz
    gkeep = (gt >= peak - before_s) & (gt <= peak + after_s)
    epoch = 1_795_000_000.0
    return epoch + t[keep], accel[keep], epoch + gt[gkeep], gyro[gkeep]


def test_the_shipped_model_loads_once() -> None:
    # How fast it loads and scores is measured by bench/falls.py (make bench), not by a timed test.
    model = FallModel.load()
    assert FallModel.load() is model
    assert FallModel.load(SHIPPED) is not model  # a path: loaded again, not cached
    assert model.accel.feature_names == ACCEL_FEATURES
    assert model.gyro is not None and model.gyro.feature_names == (*ACCEL_FEATURES, *GYRO_FEATURES)
    assert 0.0 < model.accel.threshold < 1.0 and 0.0 < model.gyro.threshold < 1.0
    assert model.metadata["training_data"]["falls"] == 161


def test_a_real_fall_window_fires_and_clapping_does_not(dataset: umafall.Dataset) -> None:
    model = FallModel.load()
    fall = model.score_window(*device_window(trial(dataset, FALL)))
    assert model.gyro is not None and fall.threshold == model.gyro.threshold  # the window has a gyroscope
    assert fall.is_fall and fall.probability >= fall.threshold
    assert fall.impact_offset_s == pytest.approx(2.5, abs=0.1)
    assert set(fall.features) == {*ACCEL_FEATURES, *GYRO_FEATURES}
    clapping = model.score_window(*device_window(trial(dataset, CLAPPING)))
    assert not clapping.is_fall and clapping.candidates >= 1


def test_a_window_and_the_whole_trial_agree(dataset: umafall.Dataset) -> None:
    """The server's path (a window around the impact) and evaluate's (the whole trial) are one path: the
    whole trial sent as one window is judged exactly alike, and a window cut 2 s before and 5 s after the
    impact gets the same verdict. (Not quite the same probability: the cut window has no context before
    its first sample, for the gravity average and the first second's posture; 0.02 apart for this fall
    with the previous model, 0.08 with the shipped one, both far above the threshold.)"""
    model = FallModel.load()
    recording = trial(dataset, FALL)
    whole = score_recording(model, recording.accel_g.t_s, recording.accel_g.xyz)
    assert model.score_window(recording.accel_g.t_s, recording.accel_g.xyz) == whole
    t, accel, _, _ = device_window(recording, before_s=2.0, after_s=5.0)
    window = model.score_window(t, accel)
    assert window.is_fall and whole.is_fall
    assert window.probability == pytest.approx(whole.probability, abs=0.1)
    assert whole.impact_offset_s is not None
    peak_s = recording.accel_g.t_s[int(np.argmax(np.linalg.norm(recording.accel_g.xyz, axis=1)))]
    assert whole.impact_offset_s == pytest.approx(peak_s, abs=0.1)


def test_accelerometer_only_windows_are_judged_too(dataset: umafall.Dataset) -> None:
    model = FallModel.load()
    t, accel, _, _ = device_window(trial(dataset, FALL))
    verdict = model.score_window(t, accel)
    assert verdict.is_fall and verdict.threshold == model.accel.threshold
    assert set(verdict.features) == set(ACCEL_FEATURES)


def test_a_window_cut_short_after_the_impact(dataset: umafall.Dataset) -> None:
    model = FallModel.load()
    t, accel, _, _ = device_window(trial(dataset, FALL), after_s=2.0)
    verdict = model.score_window(t, accel)
    assert verdict.candidates == 1 and 0.0 <= verdict.probability <= 1.0
    t, accel, _, _ = device_window(trial(dataset, FALL), before_s=2.5, after_s=1.0)
    assert model.score_window(t, accel).candidates == 0  # too little after the impact to judge it


def test_quiet_window_has_no_candidate() -> None:
    t = np.arange(0.0, 8.0, 0.04)
    verdict = FallModel.load().score_window(t, np.tile([0.1, 0.2, 0.97], (len(t), 1)))
    assert (verdict.probability, verdict.is_fall, verdict.impact_offset_s) == (0.0, False, None)


def test_garbage_is_a_window_error() -> None:
    with pytest.raises(WindowError):
        FallModel.load().score_window([0.0, 0.1], [[1.0, 0.0, 0.0], [np.inf, 0.0, 0.0]])


def test_compiled_trees_give_scikit_learns_probabilities(dataset: umafall.Dataset) -> None:
    rows = [row for t in training.trial_windows(dataset.trials) for row in t.rows]
    assert len(rows) > 30
    trained = training.train_final(training.trial_windows(dataset.trials))  # scikit-learn's own estimators
    for scorer in trained.scorers().values():
        matrix = np.array([[row[name] for name in scorer.feature_names] for row in rows])
        matrix[::5, 3] = np.nan  # missing values follow each node's learned direction, as in scikit-learn
        expected = scorer.estimator.predict_proba(matrix)[:, 1]
        compiled = CompiledTrees.of(scorer.estimator)
        np.testing.assert_allclose(compiled.predict_proba(matrix)[:, 1], expected, atol=1e-12)
        # ... and so do the same trees once saved as arrays and loaded back (what the service runs).
        reloaded = CompiledTrees.from_arrays(compiled.arrays("v"), "v")
        np.testing.assert_allclose(reloaded.predict_proba(matrix)[:, 1], expected, atol=1e-12)


def test_a_model_file_that_is_not_plain_arrays_is_refused(tmp_path: Path) -> None:
    """A model file holds numbers only: an object array (which could carry code to run when unpickled),
    a truncated file or trees pointing outside themselves are refused, never executed."""
    metadata = SHIPPED.with_suffix(".json").read_text()
    with np.load(SHIPPED, allow_pickle=False) as shipped:
        arrays = dict(shipped)
    cases = {
        "pickled": {**arrays, "accel.value": np.array([object()], dtype=object)},
        "outside": {**arrays, "accel.left": np.where(arrays["accel.is_leaf"], 0, 10**6)},
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        with path.open("wb") as handle:
            np.savez(handle, **content)
        path.with_suffix(".json").write_text(metadata)
        with pytest.raises(ValueError, match="not a usable fall model"):
            FallModel.load(path)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(SHIPPED.read_bytes()[:1000])
    truncated.with_suffix(".json").write_text(metadata)
    with pytest.raises(ValueError, match="not a usable fall model"):
        FallModel.load(truncated)


def test_real_windows_keep_their_verdict_when_sampled_faster(dataset: umafall.Dataset) -> None:
    """Every real window of the fixture subjects, made denser (two samples interpolated between each pair
    of recorded ones, all jittered: ~60 Hz) and noisier, gets nearly the same probability and, but for
    the odd window near the threshold, the same verdict (over all UMAFall windows about 1 in 200 flips:
    count features such as ``impact_samples_over_2g`` move by one). The recorded samples stay in:
    interpolating only would cut the peaks the sensor saw."""
    model = FallModel.load()
    rng = np.random.default_rng(11)
    changes, flipped = [], []
    for recording in dataset.trials:
        t, accel, _, _ = device_window(recording)
        try:
            original = model.score_window(t, accel)
        except WindowError:
            continue
        between = np.concatenate([t[:-1] + np.diff(t) / 3, t[:-1] + 2 * np.diff(t) / 3])
        between += rng.uniform(-0.003, 0.003, len(between))
        fast = np.sort(np.concatenate([t, between]))
        dense = np.column_stack([np.interp(fast, t, accel[:, axis]) for axis in range(3)])
        verdict = model.score_window(fast, dense + rng.normal(0, 0.01, dense.shape))
        if verdict.is_fall != original.is_fall:
            flipped.append(recording.trial_id)
        changes.append(abs(verdict.probability - original.probability))
    assert len(changes) >= 30 and float(np.median(changes)) < 0.01
    assert len(flipped) <= 1, flipped


def test_the_network_gives_scikit_learns_probabilities(dataset: umafall.Dataset) -> None:
    """The sequence network evaluated with numpy (what the service runs) is scikit-learn's MLP (to the
    float32 rounding of its weights), and the same numbers after a round trip through the file's arrays."""
    from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    windows = training.trial_windows(dataset.trials)
    sequences = np.concatenate([t.sequences for t in windows])
    labels = np.array([t.is_fall for t in windows for _ in t.rows], dtype=float)
    scaler = StandardScaler().fit(sequences)
    members = [
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=k).fit(
            scaler.transform(sequences), labels
        )
        for k in range(2)
    ]
    expected = np.mean([m.predict_proba(scaler.transform(sequences))[:, 1] for m in members], axis=0)
    network = Network.of(scaler, members)  # its hidden weights rounded to float32, as saved
    np.testing.assert_allclose(network.probabilities(sequences), expected, atol=1e-5)
    reloaded = Network.from_arrays(network.arrays("v"), "v")
    assert reloaded is not None
    np.testing.assert_array_equal(reloaded.probabilities(sequences), network.probabilities(sequences))


def test_the_shipped_model_averages_trees_and_network() -> None:
    model = FallModel.load()
    assert model.gyro is not None and model.gyro.network is not None and model.gyro.network.width == LENGTH
    assert model.accel.network is not None and model.accel.network.width == ACCEL_LENGTH  # no gyro channel


def test_a_network_that_does_not_fit_together_is_refused(tmp_path: Path) -> None:
    metadata = SHIPPED.with_suffix(".json").read_text()
    with np.load(SHIPPED, allow_pickle=False) as shipped:
        arrays = dict(shipped)
    arrays["gyro.net.mean"] = arrays["gyro.net.mean"][:-1]
    path = tmp_path / "short.npz"
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    path.with_suffix(".json").write_text(metadata)
    with pytest.raises(ValueError, match="not a usable fall model"):
        FallModel.load(path)


def test_a_sequence_cut_short_is_filled_not_refused(dataset: umafall.Dataset) -> None:
    """Near the recording's edges the sequence is filled with each channel's mean: fixed length, finite."""
    t, accel, gt, gyro = device_window(trial(dataset, FALL), before_s=0.6, after_s=1.6)
    stream = resample(t, accel, gt, gyro)
    impacts = candidate_impacts(stream.magnitude_g)
    assert impacts
    vector = sequence_vector(stream, impacts[0])
    assert vector.shape == (LENGTH,) and np.isfinite(vector).all()
    no_gyro = sequence_vector(resample(t, accel), impacts[0])
    np.testing.assert_array_equal(no_gyro[:ACCEL_LENGTH], vector[:ACCEL_LENGTH])  # the gyro channel is last
