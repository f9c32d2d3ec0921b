"""``geosentinel falls evaluate|train`` on small UMAFall-layout folders cut from the shared data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from conftest import SubsetMaker
from geosentinel.cli import app
from geosentinel.falls import training, umafall
from geosentinel.falls.classifier import FallModel

runner = CliRunner()


def falls(*args: str) -> str:
    result = runner.invoke(app, ["falls", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def test_evaluate_json_on_two_unseen_style_subjects(umafall_subset: SubsetMaker) -> None:
    folder = umafall_subset(["Subject_08", "Subject_01"], 6)
    report = json.loads(falls("evaluate", "--data", str(folder), "--json"))
    assert (report["n_falls"], report["n_adl"]) == (3, 9)
    for key in ("sensitivity", "specificity", "f1", "false_alarms_per_adl_hour", "by_activity", "by_subject"):
        assert key in report
    assert 0.0 <= report["sensitivity"] <= 1.0 and 0.0 <= report["specificity"] <= 1.0
    assert set(report["by_subject"]) == {"Subject_08", "Subject_01"}
    assert report["baseline"]["rule"] == "peak |a| > 3 g"
    assert len(report["trials"]) == 12
    text = falls("evaluate", "--data", str(folder))
    assert "sensitivity" in text and "baseline" in text


def test_evaluate_adl_only_subjects_has_no_sensitivity(umafall_subset: SubsetMaker) -> None:
    folder = umafall_subset(["Subject_01"], 5)
    report = json.loads(falls("evaluate", "--data", str(folder), "--json"))
    assert report["n_falls"] == 0 and report["sensitivity"] is None and report["f1"] is None
    assert report["specificity"] is not None


def test_evaluate_refuses_a_folder_without_the_layout(tmp_path: Path) -> None:
    result = runner.invoke(app, ["falls", "evaluate", "--data", str(tmp_path)])
    assert result.exit_code == 1 and "trials.csv" in result.output


def test_evaluate_refuses_a_missing_model(umafall_subset: SubsetMaker, tmp_path: Path) -> None:
    folder = umafall_subset(["Subject_01"], 1)
    result = runner.invoke(
        app, ["falls", "evaluate", "--data", str(folder), "--model", str(tmp_path / "no.npz")]
    )
    assert result.exit_code == 1 and "cannot load the model" in result.output


def test_train_is_deterministic(umafall_subset: SubsetMaker, tmp_path: Path) -> None:
    folder = umafall_subset(["Subject_08", "Subject_16", "Subject_01"], None)
    first, second = tmp_path / "a" / "model.npz", tmp_path / "b" / "model.npz"
    report = tmp_path / "loso.json"
    falls("train", "--data", str(folder), "--out", str(first), "--loso-report", str(report))
    study = json.loads(report.read_text())
    assert set(study["variants"]) == {"accel", "gyro"}
    folds = [fold["subject"] for fold in study["variants"]["gyro"]["folds"]]
    assert folds == ["Subject_01", "Subject_08", "Subject_16"]
    falls("train", "--data", str(folder), "--out", str(second))
    a, b = FallModel.load(first), FallModel.load(second)
    assert [s.threshold for s in a.scorers().values()] == [s.threshold for s in b.scorers().values()]
    assert a.metadata["training_data"]["subjects"] == ["Subject_01", "Subject_08", "Subject_16"]
    windows = training.trial_windows(umafall.load(folder).trials)
    rows = [row for t in windows for row in t.rows]
    sequences = np.concatenate([t.sequences for t in windows])
    for name in ("accel", "gyro"):
        np.testing.assert_array_equal(
            a.scorers()[name].probabilities(rows, sequences), b.scorers()[name].probabilities(rows, sequences)
        )
