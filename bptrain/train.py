"""Training: the one loop (forward, loss, backward, update, per mini-batch), resumable between any two steps.

`Trainer.run()` runs epochs of shuffled mini-batches until a stopping rule fires, scores the
validation split after every epoch, and hands each epoch's row of metrics to `on_epoch` and its
state to `on_checkpoint` at the configured cadence. Batches are gathered into buffers allocated
once, so the loop allocates nothing per batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bptrain.data import Preprocessor, Split
from bptrain.errors import DivergedError, ModelFileError
from bptrain.inference import score
from bptrain.stopping import resolve_mode
from bptrain.nn.layers import BatchNorm
from bptrain.nn.state import check_state

# --- the learning rate -----------------------------------------------------------------------


class LearningRate:
    """The learning rate of every step, from a schedule of steps or of epochs, or reduce-on-plateau.

    `interval: epoch` schedules are functions of the epoch number (0, 1, ...), so the rate is
    constant within an epoch; `interval: step` schedules are functions of the optimizer step.
    """

    def __init__(self, name: str, lr: float, options: dict):
        from bptrain.nn import SCHEDULES

        options = dict(options)
        self.interval = options.pop("interval", "epoch")
        self.monitor = options.pop("monitor", None)
        mode = options.pop("mode", None)
        rule = SCHEDULES.get(name)
        self.plateau = None
        if getattr(rule, "stateful", False):
            self.plateau = rule(lr, mode=resolve_mode(self.monitor, mode or "auto"), **options)
            self.interval = "epoch"
            self._lr = lambda t: self.plateau.lr
        else:
            self._lr = lambda t: float(rule(t, lr=lr, **options))
        self._lr(0)  # options that do not fit together fail here, before training starts

    def at(self, step: int, epoch: int) -> float:
        """The rate for optimizer step `step` (0-based) in epoch `epoch` (0-based)."""
        return self._lr(step if self.interval == "step" else epoch)

    def end_epoch(self, row: dict) -> None:
        if self.plateau is not None:
            self.plateau.step(row[self.monitor])

    def state_dict(self) -> dict:
        return self.plateau.state_dict() if self.plateau is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.plateau is not None:
            self.plateau.load_state_dict(state)


# --- batches per epoch -------------------------------------------------------------------------


def skips_lone_row(rows: int, batch_size: int, batch_norm: bool) -> bool:
    """True when an epoch would end in a batch of one row that batch norm cannot train on."""
    return batch_norm and batch_size < rows and rows % batch_size == 1


def epoch_steps(rows: int, batch_size: int, batch_norm: bool) -> int:
    """Optimizer steps in an epoch of `rows` rows: one per batch of `batch_size` (the last may be
    smaller), less a last batch of one row when the model has batch norm (it is skipped)."""
    batch_size = min(batch_size, rows)
    return math.ceil(rows / batch_size) - int(skips_lone_row(rows, batch_size, batch_norm))


def lone_row_warning(rows: int, batch_size: int, batch_norm: bool) -> str | None:
    """The warning for an epoch whose last batch of one row is skipped, or None when none is."""
    if not skips_lone_row(rows, batch_size, batch_norm):
        return None
    below = [b for b in range(batch_size - 1, 1, -1) if rows % b != 1][:1]
    above = [b for b in range(batch_size + 1, rows + 1) if rows % b != 1][:1]
    return (
        f"batch_norm: the last batch of each epoch would hold 1 row ({rows} training rows, training.batch_size "
        f"{batch_size}); it is skipped, since batch norm needs 2 rows, so an epoch takes "
        f"{epoch_steps(rows, batch_size, batch_norm)} steps; choose a batch_size that does not leave 1 row, "
        f"e.g. {' or '.join(map(str, below + above))}"
    )


# --- the loop -------------------------------------------------------------------------------


class StopRequest:
    """Set by a signal handler (an assignment, nothing more); the loop stops after the current step."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.run_dir = None  # set once the run has a folder, for the message of a second Ctrl-C

    def set(self, reason: str) -> None:
        self.reason = reason


@dataclass(frozen=True)
class Cadence:
    """When to write a checkpoint: every N epochs, every N steps, every T seconds (any that are set)."""

    every_epochs: int | None = 1
    every_steps: int | None = None
    every_seconds: float | None = None


@dataclass
class Position:
    """Where training is: everything besides arrays that a resumed run needs to continue exactly."""

    epoch: int = 1  # the epoch in progress, from 1
    batch: int = 0  # batches of it done
    step: int = 0  # optimizer steps done in all
    total: float = 0.0  # loss summed over this epoch's rows so far
    lr: float = 0.0
    seconds: float = 0.0  # training time so far, over all processes
    rows: list[dict] = field(default_factory=list)


