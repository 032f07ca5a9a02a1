"""k-fold cross-validation: K ordinary runs in one folder, and the mean and spread of their metrics.

Fold i of `data.split.folds` validates run i (its config.yaml says `data.split.fold: i`); the test
rows are the same for every fold. `cv.json` beside the runs holds every fold's validation and test
metrics, their mean and their sample standard deviation. Nothing here prints.

`cv.yaml`, written before the first fold starts, holds the cross-validation's resolved config (its
seed and folds; data paths relative to the folder): `bptrain fit --resume FOLDER` reads it to
continue the fold that was stopped from its checkpoint, train the folds not yet started and write
cv.json, as an uninterrupted cross-validation would have. A resume with a new stopping.max_epochs
before every fold has started trains them all to the old budget first (the schedule a fold begins
with is fixed by the budget it begins with).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import bptrain
from bptrain import app, events, fileio
from bptrain.config.schema import Config
from bptrain.errors import ExitCode, RunInterrupted
from bptrain.runs import folder as runs
from bptrain.runs import report, resuming
from bptrain.runs.checkpoint import LAST, PREVIOUS
from bptrain.training.loop import StopRequest

PLAN, SUMMARY = runs.CV_PLAN, runs.CV_SUMMARY
is_cv_folder = runs.is_cv_folder  # where fit asks it, with crossval imported


def parent_of_fold(run_dir: Path) -> Path | None:
    """The cross-validation folder that the run folder `run_dir` is a fold of, or None."""
    parent = Path(run_dir).parent
    return parent if Path(run_dir).name.startswith("fold-") and (parent / PLAN).is_file() else None


def say_how_to_finish(run_dir: Path, on_event: events.Events) -> None:
    """After `fit --resume` of one fold: a notice naming the command that finishes its cross-validation,
    when its cv.json is not written yet."""
    parent = parent_of_fold(run_dir)
    if parent is not None and not (parent / SUMMARY).is_file():
        on_event(events.Notice(
            f"{run_dir} is one fold of the cross-validation {parent}; "
            f"to train the folds left and write its cv.json: bptrain fit --resume {parent}"
        ))


@dataclass
class CrossValidation:
    run_dir: Path
    summary: dict[str, Any]


def cross_validate(
    config: Config,
    *,
    runs_dir: Path = Path("runs"),
    name: str | None = None,
    resume: Path | None = None,
    stop_request: StopRequest | None = None,
    on_event: events.Events = events.quiet,
) -> CrossValidation:
    """k-fold cross-validation (k = data.split.folds): one run folder `fold-<i>` per fold inside one
    folder, each an ordinary run whose config.yaml names its fold; `cv.json` holds every fold's
    validation (and test) metrics with their mean and sample standard deviation.

    With `resume` (a cross-validation folder), `config` is checked against its cv.yaml as a run's
    against its checkpoint (only the budget may change); the fold that was stopped continues from its
    checkpoint, a fold without one starts again, and the folds not yet started are trained."""
    if name is not None:
        runs.check_name(name)
    with runs.RunLock() as lock:  # one process at a time runs a cross-validation folder
        if resume is not None:
            parent = Path(resume)
            lock.acquire(parent)
            config = resuming.merge(config, parent, recorded_file=PLAN)
            first = _first_to_the_budget_begun(config, parent, on_event)
        else:
            seed = config.seed if config.seed is not None else app.draw_seed()
            config = config.model_copy(update={"seed": seed})
            app.check(_fold(config, 1))  # every problem of the config or data, before any folder exists
            parent = runs.new_run_dir(runs_dir, name or config.name)
            lock.acquire(parent)
            first = None
        if stop_request is not None:
            stop_request.run_dir = parent
        try:
            if first is not None:
                _run_folds(first, parent, stop_request, on_event)
            reports = _run_folds(config, parent, stop_request, on_event)
        except RunInterrupted as e:  # continue the cross-validation, not only the fold it was in
            raise RunInterrupted("interrupted" if e.exit_code == ExitCode.SIGINT else "terminated", parent) from None
        except KeyboardInterrupt:  # a second Ctrl-C: the message names the folder to resume
            if stop_request is not None:
                stop_request.run_dir = parent
            raise
        summary = _summary(config, parent, reports)
        report.write_json(parent / SUMMARY, summary)
    return CrossValidation(parent, summary)


def _first_to_the_budget_begun(config: Config, parent: Path, on_event: events.Events) -> Config | None:
    """The config that first trains every fold, when the resume changes stopping.max_epochs while
    some folds have started and others have not; else None.

    A fold that started keeps the schedule it began with (its total is fixed in its config.yaml)
    and already holds that many epochs' worth of training; a fold starting now would take the new
    budget as its schedule's length. So every fold is first trained to the budget in cv.yaml, then
    all are resumed with the new one: the cross-validation ends as one that finished, then was
    resumed, ends. cv.yaml keeps the old budget until every fold has started."""
    from bptrain.config.loading import load_config  # where used: the YAML reader

    begun = load_config(parent / PLAN).stopping.max_epochs
    wanted = config.stopping.max_epochs
    started = [_started(parent / f"fold-{fold}") for fold in range(1, config.data.split.folds + 1)]
    if begun == wanted or all(started) or not any(started):
        return None
    waiting = started.index(False) + 1
    on_event(events.Notice(
        f"fold {waiting} of {parent} has not started: every fold is first trained to {begun} epochs, the budget the "
        f"cross-validation began with, then resumed with stopping.max_epochs={wanted}, as a finished cross-validation would be"
    ))
    return config.model_copy(update={"stopping": config.stopping.model_copy(update={"max_epochs": begun})})


def _run_folds(config: Config, parent: Path, stop_request: StopRequest | None, on_event: events.Events) -> list[dict[str, Any]]:
    """Every fold's report, with cv.yaml holding `config` meanwhile."""
    _write_plan(config, parent)
    return [_run_fold(config, parent, fold, stop_request, on_event) for fold in range(1, config.data.split.folds + 1)]


