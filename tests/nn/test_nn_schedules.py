import inspect
import json
import math

import pytest

from bptrain.nn.errors import OptionError
from bptrain.nn.options import REQUIRED
from bptrain.nn.schedules import SCHEDULES, ReduceOnPlateau

PURE = sorted(name for name, rule in SCHEDULES.items() if not rule.stateful)
C4 = (1 + math.cos(math.pi / 4)) / 2  # half a cosine, a quarter of the way: 0.8535...


@pytest.mark.parametrize("step", [0, 1, 10_000])
def test_constant_returns_lr_as_a_python_float_at_every_step(step):
    lr = SCHEDULES.get("constant")(step, lr=0.05)
    assert lr == 0.05 and type(lr) is float


def test_the_registry_marks_the_one_stateful_schedule():
    assert SCHEDULES["reduce_on_plateau"] is ReduceOnPlateau and ReduceOnPlateau.stateful is True
    assert PURE == sorted(
        ["constant", "step", "multistep", "exponential", "cosine", "cosine_restarts", "one_cycle", "linear"]
    )


@pytest.mark.parametrize("name", PURE)
def test_a_pure_schedule_takes_t_then_keyword_only_lr_and_options(name):
    params = list(inspect.signature(SCHEDULES[name]).parameters.values())
    assert params[0].name == "t" and params[0].kind is params[0].POSITIONAL_OR_KEYWORD
    assert params[1].name == "lr" and all(p.kind is p.KEYWORD_ONLY for p in params[1:])


def test_option_defaults_are_declared():
    def defaults(name):
        return {k: v for k, v in SCHEDULES[name].declaration.defaults.items() if v is not REQUIRED}

    assert defaults("step") == {"gamma": 0.1}
    assert defaults("multistep") == {"gamma": 0.1}
    assert defaults("exponential") == {}
    assert defaults("cosine") == defaults("linear") == {"warmup": 0, "min_lr": 0.0}
    assert defaults("cosine_restarts") == {"t_mult": 1, "min_lr": 0.0}
    assert defaults("one_cycle") == {
        "pct_start": 0.3, "anneal": "cos", "div_factor": 25.0, "final_div_factor": 1e4, "three_phase": False,
    }
    assert defaults("reduce_on_plateau") == {
        "mode": "min", "factor": 0.1, "patience": 10, "threshold": 1e-4, "threshold_mode": "rel",
        "cooldown": 0, "min_lr": 0.0, "eps": 1e-8,
    }


