"""Services behind the commands: fit, evaluate, predict, check. Nothing here prints.

Each service takes validated inputs, does one job, and reports progress through `on_event(event)`,
a callback the CLI supplies, with the typed events of bptrain.events. Errors are raised as bptrain.errors types.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

import bptrain
from bptrain import events, fileio, predictions
from bptrain import threads as blas
from bptrain.data import plaincsv, reading, splits
from bptrain.data.columns import OTHER, STRICT_HINT, STRICT_SETTING, Unseen, reuse_freed_memory
from bptrain.data.preprocess import Preprocessor
from bptrain.errors import ConfigError, DataError, DivergedError, ModelFileError, RunInterrupted, StorageError
from bptrain.events import Events
from bptrain.inference import INFERENCE_ROWS, outputs, probabilities, score
from bptrain.nn.options import did_you_mean
from bptrain.runs import checkpoint, modelfile, report, resuming, tracking
from bptrain.runs import folder as runs
from bptrain.training import assembly, memory
from bptrain.training.callbacks import Callback, Checkpointing, ProgressEvents
from bptrain.training.diagnostics import COLUMNS as DIAGNOSTICS_COLUMNS
from bptrain.training.diagnostics import Diagnostics
from bptrain.training.loop import Outcome, StopRequest, Trainer, lone_row_warning

if TYPE_CHECKING:  # the config schema is built where a config is read: predict needs none
    from bptrain.config.schema import Config

_quiet = events.quiet


# --- the run's environment ---------------------------------------------------------------------


def draw_seed() -> int:
    return int(np.random.SeedSequence().entropy % (2**63))


def environment() -> dict[str, Any]:
    """Versions and the BLAS set-up that results depend on."""
    import pandas

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "bptrain": bptrain.__version__,
        "platform": platform.platform(),
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # numpy's build information is best effort
        info["blas"] = "unknown"
    info["blas_threads"] = _blas_threads()
    return info


def _blas_threads() -> int | str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if os.environ.get(var):
                return os.environ[var]
        return f"default (cpus: {os.cpu_count()})"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return pools[0]["num_threads"] if pools else "unknown"


# --- fit --------------------------------------------------------------------------------------


@dataclass
class FitResult:
    run_dir: Path
    report: dict[str, Any]


def fit(
    config: Config,
    *,
    runs_dir: Path = Path("runs"),
    name: str | None = None,
    resume: Path | None = None,
    folder: Path | None = None,
    stop_request: StopRequest | None = None,
    callbacks: list[Callback] = (),  # type: ignore[assignment]
    score_test: bool = True,
    on_event: Events = _quiet,
    data_paths: str = reading.CONFIG_PATHS,
) -> FitResult:
    """Train the network `config` describes into a new run folder (or the new, empty `folder`), or
    continue the run `resume`; the run folder stays locked against other processes meanwhile.
    `callbacks` join the run's own (stopping rules, checkpointing) after them. Without `score_test`,
    the report leaves the test rows unscored (a tuning trial is chosen on validation rows alone).
    `data_paths` says what the data paths are relative to, when a file is not found.

    Returns the report of a run that ended normally; raises DivergedError or RunInterrupted after
    writing the model, the checkpoint and a partial report of one that did not. StorageError (a
    file that cannot be written) says how to continue from the last good checkpoint.
    """
    # The watch: what other processes use of the cores while the data is read (training.threads auto)
    with runs.RunLock() as lock, blas.watching() as watch:
        try:
            return _fit(config, lock, runs_dir, name, resume, folder, stop_request, list(callbacks), score_test, on_event, watch, data_paths)
        except StorageError as e:
            if lock.folder is None:
                raise
            raise StorageError(f"{e}; {resuming.continue_hint(lock.folder)}") from None


def _fit(
    config: Config,
    lock: runs.RunLock,
    runs_dir: Path,
    name: str | None,
    resume: Path | None,
    folder: Path | None,
    stop_request: StopRequest | None,
    callbacks: list[Callback],
    score_test: bool,
    on_event: Events,
    watch: blas.Watch | None,
    data_paths: str,
) -> FitResult:
    if name is not None:
        runs.check_name(name)
    if config.tracking.mlflow is not None:
        tracking.require_mlflow()
    run_dir, state = None, None
    if resume is not None:
        run_dir, config, state = _reopen(Path(resume), config, lock, on_event)
    config = config.model_copy(update={"seed": config.seed if config.seed is not None else draw_seed()})
    raw, prep, loss_name, loss_options = _data_and_loss(config, config.seed, data_paths)
    if state is not None:
        resuming.check_data(raw.files, state[1], run_dir)
    dataset, warnings = _arrays(raw, prep, loss_name, config.model.dtype, release=True)
    rows = len(dataset.train.x)
    built = assembly.assemble(config, prep, dataset.train.x.shape[1], (loss_name, loss_options), rows, dataset.val is not None)
    for message in warnings + _lone_row(config, rows):
        on_event(events.Warning(message))
    if run_dir is None:
        run_dir = folder if folder is not None else runs.new_run_dir(runs_dir, name or config.name)
        lock.acquire(run_dir)
    if stop_request is not None:
        stop_request.run_dir = run_dir
    used = _training_threads(config, built, state, watch)
    files = RunFiles(run_dir, built, prep, raw.files, used)
    watching = [Diagnostics(built.setup.model, on_event)] if config.report.diagnostics else []
    tracker = _tracker(config, files, on_event)
    watching += [tracker] if tracker is not None else []
    trainer = Trainer(built.setup, dataset.train, dataset.val, built.rules.callbacks() + watching + [files.checkpointing()] + callbacks, stop_request)
    if state is not None:  # before anything is written: a checkpoint that does not fit changes nothing
        trainer.restore(*state, columns=built.rules.columns)
        finished = resuming.finished_report(run_dir, trainer.pending_stop(), trainer.position.step)
        if finished is not None:
            on_event(events.Notice(resuming.finished_notice(run_dir, finished, config.stopping)))
            return FitResult(run_dir, {**finished, "run_dir": str(run_dir)})  # the folder as given, not as recorded
    with blas.limited(used.count):
        outcome = _train(trainer, files, built, raw, prep, dataset, resumed=state is not None, on_event=on_event)
        summary = _report(run_dir, built.rules.config, raw, prep, dataset, trainer, loss_name, outcome, used, score_test)
    if tracker is not None:
        tracker.finish(summary)
    on_event(events.Done(run_dir, summary))
    if outcome.stop_reason == "diverged":
        kept = f"; the best model so far is in {run_dir / runs.MODEL_FILE}" if (run_dir / runs.MODEL_FILE).exists() else ""
        raise DivergedError(outcome.message + kept)
    if outcome.stop_reason in ("interrupted", "terminated"):
        raise RunInterrupted(outcome.stop_reason, run_dir)
    return FitResult(run_dir, summary)


def _tracker(config: Config, files: RunFiles, on_event: Events) -> tracking.MlflowTracking | None:
    """The MLflow tracking of the run, when tracking.mlflow asks for it."""
    settings = config.tracking.mlflow
    if settings is None:
        return None
    params = tracking.flat_params(files.resolved)
    return tracking.MlflowTracking(settings, settings.experiment or config.name, params, files.run_dir, on_event)


def with_mlflow(config: Config) -> Config:
    """`config` with MLflow tracking on (fit --mlflow): tracking.mlflow as given, or its defaults."""
    if config.tracking.mlflow is not None:
        return config
    from bptrain.config.schema import MlflowConfig, TrackingConfig

    return config.model_copy(update={"tracking": TrackingConfig(mlflow=MlflowConfig())})


def _training_threads(config: Config, built: assembly.Assembly, state: checkpoint.Loaded | None, watch: blas.Watch | None) -> blas.Threads:
    """The BLAS threads of the run: those it started with when resuming (the count changes the bits)."""
    recorded = state[1].get("threads") if state is not None else None
    if recorded is not None:
        return blas.Threads(recorded["count"], recorded["chosen"])
    return blas.choose(config.training.threads, blas.largest_product(built.setup.model, built.setup.batch_size), watch)


def _reopen(run_dir: Path, config: Config, lock: runs.RunLock, on_event: Events) -> tuple[Path, Config, checkpoint.Loaded]:
    """The run folder to resume, locked; its config merged with `config`; its newest usable checkpoint."""
    if run_dir.name in ("", ".."):  # `.` or `..`: the run's name is the folder's own, which the absolute path ends in
        run_dir = Path(os.path.abspath(run_dir))
    lock.acquire(run_dir)
    state = checkpoint.load_checkpoint(run_dir / "checkpoints", warn=lambda message: on_event(events.Warning(message)))
    config = resuming.merge(config, run_dir, state[1])
    checkpoint.remove_stray_temp_files(run_dir)
    return run_dir, config, state


class RunFiles:
    """What training writes into the run folder: model.npz, checkpoints/, config.yaml and the metrics logs."""

    def __init__(self, run_dir: Path, built: assembly.Assembly, prep: Preprocessor, data_files: list[dict], threads: blas.Threads):
        from bptrain.config.loading import resolved_dict  # where used (and below): it loads the YAML reader, which predict never needs

        self.run_dir, self.built, self.data_files, self.threads = run_dir, built, data_files, threads
        self.resolved = resolved_dict(built.rules.config, run_dir)
        self.prep_arrays, prep_meta = prep.to_arrays()
        loss_name, loss_options = built.loss
        self.meta = {
            "bptrain_version": bptrain.__version__,
            "run": run_dir.name,
            "model": built.spec,
            "loss": {"name": loss_name, "options": loss_options},
            "preprocessing": prep_meta,
        }

    def save_model(self, weights: dict[str, np.ndarray]) -> None:
        checkpoint.save_model(self.run_dir / runs.MODEL_FILE, {**weights, **self.prep_arrays}, self.meta)

    def save(self, trainer: Trainer) -> None:
        """The training state into checkpoints/, and the best weights so far into model.npz."""
        arrays, state = trainer.state()
        # what a resume compares against, and the thread count it continues with
        origin = {"run": self.run_dir.name, "config": self.resolved, "data": self.data_files, "threads": self.threads.report()}
        checkpoint.save_checkpoint(self.run_dir / "checkpoints", arrays, {**state, **origin})
        self.save_model(trainer.best_state if trainer.best_state is not None else trainer.model.state_dict())

    def checkpointing(self) -> Callback:
        return Checkpointing(self.save, assembly.make_cadence(self.built.rules.config))

    def metrics_log(self, rows: list[dict]) -> report.MetricsLog:
        """config.yaml, and the metrics logs holding `rows` (a resumed run's)."""
        from bptrain.config.loading import dump_yaml

        fileio.atomic_write_text(self.run_dir / "config.yaml", dump_yaml(self.resolved))
        log = report.MetricsLog(self.run_dir, self.built.rules.columns)
        if rows:
            log.rewrite(rows)
        return log

    def diagnostics_log(self, rows: list[dict]) -> report.RowLog:
        """diagnostics.csv and diagnostics.jsonl, holding `rows` (a resumed run's); flushed at most once a
        second (a resume rewrites them from the checkpoint, so a crash loses nothing)."""
        log = report.RowLog(self.run_dir, DIAGNOSTICS_COLUMNS, "diagnostics", flush_seconds=1.0)
        if rows:
            log.rewrite(rows)
        return log

    def drop_diagnostics_log(self) -> None:
        """Remove diagnostics.csv and .jsonl: a run resumed with report.diagnostics false would leave
        them covering fewer epochs than its report."""
        for name in ("diagnostics.csv", "diagnostics.jsonl"):
            with fileio.writing(self.run_dir / name, "remove"):
                (self.run_dir / name).unlink(missing_ok=True)


def _diagnostics(trainer: Trainer) -> Diagnostics | None:
    """The run's diagnostics callback (None when report.diagnostics is false)."""
    return next((c for c in trainer.callbacks if isinstance(c, Diagnostics)), None)


def _train(trainer: Trainer, files: RunFiles, built: assembly.Assembly, raw, prep, dataset, *, resumed: bool, on_event: Events) -> Outcome:
    """Train with the metrics log and progress; after a divergence, save the best weights or go back to the last good model."""
    log = files.metrics_log(trainer.position.rows if resumed else [])
    diagnostics = _diagnostics(trainer)
    diagnostics_log = None
    if diagnostics is not None:
        diagnostics_log = files.diagnostics_log(diagnostics.rows)
        diagnostics.write = diagnostics_log.write
    elif resumed:
        files.drop_diagnostics_log()
    epochs = built.rules.config.stopping.max_epochs
    trainer.callbacks[:0] = [log, ProgressEvents(on_event, epochs)]  # they join once the run is known to continue
    position = trainer.position
    on_event(
        events.Start(
            run_dir=files.run_dir,
            task=raw.task,
            loss=built.loss[0],
            rows={s.name: len(s.x) for s in dataset.splits()},
            features=len(prep.features),
            inputs=dataset.train.x.shape[1],
            classes=prep.classes,
            epochs=epochs,
            resumed_at=(position.epoch, position.step) if resumed else None,
            targets=tuple(prep.targets),
        )
    )
    try:
        outcome = trainer.run()
    finally:
        log.close()
        if diagnostics_log is not None:
            diagnostics_log.close()
    # a run that did not diverge ended with a checkpoint, which wrote model.npz with these weights
    model_path = files.run_dir / runs.MODEL_FILE
    if outcome.stop_reason == "diverged" and trainer.best_state is not None:  # early stopping put the best back
        files.save_model(trainer.model.state_dict())
    elif outcome.stop_reason == "diverged" and model_path.exists():  # no best epoch: report on the last good model
        good, _ = checkpoint.read_arrays(model_path)
        trainer.model.load_state_dict({k: good[k] for k in trainer.model.state_dict()})
    return outcome


def _report(run_dir, config, raw, prep, dataset, trainer, loss_name, outcome, threads: blas.Threads, score_test: bool = True) -> dict[str, Any]:
    """Write report.json, report.md and (unless report.figures is false) curves.svg for the model as it ends; return the report."""
    has_rows = bool(outcome.rows)
    model, loss = trainer.model, trainer.loss
    scored = [s for s in dataset.splits() if score_test or s.name != "test"]
    split_metrics = {s.name: score(model, loss, prep, s) for s in scored}
    summary = {
        "bptrain_version": bptrain.__version__,
        "run": run_dir.name,
        "run_dir": str(run_dir),
        "task": raw.task,
        "seed": config.seed,
        "loss": loss_name,
        "stop_reason": outcome.stop_reason,
        "best_epoch": outcome.best_epoch if has_rows else 0,
        "epochs_run": outcome.epochs_run,
        "steps": outcome.steps,
        "seconds": round(outcome.seconds, 3),
        "metrics": {k: split_metrics.get(k) for k in ("train", "val", "test")},
        "targets": prep.targets,
        "classes": prep.classes,
        "features": feature_schema(prep),
        **_class_details(model, loss, prep, (dataset.test if score_test else None) or dataset.val),
        "data": dataset.files,
        "threads": threads.report(),
        "engine": trainer.setup.engine.report(),
        "environment": environment(),
    }
    diagnostics = _diagnostics(trainer)
    if diagnostics is not None:
        summary["diagnostics"] = diagnostics.summary()
    report.write_json(run_dir / "report.json", summary)
    fileio.atomic_write_text(run_dir / "report.md", report.markdown(summary))
    figure = run_dir / "curves.svg"
    if has_rows and config.report.figures:
        main_metric = "r2" if raw.task == "regression" else "accuracy"
        report.curves(figure, outcome.rows, summary["best_epoch"], main_metric if dataset.val else None)
    elif has_rows:
        with fileio.writing(figure, "remove"):  # drawn before a resume, it would show fewer epochs than the report
            figure.unlink(missing_ok=True)
    return summary


def _data_and_loss(config: Config, seed: int, data_paths: str = reading.CONFIG_PATHS):
    """The config's data read and split, the preprocessor fitted on its training rows (once the
    network and its inputs are known to fit in memory), and the loss."""
    raw = splits.read_splits(config.data, seed, data_paths)
    prep = splits.fit_preprocessor(raw, before_encoding=lambda columns: memory.check_training(config, raw.frames, raw.task, columns))
    loss_name, loss_options = assembly.loss_spec(config, raw.task, prep.classes, _training_labels(raw, prep))
    return raw, prep, loss_name, loss_options


def _arrays(raw, prep, loss_name: str, dtype: str, release: bool = False) -> tuple[splits.Dataset, list[str]]:
    """Every split's arrays, and the warnings about the data: fit trains on these, check stops here.
    With `release`, raw's frames keep only their non-feature columns afterwards (splits.transform)."""
    unseen = Unseen()
    dataset = splits.transform(raw, prep, loss_name, dtype, unseen, release=release)
    warnings = [f"{raw.sources['train']}: {note}" for note in raw.notes]
    unseen_message = unseen.message(f"{raw.sources['train']} (validation and test rows)", hint="")
    return dataset, warnings + ([unseen_message] if unseen_message else [])


def feature_schema(prep) -> dict[str, Any]:
    """Each feature column as the model reads it: kind, missing-value rule and fill, scaling, categories."""
    out = {}
    for c in prep.columns:
        entry = {"kind": c.kind, "dtype": c.dtype, "missing": c.missing, "fill": c.fill, "scale": c.scale}
        if c.kind == "categorical":
            entry.update({"categories": c.categories, "other": c.other})
        if c.indicator:
            entry["indicator"] = True
        out[c.name] = entry
    return out


def _training_labels(raw, prep) -> np.ndarray | None:
    """What `balanced` weights are counted from: class indices, or the 0/1 label matrix."""
    train, source = raw.frames["train"], raw.sources["train"]
    if prep.task == "classification":
        return prep.target_of(train, source)
    if prep.task == "multilabel":
        return prep.label_matrix(train, source)
    return None


def _class_details(model, loss, prep, split) -> dict[str, Any]:
    """Per-class (per-label) precision/recall/F1 on `split`, and the confusion matrix (classification)."""
    from bptrain import metrics

    if prep.task == "regression" or split is None:
        return {"per_class": None, "confusion_matrix": None, "per_class_split": None}
    with np.errstate(all="ignore"):
        out = outputs(model, loss, split.x)
    if prep.task == "multilabel":
        stats, cm = metrics.per_label(split.labels, (out >= 0.5).astype(np.int64)), None
    else:
        cm = metrics.confusion_matrix(split.labels, probabilities(out).argmax(axis=1), len(prep.classes))
        stats = metrics.per_class(cm)
    per_class = {
        c: {"precision": float(stats["precision"][i]), "recall": float(stats["recall"][i]), "f1": float(stats["f1"][i]), "support": int(stats["support"][i])}
        for i, c in enumerate(prep.classes)
    }
    return {"per_class": per_class, "confusion_matrix": None if cm is None else cm.tolist(), "per_class_split": split.name}


# --- using a trained model ---------------------------------------------------------------------


@dataclass
class Trained:
    run_dir: Path
    model_path: Path
    model: Any
    loss: Any
    prep: Preprocessor
    meta: dict[str, Any]


def load_trained(run: Path) -> Trained:
    """The model, loss and preprocessing of RUN (a run folder or a model file)."""
    run_dir, path = runs.find_model(run)
    model, loss, prep, meta = modelfile.load(path)
    return Trained(run_dir, path, model, loss, prep, meta)


def evaluate(
    run: Path,
    data: str | None = None,
    *,
    strict: bool = False,
    threads: int | str = "auto",
    stdin: IO[bytes] | None = None,
    on_event: Events = _quiet,
) -> dict[str, Any]:
    """Metrics of a saved model: on its own validation and test rows, or on the labelled CSV `data`;
    `threads` BLAS threads ("auto": bptrain.threads.choose)."""
    trained = load_trained(run)
    with blas.limited(inference_threads(trained, threads).count):
        return _evaluate(trained, data, strict, stdin, on_event)


def inference_threads(trained: Trained, setting: int | str = "auto") -> blas.Threads:
    """The BLAS threads for running `trained` on rows: `setting` as --threads gives it (bptrain.threads.choose_for_inference)."""
    return blas.choose_for_inference(setting, trained.model, INFERENCE_ROWS, len(trained.prep.features))


def _evaluate(trained: Trained, data: str | None, strict: bool, stdin: IO[bytes] | None, on_event: Events) -> dict[str, Any]:
    prep = trained.prep
    if data is not None:
        split = labelled(trained, data, strict=strict, stdin=stdin, on_event=on_event)
        return {"data": score(trained.model, trained.loss, prep, split)}
    dataset = held_out(trained, on_event)
    if dataset.val is None and dataset.test is None:
        raise ConfigError(f"{trained.run_dir}: the run has no validation or test rows to evaluate; give labelled rows with --data FILE")
    return {s.name: score(trained.model, trained.loss, prep, s) for s in (dataset.val, dataset.test) if s is not None}


def labelled(trained: Trained, data: str, *, strict: bool = False, stdin: IO[bytes] | None = None, on_event: Events = _quiet, command: str = "evaluate") -> splits.Split:
    """The rows of the labelled file `data` ('-': stdin) as the model reads them, with their targets;
    warnings for rows left out and categories the model never saw."""
    frame = reading.read_table(data, stdin=stdin, options=trained.prep.read, paths=reading.COMMAND_LINE_PATHS, text=trained.prep.categorical)
    source = reading.source_name(data)
    warn_if_trained_on(trained, data, len(frame), command, on_event)
    check_targets(trained, frame, source, command, "bptrain predict")
    return labelled_frame(trained, frame, source, strict=strict, on_event=on_event)


def check_targets(trained: Trained, frame, source: str, command: str, predict: str) -> None:
    """DataError naming the first target column `frame` lacks: `command` scores labelled rows, and
    `predict` (the command or the method) is for unlabelled ones."""
    absent = [t for t in trained.prep.targets if t not in frame.columns]
    if absent:
        raise DataError(
            f"{source}: target column {absent[0]!r} not found; {command} needs labelled rows "
            f"(use {predict} for unlabelled ones).{did_you_mean(absent[0], [str(c) for c in frame.columns])}"
        )


def labelled_frame(
    trained: Trained,
    frame,
    source: str,
    *,
    strict: bool = False,
    on_event: Events = _quiet,
    hint: str = STRICT_HINT,
    setting: str = STRICT_SETTING,
) -> splits.Split:
    """`labelled` for the rows of `frame`, its targets present (read from `source`); `hint` ends the
    warning about unseen categories and `setting` their error (how the front end makes them errors)."""
    prep, dtype, loss_name = trained.prep, trained.meta["model"]["dtype"], trained.meta["loss"]["name"]
    if len(frame) == 0:  # a file has rows (reading.read_table); a DataFrame may not: no metric is defined on none
        raise DataError(f"{source}: has no rows to score; give labelled rows")
    unseen = Unseen(setting)
    split = splits.split_of("data", frame, source, prep, loss_name, dtype, strict=strict, unseen=unseen)
    if len(split.frame) == 0:
        raise DataError(f"{source}: every row has a missing value where the model drops rows (missing: drop); no rows are left to score")
    _warn_dropped(source, len(frame) - len(split.frame), on_event)
    _warn_unseen(unseen, source, on_event, hint)
    return split


def held_out(trained: Trained, on_event: Events = _quiet) -> splits.Dataset:
    """The run's own splits again, from its config.yaml and recorded seed (the rows it trained and
    was scored on), with a warning for each data file that changed since training."""
    config_path = trained.run_dir / "config.yaml"
    if not config_path.is_file():
        raise ModelFileError(f"{trained.model_path}: no config.yaml beside the model, so its validation and test rows are unknown; use --data FILE")
    from bptrain.config.loading import load_config

    config = load_config(config_path)
    changes = resuming.split_changes(trained.run_dir, config)
    if changes:
        lines = "\n".join(f"  {change}" for change in changes)
        raise ConfigError(
            f"{config_path}: these settings no longer split the data as the run did (its checkpoint records how it did):\n{lines}\n"
            "The validation and test rows are found by splitting the data again as in training; "
            "put these settings back, or give the rows to score with --data FILE"
        )
    raw = splits.read_splits(config.data, config.seed)
    _warn_if_changed(trained.run_dir, raw.files, on_event)
    return splits.transform(raw, trained.prep, trained.meta["loss"]["name"], trained.meta["model"]["dtype"])


def _warn_dropped(source: str, dropped: int, on_event: Events) -> None:
    if dropped:
        on_event(events.Warning(f"{source}: left out {dropped} row{'s' if dropped > 1 else ''} with missing values where the model drops them (missing: drop)"))


def _warn_unseen(unseen: Unseen, source: str, on_event: Events, hint: str = STRICT_HINT) -> None:
    message = unseen.message(source, hint)
    if message:
        on_event(events.Warning(message))


def _lone_row(config: Config, rows: int) -> list[str]:
    """The warning, if any, that batch norm skips each epoch's last batch of one row; ConfigError
    when every batch would hold one row (training.batch_size 1), so batch norm could never train."""
    batch_norm = assembly.needs_two_rows(config)
    if batch_norm and config.training.batch_size < 2:
        raise ConfigError(
            f"training.batch_size: batch_norm needs at least 2 rows in a training batch, but a batch_size of "
            f"{config.training.batch_size} gives every batch {config.training.batch_size} row; use a batch_size of 2 or more, "
            "or remove the batch_norm layer"
        )
    message = lone_row_warning(rows, config.training.batch_size, batch_norm)
    return [message] if message else []


def warn_if_trained_on(trained: Trained, data: str | Path, rows: int, command: str, on_event: Events) -> None:
    """A warning when the file `data` (of `rows` rows) is the one the run trained on: its data.train,
    the same rows and SHA-256 as report.json records. Its training rows are then among the rows scored."""
    if str(data) == reading.STDIN or not os.path.isfile(data):
        return
    train = next((f for f in _recorded_files(trained.run_dir) or [] if isinstance(f, dict) and f.get("split") == "train"), None)
    if train is None or train.get("rows") != rows or reading.sha256_file(Path(data)) != train.get("sha256"):
        return
    on_event(events.Warning(
        f"{reading.source_name(data)}: the file {trained.run_dir} trained on (its data.train, the same SHA-256), so its "
        f"training rows are among these and the metrics lean optimistic; `bptrain {command} {trained.run_dir}` without "
        "--data uses the rows the run held out"
    ))


def _recorded_files(run_dir: Path) -> list | None:
    """report.json's record of the run's data files (split, path, rows, sha256 each); None when unreadable."""
    recorded = (report.read_json(run_dir / "report.json") or {}).get("data")
    return recorded if isinstance(recorded, list) else None


def _warn_if_changed(run_dir: Path, files: list[dict], on_event: Events) -> None:
    try:
        changed = resuming.changed_files(files, _recorded_files(run_dir))
    except (KeyError, TypeError):
        return
    for entry in changed:
        on_event(events.Warning(f"{entry['path']}: the file changed since training (sha256 differs); the metrics are for its current rows"))


def predict(
    run: Path,
    source: str,
    out: IO[str],
    *,
    proba: bool = False,
    keep: list[str] = (),  # type: ignore[assignment]
    fmt: str = "csv",
    escape: bool = False,
    strict: bool = False,
    threads: int | str = "auto",
    stdin: IO[bytes] | None = None,
    on_event: Events = _quiet,
) -> int:
    """Write predictions for the rows of `source` to `out`, block by block as it reads; return the row count.

    Categories the model never saw are encoded as unknown and reported in one warning at the end
    (with `strict`, they are an error naming the column and rows). `threads` as in evaluate.
    """
    trained = load_trained(run)
    with blas.limited(inference_threads(trained, threads).count):
        return _predict(trained, source, out, proba, keep, fmt, escape, strict, stdin, on_event)


def _predict(trained: Trained, source: str, out: IO[str], proba, keep, fmt, escape, strict, stdin, on_event) -> int:
    prep = trained.prep
    if proba and prep.task == "regression":
        raise ConfigError("--proba: this model does regression; there are no class probabilities to add")
    keep = list(dict.fromkeys(keep))
    writer = predictions.Writer(out, predictions.output_header(prep, proba, keep), fmt, escape)
    name = reading.source_name(source)
    plain, stdin = plaincsv.read(source, prep, keep, trained.meta["model"]["dtype"], strict=strict, stdin=stdin)
    if plain is not None:  # a small plain CSV input, read without pandas to the same inputs
        writer.write([plain.kept[c] for c in keep] + columns_of_inputs(trained, plain.x, proba))
        _warn_unseen(plain.unseen, name, on_event)
        return len(plain.x)
    unseen = Unseen()
    rows = 0
    reuse_freed_memory()  # each block's buffers reused, not first-touched again (bptrain.data.columns)
    for first, frame, kept in reading.frame_chunks(source, prep.features, keep, stdin=stdin, options=prep.read, text=prep.categorical):
        columns = prediction_columns(trained, frame, name, proba=proba, strict=strict, first_row=first, unseen=unseen)
        writer.write([kept[c].to_numpy(dtype=object) for c in keep] + columns)
        rows += len(frame)
    _warn_unseen(unseen, name, on_event)
    return rows


def prediction_columns(
    trained: Trained, frame, source: str, *, proba: bool = False, strict: bool = False, first_row: int = 0, unseen: Unseen | None = None,
    decimal: str | None = None,
) -> list[np.ndarray]:
    """predict's output columns (predictions.header's order) for the rows of `frame`, the rows of
    `source` from `first_row` on: the one path from raw rows to predictions, for every front end.
    `decimal`: the decimal mark of the text `frame` was read from (Preprocessor.features_of)."""
    x = trained.prep.features_of(frame, source, trained.meta["model"]["dtype"], first_row=first_row, strict=strict, unseen=unseen, decimal=decimal)
    return columns_of_inputs(trained, x, proba, first_row)


def columns_of_inputs(trained: Trained, x: np.ndarray, proba: bool, first_row: int = 0) -> list[np.ndarray]:
    """prediction_columns for the network inputs `x` of the rows from `first_row` on."""
    with np.errstate(all="ignore"):
        y = outputs(trained.model, trained.loss, x, first_row=first_row)
    return predictions.columns(trained.prep, y, proba, trained.meta["model"]["dtype"])


# --- check ------------------------------------------------------------------------------------


def check(config: Config) -> dict[str, Any]:
    """Validate the config against its data without training: every check fit makes on the data and
    the memory before it trains (the same code), and what it found: task, splits, features, classes,
    and the engine of the update (training.engine; ConfigError as fit's when numba is set and missing)."""
    raw, prep, loss_name, _ = _data_and_loss(config, config.seed if config.seed is not None else 0)
    _, warnings = _arrays(raw, prep, loss_name, config.model.dtype)
    rows = len(raw.frames["train"])
    watched = assembly.rules(config, raw.task, raw.frames["val"] is not None, rows)
    train = raw.frames["train"]
    n_out = assembly.output_units(loss_name, raw.task, len(prep.classes), len(prep.targets))
    batch_size = min(config.training.batch_size, rows)
    model = assembly.model_for(assembly.model_spec(watched.config, len(prep.inputs), n_out), None, batch_size)
    return {
        "task": raw.task,
        "target": config.data.target,
        "features": raw.features,
        "inputs": len(prep.inputs),
        "categorical": {c.name: c.categories + ([OTHER] if c.other else []) for c in prep.columns if c.kind == "categorical"},
        "missing": {c.name: (int(train[c.name].isna().sum()), c.missing) for c in prep.columns if train[c.name].isna().any()},
        "classes": prep.classes,
        "loss": loss_name,
        "rows": {k: (len(v) if v is not None else 0) for k, v in raw.frames.items()},
        "metrics": assembly.logged_metrics(watched.columns),
        "engine": assembly.engine_for(watched.config, model, rows, batch_size),
        "warnings": warnings + _lone_row(config, rows),
    }


# --- gradcheck --------------------------------------------------------------------------------

GRADCHECK_TOLERANCE = 1e-6


def gradcheck(config: Config, *, rows: int = 16, tolerance: float = GRADCHECK_TOLERANCE) -> dict[str, Any]:
    """Finite differences against backprop for the configured network, on `rows` training rows, in float64."""
    from bptrain.nn.gradcheck import gradcheck as check_gradients

    config = config.model_copy(update={"seed": config.seed if config.seed is not None else 0})
    raw, prep, loss_name, loss_options = _data_and_loss(config, config.seed)
    sample = raw.frames["train"].iloc[:rows]
    split = splits.split_of("train", sample, raw.sources["train"], prep, loss_name, "float64")
    built = assembly.assemble(config, prep, split.x.shape[1], (loss_name, loss_options), len(split.x), raw.frames["val"] is not None, dtype="float64")
    model = built.setup.model
    with np.errstate(all="ignore"):
        start_loss = float(built.setup.loss(model.forward(split.x, train=False), split.y)[0])
    if not np.isfinite(start_loss):
        raise DivergedError(
            f"gradcheck: the loss on {len(split.x)} training rows is {start_loss} at the starting weights, so its gradients "
            "cannot be checked; check model.layers' init and bias_init"
        )
    with np.errstate(all="ignore"):
        errors = check_gradients(model, built.setup.loss, split.x, split.y, regularizer=built.setup.regularizer)
    # each param's grad holds its backprop gradient: one that is exactly 0, as the differences are, checks nothing
    zero = {p.name for p in model.params if errors[p.name] == 0.0 and not np.any(p.grad)}
    if len(zero) == len(errors):
        raise DivergedError(
            f"gradcheck: every gradient on {len(split.x)} training rows is exactly 0 at the starting weights, so nothing "
            "can be checked; check model.layers' init and bias_init"
        )
    shapes = {p.name: p.value.shape for p in model.params}
    params = [
        {"name": name, "shape": list(shapes[name]), "rel_error_norm": float(err), "ok": bool(err < tolerance), "zero": name in zero}
        for name, err in errors.items()
    ]
    return {"rows": len(split.x), "loss": loss_name, "tolerance": tolerance, "params": params, "passed": all(p["ok"] for p in params)}