def _write_plan(config: Config, parent: Path) -> None:
    from bptrain.config.loading import dump_yaml, resolved_dict

    fileio.atomic_write_text(parent / PLAN, dump_yaml(resolved_dict(config, parent)))


def _started(folder: Path) -> bool:
    """Whether the fold in `folder` has a checkpoint to continue from (without one, it starts again)."""
    return any((folder / "checkpoints" / name).is_file() for name in (LAST, PREVIOUS))


def _run_fold(config: Config, parent: Path, fold: int, stop_request: StopRequest | None, on_event: events.Events) -> dict[str, Any]:
    """The report of fold `fold`: trained, continued from its checkpoint, or (already finished) as it is."""
    folder = parent / f"fold-{fold}"
    on_event(events.Fold(fold, config.data.split.folds))
    if _started(folder):
        # a fold that already finished is taken as it is, without fit's notice about training it longer
        quiet_notices = lambda event: None if isinstance(event, events.Notice) else on_event(event)  # noqa: E731
        return app.fit(_fold(config, fold), resume=folder, stop_request=stop_request, on_event=quiet_notices).report
    if folder.exists():  # stopped before its first checkpoint: nothing of its training is kept, so it starts again
        with fileio.writing(folder, "remove"):
            shutil.rmtree(folder)
    folder.mkdir()
    return app.fit(_fold(config, fold), folder=folder, stop_request=stop_request, on_event=on_event).report


def _summary(config: Config, parent: Path, reports: list[dict[str, Any]]) -> dict[str, Any]:
    folds = config.data.split.folds
    summary = {
        "bptrain_version": bptrain.__version__,
        "run": parent.name,
        "run_dir": str(parent),
        "folds": folds,
        "seed": config.seed,
        "task": reports[0]["task"],
        "runs": [f"fold-{i}" for i in range(1, folds + 1)],
    }
    for split in ("val", "test"):
        per_fold = [r["metrics"].get(split) for r in reports]
        summary[split] = None if any(m is None for m in per_fold) else _spread(per_fold)
    return summary


def _fold(config: Config, fold: int) -> Config:
    """`config` with data.split.fold set to `fold`."""
    split = config.data.split.model_copy(update={"fold": fold})
    return config.model_copy(update={"data": config.data.model_copy(update={"split": split})})


def _spread(per_fold: list[dict[str, float]]) -> dict[str, Any]:
    """Each metric's per-fold values, mean and sample standard deviation (0 for a single fold)."""
    names = list(per_fold[0])
    values = {k: np.array([m[k] if m[k] is not None else math.nan for m in per_fold], dtype=np.float64) for k in names}
    return {
        "folds": per_fold,
        "mean": {k: float(v.mean()) for k, v in values.items()},
        "std": {k: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for k, v in values.items()},
    }
