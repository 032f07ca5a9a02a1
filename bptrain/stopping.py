"""Stopping rules the training loop asks: budgets, early stopping, targets and divergence thresholds.

Each rule is a small state machine with a state_dict(), so a resumed run stops exactly where an
uninterrupted one would.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from bptrain import metrics

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def parse_duration(value: float | int | str) -> float:
    """Seconds from 90, "90s", "10m", "2h" or "1h30m"; ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"must be a positive number of seconds (got {value})")
        return float(value)
    text = str(value).strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smhd])", "", text).strip():
        raise ValueError(f"must be a duration such as 90s, 10m, 2h or 1h30m (got {value!r})")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"must be positive (got {value!r})")
    return seconds


def resolve_mode(monitor: str, mode: str) -> str:
    """`min` or `max` for a watched metric: `auto` maximizes accuracy-like metrics and r2."""
    if mode != "auto":
        return mode
    return "max" if metrics.higher_is_better(monitor) else "min"


@dataclass(frozen=True)
class Condition:
    """`metric op value`, e.g. val_accuracy >= 0.99, checked on an epoch's row of metrics."""

    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, metric: str, text: str | float) -> "Condition":
        match = re.fullmatch(r"\s*(>=|<=|>|<)\s*([-+0-9.eEinf]+)\s*", str(text))
        try:
            value = float(match.group(2)) if match else math.nan
        except ValueError:
            value = math.nan
        if not match or math.isnan(value):
            raise ValueError(f"must be a comparison such as '>= 0.99' or '< 0.01' (got {text!r})")
        return cls(metric, match.group(1), value)

    def holds(self, row: dict) -> bool:
        value = row.get(self.metric)
        return value is not None and not math.isnan(value) and _OPERATORS[self.op](value, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


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
