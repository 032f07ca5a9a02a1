"""Run folders: naming (`<name>-<YYYYmmdd-HHMMSS>[-N]`), creation without collisions, locking, lookup."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on POSIX: run folders are not locked
    fcntl = None

from bptrain.errors import ConfigError, ModelFileError, StorageError
from bptrain.fileio import storage_error, writing

NAME = re.compile(r"[A-Za-z0-9._-]+")
MODEL_FILE = "model.npz"
LOCK_FILE = ".lock"


def check_name(name: str) -> str:
    """`name` when it can start a run folder's name: what the config's `name` key accepts."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"run name {name!r} may hold only letters, digits, '.', '_' and '-'")
    if not name.strip("."):
        raise ConfigError(f"run name {name!r} must hold a letter or digit, not only dots; e.g. --name iris")
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
        raise storage_error(runs_dir, e, "create the runs folder") or ConfigError(f"{runs_dir}: cannot create the runs folder ({e.strerror})") from None
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
            raise storage_error(folder, e, "create the run folder") or ConfigError(f"{folder}: cannot create the run folder ({e.strerror})") from None
    raise ConfigError(f"{runs_dir}: too many runs named {base}")


class RunLock:
    """An exclusive lock on a run folder while one process writes it (flock on RUN/.lock).

    The kernel releases it when the process ends, even by SIGKILL, so a stale lock cannot block a
    resume. The lock file itself stays: deleting it would let a third process lock a new file while
    a second still holds the old one.
    """

    def __init__(self) -> None:
        self.folder: Path | None = None
        self._fd: int | None = None

    def acquire(self, folder: Path) -> None:
        folder, path = Path(folder), Path(folder) / LOCK_FILE
        with writing(path, "create the lock file"):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StorageError(
                    f"{folder}: the run folder is in use by another bptrain process (it holds {path}); "
                    "wait for that one to end, or stop it, then try again"
                ) from None
        self.folder, self._fd = folder, fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


CV_PLAN = "cv.yaml"  # a cross-validation's config, written at its start: what --resume reads
CV_SUMMARY = "cv.json"  # its folds' metrics, written when every fold has finished


TUNE_PLAN = "tune.json"  # a tune folder's study, written at its start: what tune --resume reads


def is_tune_folder(folder: Path) -> bool:
    """Whether `folder` holds a study of bptrain tune, whose trials are the runs."""
    return (Path(folder) / TUNE_PLAN).is_file()


def cv_folder_given(label: str, folder: Path) -> ConfigError:
    """The error for a cross-validation's folder (or a tune --folds trial's) given where a run folder belongs."""
    return ConfigError(f"{label}: a cross-validation folder, with one run per fold; give one of them, e.g. {Path(folder) / 'fold-1'}")


def tune_folder_given(label: str) -> ConfigError:
    """The error for a tune folder given where a run folder belongs."""
    return ConfigError(f"{label}: a tune folder, with one run per trial; give one of the trials' run folders")


def is_cv_folder(folder: Path) -> bool:
    """Whether `folder` holds a cross-validation (finished or not), rather than one run."""
    return (Path(folder) / CV_PLAN).is_file() or (Path(folder) / CV_SUMMARY).is_file()


def holds_folds(folder: Path) -> bool:
    """Whether `folder` holds fold runs: a cross-validation's folder, or a tune --folds trial's,
    which has no cv.yaml or cv.json of its own."""
    return (Path(folder) / "fold-1" / MODEL_FILE).is_file()


def find_model(run: Path) -> tuple[Path, Path]:
    """(run folder, model file) for RUN given as a run folder, a model file inside one, or `latest`."""
    run = resolve_run(Path(run))
    if run.is_dir():
        model = run / MODEL_FILE
        if not model.is_file():
            if is_cv_folder(run) or holds_folds(run):
                raise cv_folder_given(str(run), run)
            if is_tune_folder(run):
                raise tune_folder_given(str(run))
            raise ModelFileError(f"{run}: no {MODEL_FILE} in this folder; is it a run folder written by bptrain fit?")
        return run, model
    if run.is_file():
        return run.parent, run
    raise missing_run(run, str(run), "or model file")


LATEST = "latest"
_STAMP = re.compile(r"-(\d{8}-\d{6})(?:-(\d+))?$")


def resolve_run(run: Path, runs_dir: Path = Path("runs")) -> Path:
    """RUN as given; `latest` is the newest run folder under `runs_dir`."""
    if str(run) != LATEST:
        return run
    newest = newest_runs(runs_dir, 1)
    if not newest:
        raise ConfigError(f"{LATEST}: no run folder under {runs_dir}; train one first with: bptrain fit CONFIG")
    return newest[0]


GROUP_FILES = (CV_SUMMARY, CV_PLAN, TUNE_PLAN)  # a cross-validation's or a tune's folder holds runs; it is not one


def newest_runs(runs_dir: Path, count: int) -> list[Path]:
    """Up to `count` run folders under `runs_dir`, newest first, by the time in their names;
    cross-validation and tune folders (which hold runs) are not run folders."""
    try:
        entries = [p for p in Path(runs_dir).iterdir() if p.is_dir() and not any((p / name).exists() for name in GROUP_FILES)]
    except OSError:
        return []
    stamped = []
    for path in entries:
        match = _STAMP.search(path.name)
        if match:
            stamped.append((match.group(1), int(match.group(2) or 1), path.stat().st_mtime_ns, path))
    return [entry[-1] for entry in sorted(stamped, reverse=True)[:count]]


def missing_run(run: Path, label: str, what: str = "") -> ConfigError:
    """The error for a RUN that does not exist, naming the newest runs beside it (or under ./runs)."""
    runs_dir = run.parent if str(run.parent) not in ("", ".") and run.parent.is_dir() else Path("runs")
    newest = newest_runs(runs_dir, 3)
    found = f"the newest under {runs_dir}: {', '.join(map(str, newest))}" if newest else f"there are no runs under {runs_dir}; train one with: bptrain fit CONFIG"
    return ConfigError(f"{label}: no such run folder{' ' + what if what else ''}; {found}")
