"""One trial: an ordinary run (trials/NNNN/, or one run per fold inside it) that reports its
validation metric to the study after every epoch (or fold) and stops as `pruned` when the pruner says so.

run_trial() is what a worker runs, in a local process or on a Dask worker: it takes a plain dict
(the resolved config with absolute data paths, and where the study is) and returns a plain dict.
The study lives in the tune folder's journal file, which the driver and every worker open; the
driver alone asks for trials and records how they ended, the workers only report per-epoch values.
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from bptrain.training.callbacks import Callback, Stop

JOURNAL = "study.journal"
STUDY = "tune"
STOP_FILE = "stop"  # the driver creates it to ask the running trials to end after their epoch


def storage(tune_dir: Path):
    """The study's storage: Optuna's journal file in the tune folder, written with a lock and fsync."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(Path(tune_dir) / JOURNAL)))


def pruner(name: str, max_resource: int, folds: int | None):
    """The pruner of `name`: median (after 5 trials; past the first tenth of the epochs, at least 5,
    so that a slow start is not taken for a bad trial; or from the 1st fold), hyperband, none."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0 if folds else max(5, max_resource // 10))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_resource)
    return optuna.pruners.NopPruner()


def start_worker() -> None:
    """A local worker's start: the modules every trial uses are imported once, here. Ctrl-C on a
    terminal reaches every process of the group; the driver alone decides, and asks the trials to
    stop through the stop file. A worker whose driver is gone (SIGKILL) ends within a second."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    driver = os.getppid()

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="driver-watch", daemon=True).start()
    import optuna  # noqa: F401

    import bptrain.app  # noqa: F401

    gc.freeze()  # the modules' objects live as long as the worker: no collection searches them again, nor its shutdown


class Reporter(Callback):
    """Reports the watched metric after each epoch (`per_epoch`), and stops the run as `pruned`
    when the pruner says so, or as `interrupted` once the driver's stop file exists."""

    def __init__(self, trial, metric: str, stop_file: Path, per_epoch: bool):
        self.trial, self.metric, self.stop_file, self.per_epoch = trial, metric, stop_file, per_epoch

    def on_epoch_end(self, trainer, row: dict) -> None:
        value = row.get(self.metric)
        if self.per_epoch and value is not None and math.isfinite(value):
            self.trial.report(float(value), row["epoch"])

    def should_stop(self, trainer, row: dict) -> Stop | None:
        if self.stop_file.exists():
            return Stop("interrupted")
        if self.per_epoch and self.trial.should_prune():
            return Stop("pruned")
        return None


def run_trial(job: dict[str, Any]) -> dict[str, Any]:
    """Run trial `job["number"]` and return how it ended: state (complete, pruned, failed,
    interrupted), value, message, the fit's seconds and the trial's own."""
    start = time.perf_counter()
    tune_dir = Path(job["tune_dir"])
    folder = tune_dir / "trials" / f"{job['number']:04d}"
    out: dict[str, Any] = {"number": job["number"], "run": str(folder.relative_to(tune_dir)), "value": None, "message": "", "exit_code": 0}
    try:
        out.update(_run(job, tune_dir, folder))
    except BaseException as e:  # every way a trial ends is a result for the driver
        from bptrain.errors import BptrainError, RunInterrupted

        if isinstance(e, RunInterrupted):
            out.update(state="interrupted", message="stopped with the study")
        elif isinstance(e, BptrainError):
            out.update(state="failed", message=str(e), exit_code=int(e.exit_code))
        elif isinstance(e, Exception):
            out.update(state="failed", message=f"internal error: {type(e).__name__}: {e}", exit_code=1)
        else:
            raise
    out["seconds"] = time.perf_counter() - start
    return out


def _run(job: dict[str, Any], tune_dir: Path, folder: Path) -> dict[str, Any]:
    import optuna

    from bptrain import app
    from bptrain.config.loading import validate_config
    from bptrain.crossval import _fold

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if folder.exists():  # a worker lost in the middle of this trial left a partial run
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    study = optuna.load_study(study_name=STUDY, storage=storage(tune_dir), pruner=pruner(job["pruner"], job["max_resource"], job["folds"]))
    trial = optuna.trial.Trial(study, job["trial_id"])
    config = validate_config(job["config"], folder / "config.yaml")
    metric, key = job["metric"], job["metric"].removeprefix("val_")
    stop_file = tune_dir / STOP_FILE
    if not job["folds"]:
        per_epoch = job["pruner"] != "none"  # a report is a locked, synced write: only for a pruner to read
        report = app.fit(config, folder=folder, callbacks=[Reporter(trial, metric, stop_file, per_epoch)], score_test=False).report
        return {"state": "pruned" if report["stop_reason"] == "pruned" else "complete", "value": _value(report, key, metric), "fit_seconds": report["seconds"]}
    values, seconds = [], 0.0
    for fold in range(1, job["folds"] + 1):
        run = folder / f"fold-{fold}"
        run.mkdir()
        report = app.fit(_fold(config, fold), folder=run, callbacks=[Reporter(trial, metric, stop_file, False)], score_test=False).report
        values.append(_value(report, key, metric))
        seconds += report["seconds"]
        mean = sum(values) / len(values)
        if math.isfinite(mean):
            trial.report(mean, fold)
        if fold < job["folds"] and trial.should_prune():
            return {"state": "pruned", "value": mean, "fit_seconds": seconds, "message": f"pruned after fold {fold} of {job['folds']}"}
    return {"state": "complete", "value": sum(values) / len(values), "fit_seconds": seconds}


def _value(report: dict, key: str, metric: str) -> float:
    from bptrain.errors import ConfigError

    values = report["metrics"].get("val") or {}
    if values.get(key) is None:
        raise ConfigError(f"{metric}: not among this run's validation metrics ({', '.join('val_' + k for k in values) or 'none'})")
    return float(values[key])


def absolute_paths(raw: dict) -> dict:
    """A resolved config dict whose data paths hold everywhere: absolute."""
    data = dict(raw["data"])
    for key in ("train", "val", "test"):
        if data.get(key) is not None and data[key] != "-":
            data[key] = os.path.abspath(data[key])
    return {**raw, "data": data}
