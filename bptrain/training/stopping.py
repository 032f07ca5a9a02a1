"""Stopping rules the training loop asks: budgets and early stopping (targets and divergence compare with bptrain.config.rules).

Each rule is a small state machine with a state_dict(), so a resumed run stops exactly where an
uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bptrain import metrics


def resolve_mode(monitor: str, mode: str) -> str:
    """`min` or `max` for a watched metric: `auto` maximizes accuracy-like metrics and r2."""
    if mode != "auto":
        return mode
    return "max" if metrics.higher_is_better(monitor) else "min"


@dataclass
class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    Epochs up to `start_from_epoch` are not watched at all.
    """

    monitor: str
    mode: str  # "min" or "max"
    patience: int
    min_delta: float = 0.0
    start_from_epoch: int = 0
    best: float | None = None
    best_epoch: int = 0
    wait: int = 0

    def improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record this epoch's monitored value; True when training should stop."""
        if epoch <= self.start_from_epoch:
            return False
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return False
        self.wait += 1
        return self.wait >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], int(state["best_epoch"]), int(state["wait"])


@dataclass(frozen=True)
class Budget:
    """The limits of a run: epochs, optimizer steps, seconds of training."""

    max_epochs: int
    max_steps: int | None = None
    max_time: float | None = None

    def after_step(self, step: int, seconds: float) -> str | None:
        if self.max_steps is not None and step >= self.max_steps:
            return "max_steps"
        if self.max_time is not None and seconds >= self.max_time:
            return "max_time"
        return None
