"""Resuming a run: the config may change its budget, nothing that alters the model, data or optimization.

`merge()` compares the config asked for with the one the checkpoint was saved under and returns the
config to continue with, or raises ConfigError listing each refused change as `key: old -> new`.
A checkpoint another run wrote is named as such; a run that already finished is recognized.
`split_changes()` lists the edits to a run's config.yaml that would split its data otherwise than
the run did, for the commands that split it again (evaluate, plot, explain).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bptrain.errors import ConfigError, DataError, ModelFileError
from bptrain.runs.checkpoint import LAST, PREVIOUS, open_file
from bptrain.runs.folder import MODEL_FILE
from bptrain.runs.report import read_json

if TYPE_CHECKING:
    from bptrain.config.schema import Config

# Keys that only decide how long to train, when to save, how closely to watch, how fast to update
# (the engine writes the same bits), what to draw and where to log.
BUDGET_KEYS = (
    "name",
    "stopping.max_epochs",
    "stopping.max_steps",
    "stopping.max_time",
    "stopping.target",
    "stopping.divergence",
    "training.checkpoint",
    "training.detect_anomaly",
    "training.engine",
    "report",
    "tracking",
)


def flatten(value: Any, prefix: str = "", *, lengths: bool = False) -> dict[str, Any]:
    """{"a.b": 1, "a.c[0]": 2} from nested dicts and lists; dicts and lists that are None or empty
    stay whole. With `lengths`, each list's length too, as "a.c.length"."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key), lengths=lengths))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{i}]", lengths=lengths))
        if lengths:
            out[f"{prefix}.length"] = len(value)
        return out
    return {prefix: value}


def _comparable(config: Config) -> dict[str, Any]:
    raw = config.model_dump(mode="json")
    for key in ("train", "val", "test"):
        if raw["data"][key] is not None:
            raw["data"][key] = os.path.abspath(raw["data"][key])
    return flatten(raw, lengths=True)


def _is_budget(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in BUDGET_KEYS)


def merge(config: Config, run_dir: Path, checkpoint_meta: dict | None = None, *, recorded_file: str = "config.yaml") -> Config:
    """The config to continue `run_dir` with: `config`, with the run's seed and schedule total.

    It is compared with the config recorded in the checkpoint, so an edit to the run's config.yaml
    is refused like the same change through --set; a checkpoint without one (bptrain 0.1) is
    compared with config.yaml (`recorded_file`: a cross-validation folder's cv.yaml).
    """
    saved_path = Path(run_dir) / recorded_file
    if not saved_path.is_file():
        raise ConfigError(f"--resume {run_dir}: no {recorded_file} in this folder; is it a run folder written by bptrain fit?")
    from bptrain.config.loading import load_config  # where used: predict imports this module and needs no YAML reader

    recorded = (checkpoint_meta or {}).get("config")
    saved = _recorded_config(recorded, run_dir) if recorded is not None else load_config(saved_path)
    if config.seed is None:
        config = config.model_copy(update={"seed": saved.seed})
    total = getattr(saved.schedule, "total", None)
    if total is not None and getattr(config.schedule, "total", 0) is None and config.schedule.name == saved.schedule.name:
        config = config.model_copy(update={"schedule": config.schedule.model_copy(update={"total": total})})
    old, new = _comparable(saved), _comparable(config)
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and not _is_budget(k)]
    if changed:
        _refuse_foreign(run_dir, checkpoint_meta, "a different config")
        lines = "\n".join(f"  {k}: {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}" for k in changed)
        raise ConfigError(
            f"--resume {run_dir}: these changes would alter the model, the data or the optimization:\n{lines}\n"
            f"Only these keys may change when resuming: {', '.join(BUDGET_KEYS)}. "
            "To train differently, start a new run without --resume."
        )
    return config


