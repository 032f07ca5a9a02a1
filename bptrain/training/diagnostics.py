"""Diagnostics: what backpropagation does in each dense layer, epoch by epoch, and the warnings it teaches.

Per dense layer and epoch (one row each, COLUMNS): the L2 norm of the gradient of its weight
matrix W, the norm of W, the update-to-weight ratio ‖ΔW‖ / ‖W‖ of a step, and of the activation
that follows the layer, the share of units that are dead (relu: output 0 for every sampled row,
so no gradient passes; a leaky_relu unit always passes some) or the share of outputs that are
saturated (sigmoid, tanh: within SATURATION_MARGIN of a bound, where the derivative is nearly 0).
They are read after each of the epoch's last SAMPLED_STEPS steps, from what the step leaves
behind: W.grad (the gradient the optimizer used, after regularization and clipping), W, and the
activations the forward pass stored. ΔW needs W from before the step, so W is copied after the
step that precedes a sampled one. grad_norm and update_ratio are means over the sampled steps;
weight_norm is W's at the epoch's end.

The warnings (vanishing and exploding gradients, dead units, an update ratio far from about 1e-3)
are each reported once, at the first epoch where seen, as events.Warning; their thresholds are
the constants below. The state (rows so far, the epoch's sums, the warnings given) is kept in
checkpoints, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bptrain import events
from bptrain.nn.layers import Activation, Dense
from bptrain.training.callbacks import BatchEnd, Callback

if TYPE_CHECKING:
    from bptrain.training.loop import Trainer

COLUMNS = ["epoch", "layer", "grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction"]
SAMPLED_STEPS = 3  # the last steps of each epoch that are measured (all of a shorter epoch)
SATURATING = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}  # the bounds of the output
SATURATION_MARGIN = 0.01  # saturated: within 1% of the output range from a bound (sigmoid' < 0.01, tanh' < 0.04)

# the warnings' thresholds
VANISHING_RATIO = 1e-3  # the first dense layer's grad_norm below this times the last one's
EXPLODING_EPOCHS = 3  # the gradient of all layers together, sqrt(Σ grad_norm²), grew in each of this many epochs in a row
EXPLODING_GROWTH = 2.0  # ... by at least this factor over them
EXPLODING_FACTOR = 10.0  # ... to at least this many times its first epoch's
DEAD_FRACTION = 0.5  # more than this share of a layer's units dead
UPDATE_RATIO_HIGH = 0.1  # a layer's update_ratio above this: the learning rate is likely too high
UPDATE_RATIO_LOW = 1e-5  # every layer's update_ratio below this ...
UPDATE_RATIO_LOW_EPOCHS = 5  # ... in one of the first epochs (later, small steps may mean convergence)


@dataclass
class Watched:
    """One dense layer, and the activation that follows it (None: none, e.g. the output layer)."""

    name: str  # the parameter prefix, as in model.npz: "layers.0"
    dense: Dense
    activation: Activation | None
    before: np.ndarray  # W as it was before the step being measured
    diff: np.ndarray  # scratch for ΔW

    @property
    def kind(self) -> str | None:
        return self.activation.activation if self.activation is not None else None


def watched_layers(model) -> list[Watched]:
    """The model's dense layers, each with the first activation after it (before the next dense layer)."""
    out: list[Watched] = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            out.append(Watched(f"layers.{i}", layer, None, np.empty_like(layer.W.value), np.empty_like(layer.W.value)))
        elif isinstance(layer, Activation) and out and out[-1].activation is None:
            out[-1].activation = layer
    return out


def _total(rows: list[dict]) -> float | None:
    """sqrt(Σ grad_norm²) over an epoch's rows: the gradient of all layers together."""
    norms = [r["grad_norm"] for r in rows]
    return None if any(v is None for v in norms) else math.sqrt(sum(v * v for v in norms))


def _usable_ratio(row: dict) -> bool:
    """Whether a row's update_ratio can be read as the learning rate's doing: it is finite (‖W‖ was
    not 0) and the layer had a gradient."""
    ratio, grad = row["update_ratio"], row["grad_norm"]
    return ratio is not None and math.isfinite(ratio) and grad is not None and grad > 0


