"""The stopping rules on their own: durations, target/divergence conditions, early stopping, budgets."""

from __future__ import annotations

import math

import pytest
from conftest import ROOT

from bptrain.config.loading import load_config, parse_overrides
from bptrain.config.rules import Condition, parse_duration
from bptrain.training.assembly import make_budget
from bptrain.training.stopping import Budget, EarlyStopping

DURATION_HELP = "must be a duration such as 90s, 10m, 2h or 1h30m"
COMPARISON_HELP = "must be a comparison such as '>= 0.99' or '< 0.01'"


def test_stop_reasons_are_the_documented_ones():
    """The README lists every stop_reason a run can record; the tests of each rule pin where each one comes from."""
    listed = (ROOT / "README.md").read_text(encoding="utf-8").split("`stop_reason`\n(", 1)[1].split(")", 1)[0]
    assert [reason.strip(" `\n") for reason in listed.split(",")] == [
        "max_epochs",
        "max_steps",
        "max_time",
        "early_stopping",
        "target",
        "diverged",
        "interrupted",
        "terminated",
        "pruned",
    ]


# --- parse_duration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1d", 86400.0),
        ("1.5h", 5400.0),
        ("0.25s", 0.25),
        (" 2H ", 7200.0),
        ("1h1m1s", 3661.0),
        (90, 90.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration(value, seconds):
    result = parse_duration(value)
    assert result == seconds
    assert type(result) is float


@pytest.mark.parametrize(
    "value, message",
    [
        ("90", f"{DURATION_HELP} (got '90')"),
        ("abc", f"{DURATION_HELP} (got 'abc')"),
        ("", f"{DURATION_HELP} (got '')"),
        ("10x", f"{DURATION_HELP} (got '10x')"),
        ("1h 30", f"{DURATION_HELP} (got '1h 30')"),
        ("-1h", f"{DURATION_HELP} (got '-1h')"),
        ("h", f"{DURATION_HELP} (got 'h')"),
        (True, f"{DURATION_HELP} (got True)"),
        ("0s", "must be positive (got '0s')"),
        ("0h0m", "must be positive (got '0h0m')"),
        (0, "must be a positive number of seconds (got 0)"),
        (-5, "must be a positive number of seconds (got -5)"),
        (-0.5, "must be a positive number of seconds (got -0.5)"),
        (math.nan, "must be a positive number of seconds (got nan)"),
        (math.inf, "must be a positive number of seconds (got inf)"),
    ],
)
def test_parse_duration_rejects(value, message):
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert str(info.value) == message


# --- Condition --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, op, value",
    [
        (">= 0.99", ">=", 0.99),
        ("<= 0.2", "<=", 0.2),
        ("> 0.5", ">", 0.5),
        ("<0.01", "<", 0.01),
        ("  >=1e-3  ", ">=", 1e-3),
        ("< -2", "<", -2.0),
        ("> +3.5", ">", 3.5),
        ("> 1E2", ">", 100.0),
    ],
)
def test_condition_parse(text, op, value):
    assert Condition.parse("val_accuracy", text) == Condition("val_accuracy", op, value)


@pytest.mark.parametrize("text", ["0.5", "== 1", ">=", ">= abc", ">= e", ">= 1.2.3", "=> 1", ">= nan", "0.99 <=", ">= 1 2"])
def test_condition_parse_rejects(text):
    with pytest.raises(ValueError) as info:
        Condition.parse("val_accuracy", text)
    assert str(info.value) == f"{COMPARISON_HELP} (got {text!r})"


@pytest.mark.parametrize("text", ["> 1e400", ">= inf", "< -inf", "<= -1E999"])
def test_condition_parse_rejects_a_level_beyond_the_finite_numbers(text):
    with pytest.raises(ValueError) as info:
        Condition.parse("train_loss", text)
    assert str(info.value) == f"must compare with a finite number such as '> 100' (got {text!r})"


