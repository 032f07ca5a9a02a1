"""Schedules, regularization, clipping and the new layers, seen through a real fit on iris."""

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from bptrain import app, events, seeds
from bptrain.config.loading import load_config, parse_overrides
from bptrain.runs.checkpoint import read_arrays
from bptrain.training import assembly

ROOT = Path(__file__).resolve().parents[2]


def fit(tmp_path, *settings, epochs=6):
    overrides = parse_overrides(["stopping.max_epochs=%d" % epochs, "stopping.early_stopping=null", *settings])
    config = load_config(ROOT / "configs" / "iris.yaml", overrides)
    result = app.fit(config, runs_dir=tmp_path)
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return config, result, rows


def test_an_epoch_schedule_sets_the_rate_of_each_epoch(tmp_path):
    _, _, rows = fit(tmp_path, "schedule={name: step, step_size: 2, gamma: 0.5}")
    assert [float(r["lr"]) for r in rows] == [0.01 * 0.5 ** ((e - 1) // 2) for e in range(1, 7)]


def test_a_step_schedule_logs_the_rate_of_the_epochs_last_step(tmp_path):
    _, _, rows = fit(tmp_path, "schedule={name: cosine, interval: step}")
    total = 6 * 7  # epochs * batches per epoch (102 training rows, batch 16)
    expected = [0.5 * 0.01 * (1 + math.cos(math.pi * (7 * e - 1) / total)) for e in range(1, 7)]
    assert [float(r["lr"]) for r in rows] == pytest.approx(expected, rel=1e-12)


def test_reduce_on_plateau_follows_the_monitored_metric(tmp_path):
    _, _, rows = fit(tmp_path, "schedule={name: reduce_on_plateau, monitor: train_loss, mode: max, patience: 0, factor: 0.5}")
    # train_loss falls every epoch, so in mode max it never improves after the first epoch
    assert [float(r["lr"]) for r in rows] == [0.01, 0.01, 0.005, 0.0025, 0.00125, 0.000625]


def test_the_penalty_is_logged_and_computed_from_the_weights(tmp_path):
    _, result, rows = fit(tmp_path, "regularization={l1: 0.001, l2: 0.01}")
    arrays, _ = read_arrays(result.run_dir / "model.npz")
    weights = [v.astype(np.float64) for k, v in arrays.items() if k.endswith(".W")]
    expected = 0.001 * sum(np.abs(w).sum() for w in weights) + 0.01 * sum((w * w).sum() for w in weights)
    assert float(rows[-1]["penalty"]) == pytest.approx(expected, rel=1e-5)


def test_clipping_by_value_bounds_every_update(tmp_path):
    config, result, _ = fit(tmp_path, "optimizer={name: sgd, lr: 0.1}", "training.clip={value: 1.0e-9}", epochs=2)
    arrays, _ = read_arrays(result.run_dir / "model.npz")
    _, init_rng, _, noise_rng = seeds.streams(config.seed)
    start = assembly.make_model(assembly.model_spec(config, 4, 3), rng=init_rng, noise_rng=noise_rng, batch_size=16).state_dict()
    steps = 2 * 7
    for name, value in start.items():
        assert np.abs(arrays[name] - value).max() <= 0.1 * 1e-9 * steps * 1.001 + 1e-7, name


def test_dropout_and_batch_norm_runs_evaluate_like_the_report(tmp_path):
    _, result, _ = fit(tmp_path, "model.layers=[{units: 16, dropout: 0.2}, {type: batch_norm}, {type: layer_norm}, {units: 8, activation: elu}]")
    arrays, _ = read_arrays(result.run_dir / "model.npz")
    assert {"layers.3.running_mean", "layers.3.running_var"} <= set(arrays)
    again = app.evaluate(result.run_dir)
    for split in ("val", "test"):
        assert again[split] == pytest.approx(result.report["metrics"][split], rel=1e-12)


def test_balanced_class_weights_are_computed_from_the_training_labels(tmp_path):
    config = load_config(ROOT / "configs" / "iris.yaml", parse_overrides(["loss={name: cross_entropy, class_weights: balanced}"]))
    labels = np.array([0] * 10 + [1] * 30 + [2] * 20)
    name, options = assembly.loss_spec(config, "classification", ["a", "b", "c"], labels)
    assert name == "cross_entropy" and options["weight"] == pytest.approx([2.0, 2 / 3, 1.0])


def test_class_weights_by_name_default_to_one_for_the_classes_not_named():
    config = load_config(ROOT / "configs" / "iris.yaml", parse_overrides(["loss={name: cross_entropy, class_weights: {virginica: 3, setosa: 0.5}}"]))
    _, options = assembly.loss_spec(config, "classification", ["setosa", "versicolor", "virginica"], None)
    assert options["weight"] == [0.5, 1.0, 3.0]


def test_balanced_pos_weight_is_counted_per_label_for_multilabel():
    config = load_config(ROOT / "configs" / "iris.yaml", parse_overrides(["loss={name: binary_cross_entropy, pos_weight: balanced}"]))
    labels = np.array([[1, 0], [1, 0], [0, 0], [1, 1]])
    name, options = assembly.loss_spec(config, "multilabel", ["l1", "l2"], labels)
    assert name == "binary_cross_entropy" and options["pos_weight"] == [1 / 3, 3.0]
    assert assembly.output_units(name, "multilabel", 2) == 2 and assembly.output_units("mse", "regression", 0, 3) == 3


@pytest.mark.parametrize(
    "setting, message",
    [
        ("loss={name: cross_entropy, class_weights: {virginca: 2}}", "loss.class_weights: 'virginca' is not a class; the classes are setosa, versicolor, virginica. Did you mean 'virginica'?"),
        ("loss=mse", "loss: mse does not fit this classification task with 3 classes; use cross_entropy or auto"),
        ("loss=binary_cross_entropy", "loss: binary_cross_entropy does not fit this classification task with 3 classes; use cross_entropy or auto"),
        ("loss={name: cross_entropy, class_weights: [1, 2]}", "loss.class_weights: 2 weights for 3 classes (setosa, versicolor, virginica); give one per class, in this order"),
        ("schedule={name: reduce_on_plateau, monitor: val_acc}", "schedule.monitor: 'val_acc' is not a logged metric; choose from train_loss, val_loss, val_accuracy, val_balanced_accuracy, val_precision_macro, val_recall_macro, val_f1_macro, val_log_loss. Did you mean 'val_accuracy'?"),
    ],
)
def test_config_that_does_not_fit_the_data(tmp_path, setting, message):
    from bptrain.errors import ConfigError

    config = load_config(ROOT / "configs" / "iris.yaml", parse_overrides([setting]))
    with pytest.raises(ConfigError) as info:
        app.check(config)
    assert str(info.value) == message


def test_gradcheck_catches_a_wrong_derivative(monkeypatch):
    from bptrain.nn.activations import ACTIVATIONS

    config = load_config(ROOT / "configs" / "wine.yaml")  # tanh hidden layer
    assert app.gradcheck(config)["passed"]
    wrong = lambda self, grad, z, a, tmp=None: grad  # noqa: E731  (derivative 1 instead of 1 - a^2)
    monkeypatch.setattr(ACTIVATIONS["tanh"], "backward", wrong)
    result = app.gradcheck(config)
    assert not result["passed"]
    assert {p["name"] for p in result["params"] if not p["ok"]} == {"layers.0.W", "layers.0.b"}


def test_fit_warns_once_about_categories_only_the_validation_and_test_rows_hold(tmp_path):
    rows = [(i, "abc"[i % 3] if i < 30 else "rare", "pq"[i % 2]) for i in range(32)]
    (tmp_path / "u.csv").write_text("n,c,y\n" + "".join(f"{2 * n},{c},{y}\n" for n, c, y in rows))  # 2n: not a row number
    (tmp_path / "u.yaml").write_text("seed: 0\ndata: {train: u.csv, target: y, split: {stratify: false}}\nstopping: {max_epochs: 1}\n")
    warnings = []
    app.fit(load_config(tmp_path / "u.yaml"), runs_dir=tmp_path / "runs", on_event=lambda e: isinstance(e, events.Warning) and warnings.append(e.message))
    assert warnings == [
        f"{tmp_path / 'u.csv'} (validation and test rows): 2 values in categorical columns the model never saw, "
        "encoded as unknown (no category): c 'rare' (2 rows)"
    ]


def test_callbacks_given_to_fit_see_every_epoch_and_may_stop_the_run(tmp_path):
    from bptrain.training.callbacks import Callback, Stop

    class StopAtThree(Callback):
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, trainer, row):
            self.epochs.append(row["epoch"])

        def should_stop(self, trainer, row):
            return Stop("max_epochs") if row["epoch"] == 3 else None

    watcher = StopAtThree()
    config = load_config(ROOT / "configs" / "iris.yaml", parse_overrides(["stopping.max_epochs=6", "stopping.early_stopping=null"]))
    result = app.fit(config, runs_dir=tmp_path, callbacks=[watcher])
    assert watcher.epochs == [1, 2, 3]
    assert result.report["epochs_run"] == 3
