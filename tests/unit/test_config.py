"""Config loading: defaults, relative paths, overrides, and the exact error texts."""

from pathlib import Path

import pytest
import yaml

from bptrain.config.loading import dump_yaml, load_config, parse_overrides, resolved_dict
from bptrain.config.schema import Config
from bptrain.errors import ConfigError

MINIMAL = "data: {train: data/x.csv, target: y}\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), overrides)
    head, *lines = str(info.value).splitlines()
    assert head.startswith(str(tmp_path / "c.yaml") + ": ")
    return [line.strip() for line in lines]


def test_defaults_are_filled_in_and_paths_are_relative_to_the_config(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.data.train == tmp_path / "data" / "x.csv"
    assert config.optimizer.name == "adam" and config.optimizer.lr == 0.001
    assert config.optimizer.betas == (0.9, 0.999) and config.optimizer.eps == 1e-8
    assert config.stopping.max_epochs == 200 and config.training.batch_size == 32
    assert config.stopping.early_stopping.monitor == "val_loss"
    assert config.schedule.name == "constant"
    assert config.seed is None and config.loss.name == "auto"


def test_overrides_are_merged_before_validation(tmp_path):
    overrides = parse_overrides(["stopping.max_epochs=7", "optimizer={name: sgd, momentum: 0.9}", "model.layers.0.units=5"])
    config = load_config(write(tmp_path, MINIMAL), overrides)
    assert config.stopping.max_epochs == 7
    assert config.optimizer.name == "sgd" and config.optimizer.momentum == 0.9 and config.optimizer.lr == 0.001
    assert config.model.layers[0].units == 5



@pytest.mark.parametrize(
    "text, key, check",
    [
        ("model: {layers: [64, 64]}\n", "model.layers.0.units=32", lambda c: [l.units for l in c.model.layers] == [32, 64]),
        ("model: {layers: [64, 64]}\n", "model.layers.1.activation=tanh", lambda c: c.model.layers[1].activation.name == "tanh" and c.model.layers[1].units == 64),
        ("optimizer: sgd\n", "optimizer.momentum=0.9", lambda c: (c.optimizer.name, c.optimizer.momentum) == ("sgd", 0.9)),
        ("stopping: {early_stopping: true}\n", "stopping.early_stopping.patience=5", lambda c: c.stopping.early_stopping.patience == 5),
        ("stopping: {early_stopping: false}\n", "stopping.early_stopping.patience=5", lambda c: c.stopping.early_stopping.patience == 5),
    ],
)
def test_an_override_reaches_into_a_shorthand(tmp_path, text, key, check):
    # a layer written as its units, a component as its name, early stopping as true/false
    assert check(load_config(write(tmp_path, MINIMAL + text), parse_overrides([key])))

def test_an_optimizer_may_be_named_by_a_string(tmp_path):
    assert load_config(write(tmp_path, MINIMAL + "optimizer: sgd\n")).optimizer.name == "sgd"


def test_every_problem_is_reported_at_once_with_its_path(tmp_path):
    text = MINIMAL + (
        "trainig: {epochs: 3}\n"
        "model:\n  layers:\n    - {units: 0, activation: rleu}\n    - {units: 8, activaton: relu}\n"
        "optimizer: {name: adamm}\n"
        "training: {batch_size: x}\n"
    )
    assert problems(tmp_path, text) == [
        "model.layers[0].units: must be greater than 0 (got 0)",
        "model.layers[0].activation: unknown activation 'rleu'; choose from elu, gelu, identity, leaky_relu, relu, selu, sigmoid, silu, softplus, tanh. Did you mean 'relu'?",
        "model.layers[1].activaton: unknown key. Did you mean 'activation'?",
        "optimizer: unknown optimizer 'adamm'; choose from adadelta, adagrad, adam, adamax, adamw, lion, nadam, rmsprop, sgd. Did you mean 'adam'?",
        "training.batch_size: must be a valid integer, unable to parse string as an integer (got 'x')",
        "trainig: unknown key. Did you mean 'training'?",
    ]


def test_options_of_another_optimizer_are_refused_naming_the_allowed_ones(tmp_path):
    assert problems(tmp_path, MINIMAL + "optimizer: {name: sgd, betas: [0.9, 0.99]}\n") == [
        "optimizer.betas: unknown key; sgd takes dampening, lr, momentum, nesterov, weight_decay"
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("optimizer: {lr: -1}\n", "optimizer.lr: must be greater than 0 (got -1)"),
        # YAML 1.1 reads a number with an exponent but no decimal point as text
        ("training: {batch_size: 1e3}\n", "training.batch_size: must be a whole number; YAML reads 1e3 as text, so write it out: 1000 (got '1e3')"),
        ("training: {batch_size: 1.5e0}\n", "training.batch_size: must be a valid integer, unable to parse string as an integer (got '1.5e0')"),
        ("optimizer: {name: sgd, momentum: 1.0}\n", "optimizer.momentum: must be less than 1 (got 1.0)"),
        ("optimizer: {name: sgd, nesterov: true}\n", "optimizer: nesterov needs momentum > 0 and dampening 0"),
        ("model: {dtype: float16}\n", "model.dtype: must be one of 'float32', 'float64' (got 'float16')"),
        ("loss: mse2\n", "loss: unknown loss 'mse2'; choose from auto, binary_cross_entropy, cross_entropy, huber, mae, mse. Did you mean 'mse'?"),
        ("name: 'a b'\n", "name: may hold only letters, digits, '.', '_' and '-' (got 'a b')"),
        ("stopping: {early_stopping: {mode: up}}\n", "stopping.early_stopping.mode: must be one of 'auto', 'min', 'max' (got 'up')"),
        ("schedule: cosin\n", "schedule: unknown schedule 'cosin'; choose from constant, cosine, cosine_restarts, exponential, linear, multistep, one_cycle, reduce_on_plateau, step. Did you mean 'cosine'?"),
    ],
)
def test_wrong_values_are_named_with_what_was_received(tmp_path, text, expected):
    assert expected in problems(tmp_path, MINIMAL + text)


