"""``geosentinel falls``: evaluate the shipped fall model, reproduce it, run the LOSO study."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from geosentinel.falls import training, umafall
from geosentinel.falls.classifier import FallModel, score_recording
from geosentinel.falls.features import ACCEL_FEATURES, GYRO_FEATURES
from geosentinel.falls.metrics import Outcome, report

falls_app = typer.Typer(
    help="Fall classifier: evaluate the shipped model, train it again, measure it per subject.",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path,
    typer.Option("--data", help="Folder with the UMAFall layout (trials.csv, signals/Subject_XX.csv.gz)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the summary.")]
_err = Console(stderr=True)


def _load(data: Path) -> umafall.Dataset:
    try:
        dataset = umafall.load(data)
    except umafall.DatasetError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if not dataset.trials:
        typer.echo(f"error: {data} holds no wrist trial", err=True)
        raise typer.Exit(code=1)
    return dataset


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[], None]]:
    with Progress(console=_err, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda: progress.advance(task)


def _windows(dataset: umafall.Dataset) -> list[training.TrialWindows]:
    with _progress("windows", len(dataset.trials)) as step:
        return training.trial_windows(dataset.trials, progress=lambda _done, _total: step())


def versions() -> dict[str, str]:
    import sklearn  # type: ignore[import-untyped]

    return {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _headline(title: str, figures: dict[str, Any]) -> str:
    return (
        f"{title}: sensitivity {_fmt(figures['sensitivity'])}"
        f" ({figures['detected_falls']}/{figures['n_falls']} falls),"
        f" specificity {_fmt(figures['specificity'])} ({figures['false_alarms']} false alarms in"
        f" {figures['n_adl']} ADL), F1 {_fmt(figures['f1'])}, {figures['false_alarms_per_adl_hour']}"
        " false alarms per ADL hour (optimistic bound)"
    )


def _activity_table(figures: dict[str, Any]) -> Table:
    table = Table("activity", "trials", "fired", "rate")
    for activity, row in figures["by_activity"].items():
        name = f"{activity} (fall)" if row["is_fall"] else activity
        table.add_row(name, str(row["trials"]), str(row["fired"]), f"{row['rate']:.2f}")
    return table


@falls_app.command("evaluate")
def evaluate(
    data: DataDir,
    as_json: AsJson = False,
    model_path: Annotated[
        Path | None, typer.Option("--model", help="A .npz model file (default: the shipped one).")
    ] = None,
) -> None:
    """Score every wrist trial of DATA with the shipped model (no retraining); a trial is a detected fall
    when the model fires at least once in it."""
    try:
        model = FallModel.load(model_path)
    except (OSError, ValueError, KeyError) as exc:  # a missing, foreign or tampered model file
        typer.echo(f"error: cannot load the model {model_path}: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    dataset = _load(data)
    outcomes = []
    with _progress("trials", len(dataset.trials)) as step:
        for trial in dataset.trials:
            gyro = trial.gyro_dps
            verdict = score_recording(
                model,
                trial.accel_g.t_s,
                trial.accel_g.xyz,
                gyro.t_s if gyro else None,
                gyro.xyz if gyro else None,
            )
            outcomes.append(
                Outcome(trial.trial_id, trial.subject, trial.is_fall, trial.activity, trial.duration_s,
                        round(verdict.probability, 4), verdict.is_fall)
            )  # fmt: skip
            step()
    result = {
        "thresholds": {name: scorer.threshold for name, scorer in model.scorers().items()},
        **report(outcomes),
        "baseline": training.baseline(dataset.trials),
        "skipped_trials": list(dataset.skipped),
        "trials": [
            {"trial_id": o.trial_id, "score": o.score, "fired": o.fired, "is_fall": o.is_fall}
            for o in outcomes
        ],
    }
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console = Console()
    console.print(_headline(f"{len(outcomes)} trials", result))
    console.print(_headline(f"baseline ({result['baseline']['rule']})", result["baseline"]))
    console.print(_activity_table(result))


@falls_app.command("train")
def train(
    data: DataDir,
    out: Annotated[Path, typer.Option("--out", help="Where to write the model (.npz; .json beside it).")],
    loso_report: Annotated[
        Path | None,
        typer.Option("--loso-report", help="Also run the LOSO study of this model; write it here."),
    ] = None,
) -> None:
    """Train the model (both variants: with and without gyroscope) on every trial of DATA; deterministic,
    so this reproduces the shipped model."""
    windows = _windows(_load(data))
    with _progress("fits", training.fits_per_training(windows)) as step:
        model = training.train_final(windows, progress=step, versions=versions())
    model.save(out.with_suffix(".npz"))
    thresholds = ", ".join(f"{name} {s.threshold:.4f}" for name, s in model.scorers().items())
    typer.echo(f"wrote {out.with_suffix('.npz')} (thresholds: {thresholds})")
    if loso_report is not None:
        studies = {}
        for variant, names in training.VARIANTS.items():
            with _progress(f"LOSO {variant}", training.fits_per_loso(windows)) as step:
                studies[variant] = training.loso(windows, training.SHIPPED_MODEL, names, progress=step)
            typer.echo(_headline(f"LOSO {training.SHIPPED_MODEL}, {variant} variant", studies[variant]))
        report_doc = {"variants": studies, "baseline": training.baseline(windows), "versions": versions()}
        loso_report.write_text(json.dumps(report_doc, indent=2) + "\n")


@falls_app.command("loso")
def loso(
    data: DataDir,
    as_json: AsJson = False,
    models: Annotated[
        str,
        typer.Option(
            help=f"Comma-separated candidates among: {', '.join(training.MODELS)}, each optionally"
            f" with '{training.NETWORK_SUFFIX}' (averaged with the sequence network)."
        ),
    ] = ",".join([*training.MODELS, training.SHIPPED_MODEL]),
    gyro: Annotated[
        bool, typer.Option(help="Use the gyroscope features too (the shipped model's gyro variant).")
    ] = False,
) -> None:
    """Leave-one-subject-out study of each candidate model (nested thresholds), plus the 3 g baseline."""
    names = [m.strip() for m in models.split(",") if m.strip()]
    unknown = [m for m in names if not training.known_model(m)]
    if unknown or not names:
        typer.echo(f"error: unknown models {unknown}; known: {', '.join(training.MODELS)}", err=True)
        raise typer.Exit(code=1)
    features = (*ACCEL_FEATURES, *GYRO_FEATURES) if gyro else ACCEL_FEATURES
    windows = _windows(_load(data))
    studies = {}
    for name in names:
        with _progress(f"LOSO {name}", training.fits_per_loso(windows)) as step:
            studies[name] = training.loso(windows, name, features, progress=step)
    result = {"models": studies, "baseline": training.baseline(windows), "versions": versions()}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console = Console()
    for name, study in studies.items():
        console.print(_headline(f"LOSO {name}", study))
    console.print(_headline(f"baseline ({result['baseline']['rule']})", result["baseline"]))
    first = studies[names[0]]
    columns = ("held-out subject", "falls", "ADL", "threshold", "sensitivity", "specificity", "false alarms")
    folds = Table(*columns, title=f"{names[0]}, per fold")
    for f in first["folds"]:
        cells = (f["subject"], f["n_falls"], f["n_adl"], f"{f['threshold']:.3f}", _fmt(f["sensitivity"]),
                 _fmt(f["specificity"]), f["false_alarms"])  # fmt: skip
        folds.add_row(*map(str, cells))
    console.print(folds)
    console.print(_activity_table(first))
