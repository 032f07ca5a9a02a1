"""Resuming a run: the config may change its budget, nothing that alters the model, data or optimization.

`merge()` compares the config asked for with the one the run was started with and returns the
config to continue with, or raises ConfigError listing each refused change as `key: old -> new`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bptrain.checkpoint import LAST, PREVIOUS
from bptrain.config import Config, load_config
from bptrain.errors import ConfigError, DataError

# Keys that only decide how long to train, when to save, and how closely to watch.
BUDGET_KEYS = (
    "name",
    "stopping.max_epochs",
    "stopping.max_steps",
    "stopping.max_time",
    "stopping.target",
    "stopping.divergence",
    "training.checkpoint",
    "training.detect_anomaly",
)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b": 1, "a.c[0]": 2} from nested dicts and lists; dicts that are None or empty stay whole."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(_flat(item, f"{prefix}[{i}]"))
        out[f"{prefix}.length"] = len(value)
        return out
    return {prefix: value}


def _comparable(config: Config) -> dict[str, Any]:
    raw = config.model_dump(mode="json")
    for key in ("train", "val", "test"):
        if raw["data"][key] is not None:
            raw["data"][key] = os.path.abspath(raw["data"][key])
    return _flat(raw)


def _is_budget(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in BUDGET_KEYS)


def merge(config: Config, run_dir: Path) -> Config:
    """The config to continue `run_dir` with: `config`, with the run's seed and schedule total."""
    saved_path = Path(run_dir) / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"--resume {run_dir}: no config.yaml in this folder; is it a run folder written by bptrain fit?")
    saved = load_config(saved_path)
    if config.seed is None:
        config = config.model_copy(update={"seed": saved.seed})
    total = getattr(saved.schedule, "total", None)
    if total is not None and getattr(config.schedule, "total", 0) is None and config.schedule.name == saved.schedule.name:
        config = config.model_copy(update={"schedule": config.schedule.model_copy(update={"total": total})})
    old, new = _comparable(saved), _comparable(config)
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and not _is_budget(k)]
    if changed:
        lines = "\n".join(f"  {k}: {old.get(k, '(absent)')} -> {new.get(k, '(absent)')}" for k in changed)
        raise ConfigError(
            f"--resume {run_dir}: these changes would alter the model, the data or the optimization:\n{lines}\n"
            f"Only these keys may change when resuming: {', '.join(BUDGET_KEYS)}. "
            "To train differently, start a new run without --resume."
        )
    return config


def changed_files(files: list[dict], recorded: list[dict] | None) -> list[dict]:
    """The entries of `files` whose SHA-256 differs from the recorded entry of the same split."""
    before = {f["split"]: f["sha256"] for f in recorded or []}
    return [entry for entry in files if before.get(entry["split"], entry["sha256"]) != entry["sha256"]]


def check_data(files: list[dict], recorded: list[dict] | None, run_dir: Path) -> None:
    """DataError when a data file differs from the one the run was started with (by SHA-256)."""
    changed = changed_files(files, recorded)
    if changed:
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
