"""Learning-rate schedules: pure functions f(t, *, lr, **options) -> the learning rate at step t.

t = 0, 1, 2, ... counts whatever the caller steps on (optimizer steps or epochs); lr is the base
(peak) learning rate. Every function returns a Python float, exposes its options and defaults in its
signature, and raises ConfigError for a bad option whatever t is, so f(0, lr=lr, **options) checks
a config. Each matches the PyTorch scheduler named in its docstring, stepped once per t.

One schedule is not a function of t: ReduceOnPlateau follows a monitored value. It is a class,
registered with `stateful = True` (every function has `stateful = False`).
"""

from __future__ import annotations

import bisect
import math
from numbers import Integral, Real
from typing import Any

from bptrain.errors import ConfigError
from bptrain.registry import Registry

SCHEDULES = Registry("schedule")


def _schedule(name: str):
    """Register a pure schedule function under `name`, marked stateful = False."""

    def add(fn):
        fn.stateful = False
        return SCHEDULES.register(name)(fn)

    return add


# --- option checks: each raises ConfigError("<schedule>: <option> must be ... (got ...)") ---------


def _integer(schedule: str, option: str, value: Any, low: int) -> int:
    if not (isinstance(value, Integral) and not isinstance(value, bool) and value >= low):
        raise ConfigError(f"{schedule}: {option} must be an integer >= {low} (got {value!r})")
    return int(value)


def _positive(schedule: str, option: str, value: Any) -> float:
    if not (isinstance(value, Real) and not isinstance(value, bool) and value > 0):
        raise ConfigError(f"{schedule}: {option} must be a number > 0 (got {value!r})")
    return float(value)


def _non_negative(schedule: str, option: str, value: Any) -> float:
    if not (isinstance(value, Real) and not isinstance(value, bool) and value >= 0):
        raise ConfigError(f"{schedule}: {option} must be a number >= 0 (got {value!r})")
    return float(value)


def _warmup(schedule: str, total: Any, warmup: Any) -> tuple[int, int]:
    total = _integer(schedule, "total", total, 1)
    warmup = _integer(schedule, "warmup", warmup, 0)
    if warmup >= total:
        raise ConfigError(f"{schedule}: warmup must be < total (got warmup={warmup}, total={total})")
    return total, warmup


# --- the schedules --------------------------------------------------------------------------------


@_schedule("constant")
def constant(t: int, *, lr: float) -> float:
    """lr at every step."""
    return float(lr)


@_schedule("step")
def step(t: int, *, lr: float, step_size: int, gamma: float = 0.1) -> float:
    """lr * gamma ** (t // step_size): torch StepLR."""
    step_size = _integer("step", "step_size", step_size, 1)
    gamma = _positive("step", "gamma", gamma)
    return float(lr * gamma ** (t // step_size))


@_schedule("multistep")
def multistep(t: int, *, lr: float, milestones: list[int], gamma: float = 0.1) -> float:
    """lr * gamma ** (the number of milestones <= t): torch MultiStepLR.

    milestones: strictly increasing integers >= 1 (an empty list keeps lr constant).
    """
    ok = isinstance(milestones, (list, tuple)) and all(
        isinstance(m, Integral) and not isinstance(m, bool) for m in milestones
    )
    if not ok or any(m < 1 for m in milestones) or any(a >= b for a, b in zip(milestones, milestones[1:])):
        raise ConfigError(
            f"multistep: milestones must be strictly increasing integers >= 1 (got {milestones!r})"
        )
    gamma = _positive("multistep", "gamma", gamma)
    return float(lr * gamma ** bisect.bisect_right(milestones, t))


@_schedule("exponential")
def exponential(t: int, *, lr: float, gamma: float) -> float:
    """lr * gamma ** t: torch ExponentialLR."""
    gamma = _positive("exponential", "gamma", gamma)
    return float(lr * gamma**t)


def _cosine(lr: float, min_lr: float, progress: float) -> float:
    """From lr at progress 0 down to min_lr at progress 1, along half a cosine."""
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))


@_schedule("cosine")
def cosine(t: int, *, lr: float, total: int, warmup: int = 0, min_lr: float = 0.0) -> float:
    """Linear warm-up, then half a cosine from lr down to min_lr, reached at t = total and kept after.

    t < warmup:  lr * (t + 1) / warmup            (lr / warmup, 2 lr / warmup, ..., lr)
    t >= warmup: min_lr + (lr - min_lr) * (1 + cos(pi * min(1, (t - warmup) / (total - warmup)))) / 2

    With warmup = 0 this is torch CosineAnnealingLR(T_max=total, eta_min=min_lr) for t <= total
    (torch's keeps going round the cosine after T_max; this one stays at min_lr). With warmup it is
    torch SequentialLR([LinearLR(start_factor=1/warmup, total_iters=warmup-1),
    CosineAnnealingLR(T_max=total-warmup, eta_min=min_lr)], milestones=[warmup]): the peak lr is
    used at both t = warmup - 1 and t = warmup.
    """
    total, warmup = _warmup("cosine", total, warmup)
    min_lr = _non_negative("cosine", "min_lr", min_lr)
    if t < warmup:
        return float(lr * (t + 1) / warmup)
    return float(_cosine(lr, min_lr, min(1.0, (t - warmup) / (total - warmup))))