@pytest.mark.parametrize(
    "text",
    [
        "stopping: {early_stopping: {monitor: penalty}}\n",
        "schedule: {name: reduce_on_plateau, monitor: penalty}\n",
        "stopping: {target: {penalty: '< 0.01'}}\n",
    ],
)
def test_the_logged_penalty_may_be_watched_as_any_metric(tmp_path, text):
    load_config(write(tmp_path, MINIMAL + "regularization: {l2: 0.01}\n" + text))


@pytest.mark.parametrize("key", ["stopping: {early_stopping: {monitor: %s}}", "schedule: {name: reduce_on_plateau, monitor: %s}"])
def test_a_monitor_that_is_no_metric_name_says_what_a_metric_is(tmp_path, key):
    where = "stopping.early_stopping.monitor" if key.startswith("stopping") else "schedule.monitor"
    assert problems(tmp_path, MINIMAL + key % "accuracy" + "\n") == [
        f"{where}: must be a logged metric such as val_loss, val_accuracy, train_loss or penalty (got 'accuracy')"
    ]


def test_a_bias_beyond_float32_is_refused_unless_the_model_is_float64(tmp_path):
    text = MINIMAL + "model: {layers: [{units: 4, bias_init: 1.0e+39}]}\n"
    assert problems(tmp_path, text) == [
        "model: layers[0].bias_init: 1e+39 is beyond the float32 range (±3.403e+38); use a smaller bias_init, or dtype: float64"
    ]
    assert load_config(write(tmp_path, text.replace("}]}", "}], dtype: float64}"))).model.layers[0].bias_init == 1e39


@pytest.mark.parametrize(
    "betas, got",
    [("[0.9]", "1 item"), ("[0.9, 0.99, 0.9]", "3 items"), ("[]", "0 items"), ("0.9", "0.9"), ("true", "true"), ("{a: 1}", "a mapping")],
)
def test_betas_that_are_no_pair_are_named_as_such(tmp_path, betas, got):
    assert problems(tmp_path, MINIMAL + f"optimizer: {{name: adam, betas: {betas}}}\n") == [
        f"optimizer.betas: must be a list of two numbers, e.g. [0.9, 0.999] (got {got})"
    ]