def test_condition_parse_rejects_a_bare_number_with_its_repr():
    with pytest.raises(ValueError) as info:
        Condition.parse("val_accuracy", 0.99)
    assert str(info.value) == f"{COMPARISON_HELP} (got 0.99)"


def test_condition_str():
    assert str(Condition.parse("val_accuracy", ">= 0.99")) == "val_accuracy >= 0.99"
    assert str(Condition.parse("train_loss", "<0.0001")) == "train_loss < 0.0001"
    assert str(Condition.parse("train_loss", "> 1e6")) == "train_loss > 1e+06"


@pytest.mark.parametrize(
    "text, value, holds",
    [
        (">= 0.9", 0.9, True),
        (">= 0.9", 0.95, True),
        (">= 0.9", 0.8999, False),
        ("> 0.9", 0.9, False),
        ("> 0.9", 0.91, True),
        ("<= 0.2", 0.2, True),
        ("<= 0.2", 0.2000001, False),
        ("< 0.2", 0.2, False),
        ("< 0.2", 0.1, True),
        ("< 0.2", math.nan, False),
        ("> 0.2", math.nan, False),
        ("> 100", math.inf, True),  # a divergence rule fires on an overflowed value
        ("< 100", math.inf, False),
        ("< 0.2", -math.inf, True),
        ("< 0.2", None, False),
    ],
)
def test_condition_holds(text, value, holds):
    assert Condition.parse("val_loss", text).holds({"val_loss": value, "train_loss": 0.0}) is holds


def test_condition_on_a_metric_the_row_lacks_does_not_hold():
    assert Condition.parse("val_loss", "> 0").holds({"train_loss": 1.0}) is False


# --- EarlyStopping ----------------------------------------------------------------------------


def run_early_stopping(rule: EarlyStopping, values: list[float]) -> int | None:
    """Feed epochs 1, 2, ... their values; the epoch at which the rule stops training, or None."""
    for epoch, value in enumerate(values, start=1):
        if rule.update(epoch, value):
            return epoch
    return None


def test_early_stopping_min_waits_patience_epochs_without_improvement():
    rule = EarlyStopping("val_loss", "min", patience=2)
    assert run_early_stopping(rule, [1.0, 0.9, 0.95, 0.93, 0.5]) == 4
    assert (rule.best, rule.best_epoch, rule.wait) == (0.9, 2, 2)


def test_early_stopping_an_improvement_resets_the_wait():
    rule = EarlyStopping("val_loss", "min", patience=2)
    assert run_early_stopping(rule, [1.0, 1.1, 0.9, 1.2, 0.8, 0.85, 0.81]) == 7
    assert (rule.best, rule.best_epoch) == (0.8, 5)


def test_early_stopping_max_mode():
    rule = EarlyStopping("val_accuracy", "max", patience=1)
    assert run_early_stopping(rule, [0.5, 0.7, 0.7]) == 3
    assert (rule.best, rule.best_epoch) == (0.7, 2)


def test_early_stopping_min_delta_needs_a_larger_improvement():
    rule = EarlyStopping("val_loss", "min", patience=2, min_delta=0.1)
    # 0.95 and 0.91 improve on 1.0 by less than 0.1; 0.85 would have, but the wait is over by then
    assert run_early_stopping(rule, [1.0, 0.95, 0.91, 0.85]) == 3
    assert (rule.best, rule.best_epoch) == (1.0, 1)
    rule = EarlyStopping("val_loss", "min", patience=2, min_delta=0.1)
    assert run_early_stopping(rule, [1.0, 0.95, 0.85, 0.80, 0.76]) == 5
    assert (rule.best, rule.best_epoch) == (0.85, 3)


def test_early_stopping_non_finite_values_never_improve():
    rule = EarlyStopping("val_loss", "min", patience=2)
    assert run_early_stopping(rule, [math.nan, 1.0, math.inf, math.nan]) == 4
    assert (rule.best, rule.best_epoch) == (1.0, 2)


