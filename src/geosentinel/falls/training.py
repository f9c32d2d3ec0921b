"""Train the fall model and measure it honestly: leave-one-subject-out (LOSO), thresholds chosen nested.

Labels exist per trial only (UMAFall does not mark the fall instant). Training windows are therefore
taken as follows: in a fall trial, the candidate impact with the highest ``|a|`` peak is the fall (the
other candidates of that trial are left out: they may be the stumble before it); in an ADL trial every
candidate is a non-fall. A trial *fires* when any of its candidates scores at least the threshold.

The decision threshold is never chosen on the subject being tested. Within each LOSO fold the training
subjects are themselves split leave-one-subject-out; their out-of-fold trial scores choose the threshold
(:func:`choose_threshold`), then the model is refitted on all training subjects. The shipped model does
the same on all subjects: out-of-fold scores choose its threshold, then one fit on everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from geosentinel.falls.classifier import Estimator, FallModel, Scorer, recording_streams
from geosentinel.falls.features import ACCEL_FEATURES, GYRO_FEATURES, candidate_impacts, window_features
from geosentinel.falls.metrics import Outcome, report, summarise
from geosentinel.falls.sequence import ACCEL_LENGTH, LENGTH, Network, sequence_vector
from geosentinel.falls.signals import Floats
from geosentinel.falls.umafall import Trial

SENSITIVITY_TARGET = 0.95
SPECIFICITY_TARGET = 0.98
RANDOM_STATE = 2026
NETWORK_SUFFIX = "+mlp"  # "hgb+mlp": the model averaged with the sequence network
SHIPPED_MODEL = "hgb" + NETWORK_SUFFIX
# The shipped model's two scorers: windows with a gyroscope, and accelerometer-only windows.
VARIANTS: dict[str, tuple[str, ...]] = {"accel": ACCEL_FEATURES, "gyro": (*ACCEL_FEATURES, *GYRO_FEATURES)}
Progress = Callable[[int, int], None]  # (done, total)


def _hgb() -> Estimator:
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]

    # Shallow trees, strong regularisation: 13 subjects are few, and unseen people must not surprise it.
    return HistGradientBoostingClassifier(  # type: ignore[no-any-return]
        max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=10, l2_regularization=1.0,
        random_state=RANDOM_STATE,
    )  # fmt: skip


def _logistic() -> Estimator:
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))  # type: ignore[no-any-return]


def _forest() -> Estimator:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(  # type: ignore[no-any-return]
        n_estimators=200, min_samples_leaf=2, random_state=RANDOM_STATE, n_jobs=1
    )


MODELS: dict[str, Callable[[], Estimator]] = {"hgb": _hgb, "logistic": _logistic, "forest": _forest}
# The sequence network: one hidden layer of 32, L2 penalty 1 (10 under-fits, 0.1 over-fits in the
# leave-one-subject-out screen), three seeds averaged (one network's score depends on its start).
NETWORK_HIDDEN = 32
NETWORK_ALPHA = 1.0
NETWORK_MEMBERS = 3
# Augmentation for the network: every training window is also taken with the impact one grid step
# (50 ms) earlier and later. Where the peak lands on the 20 Hz grid depends on the sampling phase and
# the device's rate; the network should not depend on that sample, the trees' summary features hardly do.
NETWORK_SHIFTS: tuple[int, ...] = (-1, 1)


def known_model(model: str) -> bool:
    """``hgb``, ``logistic``, ``forest``, each optionally with :data:`NETWORK_SUFFIX`."""
    return model.removesuffix(NETWORK_SUFFIX) in MODELS


def _network(sequences: Floats, labels: Floats) -> Network:
    """The network fitted on ``sequences`` (the training windows and their shifted copies)."""
    from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(sequences)
    inputs = scaler.transform(sequences)
    members = [
        MLPClassifier(
            hidden_layer_sizes=(NETWORK_HIDDEN,),
            alpha=NETWORK_ALPHA,
            max_iter=2000,
            random_state=RANDOM_STATE + k,
        ).fit(inputs, labels)
        for k in range(NETWORK_MEMBERS)
    ]
    return Network.of(scaler, members)


@dataclass(frozen=True, slots=True)
class TrialWindows:
    """A trial reduced to what training and evaluation need: its candidates' feature rows."""

    trial_id: str
    subject: str
    is_fall: bool
    activity: str
    duration_s: float
    peak_g: float  # largest raw |a| of the trial: the threshold baseline
    rows: tuple[dict[str, float], ...]
    sequences: Floats  # one sequence vector per row (candidates × sequence.LENGTH)
    # The same with the impact moved by each of NETWORK_SHIFTS (candidates × shifts × LENGTH): training
    # copies for the network, never scored.
    shifted: Floats


