"""Callbacks: what the training loop does besides learning (stopping rules, checkpoints, logs, progress), at its hooks.

A callback overrides any of the hooks below; the loop calls them in list order, except
on_train_end, which runs in reverse order (the last to begin is the first to end), so that the
final checkpoint is written before early stopping puts back the best weights. A callback asks
the loop to stop in one way only: `should_stop` returns a `Stop`. When several rules fire at the
end of the same epoch, the reason that comes first in STOP_ORDER wins. A callback with a
`state_key` keeps its state in the checkpoint's metadata under that key, so a resumed run
continues exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np

from bptrain import events
from bptrain.config.rules import Condition
from bptrain.training.stopping import EarlyStopping as EarlyStoppingRule

if TYPE_CHECKING:
    from bptrain.training.loop import Outcome, Trainer

# the reason a run gives when several rules fire at the end of one epoch: the first of these
STOP_ORDER = ("diverged", "interrupted", "terminated", "pruned", "target", "early_stopping", "max_epochs", "max_steps", "max_time")


@dataclass(frozen=True)
class Stop:
    """A request to end training: why (a report's stop_reason) and, for a divergence, what happened."""

    reason: str
    message: str = ""

    @property
    def rank(self) -> int:
        return STOP_ORDER.index(self.reason) if self.reason in STOP_ORDER else STOP_ORDER.index("interrupted")


class BatchEnd(NamedTuple):
    """One optimizer step done: batch `batch` of `batches` in epoch `epoch` (from 1), `step` steps in all
    (a tuple: made at every step, it costs a third of a frozen dataclass)."""

    epoch: int
    batch: int
    batches: int
    step: int


class Callback:
    """No-op hooks; subclasses override the ones they need."""

    state_key: str | None = None  # the checkpoint metadata key of state_dict(), if the callback has state

    def on_train_begin(self, trainer: Trainer) -> None:
        pass

    def on_epoch_begin(self, trainer: Trainer) -> None:
        pass

    def on_batch_end(self, trainer: Trainer, batch: BatchEnd) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        pass

    def should_stop(self, trainer: Trainer, row: dict) -> Stop | None:
        """Asked after every epoch's on_epoch_end, and on resuming at an epoch's end (without on_epoch_end)."""
        return None

    def on_train_end(self, trainer: Trainer, outcome: Outcome) -> None:
        pass

    def state_dict(self) -> Any:
        return None

    def load_state_dict(self, state: Any) -> None:
        pass


def overriding(callbacks: list[Callback], hook: str) -> list[Callback]:
    """The callbacks whose `hook` does something, so that the loop calls no no-op per batch."""
    return [c for c in callbacks if getattr(type(c), hook) is not getattr(Callback, hook)]


# --- the stopping rules --------------------------------------------------------------------------


class EarlyStopping(Callback):
    """stopping.early_stopping: stop when the monitored metric stops improving; keep (and, with
    restore_best, put back at the end) the weights of the best epoch."""

    state_key = "early_stopping"

    def __init__(self, rule: EarlyStoppingRule, restore_best: bool = True):
        self.rule, self.restore_best = rule, restore_best

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        self.rule.update(row["epoch"], row[self.rule.monitor])
        if self.rule.best_epoch == row["epoch"] and self.restore_best:
            trainer.best_state = trainer.model.state_dict()

    def should_stop(self, trainer: Trainer, row: dict) -> Stop | None:
        return Stop("early_stopping") if self.rule.wait >= self.rule.patience else None

    def on_train_end(self, trainer: Trainer, outcome: Outcome) -> None:
        outcome.best_epoch = self.rule.best_epoch or outcome.best_epoch
        if self.restore_best and trainer.best_state is not None:
            trainer.model.load_state_dict(trainer.best_state)

    def state_dict(self) -> dict:
        return self.rule.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        if state is not None:
            self.rule.load_state_dict(state)


class ReduceOnPlateau(Callback):
    """Hands each epoch's row to the learning rate (schedule: reduce_on_plateau); its state is the rate's."""

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        trainer.rate.end_epoch(row)


class Targets(Callback):
    """stopping.target: stop once any of the rules holds on an epoch's row."""

    def __init__(self, rules: tuple[Condition, ...]):
        self.rules = tuple(rules)

    def should_stop(self, trainer: Trainer, row: dict) -> Stop | None:
        return Stop("target") if any(rule.holds(row) for rule in self.rules) else None


class Divergence(Callback):
    """stopping.divergence: stop, as diverged, once a rule holds on an epoch's row (the first one that does)."""

    def __init__(self, rules: tuple[Condition, ...]):
        self.rules = tuple(rules)

    def should_stop(self, trainer: Trainer, row: dict) -> Stop | None:
        for rule in self.rules:
            if rule.holds(row):
                message = f"training diverged at epoch {row['epoch']}: {rule.metric} = {row[rule.metric]:g} met the divergence rule {rule}"
                return Stop("diverged", message)
        return None


# --- checkpoints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    """When to write a checkpoint: every N epochs, every N steps, every T seconds (any that are set);
    the defaults are the config's (training.checkpoint)."""

    every_epochs: int | None = None
    every_steps: int | None = None
    every_seconds: float | None = 60.0


class Checkpointing(Callback):
    """Hands the trainer to `save` at the start of a new run, at the cadence, and at the end unless
    training diverged; never while a weight is non-finite, so the last good checkpoint stays."""

    def __init__(self, save: Callable[[Trainer], None], cadence: Cadence = Cadence()):
        self.save, self.cadence = save, cadence
        self._last = time.perf_counter()

    def on_train_begin(self, trainer: Trainer) -> None:
        self._last = time.perf_counter()
        if trainer.position.step == 0:  # so that a good checkpoint and model exist even if the first steps diverge
            self.checkpoint(trainer)

    def on_batch_end(self, trainer: Trainer, batch: BatchEnd) -> None:
        every_steps, every_seconds = self.cadence.every_steps, self.cadence.every_seconds
        if (every_steps and batch.step % every_steps == 0) or (every_seconds and time.perf_counter() - self._last >= every_seconds):
            self.checkpoint(trainer)

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        if self.cadence.every_epochs and row["epoch"] % self.cadence.every_epochs == 0:
            self.checkpoint(trainer)

    def on_train_end(self, trainer: Trainer, outcome: Outcome) -> None:
        if outcome.stop_reason != "diverged":
            self.checkpoint(trainer)

    def checkpoint(self, trainer: Trainer) -> None:
        if not all(np.isfinite(p.value).all() for p in trainer.model.params):
            return
        trainer.sync_time()
        self._last = time.perf_counter()
        self.save(trainer)


# --- reporting -----------------------------------------------------------------------------------


BATCH_EVENT_SECONDS = 0.1  # the least time between two events.Batch


class ProgressEvents(Callback):
    """Reports each epoch's row to `on_event` (bptrain.events), for the command line, and where an
    epoch is in its batches, at most every BATCH_EVENT_SECONDS."""

    def __init__(self, on_event: Callable[[Any], None], epochs: int):
        self.on_event, self.epochs = on_event, epochs
        self._next = time.perf_counter() + BATCH_EVENT_SECONDS

    def on_batch_end(self, trainer: Trainer, batch: BatchEnd) -> None:
        now = time.perf_counter()
        if now >= self._next:
            self._next = now + BATCH_EVENT_SECONDS
            self.on_event(events.Batch(batch.epoch, batch.batch, batch.batches))

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        self.on_event(events.Epoch(row, self.epochs))