@_schedule("cosine_restarts")
def cosine_restarts(t: int, *, lr: float, t_0: int, t_mult: int = 1, min_lr: float = 0.0) -> float:
    """Cosine from lr to min_lr over t_0 steps, restarted at lr, each cycle t_mult times longer than
    the last: torch CosineAnnealingWarmRestarts(T_0=t_0, T_mult=t_mult, eta_min=min_lr).
    """
    t_0 = _integer("cosine_restarts", "t_0", t_0, 1)
    t_mult = _integer("cosine_restarts", "t_mult", t_mult, 1)
    min_lr = _non_negative("cosine_restarts", "min_lr", min_lr)
    if t_mult == 1:
        t_cur, t_i = t % t_0, t_0
    else:
        t_cur, t_i = t, t_0
        while t_cur >= t_i:  # one turn per completed cycle: O(log t)
            t_cur -= t_i
            t_i *= t_mult
    return float(_cosine(lr, min_lr, t_cur / t_i))


@_schedule("one_cycle")
def one_cycle(
    t: int,
    *,
    lr: float,
    total: int,
    pct_start: float = 0.3,
    anneal: str = "cos",
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    three_phase: bool = False,
) -> float:
    """torch OneCycleLR(max_lr=lr, total_steps=total, cycle_momentum=False): momentum is not cycled.

    From lr / div_factor up to lr over the first pct_start * total steps, then down to
    lr / div_factor / final_div_factor at t = total - 1 (three_phase: back down to lr / div_factor
    over as many steps as the rise, then on to the final lr). anneal "cos" or "linear" shapes each
    phase. Phase ends are at step pct_start * total - 1 (three_phase: also 2 pct_start total - 2)
    and total - 1; the lr stays at the final lr after t = total - 1 (torch raises past total).
    """
    total = _integer("one_cycle", "total", total, 1)
    if not (isinstance(pct_start, Real) and not isinstance(pct_start, bool) and 0 < pct_start < 1):
        raise ConfigError(f"one_cycle: pct_start must be a number in (0, 1) (got {pct_start!r})")
    if anneal not in ("cos", "linear"):
        raise ConfigError(f"one_cycle: anneal must be 'cos' or 'linear' (got {anneal!r})")
    div_factor = _positive("one_cycle", "div_factor", div_factor)
    final_div_factor = _positive("one_cycle", "final_div_factor", final_div_factor)
    if not isinstance(three_phase, bool):
        raise ConfigError(f"one_cycle: three_phase must be true or false (got {three_phase!r})")
    rise = float(pct_start * total)
    if rise <= 1.0:
        raise ConfigError(
            f"one_cycle: pct_start * total must be > 1, so the rise has a step to take "
            f"(got {pct_start!r} * {total} = {rise:g})"
        )
    if three_phase and 2.0 * rise - 2.0 >= total - 1:
        raise ConfigError(
            f"one_cycle: with three_phase, 2 * pct_start * total must be < total + 1, so the last "
            f"phase has a step to take (got 2 * {pct_start!r} * {total} = {2.0 * rise:g})"
        )
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


@_schedule("linear")
def linear(t: int, *, lr: float, total: int, warmup: int = 0, min_lr: float = 0.0) -> float:
    """Linear warm-up, then a straight line from lr down to min_lr, reached at t = total and kept after.

    t < warmup:  lr * (t + 1) / warmup
    t >= warmup: lr + (min_lr - lr) * min(1, (t - warmup) / (total - warmup))

    In torch: SequentialLR([LinearLR(start_factor=1/warmup, total_iters=warmup-1),
    LinearLR(start_factor=1, end_factor=min_lr/lr, total_iters=total-warmup)], milestones=[warmup]),
    or LambdaLR with the same formula divided by lr.
    """
    total, warmup = _warmup("linear", total, warmup)
    min_lr = _non_negative("linear", "min_lr", min_lr)
    if t < warmup:
        return float(lr * (t + 1) / warmup)
    return float(lr + (min_lr - lr) * min(1.0, (t - warmup) / (total - warmup)))


@SCHEDULES.register("reduce_on_plateau")
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

    def __init__(
        self,
        lr: float,
        *,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ):
        name = "reduce_on_plateau"
        if mode not in ("min", "max"):
            raise ConfigError(f"{name}: mode must be 'min' or 'max' (got {mode!r})")
        if threshold_mode not in ("rel", "abs"):
            raise ConfigError(f"{name}: threshold_mode must be 'rel' or 'abs' (got {threshold_mode!r})")
        if not (isinstance(factor, Real) and not isinstance(factor, bool) and 0 < factor < 1):
            raise ConfigError(f"{name}: factor must be a number in (0, 1) (got {factor!r})")
        self.mode, self.threshold_mode, self.factor = mode, threshold_mode, float(factor)
        self.patience = _integer(name, "patience", patience, 0)
        self.threshold = _non_negative(name, "threshold", threshold)
        self.cooldown = _integer(name, "cooldown", cooldown, 0)
        self.min_lr = _non_negative(name, "min_lr", min_lr)
        self.eps = _non_negative(name, "eps", eps)
        self._lr = float(lr)
        self.best = math.inf if mode == "min" else -math.inf
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
