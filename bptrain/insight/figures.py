"""`bptrain plot`: which of a run's figures apply, the data each needs, and the PNG files written.

Figures of predictions use the run's test rows (its validation rows when it has no test split),
split again from its config.yaml and seed as `evaluate` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bptrain import app
from bptrain import threads as blas
from bptrain.errors import ConfigError
from bptrain.events import Events, quiet
from bptrain.inference import outputs, probabilities, unscale
from bptrain.insight import plots
from bptrain.insight.runlist import main_metric, require_run
from bptrain.metrics import confusion_matrix
from bptrain.runs.report import read_json

FIGURES_DIR = "figures"


@dataclass
class Drawn:
    run_dir: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (figure, why it was not drawn)


@dataclass
class HeldOut:
    """A trained run's predictions on its test rows (or validation rows)."""

    trained: app.Trained
    split: str
    out: np.ndarray  # the model's outputs: probabilities or standardized values
    frame: Any  # the rows, as read
    labels: np.ndarray | None  # class indices (classification)


def held_out(run: Path | app.Trained, on_event: Events = quiet) -> HeldOut | None:
    """The model's outputs on the run's test rows, else its validation rows; None when it has neither."""
    trained = run if isinstance(run, app.Trained) else app.load_trained(run)
    dataset = app.held_out(trained, on_event)
    split = dataset.test or dataset.val
    if split is None:
        return None
    with blas.limited(app.inference_threads(trained).count):
        with np.errstate(all="ignore"):
            out = outputs(trained.model, trained.loss, split.x)
    return HeldOut(trained, split.name, out, split.frame, split.labels)


def plot(run: Path, what: list[str] | None = None, out_dir: Path | None = None, *, log: bool = False, on_event: Events = quiet) -> Drawn:
    """Draw the figures `what` names (None: every one that applies) of RUN into `out_dir` (default RUN/figures).
    A figure named in `what` that cannot be drawn for this run is a ConfigError saying why."""
    run_dir = require_run(run)
    report = read_json(run_dir / "report.json") or {}  # absent when the run was killed: the model says what it is
    trained = app.load_trained(run_dir)
    task, classes = trained.prep.task, trained.prep.classes
    has_diagnostics = plots.diagnostics_state(run_dir)
    rows = plots.epoch_rows(run_dir) if "curves" in (what or plots.FIGURES) else []
    names = what if what is not None else list(plots.FIGURES)
    drawn = Drawn(run_dir)
    drawable = []
    for name in names:  # whether the run has rows to predict is known once they are split again, below
        why = plots.not_applicable(name, task, classes, True, has_diagnostics, len(rows))
        if why is None:
            drawable.append(name)
        else:
            _skip(drawn, name, why, run, what, task)
    target = figures_folder(run_dir, out_dir)
    predictions = held_out(trained, on_event) if set(drawable) & set(plots.NEEDS_PREDICTIONS) else None
    for name in drawable:
        if name in plots.NEEDS_PREDICTIONS and predictions is None:
            _skip(drawn, name, plots.not_applicable(name, task, classes, False, has_diagnostics, len(rows)), run, what, task)
            continue
        figure = _figure(name, run_dir, report, task, rows, predictions, log)
        drawn.written.append(plots.save(figure, target / f"{name}.png"))
    return drawn


def _skip(drawn: Drawn, name: str, why: str, run: Path, what: list[str] | None, task: str) -> None:
    """A figure that cannot be drawn: an error when --what names it, else noted with why."""
    if what is not None:
        raise ConfigError(f"--what {name}: cannot draw it for {run}: {why}")
    if name not in plots.NEEDS_PREDICTIONS or name in plots.TASK_FIGURES.get(task, ()):
        drawn.skipped.append((name, why))  # worth saying; another task's figures go without saying


def figures_folder(run_dir: Path, out_dir: Path | None) -> Path:
    """`out_dir`, or RUN/figures, created when missing."""
    plots.not_stdout(out_dir)
    return plots.output_folder(Path(out_dir) if out_dir is not None else run_dir / FIGURES_DIR)


def _figure(name: str, run_dir: Path, report: dict, task: str, rows: list[dict], predictions: HeldOut | None, log: bool):
    title = run_dir.name
    if name == "curves":
        return plots.curves(rows, report.get("best_epoch"), report.get("stop_reason"), main_metric(task), log=log, title=title)
    if name == "gradients":
        return plots.gradients(plots.diagnostics(run_dir), title=title)
    prep, split = predictions.trained.prep, predictions.split
    if name == "confusion":
        proba = probabilities(predictions.out)
        cm = confusion_matrix(predictions.labels, proba.argmax(axis=1), len(prep.classes))
        return plots.confusion(cm, prep.classes, split)
    if name in ("roc", "pr"):
        score = probabilities(predictions.out)[:, 1].astype(np.float64)
        draw = plots.roc if name == "roc" else plots.pr
        return draw(predictions.labels == 1, score, prep.classes[1], split)
    actual, pred = prep.target_values(predictions.frame), unscale(prep, predictions.out)
    draw = plots.predicted if name == "predicted" else plots.residuals
    return draw(actual, pred, prep.targets, split)


def as_dict(drawn: Drawn) -> dict[str, Any]:
    """What --json prints: the run, the files written, and the figures skipped with why."""
    return {"run": str(drawn.run_dir), "written": [str(p) for p in drawn.written], "skipped": [{"figure": n, "why": w} for n, w in drawn.skipped]}
