"""Learning-rate schedules: pure functions f(t, *, lr, **options) -> the learning rate at step t.

t = 0, 1, 2, ... counts whatever the caller steps on (optimizer steps or epochs); lr is the base
(peak) learning rate. Every function returns a Python float; its options are declared when it is
registered (nn.options), and the registered function checks them, raising OptionError for a bad
option whatever t is, so f(0, lr=lr, **options) checks a config. Each matches the PyTorch
scheduler named in its docstring, stepped once per t.

One schedule is not a function of t: ReduceOnPlateau follows a monitored value. It is a class,
registered with `stateful = True` (every function has `stateful = False`).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import replace
from functools import wraps
from numbers import Integral
from typing import Any

from bptrain.nn.names import Registry
from bptrain.nn.options import ABOVE_0, AT_LEAST_0, AT_LEAST_1, OPEN_UNIT, REQUIRED, Option, Range, Rule

SCHEDULES = Registry("schedule", label="{name}")


def _interval(default: str) -> Option:
    return Option(
        "interval", "choice", "what t counts: epochs, or optimizer steps", default, choices=("epoch", "step"), nn=False
    )


def _increasing(value: Any) -> list[int]:
    ok = isinstance(value, (list, tuple)) and all(isinstance(m, Integral) and not isinstance(m, bool) for m in value)
    if not ok or not value or value[0] < 1 or any(a >= b for a, b in zip(value, value[1:])):
        raise ValueError(value)
    return list(value)


GAMMA = Option("gamma", "number", "factor applied at each decay", 0.1, ABOVE_0)
MIN_LR = Option("min_lr", "number", "the lowest rate", 0.0, AT_LEAST_0)
TOTAL = Option(
    "total", "integer", "length of the schedule (null: the whole run)", range=AT_LEAST_1,
    config="Count | None", config_default=None, shown="an integer >= 1, or `null`",
)
WARMUP = Option("warmup", "integer", "length of the linear warm-up", 0, Range(0))
WARMUP_BEFORE_TOTAL = Rule(
    "warmup must be < total", lambda o: o["warmup"] >= o["total"], lambda o: f"warmup={o['warmup']}, total={o['total']}"
)
RISE = Rule(
    "pct_start * total must be > 1, so the rise has a step to take",
    lambda o: o["pct_start"] * o["total"] <= 1.0,
    lambda o: f"{o['pct_start']!r} * {o['total']} = {o['pct_start'] * o['total']:g}",
)
LAST_PHASE = Rule(
    "with three_phase, 2 * pct_start * total must be < total + 1, so the last phase has a step to take",
    lambda o: o["three_phase"] and 2.0 * o["pct_start"] * o["total"] - 2.0 >= o["total"] - 1,
    lambda o: f"2 * {o['pct_start']!r} * {o['total']} = {2.0 * o['pct_start'] * o['total']:g}",
)


def _schedule(name: str, *options: Option, rules: tuple[Rule, ...] = (), doc: str):
    """Register a pure schedule function under `name`, marked stateful = False; calling it checks its options."""

    def add(fn):
        @wraps(fn)
        def checked(t: int, *, lr: float, **given: Any) -> float:
            return fn(t, lr=lr, **checked.declaration.check(given))

        checked.stateful = False
        return SCHEDULES.register(name, *options, rules=rules, doc=doc)(checked)

    return add


# --- the schedules --------------------------------------------------------------------------------


@_schedule("constant", doc="`lr`")
def constant(t: int, *, lr: float) -> float:
    """lr at every step."""
    return float(lr)


@_schedule(
    "step",
    Option("step_size", "integer", "steps (or epochs) between decays", range=AT_LEAST_1),
    GAMMA,
    _interval("epoch"),
    doc="`lr · gamma^floor(t / step_size)`",
)
def step(t: int, *, lr: float, step_size: int, gamma: float) -> float:
    """lr * gamma ** (t // step_size): torch StepLR."""
    return float(lr * gamma ** (t // step_size))


@_schedule(
    "multistep",
    Option(
        "milestones", "custom", "the t at which the rate decays", must="a non-empty, strictly increasing list",
        check=_increasing, config="list[Count]", config_check=True,
    ),
    GAMMA,
    _interval("epoch"),
    doc="`lr · gamma^(milestones passed)`",
)
def multistep(t: int, *, lr: float, milestones: list[int], gamma: float) -> float:
    """lr * gamma ** (the number of milestones <= t): torch MultiStepLR; milestones are integers >= 1."""
    return float(lr * gamma ** bisect.bisect_right(milestones, t))


@_schedule("exponential", replace(GAMMA, default=REQUIRED), _interval("epoch"), doc="`lr · gamma^t`")
def exponential(t: int, *, lr: float, gamma: float) -> float:
    """lr * gamma ** t: torch ExponentialLR."""
    return float(lr * gamma**t)


def _cosine(lr: float, min_lr: float, progress: float) -> float:
    """From lr at progress 0 down to min_lr at progress 1, along half a cosine."""
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


@_schedule(
    "cosine",
    TOTAL,
    WARMUP,
    MIN_LR,
    _interval("epoch"),
    rules=(WARMUP_BEFORE_TOTAL,),
    doc="linear warm-up `lr·(t+1)/warmup`, then half a cosine from `lr` to `min_lr` at `total`",
)
def cosine(t: int, *, lr: float, total: int, warmup: int, min_lr: float) -> float:
    """Linear warm-up, then half a cosine from lr down to min_lr, reached at t = total and kept after.

    t < warmup:  lr * (t + 1) / warmup            (lr / warmup, 2 lr / warmup, ..., lr)
    t >= warmup: min_lr + (lr - min_lr) * (1 + cos(pi * min(1, (t - warmup) / (total - warmup)))) / 2

    With warmup = 0 this is torch CosineAnnealingLR(T_max=total, eta_min=min_lr) for t <= total
    (torch's keeps going round the cosine after T_max; this one stays at min_lr). With warmup it is
    torch SequentialLR([LinearLR(start_factor=1/warmup, total_iters=warmup-1),
    CosineAnnealingLR(T_max=total-warmup, eta_min=min_lr)], milestones=[warmup]): the peak lr is
    used at both t = warmup - 1 and t = warmup.
    """
    if t < warmup:
        return float(lr * (t + 1) / warmup)
    return float(_cosine(lr, min_lr, min(1.0, (t - warmup) / (total - warmup))))


@_schedule(
    "cosine_restarts",
    Option("t_0", "integer", "length of the first cycle", range=AT_LEAST_1),
    Option("t_mult", "integer", "each cycle is t_mult times longer than the last", 1, AT_LEAST_1),
    MIN_LR,
    _interval("epoch"),
    doc="cosine from `lr` to `min_lr` over `t_0`, restarting, each cycle `t_mult` times longer",
)
def cosine_restarts(t: int, *, lr: float, t_0: int, t_mult: int, min_lr: float) -> float:
    """Cosine from lr to min_lr over t_0 steps, restarted at lr, each cycle t_mult times longer than
    the last: torch CosineAnnealingWarmRestarts(T_0=t_0, T_mult=t_mult, eta_min=min_lr).
    """
    if t_mult == 1:
        t_cur, t_i = t % t_0, t_0
    else:
        t_cur, t_i = t, t_0
        while t_cur >= t_i:  # one turn per completed cycle: O(log t)
            t_cur -= t_i
            t_i *= t_mult
    return float(_cosine(lr, min_lr, t_cur / t_i))


@_schedule(
    "one_cycle",
    TOTAL,
    Option("pct_start", "number", "share of the steps spent raising the rate", 0.3, OPEN_UNIT),
    Option("anneal", "choice", "shape of each phase", "cos", choices=("cos", "linear")),
    Option("div_factor", "number", "the rate starts at lr / div_factor", 25.0, ABOVE_0),
    Option("final_div_factor", "number", "and ends at lr / div_factor / final_div_factor", 1e4, ABOVE_0),
    Option("three_phase", "flag", "go back down to the start rate before the final decay", False),
    _interval("step"),
    rules=(RISE, LAST_PHASE),
    doc="`torch.optim.lr_scheduler.OneCycleLR` with `max_lr = lr` (momentum is not cycled)",
)
def one_cycle(
    t: int,
    *,
    lr: float,
    total: int,
    pct_start: float,
    anneal: str,
    div_factor: float,
    final_div_factor: float,
    three_phase: bool,
) -> float:
    """torch OneCycleLR(max_lr=lr, total_steps=total, cycle_momentum=False): momentum is not cycled.

    From lr / div_factor up to lr over the first pct_start * total steps, then down to
    lr / div_factor / final_div_factor at t = total - 1 (three_phase: back down to lr / div_factor
    over as many steps as the rise, then on to the final lr). anneal "cos" or "linear" shapes each
    phase. Phase ends are at step pct_start * total - 1 (three_phase: also 2 pct_start total - 2)
    and total - 1; the lr stays at the final lr after t = total - 1 (torch raises past total).
    """
    rise = float(pct_start * total)
    start = lr / div_factor
    final = start / final_div_factor
    if three_phase:  # (last step of the phase, lr at its start, lr at its end)
        phases = [(rise - 1.0, start, lr), (2.0 * rise - 2.0, lr, start), (total - 1.0, start, final)]
    else:
        phases = [(rise - 1.0, start, lr), (total - 1.0, lr, final)]
    t = min(t, total - 1)  # the last phase ends at total - 1, so the loop always breaks
    begin = 0.0
    for end, lr_from, lr_to in phases:
        if t <= end:
            break
        begin = end
    pct = (t - begin) / (end - begin)
    if anneal == "cos":
        return float(lr_to + (lr_from - lr_to) / 2.0 * (math.cos(math.pi * pct) + 1.0))
    return float((lr_to - lr_from) * pct + lr_from)


@_schedule(
    "linear",
    TOTAL,
    WARMUP,
    MIN_LR,
    _interval("step"),
    rules=(WARMUP_BEFORE_TOTAL,),
    doc="linear warm-up to `lr`, then linear decay to `min_lr` at `total`",
)
def linear(t: int, *, lr: float, total: int, warmup: int, min_lr: float) -> float:
    """Linear warm-up, then a straight line from lr down to min_lr, reached at t = total and kept after.

    t < warmup:  lr * (t + 1) / warmup
    t >= warmup: lr + (min_lr - lr) * min(1, (t - warmup) / (total - warmup))

    In torch: SequentialLR([LinearLR(start_factor=1/warmup, total_iters=warmup-1),
    LinearLR(start_factor=1, end_factor=min_lr/lr, total_iters=total-warmup)], milestones=[warmup]),
    or LambdaLR with the same formula divided by lr.
    """
    if t < warmup:
        return float(lr * (t + 1) / warmup)
    return float(lr + (min_lr - lr) * min(1.0, (t - warmup) / (total - warmup)))


@SCHEDULES.register(
    "reduce_on_plateau",
    Option("monitor", "custom", "the logged metric watched", "val_loss", must="a metric name", check=str,
           config="Annotated[str, Field(pattern=METRIC_PATTERN)]", nn=False, shown="a logged metric, e.g. `val_accuracy`"),
    Option("mode", "choice", "`auto`: max for accuracy-like metrics and r2, min otherwise", "min", choices=("min", "max"),
           config="Literal['auto', 'min', 'max']", config_default="auto", shown="`auto`, `min`, `max`"),
    Option("factor", "number", "the rate is multiplied by factor", 0.1, OPEN_UNIT),
    Option("patience", "integer", "epochs without improvement before a reduction", 10, Range(0)),
    Option("threshold", "number", "smallest change that counts as an improvement", 1e-4, AT_LEAST_0),
    Option("threshold_mode", "choice", "threshold relative to the best value, or absolute", "rel", choices=("rel", "abs")),
    Option("cooldown", "integer", "epochs after a reduction that count no bad epoch", 0, Range(0)),
    MIN_LR,
    Option("eps", "number", "a smaller change of the rate is skipped", 1e-8, AT_LEAST_0),
    doc="after each epoch, multiply the rate by `factor` when `monitor` has not improved for `patience` epochs",
)
class ReduceOnPlateau:
    """torch ReduceLROnPlateau: lr *= factor after more than `patience` steps without improvement.

    Feed one monitored value per epoch to step(value); it returns the lr for the next epoch.
    A value improves on the best so far when, in mode "min", it is < best * (1 - threshold)
    (threshold_mode "rel") or < best - threshold ("abs"); in mode "max", > best * (1 + threshold)
    or > best + threshold. NaN never improves. After a reduction, `cooldown` steps count no bad
    step. A reduction gives max(lr * factor, min_lr), and is skipped when it would change lr by
    eps or less.
    """

    stateful = True
    _STATE = ("lr", "best", "num_bad_epochs", "cooldown_counter", "steps")

    def __init__(self, lr: float, **options: Any):
        vars(self).update(self.declaration.check(options))
        self._lr = float(lr)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.steps = 0

    @property
    def lr(self) -> float:
        """The learning rate to use now."""
        return self._lr

    def _improves(self, value: float) -> bool:
        best, threshold = self.best, self.threshold
        if self.mode == "min":
            return value < (best * (1.0 - threshold) if self.threshold_mode == "rel" else best - threshold)
        return value > (best * (1.0 + threshold) if self.threshold_mode == "rel" else best + threshold)

    def step(self, value: float) -> float:
        """Record this epoch's monitored value; return the lr for the next epoch."""
        value = float(value)
        self.steps += 1
        if self._improves(value):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            new_lr = max(self._lr * self.factor, self.min_lr)
            if self._lr - new_lr > self.eps:
                self._lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self._lr

    def state_dict(self) -> dict[str, float | int]:
        """lr, best (±inf before the first value), the two counters and the number of steps."""
        return {
            "lr": self._lr,
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        """Restore what state_dict() returned; ValueError naming a missing or unexpected key."""
        for key in self._STATE:
            if key not in state:
                raise ValueError(f"reduce_on_plateau state: missing key {key!r}")
        for key in state:
            if key not in self._STATE:
                raise ValueError(f"reduce_on_plateau state: unexpected key {key!r}")
        self._lr, self.best = float(state["lr"]), float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.steps = int(state["steps"])
