"""k-fold cross-validation: K ordinary runs in one folder, and the mean and spread of their metrics.

Fold i of `data.split.folds` validates run i (its config.yaml says `data.split.fold: i`); the test
rows are the same for every fold. `cv.json` beside the runs holds every fold's validation and test
metrics, their mean and their sample standard deviation. Nothing here prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import bptrain
from bptrain import app, events
from bptrain.config.schema import Config
from bptrain.runs import folder as runs
from bptrain.runs import report
from bptrain.training.loop import StopRequest


@dataclass
class CrossValidation:
    run_dir: Path
    summary: dict[str, Any]


def cross_validate(
    config: Config,
    *,
    runs_dir: Path = Path("runs"),
    name: str | None = None,
    stop_request: StopRequest | None = None,
    on_event: events.Events = events.quiet,
) -> CrossValidation:
    """k-fold cross-validation (k = data.split.folds): one run folder `fold-<i>` per fold inside one
    folder, each an ordinary run whose config.yaml names its fold; `cv.json` holds every fold's
    validation (and test) metrics with their mean and sample standard deviation."""
    folds = config.data.split.folds
    if name is not None:
        runs.check_name(name)
    seed = config.seed if config.seed is not None else app.draw_seed()
    config = config.model_copy(update={"seed": seed})
    app.check(_fold(config, 1))  # every problem of the config or data, before any folder exists
    parent = runs.new_run_dir(runs_dir, name or config.name)
    reports = []
    for fold in range(1, folds + 1):
        folder = parent / f"fold-{fold}"
        folder.mkdir()
        on_event(events.Fold(fold, folds))
        reports.append(app.fit(_fold(config, fold), folder=folder, stop_request=stop_request, on_event=on_event).report)
    summary = {
        "bptrain_version": bptrain.__version__,
        "run": parent.name,
        "run_dir": str(parent),
        "folds": folds,
        "seed": seed,
        "task": reports[0]["task"],
        "runs": [f"fold-{i}" for i in range(1, folds + 1)],
    }
    for split in ("val", "test"):
        per_fold = [r["metrics"].get(split) for r in reports]
        summary[split] = None if any(m is None for m in per_fold) else _spread(per_fold)
    report.write_json(parent / "cv.json", summary)
    return CrossValidation(parent, summary)


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