def test_split_fractions_must_leave_training_rows(tmp_path):
    assert problems(tmp_path, "data: {train: x.csv, target: y, split: {val: 0.6, test: 0.5}}\n") == [
        "data.split: val + test must be below 1 to leave rows for training (got 0.6 + 0.5)"
    ]


def test_missing_required_keys(tmp_path):
    assert problems(tmp_path, "data: {train: x.csv}\n") == ["data.target: required key is missing"]
    assert problems(tmp_path, "name: x\n") == ["data: required key is missing"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: [1\nb: 2\n", "c.yaml: line 2, column 2: YAML syntax error: did not find expected ',' or ']'"),
        ("- 1\n- 2\n", "c.yaml: the top level must be a mapping of keys (name, data, model, ...), got a list"),
        ("", "c.yaml: the config file is empty; it needs at least a `data:` section"),
    ],
)
def test_unreadable_files(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert str(info.value) == str(tmp_path / message)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found. Check the path, or start from one in configs/"):
        load_config(tmp_path / "none.yaml")


@pytest.mark.parametrize(
    "item, message",
    [
        ("stopping.max_epochs", "--set 'stopping.max_epochs': expected KEY=VALUE, e.g. --set stopping.max_epochs=50"),
        ("=3", "--set '=3': expected KEY=VALUE, e.g. --set stopping.max_epochs=50"),
        ("tune.space={optimizer.lr: [0.1]}", "--set tune.space: the tune: section is not set with --set; edit it in the config file, or give bptrain tune --space FILE"),
        ("tune=", "--set tune: the tune: section is not set with --set; edit it in the config file, or give bptrain tune --space FILE"),
    ],
)
def test_malformed_overrides(item, message):
    with pytest.raises(ConfigError) as info:
        parse_overrides([item])
    assert str(info.value) == message


def test_override_through_a_scalar_is_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), parse_overrides(["data.train.x=1"]))
    assert str(info.value) == "--set data.train.x: data.train is a string, not a mapping"


def test_resolved_config_round_trips_from_another_folder(tmp_path):
    config = load_config(write(tmp_path, MINIMAL + "seed: 5\n"))
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_yaml(resolved_dict(config, run)))
    raw = yaml.safe_load((run / "config.yaml").read_text())
    assert raw["data"]["train"] == "../../data/x.csv"
    again = load_config(run / "config.yaml")
    assert again == config


def test_config_models_are_strict_everywhere():
    def walk(model):
        assert model.model_config.get("extra") == "forbid", model
        for field in model.model_fields.values():
            from bptrain.config.loading import _models_in

            for inner in _models_in(field.annotation):
                walk(inner)

    walk(Config)


def test_the_data_section_reports_each_problem_at_its_path(tmp_path):
    text = (
        "data:\n  train: x.csv\n  target: [a, a]\n  read: {delimiter: ';;', encoding: utf-9}\n"
        "  split: {column: part, folds: 3, fold: 4}\n  numeric: {missing: mode}\n  categorical: {missing: mean, max_categories: 1}\n"
        "  columns:\n    year: {kind: categorical, scael: robust}\n    b: {kind: numeric, fill_value: abc}\n    c: {kind: categorical, missing: median}\n"
    )
    assert problems(tmp_path, text) == [
        "data.target: lists a column twice (got ['a', 'a'])",
        "data.read.delimiter: must be auto, tab or one character such as ',' or ';' (got ';;')",
        "data.read.encoding: unknown encoding 'utf-9'; use a Python codec name such as utf-8, latin-1 or cp1252",
        "data.split.folds: cannot be combined with split.column, which already says which rows validate (got 3)",
        "data.numeric.missing: must be one of 'error', 'drop', 'mean', 'median', 'most_frequent', 'constant' (got 'mode')",
        "data.categorical.missing: must be one of 'error', 'drop', 'most_frequent', 'constant' (got 'mean')",
        "data.categorical.max_categories: must be greater than or equal to 2 (got 1)",
        "data.columns.year.scael: unknown key. Did you mean 'scale'?",
        "data.columns.b: fill_value of a numeric column must be a number (got 'abc')",
        "data.columns.c: missing: median applies to numeric columns; use most_frequent, constant, drop or error",
    ]