# --- hand-computed values ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, options, expected", [
    ("step", {"lr": 0.1, "step_size": 3, "gamma": 0.5}, {0: 0.1, 2: 0.1, 3: 0.05, 5: 0.05, 6: 0.025, 10: 0.0125}),
    ("step", {"lr": 1.0, "step_size": 1}, {0: 1.0, 1: 0.1, 2: 0.01}),
    ("multistep", {"lr": 1.0, "milestones": [2, 5]}, {0: 1.0, 1: 1.0, 2: 0.1, 4: 0.1, 5: 0.01, 100: 0.01}),
    ("multistep", {"lr": 1.0, "milestones": [1], "gamma": 0.5}, {0: 1.0, 1: 0.5, 7: 0.5}),
    ("exponential", {"lr": 2.0, "gamma": 0.5}, {0: 2.0, 1: 1.0, 3: 0.25}),
    ("cosine", {"lr": 1.0, "total": 4}, {0: 1.0, 1: C4, 2: 0.5, 3: 1 - C4, 4: 0.0, 10: 0.0}),
    ("cosine", {"lr": 1.0, "total": 4, "min_lr": 0.1}, {0: 1.0, 2: 0.55, 4: 0.1, 5: 0.1}),
    # warm-up: lr * (t + 1) / warmup, the peak at t = warmup - 1 and again at t = warmup
    ("cosine", {"lr": 1.0, "total": 6, "warmup": 2}, {0: 0.5, 1: 1.0, 2: 1.0, 3: C4, 4: 0.5, 6: 0.0, 7: 0.0}),
    ("cosine", {"lr": 1.0, "total": 2, "warmup": 1}, {0: 1.0, 1: 1.0, 2: 0.0}),
    ("cosine_restarts", {"lr": 1.0, "t_0": 3}, {0: 1.0, 1: 0.75, 2: 0.25, 3: 1.0, 4: 0.75, 7: 0.75}),
    # cycles of 2, 4, 8 steps start at t = 0, 2, 6, 14
    ("cosine_restarts", {"lr": 1.0, "t_0": 2, "t_mult": 2, "min_lr": 0.2},
     {0: 1.0, 1: 0.6, 2: 1.0, 3: 0.2 + 0.8 * C4, 4: 0.6, 5: 0.2 + 0.8 * (1 - C4), 6: 1.0, 10: 0.6, 14: 1.0}),
    # rise over steps 0..2 (pct_start * total - 1 = 2), fall over 2..9, then the final lr
    ("one_cycle", {"lr": 1.0, "total": 10, "anneal": "linear", "div_factor": 10.0, "final_div_factor": 100.0},
     {0: 0.1, 1: 0.55, 2: 1.0, 5: 1.0 - 0.999 * 3 / 7, 9: 0.001, 10: 0.001, 50: 0.001}),
    ("one_cycle", {"lr": 1.0, "total": 10, "div_factor": 10.0, "final_div_factor": 100.0},
     {0: 0.1, 1: 0.55, 2: 1.0, 9: 0.001}),
    ("one_cycle", {"lr": 1.0, "total": 10}, {0: 0.04, 2: 1.0, 9: 4e-6}),
    # three phases end at steps 2, 4 and 9
    ("one_cycle", {"lr": 1.0, "total": 10, "anneal": "linear", "div_factor": 10.0, "final_div_factor": 100.0,
                   "three_phase": True},
     {0: 0.1, 2: 1.0, 3: 0.55, 4: 0.1, 6: 0.1 - 0.099 * 0.4, 9: 0.001}),
    ("linear", {"lr": 1.0, "total": 5}, {0: 1.0, 1: 0.8, 4: 0.2, 5: 0.0, 9: 0.0}),
    ("linear", {"lr": 1.0, "total": 6, "warmup": 2, "min_lr": 0.1}, {0: 0.5, 1: 1.0, 2: 1.0, 4: 0.55, 6: 0.1, 8: 0.1}),
])
def test_schedule_values_at_a_few_steps(name, options, expected):
    rule = SCHEDULES.get(name)
    for t, value in expected.items():
        lr = rule(t, **options)
        assert type(lr) is float
        assert lr == pytest.approx(value, rel=1e-12, abs=1e-15), f"{name} at t={t}"


@pytest.mark.parametrize("name", PURE)
def test_a_schedule_is_a_pure_function_of_t(name):
    options = {
        "constant": {}, "step": {"step_size": 3}, "multistep": {"milestones": [2, 6]}, "exponential": {"gamma": 0.9},
        "cosine": {"total": 9, "warmup": 2}, "cosine_restarts": {"t_0": 2, "t_mult": 2}, "one_cycle": {"total": 12},
        "linear": {"total": 9, "warmup": 3},
    }[name]
    rule = SCHEDULES[name]
    forward = [rule(t, lr=0.3, **options) for t in range(15)]
    backward = [rule(t, lr=0.3, **options) for t in reversed(range(15))][::-1]
    assert forward == backward and all(0.0 <= v <= 0.3 for v in forward)


