"""Learning-rate schedules: pure functions f(step, *, lr, **options) -> the learning rate for that step."""

from __future__ import annotations

from bptrain.registry import Registry

SCHEDULES = Registry("schedule")


@SCHEDULES.register("constant")
def constant(step: int, *, lr: float) -> float:
    return float(lr)