@pytest.mark.parametrize(
    "data, problem",
    [
        ("target: [a, b], task: classification", "data.task: classification takes one target column; several targets are multilabel (0/1 columns) or regression (got 'classification')"),
        ("target: a, task: multilabel", "data.task: multilabel needs a list of target columns, each holding 0/1 (got 'multilabel')"),
        ("target: a, columns: {a: {kind: numeric}}", "data.columns: 'a' is the target; only feature columns are prepared"),
        ("target: a, split: {folds: 3, fold: 5}", "data.split.fold: must be between 1 and split.folds (3) (got 5)"),
        ("target: a, split: {fold: 2}", "data.split.fold: needs split.folds, the number of folds it is one of (got 2)"),
        ("target: 7", "data.target: must be a column name, or a list of column names for several targets (got 7)"),
        ("target: y, features: [a, a]", "data.features: lists a column twice (got ['a', 'a'])"),
        ("target: y, features: [a, b], exclude: [c, b]", "data.exclude: 'b' is also in data.features; a column is a feature or excluded, not both"),
    ],
)
def test_targets_tasks_and_folds_must_fit_together(tmp_path, data, problem):
    assert problems(tmp_path, f"data: {{train: x.csv, {data}}}\n") == [problem]


def test_data_defaults_and_the_resolved_form_of_column_overrides(tmp_path):
    config = load_config(write(tmp_path, "data: {train: x.csv, target: [a], read: {delimiter: tab}, columns: {year: {kind: categorical}}}\n"))
    data = config.data
    assert data.target == "a" and data.targets == ["a"]  # a list of one is one target
    assert (data.read.delimiter, data.read.encoding, data.read.decimal) == ("\t", "utf-8", ".")
    assert (data.numeric.missing, data.numeric.scale, data.numeric.indicator) == ("error", "standard", False)
    assert (data.categorical.missing, data.categorical.max_categories, data.categorical.scale) == ("error", 20, "none")
    assert (data.split.column, data.split.folds, data.split.fold) == (None, None, None)
    assert resolved_dict(config, tmp_path)["data"]["columns"] == {"year": {"kind": "categorical"}}


# --- numbers: never true/false, always finite -------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("optimizer: {lr: true}\n", ["optimizer.lr: must be a number, not true or false (got true)"]),
        ("training: {batch_size: false}\n", ["training.batch_size: must be a number, not true or false (got false)"]),
        ("seed: true\n", ["seed: must be a number, not true or false (got true)"]),
        ("optimizer: {betas: [true, 0.9]}\n", ["optimizer.betas[0]: must be a number, not true or false (got true)"]),
        ("loss: {name: binary_cross_entropy, pos_weight: true}\n", ["loss.pos_weight: must be a number, not true or false (got true)"]),
        ("optimizer: {lr: .inf}\n", ["optimizer.lr: must be a finite number (got .inf)"]),
        ("optimizer: {lr: .nan}\n", ["optimizer.lr: must be a finite number (got .nan)"]),
        ("optimizer: {lr: inf}\n", ["optimizer.lr: must be a finite number (got 'inf')"]),
        ("stopping: {max_time: .inf, target: {val_loss: -.inf}}\n", ["stopping.max_time: must be a finite number (got .inf)", "stopping.target.val_loss: must be a finite number (got -.inf)"]),
        ("loss: {name: cross_entropy, class_weights: [true, .inf]}\n", ["loss.class_weights[0]: must be a number, not true or false (got true)", "loss.class_weights[1]: must be a finite number (got .inf)"]),
        ("loss: {name: binary_cross_entropy, pos_weight: abc}\n", ["loss.pos_weight: must be a number, 'balanced' or a list (got 'abc')"]),
    ],
    ids=["lr-true", "batch-false", "seed", "betas", "union-bool", "inf", "nan", "inf-text", "union-inf", "list-in-union", "union-mismatch"],
)
def test_booleans_and_non_finite_numbers_are_refused_with_their_path(tmp_path, text, expected):
    assert problems(tmp_path, MINIMAL + text) == expected


