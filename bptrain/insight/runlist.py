"""Which folders hold runs, what kind (a run, a cross-validation, a tune), and one summary row each.

A folder that bptrain did not write is left out of a listing; given where a run is needed, it is
an error that says what the folder is and what to give instead.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from bptrain.errors import ConfigError, ModelFileError
from bptrain.metrics import CLASSIFICATION, MULTILABEL, REGRESSION, higher_is_better
from bptrain.nn.options import did_you_mean
from bptrain.runs import folder as runs
from bptrain.runs.report import read_json

RUN, CV, TUNE, OTHER = "run", "cv", "tune", "other"
COLUMNS = ("name", "kind", "date", "task", "stop_reason", "epochs", "metric", "val", "test")
SORTABLE = ("name", "date", "task", "stop_reason", "epochs", "val", "test")
SPLITS = ("train", "val", "test")
METRICS = tuple(f"{split}_{name}" for split in SPLITS for name in dict.fromkeys(("loss",) + CLASSIFICATION + MULTILABEL + REGRESSION))


def main_metric(task: str | None) -> str:
    """The metric a run is summed up by: r2 for regression, accuracy otherwise (as in curves.svg)."""
    return "r2" if task == "regression" else "accuracy"


def kind_of(folder: Path) -> str | None:
    """run, cv or tune; other for a folder bptrain wrote but this version does not know; None for
    a folder that bptrain did not write."""
    folder = Path(folder)
    if runs.is_cv_folder(folder):  # cv.yaml alone: not finished yet
        return CV
    report = read_json(folder / "report.json")
    if report is not None and "tune" in report:
        return TUNE
    if (folder / runs.MODEL_FILE).is_file() and (folder / "config.yaml").is_file():
        return RUN
    if report is not None or (folder / "config.yaml").is_file():
        return OTHER
    return None


def require_run(run: Path, label: str | None = None) -> Path:
    """The run folder RUN names (`latest` resolved; a model file's folder), checked to be one that fit wrote."""
    given = Path(run)
    run = runs.resolve_run(given)
    if run.is_file() and run.name == runs.MODEL_FILE:
        run = run.parent
    label = label or str(given)
    if not run.exists():
        raise runs.missing_run(run, label)
    kind = kind_of(run) if run.is_dir() else None
    if kind == RUN:
        return run
    if kind == CV or (kind is None and runs.holds_folds(run)):  # a tune --folds trial's folder has no cv files
        raise runs.cv_folder_given(label, run)
    if kind == TUNE:
        raise runs.tune_folder_given(label)
    raise ModelFileError(f"{label}: not a run folder written by bptrain fit (it needs {runs.MODEL_FILE} and config.yaml)")


def date_of(folder: Path) -> str:
    """When the run started, from the stamp in its name; else (a fold's or a trial's run) from its
    lock file, which fit creates first and never rewrites; else the folder's modification time,
    which plot and explain move by adding figures/."""
    match = runs._STAMP.search(folder.name)
    if match:
        stamp = time.strptime(match.group(1), "%Y%m%d-%H%M%S")
    else:
        lock = folder / runs.LOCK_FILE
        stamp = time.localtime((lock if lock.is_file() else folder).stat().st_mtime)
    return time.strftime("%Y-%m-%d %H:%M:%S", stamp)


def summary(folder: Path, kind: str) -> dict[str, Any]:
    """One listing row: name, kind, date, task, stop reason, epochs, the main metric on val and test."""
    row: dict[str, Any] = {c: None for c in COLUMNS}
    row.update(name=folder.name, kind=kind, date=date_of(folder), path=str(folder), metrics={})
    if kind == RUN:
        report = read_json(folder / "report.json") or {}
        row.update(task=report.get("task"), stop_reason=report.get("stop_reason"), epochs=report.get("epochs_run"))
        row["metrics"] = _metrics({s: (report.get("metrics") or {}).get(s) for s in SPLITS})
    elif kind == CV:  # the mean over the folds
        cv = read_json(folder / runs.CV_SUMMARY)
        if cv is None:  # stopped before every fold had finished: bptrain fit --resume FOLDER finishes it
            cv = {}
            row.update(stop_reason="unfinished")
        else:
            row.update(task=cv.get("task"), stop_reason=f"{cv.get('folds')} folds")
        row["metrics"] = _metrics({s: (cv.get(s) or {}).get("mean") for s in SPLITS if isinstance(cv.get(s), dict)})
    elif kind == TUNE:  # its best trial's metrics: validation from the trial's report, test scored after the search
        report = read_json(folder / "report.json") or {}
        best = report.get("best") if isinstance(report.get("best"), dict) else {}
        trial = _best_trial(folder, best, report.get("folds"))
        counts = report.get("trials")
        row.update(task=trial.get("task", report.get("task")), stop_reason=f"{sum(counts.values())} trials" if isinstance(counts, dict) else None)
        row["metrics"] = _metrics({"val": (trial.get("metrics") or {}).get("val"), "test": best.get("test")})
    if row["task"] is not None:
        metric = row["metric"] = main_metric(row["task"])
        row.update({split: row["metrics"].get(f"{split}_{metric}") for split in ("val", "test")})
    return row


def _best_trial(folder: Path, best: dict[str, Any], folds: Any) -> dict[str, Any]:
    """The best trial's task and validation metrics: its run's report.json or, for a tune with
    --folds, the mean over its folds' runs (the mean the trial was scored by)."""
    if not isinstance(best.get("run"), str):
        return {}
    run = folder / best["run"]
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 1:
        return read_json(run / "report.json") or {}
    reports = [read_json(run / f"fold-{i}" / "report.json") or {} for i in range(1, folds + 1)]
    per_fold = [(r.get("metrics") or {}).get("val") for r in reports]
    trial: dict[str, Any] = {"task": reports[0].get("task")} if "task" in reports[0] else {}
    if all(isinstance(values, dict) for values in per_fold):
        keys = [k for k in per_fold[0] if all(_number(values.get(k)) is not None for values in per_fold)]
        trial["metrics"] = {"val": {k: sum(values[k] for values in per_fold) / len(per_fold) for k in keys}}
    return trial


def _metrics(by_split: dict[str, Any]) -> dict[str, float | None]:
    """{"val_accuracy": 0.93, ...}: each split's metrics under one flat name, as metrics.csv names them."""
    out = {}
    for split, values in by_split.items():
        if isinstance(values, dict):
            out.update({f"{split}_{k}": _number(v) for k, v in values.items()})
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def list_runs(runs_dir: Path, sort: str | None = None, *, missing_is_empty: bool = False) -> list[dict[str, Any]]:
    """A summary row per folder under `runs_dir` that bptrain wrote, oldest first or by `sort`;
    `missing_is_empty`: no rows when `runs_dir` does not exist (the default folder, before any fit)."""
    runs_dir = Path(runs_dir)
    missing = missing_is_empty and not runs_dir.exists()
    if not missing:
        _check_runs_dir(runs_dir)
    if sort is not None and sort not in SORTABLE + METRICS:
        raise ConfigError(
            f"--sort {sort}: unknown column or metric; choose a column ({', '.join(SORTABLE)}) or a split's metric "
            f"(val_accuracy, test_loss, val_r2, ...).{did_you_mean(sort, SORTABLE + METRICS)}"
        )
    rows = []
    for folder in [] if missing else sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        kind = kind_of(folder)
        if kind is not None:
            rows.append(summary(folder, kind))
    rows.sort(key=lambda r: r["date"])
    if sort is not None:
        rows = _sorted(rows, sort)
    return rows


def _check_runs_dir(runs_dir: Path) -> None:
    """ConfigError unless `runs_dir` is a folder that holds run folders."""
    if not runs_dir.is_dir():
        what = "is a file, not a folder" if runs_dir.exists() else "no such folder"
        raise ConfigError(f"{runs_dir}: {what}; give the folder that holds the run folders (default: runs)")
    if kind_of(runs_dir) == RUN:
        raise ConfigError(f"{runs_dir}: a run folder itself, not a folder of runs; list the runs beside it with: bptrain runs {runs_dir.parent}")
    if kind_of(runs_dir) == TUNE:
        raise ConfigError(f"{runs_dir}: a tune folder; {_trials_hint(runs_dir)}")


def _trials_hint(tune_dir: Path) -> str:
    """Where a tune folder's runs are listed: trials/, or with --folds (each trial a folder of
    fold runs) the best trial's folder."""
    report = read_json(tune_dir / "report.json") or {}
    best = report.get("best") if isinstance(report.get("best"), dict) else {}
    if report.get("folds") and isinstance(best.get("run"), str):
        return f"its trials ran {report['folds']} folds each; list the best trial's with: bptrain runs {tune_dir / best['run']}"
    return f"list its trials' runs with: bptrain runs {tune_dir / 'trials'}"


def _sorted(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows by `key`: metrics best first (highest accuracy or r2, lowest loss or error), other
    columns ascending; rows without a value last."""
    def value(row):
        return row[key] if key in SORTABLE else row["metrics"].get(key)

    def order(row):
        if key in ("val", "test") or key in METRICS:
            metric = row["metric"] if key in ("val", "test") else key
            return -value(row) if higher_is_better(metric) else value(row)
        return value(row)

    present = [r for r in rows if value(r) is not None]
    return sorted(present, key=order) + [r for r in rows if value(r) is None]