# --- bad options --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, options, message", [
    ("step", {"step_size": 0}, "step: step_size must be an integer >= 1 (got 0)"),
    ("step", {"step_size": 2.5}, "step: step_size must be an integer >= 1 (got 2.5)"),
    ("step", {"step_size": 2, "gamma": 0}, "step: gamma must be a number > 0 (got 0)"),
    *[
        ("multistep", {"milestones": bad},
         f"multistep: milestones must be a non-empty, strictly increasing list (got {bad})")
        for bad in ([5, 3], [2, 2], [0, 3], [], [1.5, 2])
    ],
    ("multistep", {"milestones": 5}, "multistep: milestones must be a non-empty, strictly increasing list (got 5)"),
    ("multistep", {"milestones": [2], "gamma": -1.0}, "multistep: gamma must be a number > 0 (got -1.0)"),
    ("exponential", {"gamma": -0.5}, "exponential: gamma must be a number > 0 (got -0.5)"),
    ("exponential", {"gamma": "0.9"}, "exponential: gamma must be a number > 0 (got '0.9')"),
    ("cosine", {"total": 0}, "cosine: total must be an integer >= 1 (got 0)"),
    ("cosine", {"total": 10, "warmup": 10}, "cosine: warmup must be < total (got warmup=10, total=10)"),
    ("cosine", {"total": 10, "warmup": -1}, "cosine: warmup must be an integer >= 0 (got -1)"),
    ("cosine", {"total": 10, "min_lr": -1}, "cosine: min_lr must be a number >= 0 (got -1)"),
    ("cosine_restarts", {"t_0": 0}, "cosine_restarts: t_0 must be an integer >= 1 (got 0)"),
    ("cosine_restarts", {"t_0": 5, "t_mult": 0}, "cosine_restarts: t_mult must be an integer >= 1 (got 0)"),
    ("cosine_restarts", {"t_0": 5, "t_mult": 1.5}, "cosine_restarts: t_mult must be an integer >= 1 (got 1.5)"),
    ("one_cycle", {"total": 0}, "one_cycle: total must be an integer >= 1 (got 0)"),
    ("one_cycle", {"total": 10, "pct_start": 0}, "one_cycle: pct_start must be a number in (0, 1) (got 0)"),
    ("one_cycle", {"total": 10, "pct_start": 1.0}, "one_cycle: pct_start must be a number in (0, 1) (got 1.0)"),
    ("one_cycle", {"total": 10, "anneal": "cosine"}, "one_cycle: anneal must be 'cos' or 'linear' (got 'cosine')"),
    ("one_cycle", {"total": 10, "div_factor": 0}, "one_cycle: div_factor must be a number > 0 (got 0)"),
    ("one_cycle", {"total": 10, "final_div_factor": -1.0},
     "one_cycle: final_div_factor must be a number > 0 (got -1.0)"),
    ("one_cycle", {"total": 10, "three_phase": "yes"}, "one_cycle: three_phase must be true or false (got 'yes')"),
    ("one_cycle", {"total": 3},
     "one_cycle: pct_start * total must be > 1, so the rise has a step to take (got 0.3 * 3 = 0.9)"),
    ("one_cycle", {"total": 10, "pct_start": 0.55, "three_phase": True},
     "one_cycle: with three_phase, 2 * pct_start * total must be < total + 1, so the last phase has a step to take "
     "(got 2 * 0.55 * 10 = 11)"),
    ("linear", {"total": 5, "warmup": 7}, "linear: warmup must be < total (got warmup=7, total=5)"),
    ("linear", {"total": True}, "linear: total must be an integer >= 1 (got True)"),
])
def test_bad_schedule_options_are_config_errors_that_say_what_and_why(name, options, message):
    with pytest.raises(OptionError) as error:
        SCHEDULES.get(name)(0, lr=0.1, **options)
    assert str(error.value) == message


@pytest.mark.parametrize("options, message", [
    ({"mode": "mean"}, "reduce_on_plateau: mode must be 'min' or 'max' (got 'mean')"),
    ({"threshold_mode": "relative"}, "reduce_on_plateau: threshold_mode must be 'rel' or 'abs' (got 'relative')"),
    ({"factor": 1.0}, "reduce_on_plateau: factor must be a number in (0, 1) (got 1.0)"),
    ({"factor": 0}, "reduce_on_plateau: factor must be a number in (0, 1) (got 0)"),
    ({"patience": -1}, "reduce_on_plateau: patience must be an integer >= 0 (got -1)"),
    ({"threshold": -1e-4}, "reduce_on_plateau: threshold must be a number >= 0 (got -0.0001)"),
    ({"cooldown": 1.5}, "reduce_on_plateau: cooldown must be an integer >= 0 (got 1.5)"),
    ({"min_lr": -0.1}, "reduce_on_plateau: min_lr must be a number >= 0 (got -0.1)"),
    ({"eps": -1}, "reduce_on_plateau: eps must be a number >= 0 (got -1)"),
])
def test_bad_plateau_options_are_config_errors(options, message):
    with pytest.raises(OptionError) as error:
        ReduceOnPlateau(0.1, **options)
    assert str(error.value) == message


# --- reduce_on_plateau on scripted sequences ---------------------------------------------------------


def feed(plateau, values):
    """The lr returned after each value."""
    return [plateau.step(v) for v in values]


