"""The tune: section: every distribution, the layer keys, and each mistake's exact message (in this process)."""

from __future__ import annotations

import pytest

from bptrain.app import fit
from bptrain.config.loading import validate_config
from bptrain.training.callbacks import Callback, Stop
from bptrain.tune import space
from bptrain.errors import ConfigError
from conftest import ALIAS_BOMB, ROOT, call_cli, cpu_capped, write

IRIS = ROOT / "datasets" / "iris.csv"
BASE = f"""name: t
seed: 5
data: {{train: {IRIS}, target: species}}
model: {{layers: [{{units: 8, activation: relu}}]}}
optimizer: {{name: adam, lr: 0.01}}
stopping: {{max_epochs: 3}}
"""


def with_search(tmp_path, section: str):
    """BASE with `section` (the keys of a tune: section, one a line) as its tune: section."""
    indented = "\n".join("  " + line for line in section.splitlines())
    return write(tmp_path, BASE + "tune:\n" + indented + "\n")


def test_every_distribution_is_read():
    search = space.parse(
        {
            "space": {
                "optimizer.lr": {"low": "1e-4", "high": 0.1, "log": True},
                "training.batch_size": [16, 32],
                "model.layers.count": {"low": 1, "high": 3},
                "model.layers.units": {"low": 8, "high": 64, "step": 8},
                "regularization.l2": {"low": 0, "high": 1, "type": "float", "step": 0.25},
                "optimizer.name": {"choices": ["adam", "sgd"]},
            },
            "metric": "val_accuracy",
            "sampler": "random",
            "pruner": "hyperband",
            "seed": 3,
        },
        "c.yaml",
    )
    assert search.params == (
        space.Param("optimizer.lr", "float", 1e-4, 0.1, log=True),
        space.Param("training.batch_size", "choice", choices=(16, 32)),
        space.Param("model.layers.count", "int", 1, 3),
        space.Param("model.layers.units", "int", 8, 64, step=8),
        space.Param("regularization.l2", "float", 0.0, 1.0, step=0.25),
        space.Param("optimizer.name", "choice", choices=("adam", "sgd")),
    )
    assert (search.metric, search.direction, search.sampler, search.pruner, search.seed) == ("val_accuracy", None, "random", "hyperband", 3)
    assert search.params[4].grid() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert search.params[3].grid() == [8, 16, 24, 32, 40, 48, 56, 64]
    assert space.parse(search.as_dict(), "tune.json", prefix="") == search  # what tune.json records reads back the same


def test_layer_keys_set_the_count_and_every_layers_option():
    raw = {"model": {"layers": [{"units": 16, "activation": "tanh"}, {"type": "batch_norm"}]}}
    out = space.apply(raw, {"model.layers.count": 3, "model.layers.units": 32, "model.layers.dropout": 0.1, "optimizer.lr": 0.5})
    assert out == {
        "model": {"layers": [{"units": 32, "activation": "tanh", "dropout": 0.1}] * 3},
        "optimizer": {"lr": 0.5},
    }
    assert raw == {"model": {"layers": [{"units": 16, "activation": "tanh"}, {"type": "batch_norm"}]}}  # a copy
    assert space.apply({"model": {"layers": [64, "batch_norm"]}}, {"model.layers.units": 8}) == {"model": {"layers": [{"units": 8}, {"type": "batch_norm"}]}}
    assert space.apply({}, {"model.layers.count": 1}) == {"model": {"layers": [{"type": "dense", "units": 16, "activation": "relu", "init": "auto", "bias_init": 0.0, "dropout": 0.0}]}}


