"""The declaration mechanism: ranges in words, option checks, rules, and registry misses."""

import math

import numpy as np
import pytest

from bptrain.nn.errors import OptionError, UnknownName
from bptrain.nn.names import Registry
from bptrain.nn.options import ABOVE_0, AT_LEAST_0, FRACTION, OPEN_UNIT, SHOWN_VALUES, UNIT, Option, Range, Rule, did_you_mean, shown


@pytest.mark.parametrize("rng, text, inside, outside", [
    (AT_LEAST_0, ">= 0", [0.0, 1e300], [-5e-324]),
    (ABOVE_0, "> 0", [5e-324], [0.0]),
    (UNIT, "in [0, 1]", [0.0, 1.0], [-5e-324, math.nextafter(1.0, 2.0)]),
    (FRACTION, "in [0, 1)", [0.0, math.nextafter(1.0, 0.0)], [1.0]),
    (OPEN_UNIT, "in (0, 1)", [5e-324], [0.0, 1.0]),
    (Range(high=2.0, high_open=True), "< 2", [-1e300], [2.0]),
    (Range(), "", [-1e300, 0.0, 1e300], []),
])
def test_a_range_says_what_it_holds(rng, text, inside, outside):
    assert rng.text() == text
    assert all(v in rng for v in inside) and not any(v in rng for v in outside)


def toy_registry():
    toys = Registry("toy", label="{name}")

    @toys.register(
        "box",
        Option("size", "number", "edge length", 1.0, ABOVE_0),
        Option("count", "integer", "how many", range=Range(1)),
        Option("lid", "flag", "closed on top", False),
        Option("colour", "choice", "paint", "red", choices=("red", "blue", "green")),
        rules=(Rule("a lid needs size > 2", lambda o: o["lid"] and o["size"] <= 2, lambda o: f"size={o['size']}"),),
    )
    class Box:
        def __init__(self, **given):
            vars(self).update(self.declaration.check(given))

    return toys


@pytest.mark.parametrize("given, message", [
    ({"count": 1, "size": 0}, "box: size must be a number > 0 (got 0)"),
    ({"count": 1, "size": float("inf")}, "box: size must be a number > 0 (got inf)"),
    ({"count": 1, "size": True}, "box: size must be a number > 0 (got True)"),
    ({"count": 0}, "box: count must be an integer >= 1 (got 0)"),
    ({"count": 1.0}, "box: count must be an integer >= 1 (got 1.0)"),
    ({"count": 1, "lid": 1}, "box: lid must be true or false (got 1)"),
    ({"count": 1, "colour": "pink"}, "box: colour must be 'red', 'blue' or 'green' (got 'pink')"),
    ({}, "box: count is required"),
    ({"count": 1, "sise": 2.0}, "box: unknown option 'sise'; allowed: size, count, lid, colour. Did you mean 'size'?"),
    ({"count": 1, "lid": True}, "box: a lid needs size > 2 (got size=1.0)"),
])
def test_a_declaration_checks_each_option_then_the_rules(given, message):
    with pytest.raises(OptionError) as caught:
        toy_registry()["box"](**given)
    assert str(caught.value) == message


def test_checked_options_are_plain_python_values_with_the_defaults_filled_in():
    box = toy_registry()["box"](count=np.int64(3), size=np.float32(4.0), lid=np.bool_(True))
    assert (type(box.count), type(box.size), type(box.lid)) == (int, float, bool)
    assert (box.count, box.size, box.lid, box.colour) == (3, 4.0, True, "red")


def test_a_registry_miss_is_unknown_name_a_plain_value_error():
    with pytest.raises(UnknownName) as caught:
        toy_registry().get("bx")
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == "unknown toy 'bx'; choose from box. Did you mean 'box'?"


def test_a_name_is_registered_once():
    toys = toy_registry()
    with pytest.raises(ValueError, match="toy 'box' registered twice"):
        toys.register("box")(type("Other", (), {}))


def test_shown_is_repr_for_ordinary_values_and_short_for_huge_ones():
    for value in ["tpee", 0.1, None, True, [1, "a"], {"b": 1, "a": [2, 3]}, list(range(SHOWN_VALUES - 1))]:
        assert shown(value) == repr(value)
    bomb: list = ["x"] * 10
    for _ in range(8):
        bomb = [bomb] * 10  # 10**9 values, each list shared as YAML aliases share them
    assert shown(bomb) == "[[[...], [...], [...], [...], ...], [[...], [...], [...], [...], ...], [[...], [...], [...], [...], ...], [[...], [...], [...], [...], ...], ...]"
    cycle: list = []
    cycle.append(cycle)
    assert shown(cycle) == "[[[...]]]"  # a list holding itself: counted without end, so shown short
    assert shown(list(range(SHOWN_VALUES + 1))) == "[0, 1, 2, 3, ...]"


def test_did_you_mean_finds_nothing_close_to_a_list_or_mapping():
    assert did_you_mean("tpee", ["tpe", "grid"]) == " Did you mean 'tpe'?"
    assert did_you_mean(["tpe"], ["tpe", "grid"]) == did_you_mean({"tpe": 1}, ["tpe"]) == ""