@pytest.mark.parametrize("patience, first_reduced", [(0, 2), (1, 3), (2, 4), (5, 7)])
def test_plateau_reduces_after_more_than_patience_bad_epochs(patience, first_reduced):
    lrs = feed(ReduceOnPlateau(1.0, factor=0.5, patience=patience), [1.0] * 8)
    assert lrs.index(0.5) + 1 == first_reduced  # the first value sets best; each later one is a bad epoch
    assert all(lr == 1.0 for lr in lrs[: first_reduced - 1])


def test_plateau_cooldown_ignores_bad_epochs_after_a_reduction():
    lrs = feed(ReduceOnPlateau(1.0, factor=0.5, patience=0, cooldown=2), [1.0] * 8)
    assert lrs == [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_plateau_improvement_resets_the_count():
    lrs = feed(ReduceOnPlateau(1.0, factor=0.5, patience=1), [1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.8])
    assert lrs == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]


def test_plateau_stops_at_min_lr_and_skips_reductions_of_eps_or_less():
    assert feed(ReduceOnPlateau(1.0, factor=0.5, patience=0, min_lr=0.3), [1.0] * 5) == [1.0, 0.5, 0.3, 0.3, 0.3]
    # 0.25 -> max(0.125, 0.2495) = 0.2495 would change lr by 5e-4 <= eps: torch keeps 0.25
    plateau = ReduceOnPlateau(1.0, factor=0.5, patience=0, min_lr=0.2495, eps=1e-3)
    assert feed(plateau, [1.0] * 5) == [1.0, 0.5, 0.25, 0.25, 0.25]
    assert plateau.lr == 0.25


@pytest.mark.parametrize("options, values, best", [
    ({"threshold": 0.1}, [1.0, 0.95, 0.89], 0.89),  # rel: 0.95 is not < 0.9
    ({"threshold": 0.1, "threshold_mode": "abs"}, [1.0, 0.95, 0.89], 0.89),  # abs: 0.95 is not < 0.9 either
    ({"threshold": 0.1, "threshold_mode": "abs"}, [10.0, 9.95, 9.89], 9.89),  # abs: 9.89 < 9.9; rel would need < 9.0
    ({"threshold": 0.1}, [10.0, 9.95, 9.89], 10.0),
    ({"mode": "max", "threshold": 0.1}, [1.0, 1.05, 1.11], 1.11),
    ({"mode": "max", "threshold": 0.1, "threshold_mode": "abs"}, [10.0, 10.05, 10.11], 10.11),
    ({"mode": "max", "threshold": 0.0}, [1.0, 0.5, 1.0, 1.0 + 1e-12], 1.0 + 1e-12),
    ({}, [1.0, math.nan, 2.0], 1.0),  # NaN is never better
])
def test_plateau_improvement_needs_to_beat_the_threshold(options, values, best):
    plateau = ReduceOnPlateau(1.0, **options)
    feed(plateau, values)
    assert plateau.best == best


def test_plateau_counts_nan_as_a_bad_epoch():
    assert feed(ReduceOnPlateau(1.0, patience=1), [1.0, math.nan, math.nan]) == [1.0, 1.0, 0.1]


@pytest.mark.parametrize("split", [0, 3, 7])
def test_plateau_state_dict_survives_json_and_resumes_exactly(split):
    values = [1.0, 0.9, 0.9, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7]
    options = {"factor": 0.5, "patience": 1, "cooldown": 1}
    whole = ReduceOnPlateau(0.2, **options)
    expected = feed(whole, values)

    first = ReduceOnPlateau(0.2, **options)
    feed(first, values[:split])
    state = json.loads(json.dumps(first.state_dict()))
    assert set(state) == {"lr", "best", "num_bad_epochs", "cooldown_counter", "steps"}
    resumed = ReduceOnPlateau(0.2, **options)
    resumed.load_state_dict(state)
    assert resumed.lr == first.lr
    assert expected[split:] == feed(resumed, values[split:])
    assert resumed.state_dict() == whole.state_dict()


def test_plateau_load_state_dict_names_the_offending_key():
    plateau = ReduceOnPlateau(0.1)
    state = plateau.state_dict()
    with pytest.raises(ValueError, match="reduce_on_plateau state: missing key 'best'"):
        plateau.load_state_dict({k: v for k, v in state.items() if k != "best"})
    with pytest.raises(ValueError, match="reduce_on_plateau state: unexpected key 'patience'"):
        plateau.load_state_dict({**state, "patience": 3})