@pytest.mark.parametrize(
    "section, problem",
    [
        ("space: {optimizer.lrr: {low: 0.1, high: 1}}", "tune.space.optimizer.lrr: not a config key. Did you mean 'optimizer.lr'?"),
        ("space: {trainig.batch_size: [8, 16]}", "tune.space.trainig.batch_size: not a config key. Did you mean 'training.batch_size'?"),
        ("space: {model.layers.unit: {low: 4, high: 8}}", "tune.space.model.layers.unit: not a config key. Did you mean 'model.layers.units'?"),
        ("space: {optimizer.lr: {low: 0.1, high: 0.01}}", "tune.space.optimizer.lr: low must be below high; an inverted range (got low 0.1, high 0.01)"),
        ("space: {training.batch_size: {low: 8, high: 8}}", "tune.space.training.batch_size: low must be below high; an empty range (got low 8, high 8)"),
        ("space: {regularization.l2: {low: 0.0, high: 0.1, log: true}}", "tune.space.regularization.l2: a log scale needs low above 0 (got low 0.0)"),
        ("space: {optimizer.lr: {low: 0.1, high: 1, logg: true}}", "tune.space.optimizer.lr: unknown key 'logg'. Did you mean 'log'?"),
        ("space: {optimizer.lr: {choices: []}}", "tune.space.optimizer.lr: choices must be a list of at least one value (got [])"),
        ("space: {}", "tune.space: needs at least one config key to search, e.g. optimizer.lr: {low: 0.0001, high: 0.1, log: true}"),
        ("space: {optimizer.lr: [0.1]}\nsampler: tpee", "tune.sampler: unknown sampler 'tpee'; choose from tpe, random, grid, qmc. Did you mean 'tpe'?"),
        ("space: {optimizer.lr: [0.1]}\npruner: medain", "tune.pruner: unknown pruner 'medain'; choose from median, hyperband, none. Did you mean 'median'?"),
        ("space: {optimizer.lr: [0.1]}\nmetrc: val_loss", "tune.metrc: unknown key. Did you mean 'metric'?"),
        ("space: {optimizer.lr: {low: 0.1, high: 1}}\nsampler: grid", "tune.space.optimizer.lr: the grid sampler needs choices, an int range or a step (got a float range without a step)"),
        ("space: {model.layers.count: [1, two]}", "tune.space.model.layers.count: each choice must be a whole number of hidden layers, 0 or more (got 'two')"),
        ("space: {model.layers.count: [2, null]}", "tune.space.model.layers.count: each choice must be a whole number of hidden layers, 0 or more (got None)"),
        ("space: {model.layers.count: [1, 2.5]}", "tune.space.model.layers.count: each choice must be a whole number of hidden layers, 0 or more (got 2.5)"),
        ("space: {model.layers.count: {low: 1.0, high: 3.5}}", "tune.space.model.layers.count: a number of hidden layers is a whole number: give an int range, e.g. {low: 1, high: 3} (got low 1.0, high 3.5)"),
        ("space: {model.layers.count: {low: -1, high: 2}}", "tune.space.model.layers.count: a number of hidden layers is 0 or more (got low -1)"),
        ("space: {optimizer.lr: {low: 0.001, high: .inf}}", "tune.space.optimizer.lr: low and high must be finite numbers (got low 0.001, high inf)"),
        ("space: {optimizer.lr: {low: .nan, high: 0.1}}", "tune.space.optimizer.lr: low and high must be finite numbers (got low nan, high 0.1)"),
        ("space: {training.batch_size: {low: 1, high: 1" + "0" * 400 + "}}",
         "tune.space.training.batch_size: low and high must be finite numbers (got low 1, high 1" + "0" * 400 + ")"),
        ("space: {optimizer.lr: {low: 0.001, high: 0.01, step: .inf}}", "tune.space.optimizer.lr: step must be a finite number above 0 (got inf)"),
    ],
)
def test_a_bad_search_is_one_exact_message_and_exit_2(tmp_path, section, problem):
    path = with_search(tmp_path, section)
    result = call_cli("tune", path, "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {path}: 1 problem\n  {problem}\n"
    assert not (tmp_path / "runs").exists()


SHORT_BOMB = "[['x', 'x', 'x', 'x', ...], [[...], [...], [...], [...], ...], [[...], [...], [...], [...], ...], [[...], [...], [...], [...], ...], ...]"


@pytest.mark.parametrize(
    "section, problem",
    [
        ("space: {optimizer.lr: BOMB}", f"tune.space.optimizer.lr: each choice must be a number, text, true/false or null (got {SHORT_BOMB})"),
        ("space: {optimizer.lr: {low: BOMB, high: 1}}", f"tune.space.optimizer.lr: needs low and high numbers, or choices (got low {SHORT_BOMB}, high 1)"),
        ("space: {optimizer.lr: {low: 0.1, high: 1, step: BOMB}}", f"tune.space.optimizer.lr: step must be a number above 0 (got {SHORT_BOMB})"),
        ("space: {optimizer.lr: [0.1]}\nsampler: BOMB", f"tune.sampler: unknown sampler {SHORT_BOMB}; choose from tpe, random, grid, qmc."),
        ("space: {optimizer.lr: [0.1]}\nseed: BOMB", f"tune.seed: must be a whole number from 0 (got {SHORT_BOMB})"),
    ],
    ids=["choices", "low", "step", "sampler", "seed"],
)
def test_an_alias_bomb_in_the_search_is_shown_short(section, problem):
    # the bomb stands for 10**9 values: repr() wrote them all out in the message, and hung
    import yaml

    with cpu_capped(), pytest.raises(ConfigError) as info:
        space.parse(yaml.safe_load(section.replace("BOMB", ALIAS_BOMB)), "c.yaml")
    assert str(info.value) == f"c.yaml: 1 problem\n  {problem}"


def test_a_choice_that_makes_the_config_invalid_gets_the_configs_own_message(tmp_path):
    path = write(tmp_path, BASE + "tune:\n  space:\n    optimizer.lr: {low: -1.0, high: 0.1}\n    model.layers.activation: [relu, rleu]\n")
    result = call_cli("tune", path, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {path}: 2 problems\n"
        "  tune.space.optimizer.lr: low -1.0 makes the config invalid: optimizer.lr: must be greater than 0 (got -1.0)\n"
        "  tune.space.model.layers.activation: choice 'rleu' makes the config invalid: model.layers[0].activation: "
        "unknown activation 'rleu'; choose from elu, gelu, identity, leaky_relu, relu, selu, sigmoid, silu, softplus, tanh. Did you mean 'relu'?\n"
    )


def test_a_key_into_a_list_item_the_config_lacks_says_so(tmp_path):
    path = write(tmp_path, BASE + "tune:\n  space:\n    model.layers.2.units: [4, 8]\n")  # BASE has one layer
    result = call_cli("tune", path, "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {path}: 2 problems\n"
        "  tune.space.model.layers.2.units: choice 4 makes the config invalid: model.layers.2: no list item 2 (the list has 1)\n"
        "  tune.space.model.layers.2.units: choice 8 makes the config invalid: model.layers.2: no list item 2 (the list has 1)\n"
    )


def test_a_metric_the_config_does_not_log_is_named_with_those_it_does(tmp_path):
    path = write(tmp_path, BASE + "tune:\n  metric: val_r2\n  space: {optimizer.lr: [0.1]}\n")
    result = call_cli("tune", path, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert result.stderr.startswith("error: tune.metric: val_r2 is not logged for this config; choose from val_loss, val_accuracy, ")


def test_no_tune_section_and_no_space_file(tmp_path):
    path = write(tmp_path, BASE)
    result = call_cli("tune", path, "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stderr) == (2, f"error: {path}: no tune: section to search; add one (see the README's tune section) or give --space FILE\n")


def test_a_space_file_holding_a_whole_tune_section_says_to_drop_the_tune_key(tmp_path):
    path = write(tmp_path, BASE)
    space = write(tmp_path, "tune:\n  space:\n    optimizer.lr: {low: 0.001, high: 0.1, log: true}\n", "space.yaml")
    result = call_cli("tune", path, "--space", space, "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {space}: a --space file holds the keys of a tune: section (space, metric, direction, sampler, pruner, seed) "
        "without the tune: key itself; remove that line and unindent what it holds\n"
    )


def test_resume_of_a_folder_that_is_not_a_tune_folder(tmp_path):
    result = call_cli("tune", "--resume", tmp_path)
    assert (result.returncode, result.stderr) == (2, f"error: --resume {tmp_path}: not a tune folder written by bptrain tune (no tune.json)\n")


@pytest.mark.parametrize(
    "section",
    [
        "space: {optimizer.lr: {low: 0.1, high: 0.01}}\nsampler: tpee",
        "space: {optimizer.lr: {low: -1.0, high: 0.1}, model.layers.2.units: [4]}",
        "metric: val_r2\nspace: {optimizer.lr: [0.1]}",
    ],
    ids=["parse", "config", "metric"],
)
def test_check_warns_of_what_tune_refuses_before_its_first_trial(tmp_path, section):
    """fit leaves the tune: section out, so check passes the config, warning of what tune would refuse."""
    path = with_search(tmp_path, section)
    tuned = call_cli("tune", path, "--runs-dir", tmp_path / "runs")
    checked = call_cli("check", path)
    assert tuned.returncode == 2 and tuned.stderr.startswith("error: ") and not (tmp_path / "runs").exists()
    assert checked.returncode == 0 and "\ntune " not in checked.stdout
    assert checked.stderr == "warning: bptrain tune would refuse the tune: section: " + tuned.stderr.removeprefix("error: ")


def test_a_search_without_validation_rows_says_so(tmp_path):
    path = write(tmp_path, BASE + "tune:\n  space: {optimizer.lr: [0.1]}\n")
    result = call_cli("tune", path, "--set", "data.split.val=0", "--set", "stopping.early_stopping=false", "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: tune.metric: val_loss is not logged for this config: it holds out no validation rows (data.split.val), "
        "and a search scores each trial on them\n"
    )


@pytest.mark.parametrize(
    "section, line",
    [
        ("space: {optimizer.lr: [0.1]}", "1 key: optimizer.lr; minimize val_loss (tpe sampler, median pruner)"),
        ("space: {optimizer.lr: [0.1], training.batch_size: [8]}\nmetric: val_accuracy\nsampler: grid\npruner: none",
         "2 keys: optimizer.lr, training.batch_size; maximize val_accuracy (grid sampler, no pruner)"),
        ("space: {optimizer.lr: [0.1]}\nmetric: val_accuracy\ndirection: minimize", "1 key: optimizer.lr; minimize val_accuracy (tpe sampler, median pruner)"),
    ],
)
def test_check_ends_with_the_search_tune_would_run(tmp_path, section, line):
    result = call_cli("check", with_search(tmp_path, section))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == f"tune       {line}"


def test_fit_leaves_the_tune_section_out(tmp_path):
    path = write(tmp_path, BASE + "tune:\n  space: {optimizer.lr: {low: 0.001, high: 0.1, log: true}}\n")
    result = call_cli("fit", path, "-q", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert "\ntune:" not in (run / "config.yaml").read_text()


class _PruneAt(Callback):
    """A trial's pruner, scripted: prune at the end of epoch `epoch`."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def should_stop(self, trainer, row):
        return Stop("pruned") if row["epoch"] == self.epoch else None


def test_a_pruned_trial_is_an_ordinary_run_stopped_as_pruned(tmp_path):
    config = validate_config(space.apply(space.split(__import__("yaml").safe_load(BASE))[0], {"stopping.max_epochs": 10}), tmp_path / "c.yaml")
    folder = tmp_path / "trial"
    folder.mkdir()
    report = fit(config, folder=folder, callbacks=[_PruneAt(4)], score_test=False).report
    assert (report["stop_reason"], report["epochs_run"]) == ("pruned", 4)
    assert report["metrics"]["test"] is None and report["metrics"]["val"]["loss"] > 0
    assert (folder / "model.npz").is_file() and len((folder / "metrics.csv").read_text().splitlines()) == 5


def test_a_trials_line_says_its_state_value_best_so_far_and_parameters():
    from bptrain.events import TrialDone
    from bptrain.progress import trial_line

    params = {"optimizer.lr": 0.0462259, "training.batch_size": 8}
    done = TrialDone(7, 8, 30, "complete", params, "val_loss", 0.03951, (2, 0.0394), 0.61)
    assert trial_line(done) == "trial   7 (8/30)  complete  val_loss 0.0395  best 0.0394 (trial 2)  0.6 s  optimizer.lr=0.04623 training.batch_size=8"
    failed = TrialDone(8, 9, 30, "failed", params, "val_loss", None, (2, 0.0394), 0.2, "training diverged at epoch 1")
    assert trial_line(failed) == "trial   8 (9/30)  failed    optimizer.lr=0.04623 training.batch_size=8: training diverged at epoch 1"