def trial_windows(trials: Sequence[Trial], progress: Progress | None = None) -> list[TrialWindows]:
    """Every trial's candidate windows, exactly as :func:`~geosentinel.falls.classifier.score_recording`
    sees them."""
    out = []
    for done, trial in enumerate(trials, 1):
        gyro = trial.gyro_dps
        streams = recording_streams(
            trial.accel_g.t_s, trial.accel_g.xyz, gyro.t_s if gyro else None, gyro.xyz if gyro else None
        )
        candidates = [
            (stream, impact) for stream in streams for impact in candidate_impacts(stream.magnitude_g)
        ]
        rows = tuple(window_features(stream, impact) for stream, impact in candidates)
        sequences = np.array([sequence_vector(stream, impact) for stream, impact in candidates])
        shifted = np.array(
            [
                [sequence_vector(stream, min(max(impact + d, 0), len(stream) - 1)) for d in NETWORK_SHIFTS]
                for stream, impact in candidates
            ]
        )
        out.append(
            TrialWindows(
                trial.trial_id,
                trial.subject,
                trial.is_fall,
                trial.activity,
                trial.duration_s,
                trial.peak_g,
                rows,
                sequences.reshape(len(rows), LENGTH),
                shifted.reshape(len(rows), len(NETWORK_SHIFTS), LENGTH),
            )
        )
        if progress is not None:
            progress(done, len(trials))
    return out


def _selected(trials: Sequence[TrialWindows]) -> list[tuple[TrialWindows, int, float]]:
    """(trial, candidate index, label) of every training window: the biggest-peak candidate of each fall
    trial, every ADL candidate."""
    out: list[tuple[TrialWindows, int, float]] = []
    for trial in trials:
        if trial.is_fall and trial.rows:
            out.append((trial, int(np.argmax([row["peak_g"] for row in trial.rows])), 1.0))
        elif not trial.is_fall:
            out += [(trial, index, 0.0) for index in range(len(trial.rows))]
    return out


def training_set(trials: Sequence[TrialWindows], names: Sequence[str]) -> tuple[Floats, Floats]:
    """Feature matrix and labels of the training windows (see :func:`_selected`)."""
    chosen = _selected(trials)
    matrix = np.array([[t.rows[i].get(name, np.nan) for name in names] for t, i, _ in chosen])
    return matrix.reshape(-1, len(names)), np.array([label for _, _, label in chosen])


