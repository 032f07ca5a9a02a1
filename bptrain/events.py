"""The events the services report to the command line, one frozen dataclass per kind; the CLI renders them by type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Warning:  # noqa: A001 - the CLI shows it as "warning: ..."
    """Something the user should know and may want to fix; shown even with --quiet."""

    message: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know that needs no fixing; shown even with --quiet."""

    message: str


@dataclass(frozen=True)
class Fold:
    """Cross-validation begins training fold `fold` of `folds`."""

    fold: int
    folds: int


@dataclass(frozen=True)
class Start:
    """A run begins (or resumes) training in `run_dir`."""

    run_dir: Path
    task: str
    loss: str
    rows: dict[str, int]  # per split
    features: int
    inputs: int
    classes: list[str]
    epochs: int  # stopping.max_epochs
    resumed_at: tuple[int, int] | None = None  # (epoch, step) of the checkpoint resumed
    targets: tuple[str, ...] = ()  # the target columns


@dataclass(frozen=True)
class Epoch:
    """An epoch ended with this row of metrics."""

    row: dict[str, Any]
    epochs: int


@dataclass(frozen=True)
class Batch:
    """Training is in epoch `epoch` (from 1), `batch` of its `batches` batches done; sent at most
    about ten times a second, so that a long epoch shows its progress."""

    epoch: int
    batch: int
    batches: int


@dataclass(frozen=True)
class Done:
    """Training ended and the report is written."""

    run_dir: Path
    report: dict[str, Any]


@dataclass(frozen=True)
class TrialDone:
    """A tuning trial ended: complete, pruned or failed (its message says why)."""

    number: int
    finished: int  # trials finished so far, this one included
    trials: int  # the number to run: those requested (the grid sampler's at most its grid's size)
    state: str  # complete | pruned | failed
    params: dict[str, Any]
    metric: str
    value: float | None
    best: tuple[int, float] | None  # (trial number, value) of the best trial so far
    seconds: float
    message: str = ""


Event = Warning | Notice | Fold | Start | Epoch | Batch | Done | TrialDone
Events = Callable[[Event], None]


def quiet(event: Event) -> None:
    """Events nobody watches."""
