"""Training: the one loop (forward, loss, backward, update, per mini-batch), and the stopping rules.

`train()` runs epochs of shuffled mini-batches until a stopping rule fires, scores the validation
split after every epoch, and hands each epoch's row of metrics to `on_epoch`. Batches are gathered
into buffers allocated once, so the loop allocates nothing per batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bptrain import metrics
from bptrain.data import Preprocessor, Split
from bptrain.errors import DivergedError
from bptrain.nn.layers import BatchNorm

EVAL_CHUNK = 4096


# --- inference ------------------------------------------------------------------------------


def outputs(model, loss, x: np.ndarray, chunk: int = EVAL_CHUNK) -> np.ndarray:
    """The model's predictions for `x` in output space (probabilities or standardized values)."""
    parts = [loss.link(model.forward(x[i : i + chunk], train=False)) for i in range(0, len(x), chunk)]
    return np.concatenate(parts) if parts else np.empty((0, 1))


def probabilities(out: np.ndarray) -> np.ndarray:
    """One column per class: a single sigmoid column p becomes [1 - p, p]."""
    return np.hstack([1.0 - out, out]) if out.shape[1] == 1 else out


def loss_value(model, loss, x: np.ndarray, y: np.ndarray, chunk: int = EVAL_CHUNK) -> float:
    """The mean loss over all rows, in evaluation mode."""
    total = 0.0
    for i in range(0, len(x), chunk):
        value, _ = loss(model.forward(x[i : i + chunk], train=False), y[i : i + chunk])
        total += value * len(x[i : i + chunk])
    return total / len(x)


def score(model, loss, prep: Preprocessor, split: Split) -> dict[str, float]:
    """`loss` and the task's metrics of `model` on one split."""
    out = outputs(model, loss, split.x)
    result = {"loss": loss_value(model, loss, split.x, split.y)}
    if prep.task == "classification":
        result.update(metrics.classification(split.labels, probabilities(out)))
    else:
        result.update(metrics.regression(prep.target_values(split.frame), unscale(prep, out)))
    return result


def unscale(prep: Preprocessor, out: np.ndarray) -> np.ndarray:
    """Regression outputs back in the target's original units."""
    return out.astype(np.float64) * prep.target_scale + prep.target_mean


# --- stopping -------------------------------------------------------------------------------


@dataclass
class EarlyStopping:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs."""

    monitor: str
    mode: str  # "min" or "max"
    patience: int
    min_delta: float = 0.0
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
        if self.improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return False
        self.wait += 1
        return self.wait >= self.patience


def resolve_mode(monitor: str, mode: str) -> str:
    if mode != "auto":
        return mode
    return "max" if metrics.higher_is_better(monitor) else "min"


# --- the learning rate -----------------------------------------------------------------------


class LearningRate:
    """The learning rate of every step, from a schedule of steps or of epochs, or reduce-on-plateau.

    `interval: epoch` schedules are functions of the epoch number (0, 1, ...), so the rate is
    constant within an epoch; `interval: step` schedules are functions of the optimizer step.
    `total`, when a schedule needs one and none is given, is the whole run: training.epochs
    epochs, or that many epochs of steps.
    """

    def __init__(self, name: str, lr: float, options: dict, *, epochs: int, steps_per_epoch: int):
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
            if "total" in options and options["total"] is None:
                options["total"] = epochs if self.interval == "epoch" else epochs * steps_per_epoch
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


def constant_rate(lr: float) -> LearningRate:
    return LearningRate("constant", lr, {}, epochs=1, steps_per_epoch=1)


# --- the loop -------------------------------------------------------------------------------


@dataclass
class Outcome:
    rows: list[dict] = field(default_factory=list)
    stop_reason: str = "max_epochs"
    best_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0

    @property
    def epochs_run(self) -> int:
        return len(self.rows)


def train(*args, **kwargs) -> Outcome:
    """Train `model` in place; return the per-epoch rows and why training stopped.

    Overflow warnings are silenced: a non-finite loss or weight stops training with DivergedError.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _train(*args, **kwargs)


def _train(
    model,
    loss,
    optimizer,
    rate: LearningRate,
    prep: Preprocessor,
    train_split: Split,
    val_split: Split | None,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    rng: np.random.Generator,
    early_stopping: EarlyStopping | None = None,
    restore_best: bool = True,
    regularizer=None,
    clip: Callable[[list], object] | None = None,
    on_epoch: Callable[[dict], None] = lambda row: None,
    on_batch: Callable[[int, int, int], None] = lambda epoch, batch, batches: None,
) -> Outcome:
    x, y = train_split.x, train_split.y
    n = len(x)
    batch_size = min(batch_size, n)
    xb = np.empty((batch_size, *x.shape[1:]), dtype=x.dtype)
    yb = np.empty((batch_size, *y.shape[1:]), dtype=y.dtype)
    order = np.arange(n)
    batches = math.ceil(n / batch_size)
    if n % batch_size == 1 and any(isinstance(layer, BatchNorm) for layer in model.layers):
        batches -= 1  # batch norm cannot train on a lone row: it sits this epoch out (a different row each epoch)
    used = min(n, batches * batch_size)
    params = model.params
    outcome = Outcome()
    best_state = None
    started = time.perf_counter()
    step = 0
    lr = rate.at(0, 0)

    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        if shuffle:
            rng.shuffle(order)
        total = 0.0
        for b in range(batches):
            rows = order[b * batch_size : (b + 1) * batch_size]
            m = len(rows)
            np.take(x, rows, axis=0, out=xb[:m])
            np.take(y, rows, axis=0, out=yb[:m])
            logits = model.forward(xb[:m], train=True)  # forward pass
            value, grad = loss(logits, yb[:m])  # loss and dL/dlogits
            if not math.isfinite(value):
                raise DivergedError(
                    f"training diverged at epoch {epoch}, step {step + 1}: loss became {value}. "
                    f"Try a smaller optimizer.lr (now {lr:g})"
                )
            model.backward(grad)  # chain rule, layer by layer: every param.grad
            if regularizer is not None:
                regularizer.add_grad()
            if clip is not None:
                clip(params)
            lr = rate.at(step, epoch - 1)
            optimizer.step(lr)  # the update
            step += 1
            total += value * m
            on_batch(epoch, b + 1, batches)

        bad = next((p.name for p in params if not np.isfinite(p.value).all()), None)
        if bad is not None:
            raise DivergedError(
                f"training diverged at epoch {epoch}, step {step}: weights {bad} became non-finite. "
                f"Try a smaller optimizer.lr (now {lr:g})"
            )
        row = {"epoch": epoch, "step": step, "lr": lr, "train_loss": total / used}
        if regularizer is not None:
            row["penalty"] = regularizer.value()
        if val_split is not None:
            row.update({f"val_{k}": v for k, v in score(model, loss, prep, val_split).items()})
        row["seconds"] = time.perf_counter() - epoch_start
        outcome.rows.append(row)
        on_epoch(row)
        rate.end_epoch(row)

        if early_stopping is None:
            outcome.best_epoch = epoch
            continue
        stop = early_stopping.update(epoch, row[early_stopping.monitor])
        if early_stopping.best_epoch == epoch:
            best_state = model.state_dict() if restore_best else None
        if stop:
            outcome.stop_reason = "early_stopping"
            break

    if early_stopping is not None:
        outcome.best_epoch = early_stopping.best_epoch or outcome.epochs_run
        if restore_best and best_state is not None:
            model.load_state_dict(best_state)
    outcome.steps = step
    outcome.seconds = time.perf_counter() - started
    return outcome