@dataclass
class Outcome:
    rows: list[dict]
    stop_reason: str
    best_epoch: int
    steps: int
    seconds: float
    message: str = ""

    @property
    def epochs_run(self) -> int:
        return len(self.rows)


class Trainer:
    """Runs the loop of one training run; its state can be saved and restored between any two steps."""

    def __init__(
        self,
        model,
        loss,
        optimizer,
        rate: LearningRate,
        prep: Preprocessor,
        train_split: Split,
        val_split: Split | None,
        *,
        batch_size: int,
        shuffle: bool,
        rng: np.random.Generator,
        budget,
        early_stopping=None,
        restore_best: bool = True,
        targets: tuple = (),
        divergence: tuple = (),
        regularizer=None,
        clip: Callable[[list], object] | None = None,
        detect_anomaly: bool = False,
        cadence: Cadence = Cadence(),
        stop_request: StopRequest | None = None,
        on_epoch: Callable[[dict], None] = lambda row: None,
        on_batch: Callable[[int, int, int], None] = lambda epoch, batch, batches: None,
        on_checkpoint: Callable[["Trainer"], None] = lambda trainer: None,
    ):
        self.model, self.loss, self.optimizer, self.rate, self.prep = model, loss, optimizer, rate, prep
        self.train_split, self.val_split = train_split, val_split
        self.shuffle, self.rng, self.budget = shuffle, rng, budget
        self.early_stopping, self.restore_best = early_stopping, restore_best
        self.targets, self.divergence = tuple(targets), tuple(divergence)
        self.regularizer, self.clip, self.detect_anomaly = regularizer, clip, detect_anomaly
        self.cadence, self.stop_request = cadence, stop_request or StopRequest()
        self.on_epoch, self.on_batch, self.on_checkpoint = on_epoch, on_batch, on_checkpoint

        n = len(train_split.x)
        self.batch_size = min(batch_size, n)
        # a lone last row sits the epoch out under batch norm (a different row each epoch, when shuffled)
        self.batches = epoch_steps(n, self.batch_size, any(isinstance(layer, BatchNorm) for layer in model.layers))
        self.rows_per_epoch = min(n, self.batches * self.batch_size)
        self.order = np.arange(n)
        self.best_state: dict[str, np.ndarray] | None = None
        self.position = Position(lr=rate.at(0, 0))

    # --- saving and restoring ----------------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays and JSON-able metadata holding everything needed to continue exactly."""
        arrays = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        arrays.update({f"optim/{k}": v for k, v in self.optimizer.state_dict().items()})
        if self.best_state is not None:
            arrays.update({f"best/{k}": v for k, v in self.best_state.items()})
        arrays["order"] = self.order
        noise = getattr(self.model, "noise_rng", None)
        meta = {
            "position": self.position.__dict__,
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping else None,
            "rate": self.rate.state_dict(),
            "shuffle_rng": self.rng.bit_generator.state,
            "noise_rng": noise.bit_generator.state if noise is not None else None,
        }
        return arrays, meta

    def restore(self, arrays: dict[str, np.ndarray], meta: dict, source="checkpoint", columns: list[str] | None = None) -> None:
        """Continue from `state()`'s arrays and metadata (their schema already checked); ModelFileError
        naming `source` when they do not fit this run's model, optimizer, data or metrics `columns`."""
        try:
            self._restore(arrays, meta, columns)
        except (ValueError, TypeError) as e:
            raise ModelFileError(f"{source}: unusable bptrain checkpoint file: {e}; was it written by bptrain fit for this run?") from None

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict, columns: list[str] | None) -> None:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

        for name, array in arrays.items():
            if name.startswith(("model/", "best/")) and not np.isfinite(array).all():
                raise ValueError(f"array {name!r} holds non-finite values (NaN or infinity)")
        self.model.load_state_dict(part("model/"))
        self.optimizer.load_state_dict(part("optim/"))
        self.best_state = part("best/") or None
        if self.best_state is not None:
            check_state(self.model.state_dict(), self.best_state, "best weights")
        if not np.array_equal(np.sort(arrays["order"]), np.arange(len(self.order))):
            raise ValueError(f"array 'order' is not an order of the {len(self.order)} training rows")
        np.copyto(self.order, arrays["order"])
        self.position = Position(**meta["position"])
        self._check_position(columns)
        if self.early_stopping is not None and meta["early_stopping"] is not None:
            self.early_stopping.load_state_dict(meta["early_stopping"])
        self.rate.load_state_dict(meta["rate"])
        self.rng.bit_generator.state = meta["shuffle_rng"]
        noise = getattr(self.model, "noise_rng", None)
        if noise is not None and meta["noise_rng"] is not None:
            noise.bit_generator.state = meta["noise_rng"]

    def _check_position(self, columns: list[str] | None) -> None:
        """ValueError when the position cannot be one of this run's: batches, epochs and rows must agree."""
        pos = self.position
        if pos.batch > self.batches:
            raise ValueError(f"position.batch is {pos.batch}, but an epoch of this run has {self.batches} batches")
        if len(pos.rows) != pos.epoch - 1:
            raise ValueError(f"position.rows holds {len(pos.rows)} epochs, but position.epoch {pos.epoch} needs {pos.epoch - 1}")
        for i, row in enumerate(pos.rows):
            if row.get("epoch") != i + 1:
                raise ValueError(f"position.rows[{i}] is the row of epoch {row.get('epoch')}, not of epoch {i + 1}")
            if columns is not None and sorted(row) != sorted(columns):
                raise ValueError(f"position.rows[{i}] has the columns {', '.join(row)}, but this run logs {', '.join(columns)}")

    def pending_stop(self) -> str | None:
        """The stopping rule a restored state has already met (resuming it would train nothing), if any."""
        pos = self.position
        if pos.rows and pos.batch == 0:
            stop = self._after_epoch(pos.rows[-1], resumed=True)
            return stop[0] if stop else None
        return self.budget.after_step(pos.step, pos.seconds) if pos.step else None

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Train until a stopping rule fires; the final state is checkpointed (before restoring the best weights)."""
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values are caught and reported
            reason, message = self._loop()
        if reason != "diverged":
            self.checkpoint()
        best_epoch = self.early_stopping.best_epoch if self.early_stopping else len(self.position.rows)
        if self.restore_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return Outcome(self.position.rows, reason, best_epoch or len(self.position.rows), self.position.step, self.position.seconds, message)

    def checkpoint(self) -> None:
        """Hand the state to on_checkpoint, unless a weight is non-finite: the last good checkpoint stays."""
        if not all(np.isfinite(p.value).all() for p in self.model.params):
            return
        self._sync_time()
        self._last_checkpoint = time.perf_counter()
        self.on_checkpoint(self)

    def _sync_time(self) -> None:
        now = time.perf_counter()
        self.position.seconds += now - self._clock
        self._clock = now

    def _loop(self) -> tuple[str, str]:
        pos, cadence = self.position, self.cadence
        x, y = self.train_split.x, self.train_split.y
        xb = np.empty((self.batch_size, *x.shape[1:]), dtype=x.dtype)
        yb = np.empty((self.batch_size, *y.shape[1:]), dtype=y.dtype)
        params = self.model.params
        self._clock = self._last_checkpoint = self._epoch_start = time.perf_counter()
        if pos.rows and pos.batch == 0:
            stop = self._after_epoch(pos.rows[-1], resumed=True)
            if stop:
                return stop
        if pos.step == 0:
            self.checkpoint()  # so that a good checkpoint and model exist even if the first steps diverge
        while True:
            if pos.batch == 0 and self.shuffle:
                self.rng.shuffle(self.order)
            while pos.batch < self.batches:
                rows = self.order[pos.batch * self.batch_size : (pos.batch + 1) * self.batch_size]
                m = len(rows)
                np.take(x, rows, axis=0, out=xb[:m])
                np.take(y, rows, axis=0, out=yb[:m])
                try:
                    value = self._step(xb[:m], yb[:m], params)
                except DivergedError as e:  # from training.detect_anomaly
                    return "diverged", str(e)
                if not math.isfinite(value):
                    return "diverged", (
                        f"training diverged at epoch {pos.epoch}, step {pos.step + 1}: loss became {value}. "
                        f"Try a smaller optimizer.lr (now {pos.lr:g})"
                    )
                pos.step += 1
                pos.batch += 1
                pos.total += value * m
                self.on_batch(pos.epoch, pos.batch, self.batches)
                self._sync_time()
                if self.stop_request.reason is not None:
                    return self.stop_request.reason, ""
                over = self.budget.after_step(pos.step, pos.seconds)
                if over and pos.batch < self.batches:
                    return over, ""
                if (cadence.every_steps and pos.step % cadence.every_steps == 0) or (
                    cadence.every_seconds and time.perf_counter() - self._last_checkpoint >= cadence.every_seconds
                ):
                    self.checkpoint()
            stop = self._close_epoch(params)
            if stop:
                return stop

    def _step(self, xb: np.ndarray, yb: np.ndarray, params) -> float:
        """Forward, loss, backward, update for one mini-batch; returns the batch's loss."""
        if self.detect_anomaly:
            return self._checked_step(xb, yb, params)
        logits = self.model.forward(xb, train=True)  # forward pass
        value, grad = self.loss(logits, yb)  # mean loss and dL/dlogits
        if not math.isfinite(value):
            return value
        self.model.backward(grad)  # the chain rule, layer by layer: every param.grad
        self._update(params)
        return value

    def _update(self, params) -> None:
        if self.regularizer is not None:
            self.regularizer.add_grad()
        if self.clip is not None:
            self.clip(params)
        self.position.lr = self.rate.at(self.position.step, self.position.epoch - 1)
        self.optimizer.step(self.position.lr)  # the update: only the optimizer changes weights

    def _checked_step(self, xb: np.ndarray, yb: np.ndarray, params) -> float:
        """The same step, layer by layer, stopping at the first non-finite value (training.detect_anomaly)."""
        pos = self.position
        where = f"at epoch {pos.epoch}, step {pos.step + 1}"
        out = xb
        for i, layer in enumerate(self.model.layers):
            out = layer.forward(out, train=True)
            if not np.isfinite(out).all():
                raise DivergedError(f"non-finite value in the forward pass of layers.{i} ({type(layer).__name__}) {where}")
        value, grad = self.loss(out, yb)
        if not math.isfinite(value):
            raise DivergedError(f"non-finite loss {value} {where}, from finite logits")
        for i in reversed(range(len(self.model.layers))):
            layer = self.model.layers[i]
            grad = layer.backward(grad)
            bad = [p.name for p in layer.params if not np.isfinite(p.grad).all()]
            if bad or not np.isfinite(grad).all():
                what = f"the gradient of {bad[0]}" if bad else "the gradient it passes down"
                raise DivergedError(f"non-finite value in the backward pass of layers.{i} ({type(layer).__name__}): {what} {where}")
        self._update(params)
        return value

    def _close_epoch(self, params) -> tuple[str, str] | None:
        pos = self.position
        bad = next((p.name for p in params if not np.isfinite(p.value).all()), None)
        if bad is not None:
            return "diverged", (
                f"training diverged at epoch {pos.epoch}, step {pos.step}: weights {bad} became non-finite. "
                f"Try a smaller optimizer.lr (now {pos.lr:g})"
            )
        row = {"epoch": pos.epoch, "step": pos.step, "lr": pos.lr, "train_loss": pos.total / self.rows_per_epoch}
        if self.regularizer is not None:
            row["penalty"] = self.regularizer.value()
        if self.val_split is not None:
            row.update({f"val_{k}": v for k, v in score(self.model, self.loss, self.prep, self.val_split).items()})
        now = time.perf_counter()
        row["seconds"] = now - self._epoch_start
        self._epoch_start = now
        pos.rows.append(row)
        pos.epoch += 1
        pos.batch = 0
        pos.total = 0.0
        self.on_epoch(row)
        self.rate.end_epoch(row)
        if self.early_stopping is not None:
            stop = self.early_stopping.update(row["epoch"], row[self.early_stopping.monitor])
            if self.early_stopping.best_epoch == row["epoch"] and self.restore_best:
                self.best_state = self.model.state_dict()
        else:
            stop = False
        if self.cadence.every_epochs and row["epoch"] % self.cadence.every_epochs == 0:
            self.checkpoint()
        return self._after_epoch(row, early=stop)

    def _after_epoch(self, row: dict, early: bool = False, resumed: bool = False) -> tuple[str, str] | None:
        """The stopping rules asked at the end of an epoch (also on resuming at an epoch's end)."""
        pos = self.position
        for rule in self.divergence:
            if rule.holds(row):
                return "diverged", f"training diverged at epoch {row['epoch']}: {rule.metric} = {row[rule.metric]:g} met the divergence rule {rule}"
        if self.stop_request.reason is not None:
            return self.stop_request.reason, ""
        if any(rule.holds(row) for rule in self.targets):
            return "target", ""
        if early or (resumed and self.early_stopping and self.early_stopping.wait >= self.early_stopping.patience):
            return "early_stopping", ""
        if row["epoch"] >= self.budget.max_epochs:
            return "max_epochs", ""
        over = self.budget.after_step(pos.step, pos.seconds)
        return (over, "") if over else None