def _norm(a: np.ndarray) -> float:
    return math.sqrt(float(np.vdot(a, a)))  # vdot takes the array flat, without a reshaped view


class Epoch:
    """The sums of one epoch's sampled steps, per layer."""

    def __init__(self, layers: list[Watched]):
        self.alive = [np.zeros(w.dense.units, w.dense.W.value.dtype) if w.kind == "relu" else None for w in layers]  # each unit's largest output
        self.saturated = [0 if w.kind in SATURATING else None for w in layers]
        self.reset()

    def reset(self) -> None:
        """Back to no sampled step, for the next epoch (its arrays kept)."""
        self.steps = 0
        self.rows = 0  # sampled rows
        self.grad = [0.0] * len(self.alive)
        self.ratio = [0.0] * len(self.alive)
        for alive in self.alive:
            if alive is not None:
                alive.fill(0)
        self.saturated = [None if s is None else 0 for s in self.saturated]

    def state_dict(self) -> dict:
        return {
            "steps": self.steps,
            "rows": self.rows,
            "grad": list(self.grad),
            "ratio": list(self.ratio),
            "alive": [None if a is None else (a > 0).tolist() for a in self.alive],
            "saturated": list(self.saturated),
        }

    def load_state_dict(self, state: dict) -> None:
        n = len(self.grad)
        for key in ("grad", "ratio", "alive", "saturated"):
            if len(state[key]) != n:
                raise ValueError(f"diagnostics.{key} holds {len(state[key])} layers, but the model has {n} dense layers")
        for i, (mine, theirs) in enumerate(zip(self.alive, state["alive"])):
            if (mine is None) != (theirs is None) or (mine is not None and len(theirs) != len(mine)):
                raise ValueError(f"diagnostics.alive[{i}] does not fit layer {i}'s units and activation")
        self.steps, self.rows = state["steps"], state["rows"]
        self.grad, self.ratio = [float(v) for v in state["grad"]], [float(v) for v in state["ratio"]]
        self.alive = [None if a is None else np.array(a, mine.dtype) for a, mine in zip(state["alive"], self.alive)]
        self.saturated = [None if s is None else int(s) for s in state["saturated"]]