def test_a_column_named_like_a_type_keeps_its_path(tmp_path):
    text = "data: {train: x.csv, target: y, columns: {str: {fill_value: .inf}}}\n"
    assert problems(tmp_path, text) == ["data.columns.str.fill_value: must be a finite number (got .inf)"]


def test_set_booleans_are_refused_like_the_file_s(tmp_path):
    assert problems(tmp_path, MINIMAL, parse_overrides(["optimizer.lr=true"])) == [
        "optimizer.lr: must be a number, not true or false (got true) (from --set)"
    ]


def test_every_number_in_the_schema_refuses_booleans():
    """No field is a bare float or int, which pydantic would fill from true/false."""
    import typing

    from bptrain.config.loading import _models_in

    def refuses(metadata) -> bool:
        return any(getattr(getattr(m, "func", None), "__name__", "") == "_not_a_bool" for m in metadata)

    def bare(annotation) -> bool:
        if annotation in (float, int):
            return True
        if typing.get_origin(annotation) is typing.Annotated:
            base, *meta = typing.get_args(annotation)
            return not refuses(meta) and bare(base)
        return any(bare(arg) for arg in typing.get_args(annotation))

    seen = set()

    def walk(model):
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            assert refuses(field.metadata) or not bare(field.annotation), f"{model.__name__}.{name}"
            for inner in _models_in(field.annotation):
                walk(inner)

    walk(Config)
    assert len(seen) > 30


# --- names and shorthands ----------------------------------------------------------------------------


def test_names_are_accepted_in_any_letter_case_and_written_back_lowercase(tmp_path):
    text = MINIMAL + (
        "model:\n  layers:\n    - {units: 4, activation: Relu, init: He_Normal}\n    - {type: Dense, units: 4, activation: {name: LEAKY_ReLU, negative_slope: 0.2}}\n"
        "optimizer: ADAM\nloss: MSE\nschedule: {name: Cosine}\n"
    )
    config = load_config(write(tmp_path, text))
    resolved = resolved_dict(config, tmp_path)
    assert resolved["model"]["layers"][0]["activation"] == "relu" and resolved["model"]["layers"][0]["init"] == "he_normal"
    assert resolved["model"]["layers"][1]["type"] == "dense"
    assert resolved["model"]["layers"][1]["activation"] == {"name": "leaky_relu", "negative_slope": 0.2}
    assert resolved["optimizer"]["name"] == "adam" and resolved["loss"] == "mse" and resolved["schedule"]["name"] == "cosine"


def test_did_you_mean_ignores_letter_case(tmp_path):
    # `Relu` used to suggest 'elu'
    assert problems(tmp_path, MINIMAL + "loss: MSE2\nmodel: {layers: [{units: 3, activation: Rleu}]}\n") == [
        "model.layers[0].activation: unknown activation 'Rleu'; choose from elu, gelu, identity, leaky_relu, relu, selu, sigmoid, silu, softplus, tanh. Did you mean 'relu'?",
        "loss: unknown loss 'MSE2'; choose from auto, binary_cross_entropy, cross_entropy, huber, mae, mse. Did you mean 'mse'?",
    ]


def test_a_layer_may_be_given_as_its_number_of_units(tmp_path):
    config = load_config(write(tmp_path, MINIMAL + "model: {layers: [64, {units: 8, activation: tanh}, 32]}\n"))
    assert [(layer.type, layer.units, layer.activation.name) for layer in config.model.layers] == [
        ("dense", 64, "relu"), ("dense", 8, "tanh"), ("dense", 32, "relu")
    ]


def test_a_layer_that_is_neither_a_number_nor_a_mapping(tmp_path):
    assert problems(tmp_path, MINIMAL + "model: {layers: [32.5, true]}\n") == [
        "model.layers[0]: must be a number of units, a layer type name or a mapping with its type; choose from activation, batch_norm, dense, dropout, layer_norm (got 32.5)",
        "model.layers[1]: must be a number of units, a layer type name or a mapping with its type; choose from activation, batch_norm, dense, dropout, layer_norm (got true)",
    ]


