"""Run folders: naming (`<name>-<YYYYmmdd-HHMMSS>[-N]`), creation without collisions, lookup."""

from __future__ import annotations

import re
import time
from pathlib import Path

from bptrain.errors import ConfigError, ModelFileError

NAME = re.compile(r"[A-Za-z0-9._-]+")
MODEL_FILE = "model.npz"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"run name {name!r} may hold only letters, digits, '.', '_' and '-'")
    return name


def new_run_dir(runs_dir: Path, name: str, now: float | None = None) -> Path:
    """Create and return a fresh run folder; a second run in the same second gets a `-N` suffix."""
    check_name(name)
    runs_dir = Path(runs_dir)
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"{runs_dir}: the runs folder is a file, not a folder; choose another --runs-dir")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{runs_dir}: cannot create the runs folder ({e.strerror})") from None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = f"{name}-{stamp}"
    for n in range(1, 10_000):
        folder = runs_dir / (base if n == 1 else f"{base}-{n}")
        if folder.resolve().parent != runs_dir.resolve():
            raise ConfigError(f"run name {name!r} would leave the runs folder {runs_dir}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
        except OSError as e:
            raise ConfigError(f"{folder}: cannot create the run folder ({e.strerror})") from None
    raise ConfigError(f"{runs_dir}: too many runs named {base}")


def find_model(run: Path) -> tuple[Path, Path]:
    """(run folder, model file) for RUN given as a run folder or a model file inside one."""
    run = Path(run)
    if run.is_dir():
        model = run / MODEL_FILE
        if not model.is_file():
            if (run / "cv.json").is_file():
                raise ConfigError(f"{run}: a cross-validation folder, with one run per fold; give one of them, e.g. {run / 'fold-1'}")
            raise ModelFileError(f"{run}: no {MODEL_FILE} in this folder; is it a run folder written by bptrain fit?")
        return run, model
    if run.is_file():
        return run.parent, run
    raise ConfigError(f"{run}: no such run folder or model file; give a folder written by bptrain fit, e.g. runs/iris-20261128-101500")
