"""Every option range has one definition: the config and the core accept and refuse alike at its edges.

For each registered component and each declared option with a range, the extreme allowed values
(a closed end, or the nearest float or integer inside an open end) and the first refused ones
(an open end, or the nearest value outside a closed end) go through the config schema
(validate_config) and through the core's constructor; choices try one allowed name and one not.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bptrain.config.loading import validate_config
from bptrain.errors import ConfigError
from bptrain.nn.activations import ACTIVATIONS
from bptrain.nn.errors import OptionError
from bptrain.nn.layers import LAYERS
from bptrain.nn.losses import LOSSES
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.nn.options import REQUIRED, Range
from bptrain.nn.params import Param
from bptrain.nn.schedules import SCHEDULES

MINIMAL = {"data": {"train": "data/x.csv", "target": "y"}}
NEEDED = {  # values for required options, chosen so that no rule between options objects
    "units": 2, "activation": "relu", "step_size": 2, "milestones": [2, 5], "gamma": 0.5, "total": 1000, "t_0": 3,
}


def _inside(end: float, integer: bool, toward: float):
    return (end + (1 if toward > end else -1)) if integer else math.nextafter(end, toward)


def edge_values(rng: Range, integer: bool) -> list[tuple[object, bool]]:
    """(value, allowed) at each bounded end of the range."""
    cases = []
    for end, is_open, inward in ((rng.low, rng.low_open, math.inf), (rng.high, rng.high_open, -math.inf)):
        if end is None:
            continue
        outward = -inward
        if is_open:
            cases += [(_inside(end, integer, inward), True), (end, False)]
        else:
            cases += [(end, True), (_inside(end, integer, outward), False)]
    return cases


def option_cases():
    for registry in (ACTIVATIONS, LAYERS, LOSSES, OPTIMIZERS, SCHEDULES):
        for name, member in registry.items():
            for option in member.declaration.options:
                if option.kind in ("number", "integer"):
                    values = edge_values(option.range, option.kind == "integer")
                elif option.kind == "pair":
                    values = [((v, 0.5), ok) for v, ok in edge_values(option.range, False)]
                    values += [((0.5, v), ok) for v, ok in edge_values(option.range, False)]
                elif option.kind == "choice":
                    values = [(option.choices[0], True), ("not-a-choice", False)]
                else:
                    continue
                for value, allowed in values:
                    yield pytest.param(registry.kind, name, option, value, allowed, id=f"{name}-{option.name}-{value!r}")


def required(declaration, skip: str) -> dict:
    return {o.key: NEEDED[o.name] for o in declaration.options if o.default is REQUIRED and o.name != skip}


def config_section(kind: str, name: str, key: str, value) -> dict:
    declaration = {"activation": ACTIVATIONS, "layer type": LAYERS, "loss": LOSSES, "optimizer": OPTIMIZERS,
                   "schedule": SCHEDULES}[kind][name].declaration
    entry = {**required(declaration, key), key: value}
    if kind == "activation":
        return {"model": {"layers": [{"units": 2, "activation": {"name": name, **entry}}]}}
    if kind == "layer type":
        return {"model": {"layers": [{"type": name, **entry}]}}
    return {kind: {"name": name, **entry}}


def config_accepts(kind: str, name: str, key: str, value) -> bool:
    try:
        validate_config({**MINIMAL, **config_section(kind, name, key, value)}, Path("c.yaml"))
    except ConfigError:
        return False
    return True


def build(kind: str, name: str, options: dict) -> None:
    member = {"activation": ACTIVATIONS, "layer type": LAYERS, "loss": LOSSES, "optimizer": OPTIMIZERS,
              "schedule": SCHEDULES}[kind][name]
    if kind == "optimizer":
        member([Param("w", np.zeros(2), np.zeros(2))], **options)
    elif kind == "schedule" and member.stateful:
        member(0.1, **options)
    elif kind == "schedule":
        member(0, lr=0.1, **options)
    else:
        member(**options)


def core_accepts(kind: str, name: str, option, value) -> bool:
    declaration = {"activation": ACTIVATIONS, "layer type": LAYERS, "loss": LOSSES, "optimizer": OPTIMIZERS,
                   "schedule": SCHEDULES}[kind][name].declaration
    try:
        build(kind, name, {**required(declaration, option.name), option.name: value})
    except OptionError as e:
        # a rule between options (one_cycle's pct_start * total > 1) is not the option's range
        return any(rule.text in str(e) for rule in declaration.rules)
    return True


@pytest.mark.parametrize("kind, name, option, value, allowed", list(option_cases()))
def test_config_and_core_accept_and_refuse_alike(kind, name, option, value, allowed):
    if option.in_config:
        assert config_accepts(kind, name, option.key, value) is allowed
    if option.nn:
        assert core_accepts(kind, name, option, value) is allowed


def test_the_edges_are_the_declared_ones():
    assert edge_values(Range(0.0, 1.0, high_open=True), False) == [(0.0, True), (-5e-324, False), (math.nextafter(1.0, 0.0), True), (1.0, False)]
    assert edge_values(Range(0, low_open=True), True) == [(1, True), (0, False)]