def fit(trials: Sequence[TrialWindows], names: Sequence[str], model: str) -> Scorer:
    """A scorer fitted on ``trials`` (threshold 1.0: to be chosen). With :data:`NETWORK_SUFFIX`, the
    sequence network is fitted too, on the accelerometer channels only when ``names`` has no gyroscope
    feature (the accelerometer variant must not read what its windows lack)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    x, y = training_set(trials, names)
    estimator = MODELS[model.removesuffix(NETWORK_SUFFIX)]()
    network = None
    # One thread: on ~800 rows OpenMP threads cost more than they save, and on a shared 2-core machine
    # their spin-waiting made training 20x slower. (One thread also keeps the network's sums in the
    # same order every time: training reproduces the shipped model exactly.)
    with threadpool_limits(limits=1):
        estimator.fit(x, y)  # type: ignore[attr-defined]
        if model.endswith(NETWORK_SUFFIX):
            width = LENGTH if any(name in GYRO_FEATURES for name in names) else ACCEL_LENGTH
            chosen = _selected(trials)
            copies = [np.array([t.sequences[i, :width] for t, i, _ in chosen]).reshape(-1, width)]
            copies += [
                np.array([t.shifted[i, k, :width] for t, i, _ in chosen]).reshape(-1, width)
                for k in range(len(NETWORK_SHIFTS))
            ]
            network = _network(np.concatenate(copies), np.tile(y, len(copies)))
    return Scorer(estimator, tuple(names), 1.0, network)


def trial_scores(scorer: Scorer, trials: Sequence[TrialWindows]) -> Floats:
    """Per trial, the highest candidate probability (0 without candidates)."""
    return np.array([float(scorer.probabilities(list(t.rows), t.sequences).max(initial=0.0)) for t in trials])


def out_of_fold_scores(
    trials: Sequence[TrialWindows],
    names: Sequence[str],
    model: str,
    progress: Callable[[], None] | None = None,
) -> Floats:
    """Each trial scored by a model fitted without its subject."""
    scores = np.zeros(len(trials))
    subjects = np.array([t.subject for t in trials])
    for subject in sorted(set(subjects)):
        held = subjects == subject
        train = [t for t, h in zip(trials, held, strict=True) if not h]
        scores[held] = trial_scores(fit(train, names, model), [t for t in trials if t.subject == subject])
        if progress is not None:
            progress()
    return scores


def choose_threshold(scores: Floats, is_fall: Sequence[bool]) -> float:
    """The threshold closest to both targets on these (out-of-fold) scores.

    Each threshold's shortfall is measured in error budgets: ``(0.95 - sensitivity) / 0.05`` plus
    ``(0.98 - specificity) / 0.02`` (only where below target), so a missed fall and two and a half false
    alarms weigh the same relative to what the targets allow. The smallest total wins; among equal
    totals, the middle one (the most margin on both sides).
    """
    falls = np.asarray(is_fall, dtype=bool)
    values = np.unique(scores)
    cuts = np.concatenate([[values[0] / 2], (values[:-1] + values[1:]) / 2, [(values[-1] + 1.0) / 2]])
    cuts = cuts[(cuts > 0.0) & (cuts < 1.0)]
    if len(cuts) == 0:
        return 0.5
    fired = scores[None, :] >= cuts[:, None]
    shortfall = np.zeros(len(cuts))
    if falls.any():
        sensitivity = fired[:, falls].mean(axis=1)
        shortfall += np.maximum(0.0, SENSITIVITY_TARGET - sensitivity) / (1 - SENSITIVITY_TARGET)
    if (~falls).any():
        specificity = 1.0 - fired[:, ~falls].mean(axis=1)
        shortfall += np.maximum(0.0, SPECIFICITY_TARGET - specificity) / (1 - SPECIFICITY_TARGET)
    best = np.flatnonzero(np.isclose(shortfall, shortfall.min()))
    return float(cuts[best[len(best) // 2]])


def train_final(
    trials: Sequence[TrialWindows], model: str = SHIPPED_MODEL, progress: Callable[[], None] | None = None,
    versions: dict[str, str] | None = None,
) -> FallModel:  # fmt: skip
    """The model to ship, each variant alike: threshold from out-of-fold scores over all subjects, then
    one fit on all. ``progress`` is called after every fit."""
    scorers = {}
    for variant, names in VARIANTS.items():
        oof = out_of_fold_scores(trials, names, model, progress)
        threshold = choose_threshold(oof, [t.is_fall for t in trials])
        scorers[variant] = replace(fit(trials, names, model), threshold=threshold)
        if progress is not None:
            progress()
    metadata: dict[str, Any] = {
        "model": model,
        "random_state": RANDOM_STATE,
        "network": {
            "hidden": NETWORK_HIDDEN,
            "alpha": NETWORK_ALPHA,
            "members": NETWORK_MEMBERS,
            "impact_shifts": list(NETWORK_SHIFTS),
        }
        if model.endswith(NETWORK_SUFFIX)
        else None,
        "threshold_rule": "out-of-fold (leave-one-subject-out) trial scores, choose_threshold",
        "training_data": {
            "subjects": sorted({t.subject for t in trials}),
            "falls": sum(t.is_fall for t in trials),
            "adl": sum(not t.is_fall for t in trials),
            "windows": len(training_set(trials, ACCEL_FEATURES)[1]),
        },
        "versions": versions or {},
    }
    return FallModel(scorers["accel"], scorers["gyro"], metadata)


def fits_per_training(trials: Sequence[TrialWindows]) -> int:
    """How many model fits :func:`train_final` makes (for progress bars)."""
    return len(VARIANTS) * (len({t.subject for t in trials}) + 1)


BASELINE_G = 3.0  # the plain detector the model has to beat: peak |a| of the trial above 3 g


def _outcomes(trials: Sequence[TrialWindows], scores: Floats, threshold: float) -> list[Outcome]:
    return [
        Outcome(
            t.trial_id,
            t.subject,
            t.is_fall,
            t.activity,
            t.duration_s,
            round(float(s), 4),
            bool(s >= threshold),
        )
        for t, s in zip(trials, scores, strict=True)
    ]


class _Labelled(Protocol):
    @property
    def trial_id(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def is_fall(self) -> bool: ...
    @property
    def activity(self) -> str: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def peak_g(self) -> float: ...


def baseline(trials: Sequence[_Labelled]) -> dict[str, Any]:
    """The 3 g peak detector on the same trials (no training, no threshold to choose)."""
    outcomes = [
        Outcome(t.trial_id, t.subject, t.is_fall, t.activity, t.duration_s, t.peak_g, t.peak_g > BASELINE_G)
        for t in trials
    ]
    return {"rule": f"peak |a| > {BASELINE_G:g} g", **report(outcomes)}


def loso(
    trials: Sequence[TrialWindows], model: str = SHIPPED_MODEL, names: Sequence[str] = ACCEL_FEATURES,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Leave-one-subject-out, thresholds nested: per fold, the threshold comes from the training subjects'
    own leave-one-subject-out scores. ``progress`` is called after every model fit.

    One feature set is studied at a time: with the gyroscope features, a stretch without a gyroscope
    would be scored with those features missing, where the shipped model would use its accelerometer
    variant (on UMAFall every candidate has its gyroscope, so the two agree)."""
    subjects = sorted({t.subject for t in trials})
    by_subject = {s: [t for t in trials if t.subject == s] for s in subjects}
    # Fitting without {A, B} serves twice: inner fold B of outer fold A, and inner fold A of outer fold B
    # (deterministic fits: the same model either way). 13 + 78 fits instead of 13 × 13.
    fitted: dict[frozenset[str], Scorer] = {}

    def without(*excluded: str) -> Scorer:
        key = frozenset(excluded)
        if key not in fitted:
            fitted[key] = fit([t for t in trials if t.subject not in key], names, model)
            if progress is not None:
                progress()
        return fitted[key]

    outcomes: list[Outcome] = []
    folds = []
    for subject in subjects:
        others = [s for s in subjects if s != subject]
        out_of_fold = np.concatenate([trial_scores(without(subject, s), by_subject[s]) for s in others])
        threshold = choose_threshold(out_of_fold, [t.is_fall for s in others for t in by_subject[s]])
        test = by_subject[subject]
        fold = _outcomes(test, trial_scores(without(subject), test), threshold)
        outcomes += fold
        folds.append({"subject": subject, "threshold": round(threshold, 4), **summarise(fold)})
    return {"model": model, "features": list(names), **report(outcomes), "folds": folds}


def fits_per_loso(trials: Sequence[TrialWindows]) -> int:
    """How many model fits :func:`loso` makes (for progress bars)."""
    subjects = len({t.subject for t in trials})
    return subjects + subjects * (subjects - 1) // 2