class Diagnostics(Callback):
    """The diagnostics rows of every epoch, to `write` (set once the run folder's log is open), and
    the warnings, to `on_event`."""

    state_key = "diagnostics"

    def __init__(self, model, on_event: Callable[[Any], None] = events.quiet):
        self.on_event = on_event
        self.write: Callable[..., None] | None = None
        self.rows: list[dict] = []
        self.warnings: list[dict] = []  # {"epoch", "kind", "message"}, in the order given
        self.layers = watched_layers(model)
        self.epoch = Epoch(self.layers)
        self.norms: list[float | None] = []  # the gradient of all layers together, by epoch
        self.first = 1  # the first batch of an epoch that is measured, set when training begins

    # --- the hooks ---------------------------------------------------------------------------

    def _first_sampled(self, trainer: Trainer) -> int:
        self.first = max(1, trainer.batches - SAMPLED_STEPS + 1)  # the first batch measured
        return self.first

    def _keep_weights(self) -> None:
        for w in self.layers:
            np.copyto(w.before, w.dense.W.value)

    def on_train_begin(self, trainer: Trainer) -> None:
        batch, first = trainer.position.batch, self._first_sampled(trainer)
        if 0 < batch < trainer.batches and batch + 1 >= first:  # resumed inside the sample
            self._keep_weights()

    def on_epoch_begin(self, trainer: Trainer) -> None:
        if self._first_sampled(trainer) == 1:
            self._keep_weights()

    def on_batch_end(self, trainer: Trainer, batch: BatchEnd) -> None:
        first = self.first
        if batch.batch >= first:
            self._measure()
        elif batch.batch + 1 == first:
            self._keep_weights()

    def _measure(self) -> None:
        """Add the step just taken to the epoch's sums; keep W for the next step's ΔW."""
        epoch = self.epoch
        epoch.steps += 1
        rows = 0
        for i, w in enumerate(self.layers):
            W = w.dense.W
            epoch.grad[i] += _norm(W.grad)
            np.subtract(W.value, w.before, out=w.diff)
            before = _norm(w.before)
            epoch.ratio[i] += _norm(w.diff) / before if before > 0 else math.inf
            np.copyto(w.before, W.value)
            if w.activation is not None and w.activation._a is not None:
                a = w.activation._a
                rows = a.shape[0]
                if epoch.alive[i] is not None:  # relu outputs are >= 0: a unit is dead while its largest is 0
                    np.maximum(epoch.alive[i], a.max(axis=0), out=epoch.alive[i])
                elif epoch.saturated[i] is not None:
                    low, high = SATURATING[w.kind]
                    margin = SATURATION_MARGIN * (high - low)
                    epoch.saturated[i] += int(np.count_nonzero(a <= low + margin) + np.count_nonzero(a >= high - margin))
        epoch.rows += rows

    def on_epoch_end(self, trainer: Trainer, row: dict) -> None:
        rows = self._rows(row["epoch"])
        self.rows += rows
        self.norms.append(_total(rows))
        self.epoch.reset()
        if self.write is not None:
            self.write(*rows)
        for kind, message in self._findings(rows, trainer.position.lr):
            if kind not in {w["kind"] for w in self.warnings}:
                self.warnings.append({"epoch": row["epoch"], "kind": kind, "message": message})
                self.on_event(events.Warning(message))

    def _rows(self, number: int) -> list[dict]:
        epoch, steps = self.epoch, max(self.epoch.steps, 1)
        out = []
        for i, w in enumerate(self.layers):
            alive, saturated = epoch.alive[i], epoch.saturated[i]
            out.append(
                {
                    "epoch": number,
                    "layer": w.name,
                    "grad_norm": epoch.grad[i] / steps if epoch.steps else None,
                    "weight_norm": _norm(w.dense.W.value),
                    "update_ratio": epoch.ratio[i] / steps if epoch.steps else None,
                    "dead_fraction": int(np.count_nonzero(alive <= 0)) / alive.size if alive is not None and epoch.rows else None,
                    "saturated_fraction": saturated / (epoch.rows * w.dense.units) if saturated is not None and epoch.rows else None,
                }
            )
        return out

    # --- the warnings --------------------------------------------------------------------------

    def _findings(self, rows: list[dict], lr: float) -> list[tuple[str, str]]:
        """(kind, message) of each problem this epoch's rows show."""
        found = []
        for check in (self._vanishing, self._exploding, self._dead, self._update_ratio):
            finding = check(rows, lr)
            if finding is not None:
                found.append(finding)
        return found

    def _vanishing(self, rows: list[dict], lr: float) -> tuple[str, str] | None:
        if len(rows) < 2 or rows[0]["grad_norm"] is None or not rows[-1]["grad_norm"]:
            return None
        first, last = rows[0], rows[-1]
        ratio = first["grad_norm"] / last["grad_norm"]
        if not ratio < VANISHING_RATIO:
            return None
        return "vanishing", (
            f"vanishing gradients at epoch {first['epoch']}: the gradient reaching {first['layer']} is {ratio:.1e} times "
            f"the one at {last['layer']} (grad_norm {first['grad_norm']:.2e} against {last['grad_norm']:.2e}; warned below "
            f"{VANISHING_RATIO:g}), so the first layers barely learn: each layer multiplies the gradient on its way back, "
            f"and sigmoid or tanh units shrink it. Try relu activations, fewer layers, or a batch_norm layer between them"
        )

    def _exploding(self, rows: list[dict], lr: float) -> tuple[str, str] | None:
        history, started = self.norms[-(EXPLODING_EPOCHS + 1) :], self.norms[0]
        if len(history) <= EXPLODING_EPOCHS or any(v is None or not math.isfinite(v) for v in history) or not started:
            return None
        growing = all(b > a for a, b in zip(history, history[1:]))
        if not (growing and history[-1] >= EXPLODING_GROWTH * history[0] and history[-1] >= EXPLODING_FACTOR * started):
            return None
        # from 0 (no gradient reached any layer, e.g. every unit dead) the growth has no ratio
        growth = f"{history[-1] / history[0]:.1f} times in all" if history[0] > 0 else "from 0 (no gradient at all)"
        return "exploding", (
            f"exploding gradients at epoch {rows[0]['epoch']}: the gradient of all layers together grew in each of the last "
            f"{EXPLODING_EPOCHS} epochs, {growth}, to {history[-1]:.3g}, "
            f"{history[-1] / started:.0f} times its size in epoch 1 (warned from {EXPLODING_GROWTH:g} and "
            f"{EXPLODING_FACTOR:g} times), so the steps grow and training is likely to diverge. Try a smaller "
            f"optimizer.lr (now {lr:g}), or clip the gradients: training.clip: {{global_norm: 1.0}}"
        )

    def _dead(self, rows: list[dict], lr: float) -> tuple[str, str] | None:
        for row, w in zip(rows, self.layers):
            dead = row["dead_fraction"]
            if dead is not None and dead > DEAD_FRACTION:
                return "dead_units", (
                    f"dead units at epoch {row['epoch']}: {dead:.0%} of the {w.dense.units} {w.kind} units after {row['layer']} "
                    f"output 0 for every sampled row (warned above {DEAD_FRACTION:.0%}), so no gradient flows through them "
                    f"and they no longer learn. Try a smaller optimizer.lr (now {lr:g}), a bias_init of 0 or more, "
                    f"or leaky_relu activations"
                )
        return None

    def _update_ratio(self, rows: list[dict], lr: float) -> tuple[str, str] | None:
        # a ratio says something of the learning rate only where it is defined (W was not all 0) and a
        # gradient moved the weights (with none, e.g. every unit dead, the dead-unit warning speaks)
        ratios = [(r["update_ratio"], r) for r in rows if _usable_ratio(r)]
        if not ratios:
            return None
        high, row = max(ratios, key=lambda pair: pair[0])
        if high > UPDATE_RATIO_HIGH:
            return "update_ratio_high", (
                f"large updates at epoch {row['epoch']}: a step changes {row['layer']}.W by {high:.2g} of its size "
                f"(update_ratio; about 1e-3 is typical, warned above {UPDATE_RATIO_HIGH:g}), so the learning rate is likely "
                f"too high: the weights jump around instead of descending. Try a smaller optimizer.lr (now {lr:g})"
            )
        epoch = rows[0]["epoch"]
        if epoch <= UPDATE_RATIO_LOW_EPOCHS and high < UPDATE_RATIO_LOW and len(ratios) == len(rows):
            return "update_ratio_low", (
                f"tiny updates at epoch {epoch}: a step changes the weights of every layer by at most {high:.2g} of their "
                f"size (update_ratio; about 1e-3 is typical, warned below {UPDATE_RATIO_LOW:g} in the first "
                f"{UPDATE_RATIO_LOW_EPOCHS} epochs), so the learning rate is likely too low: training will crawl. "
                f"Try a larger optimizer.lr (now {lr:g})"
            )
        return None

    # --- the report and the checkpoint ----------------------------------------------------------

    def summary(self) -> dict:
        """report.json's `diagnostics`: the warnings given and the last epoch's rows."""
        last = self.rows[-1]["epoch"] if self.rows else None
        return {"warnings": list(self.warnings), "last_epoch": [r for r in self.rows if r["epoch"] == last]}

    def state_dict(self) -> dict:
        return {"rows": list(self.rows), "warnings": list(self.warnings), "epoch": self.epoch.state_dict()}

    def load_state_dict(self, state: dict | None) -> None:
        """A checkpoint's state; ValueError when it does not fit the model. None (a checkpoint of a run
        without diagnostics, or of an older bptrain): the rows start at the epoch resumed."""
        if state is None:
            return
        self.epoch.load_state_dict(state["epoch"])
        self.rows, self.warnings = list(state["rows"]), list(state["warnings"])
        epochs = sorted({r["epoch"] for r in self.rows})
        self.norms = [_total([r for r in self.rows if r["epoch"] == e]) for e in epochs]