def _recorded_config(recorded: dict, run_dir: Path) -> Config:
    """The config a checkpoint was saved under; ModelFileError when it is not a valid config."""
    from bptrain.config.loading import validate_config

    where = Path(run_dir) / "checkpoints"
    try:
        return validate_config(recorded, where)
    except ConfigError as e:
        raise ModelFileError(f"unusable bptrain checkpoint: its recorded config is not valid: {e}") from None


def _refuse_foreign(run_dir: Path, checkpoint_meta: dict | None, what: str) -> None:
    """ModelFileError when the checkpoint was written by another run, with `what` ("a different config").

    The checkpoint records the name of the run folder it was saved in. A run folder renamed (or
    copied under another name) still holds a model.npz saved with the checkpoint under the same
    old name: then the checkpoint is the folder's own, and the changes are listed as for any run.
    """
    other = (checkpoint_meta or {}).get("run")
    if other is None or other == Path(run_dir).name:
        return
    own = _recorded_run(run_dir)
    if own == other:
        return
    where = Path(run_dir) / "checkpoints"
    if own is None:
        raise ModelFileError(
            f"{where}: the checkpoint is from a run named {other}, with {what}, and without a readable model.npz "
            f"nothing shows that {run_dir} is that run renamed; it cannot continue {run_dir}. If it is, rename the "
            "folder back to its old name to see what differs; otherwise put back this run's own checkpoints/ folder, "
            "or start a new run"
        )
    raise ModelFileError(
        f"{where}: the checkpoint is from another run, {other}, with {what}; "
        f"it cannot continue {run_dir}. Put back this run's own checkpoints/ folder, or start a new run"
    )


def _recorded_run(run_dir: Path) -> str | None:
    """The run name the folder's model.npz records (saved with each checkpoint); None when unreadable."""
    try:
        with open_file(Path(run_dir) / MODEL_FILE) as file:
            name = file.meta.get("run")
    except (ModelFileError, OSError, ValueError):
        return None
    return name if isinstance(name, str) else None


# What decides which rows a run's splits hold, and how its data files are read: the seed, the
# target and task (the split is stratified by class), data.split and data.read. The data files'
# paths may change (files moved); their contents are compared by SHA-256 elsewhere.
SPLIT_KEYS = ("seed", "data.target", "data.task", "data.split", "data.read")


def recorded_config(run_dir: Path) -> dict | None:
    """The config the run trained with as its newest readable checkpoint records it (the mapping
    config.yaml holds, keys sorted); None when no checkpoint is readable or it records none."""
    for name in (LAST, PREVIOUS):
        try:
            with open_file(Path(run_dir) / "checkpoints" / name) as file:
                recorded = file.meta.get("config")
        except (ModelFileError, OSError, ValueError):
            continue
        return recorded if isinstance(recorded, dict) else None
    return None


def split_changes(run_dir: Path, config: Config) -> list[str]:
    """The settings of `config`, the run's config.yaml, that split or read its data otherwise than the
    run did, each as `key: recorded -> now`, from the config its checkpoint records; none when no
    checkpoint records a valid one."""
    recorded = recorded_config(run_dir)
    try:
        saved = _recorded_config(recorded, run_dir) if recorded is not None else None
    except ModelFileError:
        return []
    if saved is None:
        return []
    old, new = _comparable(saved), _comparable(config)
    for split in ("val", "test"):  # a file in place of a fraction, or the other way round; a path may move
        old[f"data.{split}"], new[f"data.{split}"] = ["(a file)" if getattr(c.data, split) else None for c in (saved, config)]
    keys = [k for k in sorted(set(old) | set(new)) if k.startswith(SPLIT_KEYS + ("data.val", "data.test")) and old.get(k) != new.get(k)]
    return [f"{k}: {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}" for k in keys]


def changed_files(files: list[dict], recorded: list[dict] | None) -> list[dict]:
    """The entries of `files` whose SHA-256 differs from the recorded entry of the same split."""
    before = {f["split"]: f["sha256"] for f in recorded or []}
    return [entry for entry in files if before.get(entry["split"], entry["sha256"]) != entry["sha256"]]


