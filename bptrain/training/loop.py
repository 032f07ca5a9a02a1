"""Training: the one loop (forward, loss, backward, update, per mini-batch), resumable between any two steps.

`Trainer(setup, train, val, callbacks).run()` runs epochs of shuffled mini-batches until a
stopping rule fires, scores the validation split after every epoch and hands each epoch's row of
metrics to the callbacks (bptrain.training.callbacks), which also keep the checkpoints and the logs. Batches
are gathered into buffers allocated once, so the loop allocates nothing per batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from bptrain.data.preprocess import Preprocessor
from bptrain.data.splits import Split
from bptrain.errors import DivergedError, ModelFileError
from bptrain.inference import score
from bptrain.nn.state import check_state
from bptrain.training.callbacks import BatchEnd, Callback, Stop, overriding
from bptrain.training.engine import Engine
from bptrain.training.stopping import Budget, resolve_mode

# --- the learning rate -----------------------------------------------------------------------


class LearningRate:
    """The learning rate of every step, from a schedule of steps or of epochs, or reduce-on-plateau.

    `interval: epoch` schedules are functions of the epoch number (0, 1, ...), so the rate is
    constant within an epoch; `interval: step` schedules are functions of the optimizer step.
    """

    def __init__(self, name: str, lr: float, options: dict):
        from bptrain.nn.schedules import SCHEDULES

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
            pure, checked = rule.__wrapped__, rule.declaration.check(options)  # checked once, not at every step
            self._lr = lambda t: float(pure(t, lr=lr, **checked))
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


@dataclass
class Setup:
    """Everything one training run is made of, as assembly.assemble puts it together from a config."""

    model: Any
    loss: Any
    optimizer: Any
    rate: LearningRate
    prep: Preprocessor | None  # scores the validation split (None: there is none)
    batch_size: int
    shuffle: bool
    rng: np.random.Generator  # shuffles the rows
    budget: Budget
    regularizer: Any = None
    clip: Callable[[list], object] | None = None
    detect_anomaly: bool = False
    engine: Engine = Engine("numpy", "set")  # how the optimizer's update runs (training.engine)


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
        setup: Setup,
        train_split: Split,
        val_split: Split | None,
        callbacks: list[Callback] = (),  # type: ignore[assignment]
        stop_request: StopRequest | None = None,
    ):
        self.setup = setup
        self.model, self.loss, self.optimizer, self.rate = setup.model, setup.loss, setup.optimizer, setup.rate
        self.train_split, self.val_split = train_split, val_split
        self.callbacks = list(callbacks)
        self.stop_request = stop_request or StopRequest()
        n = len(train_split.x)
        self.batch_size = min(setup.batch_size, n)
        # a lone last row sits the epoch out when a layer needs more (a different row each epoch, when shuffled)
        self.batches = epoch_steps(n, self.batch_size, self.model.min_batch_rows > 1)
        self.rows_per_epoch = min(n, self.batches * self.batch_size)
        self.order = np.arange(n)
        self.best_state: dict[str, np.ndarray] | None = None  # kept by the early stopping callback
        self.position = Position(lr=setup.rate.at(0, 0))
        self._clock = self._epoch_start = time.perf_counter()

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
            "early_stopping": None,  # the key is always there; the early stopping callback fills it in
            "rate": self.rate.state_dict(),
            "shuffle_rng": self.setup.rng.bit_generator.state,
            "noise_rng": noise.bit_generator.state if noise is not None else None,
        }
        meta.update({c.state_key: c.state_dict() for c in self.callbacks if c.state_key})
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
        for callback in self.callbacks:
            if callback.state_key:
                callback.load_state_dict(meta.get(callback.state_key))  # None: a checkpoint written without it
        self.rate.load_state_dict(meta["rate"])
        self.setup.rng.bit_generator.state = meta["shuffle_rng"]
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
            stop = self._epoch_stop(pos.rows[-1])
            return stop.reason if stop else None
        return self.setup.budget.after_step(pos.step, pos.seconds) if pos.step else None

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Train until a stopping rule fires; then every callback's on_train_end, the last one first."""
        self._clock = self._epoch_start = time.perf_counter()
        for callback in self.callbacks:
            callback.on_train_begin(self)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite values are caught and reported
            stop = self._loop()
        pos = self.position
        outcome = Outcome(pos.rows, stop.reason, len(pos.rows), pos.step, pos.seconds, stop.message)
        for callback in reversed(self.callbacks):
            callback.on_train_end(self, outcome)
        outcome.seconds = pos.seconds  # the final checkpoint counts its time too
        return outcome

    def sync_time(self) -> None:
        """Add the time since the last call to the training time (position.seconds)."""
        now = time.perf_counter()
        self.position.seconds += now - self._clock
        self._clock = now

    def _loop(self) -> Stop:
        pos = self.position
        if pos.rows and pos.batch == 0:
            stop = self._epoch_stop(pos.rows[-1])
            if stop:
                return stop
        elif pos.batch:  # resumed inside an epoch: a budget of steps or time used up there takes no further step
            stop = self._step_stop()
            if stop:
                return stop
        x, y = self.train_split.x, self.train_split.y
        xb = np.empty((self.batch_size, *x.shape[1:]), dtype=x.dtype)
        yb = np.empty((self.batch_size, *y.shape[1:]), dtype=y.dtype)
        watchers = overriding(self.callbacks, "on_batch_end")
        while True:
            if pos.batch == 0:
                self._begin_epoch()
            stop = self._epoch(xb, yb, watchers)
            if stop:
                return stop
            stop = self._close_epoch()
            if stop:
                return stop

    def _begin_epoch(self) -> None:
        if self.setup.shuffle:
            self.setup.rng.shuffle(self.order)
        for callback in self.callbacks:
            callback.on_epoch_begin(self)

    def _epoch(self, xb: np.ndarray, yb: np.ndarray, watchers: list[Callback]) -> Stop | None:
        """The rest of the epoch in progress, batch by batch, into the buffers xb and yb: forward,
        loss, backward, update, repeat; `watchers` are the callbacks with an on_batch_end."""
        pos, batch_size, batches = self.position, self.batch_size, self.batches
        x, y = self.train_split.x, self.train_split.y
        while pos.batch < batches:
            rows = self.order[pos.batch * batch_size : (pos.batch + 1) * batch_size]
            m = len(rows)
            # the rows are always in range; mode="clip" spares np.take a buffered copy of `out`
            np.take(x, rows, axis=0, out=xb[:m], mode="clip")
            np.take(y, rows, axis=0, out=yb[:m], mode="clip")
            try:
                value = self._step(xb[:m], yb[:m])
            except DivergedError as e:  # from training.detect_anomaly
                return Stop("diverged", str(e))
            if not math.isfinite(value):
                return Stop("diverged", f"training diverged at epoch {pos.epoch}, step {pos.step + 1}: loss became {value}. {self._smaller_lr()}")
            pos.step += 1
            pos.batch += 1
            pos.total += value * m
            self.sync_time()
            if watchers:  # every step, also the last before a stop, so that what they count resumes exactly
                event = BatchEnd(pos.epoch, pos.batch, batches, pos.step)
                for callback in watchers:
                    callback.on_batch_end(self, event)
            stop = self._step_stop()
            if stop:
                return stop
        return None

    def _step_stop(self) -> Stop | None:
        """A signal, or a budget of steps or time used up in the middle of an epoch."""
        if self.stop_request.reason is not None:
            return Stop(self.stop_request.reason)
        over = self.setup.budget.after_step(self.position.step, self.position.seconds)
        return Stop(over) if over and self.position.batch < self.batches else None

    def _smaller_lr(self) -> str:
        return f"Try a smaller optimizer.lr (now {self.position.lr:g})"

    def _step(self, xb: np.ndarray, yb: np.ndarray) -> float:
        """Forward, loss, backward, update for one mini-batch; returns the batch's loss."""
        if self.setup.detect_anomaly:
            return self._checked_step(xb, yb)
        logits = self.model.forward(xb, train=True)  # forward pass
        value, grad = self.loss(logits, yb)  # mean loss and dL/dlogits
        if not math.isfinite(value):
            return value
        self.model.param_grads(grad)  # backward: the chain rule, layer by layer, into every param.grad
        self._update()
        return value

    def _update(self) -> None:
        setup = self.setup
        if setup.regularizer is not None:
            setup.regularizer.add_grad()
        if setup.clip is not None:
            setup.clip(self.model.params)
        self.position.lr = self.rate.at(self.position.step, self.position.epoch - 1)
        self.optimizer.step(self.position.lr)  # the update: only the optimizer changes weights

    def _checked_step(self, xb: np.ndarray, yb: np.ndarray) -> float:
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
        self._update()
        return value

    def _close_epoch(self) -> Stop | None:
        """The epoch's row of metrics, to every callback; then the stopping rules."""
        pos = self.position
        bad = next((p.name for p in self.model.params if not np.isfinite(p.value).all()), None)
        if bad is not None:
            return Stop("diverged", f"training diverged at epoch {pos.epoch}, step {pos.step}: weights {bad} became non-finite. {self._smaller_lr()}")
        row = self._row()
        pos.rows.append(row)
        pos.epoch += 1
        pos.batch = 0
        pos.total = 0.0
        for callback in self.callbacks:
            callback.on_epoch_end(self, row)
        return self._epoch_stop(row)

    def _row(self) -> dict:
        pos = self.position
        row = {"epoch": pos.epoch, "step": pos.step, "lr": pos.lr, "train_loss": pos.total / self.rows_per_epoch}
        if self.setup.regularizer is not None:
            row["penalty"] = self.setup.regularizer.value()
        if self.val_split is not None:
            row.update({f"val_{k}": v for k, v in score(self.model, self.loss, self.setup.prep, self.val_split).items()})
        now = time.perf_counter()
        row["seconds"] = now - self._epoch_start
        self._epoch_start = now
        return row

    def _epoch_stop(self, row: dict) -> Stop | None:
        """The stopping rules asked at the end of an epoch (also on resuming at an epoch's end): the
        callbacks', a signal, the budget; of those that fire, the first in STOP_ORDER."""
        stops = [stop for callback in self.callbacks if (stop := callback.should_stop(self, row))]
        if self.stop_request.reason is not None:
            stops.append(Stop(self.stop_request.reason))
        budget = self.setup.budget
        if row["epoch"] >= budget.max_epochs:
            stops.append(Stop("max_epochs"))
        over = budget.after_step(self.position.step, self.position.seconds)
        if over:
            stops.append(Stop(over))
        return min(stops, key=lambda stop: stop.rank) if stops else None