def test_a_choice_without_its_name(tmp_path):
    assert problems(tmp_path, MINIMAL + "optimizer: 3\nmodel: {layers: [{units: 3, activation: {alpha: 2}}]}\n") == [
        "model.layers[0].activation: needs its name: one of elu, gelu, identity, leaky_relu, relu, selu, sigmoid, silu, softplus, tanh",
        "optimizer: must be an optimizer name or a mapping with its name; choose from adadelta, adagrad, adam, adamax, adamw, lion, nadam, rmsprop, sgd (got 3)",
    ]


@pytest.mark.parametrize("value, expected", [("true", 20), ("false", None), ("{patience: 3}", 3)])
def test_early_stopping_may_be_switched_on_or_off(tmp_path, value, expected):
    config = load_config(write(tmp_path, MINIMAL + f"stopping: {{early_stopping: {value}}}\n"))
    stopping = config.stopping.early_stopping
    assert (stopping.patience if stopping is not None else None) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("data: {train: x.csv, target: y, split: 0.15}\n", "data.split: must be a mapping with keys among val, test, stratify, column, folds, fold (got 0.15)"),
        (MINIMAL + "stopping: {early_stopping: 3}\n", "stopping.early_stopping: must be a mapping with keys among monitor, mode, patience, min_delta, start_from_epoch, restore_best (got 3)"),
    ],
)
def test_a_value_where_a_section_is_meant_names_its_keys_not_a_class(tmp_path, text, expected):
    assert problems(tmp_path, text) == [expected]


@pytest.mark.parametrize("name", [".", "..", "..."])
def test_a_run_name_of_only_dots_is_refused(tmp_path, name):
    assert problems(tmp_path, MINIMAL + f"name: '{name}'\n") == [f"name: must hold a letter or digit, not only dots (got '{name}'); e.g. name: iris"]


def test_a_long_list_of_problems_shows_the_first_twenty(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + "model: {layers: [" + ", ".join(["x"] * 5000) + "]}\n"))
    head, *lines = str(info.value).splitlines()
    assert head == f"{tmp_path / 'c.yaml'}: more than 20 problems; the first 20:"
    assert lines == [
        f"  model.layers[{i}]: unknown layer type 'x'; choose from activation, batch_norm, dense, dropout, layer_norm." for i in range(20)
    ]


def test_the_seed_limit_is_shown_exactly(tmp_path):
    # with lt=2**63 the message showed the float 9223372036854776000
    assert problems(tmp_path, MINIMAL + "seed: 123456789012345678901234567890\n") == [
        "seed: must be less than or equal to 9223372036854775807 (got 123456789012345678901234567890)"
    ]
    assert load_config(write(tmp_path, MINIMAL + f"seed: {2**63 - 1}\n")).seed == 2**63 - 1


@pytest.mark.parametrize(
    "text, path",
    [
        ("stopping: {max_epochs: BIG}\n", "stopping.max_epochs"),
        ("training: {batch_size: BIG}\n", "training.batch_size"),
        ("model: {layers: [{units: BIG}]}\n", "model.layers[0].units"),
        ("data: {train: x.csv, target: y, split: {folds: BIG}}\n", "data.split.folds"),
    ],
)
def test_whole_numbers_past_int64_are_refused_with_their_path(tmp_path, text, path):
    # past numpy's int64: 10**400 of max_epochs or units made check crash when it turned them into floats
    text = text.replace("BIG", str(2**63))
    assert problems(tmp_path, (MINIMAL if not text.startswith("data") else "") + text) == [
        f"{path}: must be less than or equal to 9223372036854775807 (got 9223372036854775808)"
    ]


def test_check_refuses_a_whole_number_of_any_length_without_a_traceback():
    from conftest import ROOT, call_cli

    result = call_cli("check", ROOT / "configs" / "iris.yaml", "--set", f"stopping.max_epochs={10**400}")
    assert (result.returncode, result.stdout) == (2, "")
    assert "  stopping.max_epochs: must be less than or equal to 9223372036854775807 (got 1000" in result.stderr
    assert "internal error" not in result.stderr and result.stderr.count("\n") == 2