def check_data(files: list[dict], checkpoint_meta: dict, run_dir: Path) -> None:
    """DataError when a data file differs from the one the run was started with (by SHA-256)."""
    changed = changed_files(files, checkpoint_meta.get("data"))
    if changed:
        _refuse_foreign(run_dir, checkpoint_meta, "different data")
        raise DataError(
            f"{changed[0]['path']}: the data changed since the run {run_dir} started (its sha256 differs); "
            "resuming would not continue the same training. Start a new run instead"
        )


def continue_hint(run_dir: Path) -> str:
    """After a file could not be written: the checkpoint to continue from, or that there is none yet."""
    folder = Path(run_dir) / "checkpoints"
    for name in (LAST, PREVIOUS):
        if (folder / name).is_file():
            return f"nothing saved is lost: the last good checkpoint is {folder / name}; continue with: bptrain fit --resume {run_dir}"
    return "no checkpoint was saved yet: start the run again once the files can be written"


# Stop reasons after which the same budget leaves nothing to do.
FINISHED = ("max_epochs", "max_steps", "max_time", "early_stopping", "target")


def finished_report(run_dir: Path, reason: str | None, steps: int) -> dict | None:
    """report.json of a run that already ended for `reason` at step `steps`, the state its checkpoint
    holds; None when there is training left, or when the report is missing or from an earlier stop."""
    if reason not in FINISHED:
        return None
    recorded = read_json(Path(run_dir) / "report.json")
    if recorded is None or (recorded.get("stop_reason"), recorded.get("steps")) != (reason, steps):
        return None
    return recorded


def finished_notice(run_dir: Path, recorded: dict, stopping=None) -> str:
    """One line: the run is finished, why the budget it is resumed with (`stopping`, the config's
    StoppingConfig) leaves nothing to do, and how to train longer."""
    reason, epochs, steps = recorded["stop_reason"], recorded["epochs_run"], recorded["steps"]
    how = {
        "max_epochs": f"raise the budget, e.g. --set stopping.max_epochs={2 * epochs}",
        "max_steps": f"raise the budget, e.g. --set stopping.max_steps={2 * steps}",
        "max_time": "raise the budget, e.g. --set stopping.max_time=2h",
        "early_stopping": "start a new run with a larger stopping.early_stopping.patience (it cannot change on resume)",
        "target": "change or remove stopping.target, e.g. --set stopping.target=null",
    }[reason]
    return (
        f"{run_dir} already finished ({reason} after {epochs} epoch{'s' if epochs != 1 else ''}, {steps} steps); "
        f"{_why_finished(reason, recorded, stopping)}, so nothing was changed. To train longer, {how}"
    )


def _why_finished(reason: str, recorded: dict, stopping) -> str:
    """Why resuming under `stopping` trains nothing: the rule that stopped the run holds still."""
    if stopping is None:
        return "nothing to do under the same budget"
    epochs, steps = recorded["epochs_run"], recorded["steps"]
    if reason == "max_epochs":
        return f"stopping.max_epochs {stopping.max_epochs} is already reached ({epochs} epoch{'s' if epochs != 1 else ''} run)"
    if reason == "max_steps":
        return f"stopping.max_steps {stopping.max_steps} is already reached ({steps} steps run)"
    if reason == "max_time":
        return f"stopping.max_time {stopping.max_time} is already used up ({recorded.get('seconds', 0):.1f} s trained)"
    if reason == "early_stopping" and stopping.early_stopping is not None:
        rule = stopping.early_stopping
        return (
            f"early stopping had stopped it ({rule.monitor} did not improve for {rule.patience} epoch{'s' if rule.patience != 1 else ''}), "
            "and a larger budget does not undo that"
        )
    if reason == "target" and stopping.target:
        met = ", ".join(f"{metric} {text}" for metric, text in stopping.target.items())
        return f"stopping.target ({met}) is already met"
    return "nothing to do under the same budget"