def test_early_stopping_does_not_watch_epochs_up_to_start_from_epoch():
    values = [1.0, 0.1, 2.0, 3.0, 4.0, 1.5, 1.6, 1.7]
    # unwatched epochs 1-3: epoch 2's 0.1 is not the best, epoch 3's rise is no wait
    rule = EarlyStopping("val_loss", "min", patience=2, start_from_epoch=3)
    assert [rule.update(e, v) for e, v in enumerate(values[:3], start=1)] == [False, False, False]
    assert (rule.best, rule.best_epoch, rule.wait) == (None, 0, 0)
    rule = EarlyStopping("val_loss", "min", patience=2, start_from_epoch=3)
    # epoch 4 (3.0) is the first watched: the best; 5 waits; 6 improves; 7 and 8 wait -> stop at 8
    assert run_early_stopping(rule, values) == 8
    assert (rule.best, rule.best_epoch, rule.wait) == (1.5, 6, 2)
    # without start_from_epoch the same values stop at epoch 4
    assert run_early_stopping(EarlyStopping("val_loss", "min", patience=2), values) == 4


def test_early_stopping_start_from_epoch_never_stops_before_it():
    rule = EarlyStopping("val_loss", "min", patience=1, start_from_epoch=10)
    worse_each_epoch = [float(e) for e in range(1, 20)]
    assert run_early_stopping(rule, worse_each_epoch) == 12  # 11 is the first watched, 12 fails to improve
    assert rule.best_epoch == 11


def test_early_stopping_state_round_trip_continues_identically():
    values = [1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.87, 0.7, 0.75, 0.76, 0.77]
    whole = EarlyStopping("val_loss", "min", patience=3, start_from_epoch=1)
    expected = run_early_stopping(whole, values)
    assert expected == 7  # best 0.9 at 2 (epoch 1 unwatched), 0.8 at 4, then 5, 6, 7 wait
    for cut in range(expected):
        first = EarlyStopping("val_loss", "min", patience=3, start_from_epoch=1)
        assert not any(first.update(e, v) for e, v in enumerate(values[:cut], start=1))
        second = EarlyStopping("val_loss", "min", patience=3, start_from_epoch=1)
        second.load_state_dict(first.state_dict())
        stop = next((e for e, v in enumerate(values[cut:], start=cut + 1) if second.update(e, v)), None)
        assert stop == expected, cut
        assert second.state_dict() == whole.state_dict()


def test_early_stopping_state_dict_is_json_able():
    import json

    rule = EarlyStopping("val_loss", "min", patience=3)
    rule.update(1, 0.5)
    rule.update(2, 0.6)
    assert json.loads(json.dumps(rule.state_dict())) == {"best": 0.5, "best_epoch": 1, "wait": 1}


# --- Budget ------------------------------------------------------------------------------------


def test_budget_max_steps():
    budget = Budget(max_epochs=100, max_steps=10)
    assert budget.after_step(9, 1e9) is None
    assert budget.after_step(10, 0.0) == "max_steps"
    assert budget.after_step(11, 0.0) == "max_steps"


def test_budget_max_time():
    budget = Budget(max_epochs=100, max_time=1.5)
    assert budget.after_step(10**9, 1.4999) is None
    assert budget.after_step(1, 1.5) == "max_time"
    assert budget.after_step(1, 2.0) == "max_time"


def test_budget_steps_before_time_and_no_limits():
    assert Budget(max_epochs=5, max_steps=3, max_time=1.0).after_step(3, 2.0) == "max_steps"
    assert Budget(max_epochs=5, max_steps=3, max_time=1.0).after_step(2, 2.0) == "max_time"
    assert Budget(max_epochs=5).after_step(10**9, 1e9) is None


def test_the_budget_is_built_from_the_stopping_keys():
    overrides = parse_overrides(["stopping.max_epochs=7", "stopping.max_steps=100", "stopping.max_time=1m"])
    assert make_budget(load_config(ROOT / "configs" / "iris.yaml", overrides)) == Budget(7, 100, 60.0)
