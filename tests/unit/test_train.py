"""The training loop and early stopping."""

import re

import numpy as np
import pandas as pd
import pytest

from bptrain.config.schema import CheckpointConfig
from bptrain.data.columns import numeric_column
from bptrain.data.preprocess import Preprocessor
from bptrain.data.splits import Split
from bptrain.inference import INFERENCE_ROWS, outputs, outputs_and_loss
from bptrain.nn.losses import LOSSES
from bptrain.nn.model import build_model
from bptrain.nn.optimizers import OPTIMIZERS
from bptrain.training.callbacks import (
    Cadence,
    Callback,
    Checkpointing,
    Stop,
    overriding,
)
from bptrain.training.callbacks import (
    EarlyStopping as EarlyStoppingCallback,
)
from bptrain.training.loop import LearningRate, Setup, Trainer, epoch_steps, lone_row_warning
from bptrain.training.stopping import Budget, EarlyStopping, resolve_mode


@pytest.mark.parametrize("patience, stops_at", [(1, 3), (2, 4), (3, 5)])
def test_early_stopping_on_a_scripted_loss_sequence(patience, stops_at):
    losses = [1.0, 0.5, 0.6, 0.55, 0.7, 0.8, 0.9, 1.0]
    rule = EarlyStopping("val_loss", "min", patience)
    stopped = next(epoch for epoch, value in enumerate(losses, 1) if rule.update(epoch, value))
    assert stopped == stops_at
    assert rule.best == 0.5 and rule.best_epoch == 2


def test_min_delta_and_max_mode():
    rule = EarlyStopping("val_accuracy", "max", patience=2, min_delta=0.05)
    assert [rule.update(e, v) for e, v in enumerate([0.5, 0.54, 0.56, 0.6], 1)] == [False, False, False, False]
    assert (rule.best, rule.best_epoch) == (0.56, 3)
    assert rule.update(5, 0.61) is True  # 0.6 and 0.61 are both within min_delta of 0.56


def test_non_finite_values_never_improve():
    rule = EarlyStopping("val_loss", "min", patience=5)
    rule.update(1, 1.0)
    rule.update(2, float("nan"))
    assert rule.best == 1.0 and rule.wait == 1


def test_auto_mode_follows_the_metric():
    assert resolve_mode("val_accuracy", "auto") == "max"
    assert resolve_mode("val_loss", "auto") == "min"
    assert resolve_mode("val_r2", "min") == "min"


def toy_problem(n=64, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(dtype)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": labels})
    columns = [numeric_column(name) for name in "abc"]
    prep = Preprocessor(targets=["y"], task="classification", columns=columns, center=np.zeros(3), scale=np.ones(3), classes=["0", "1"])
    return prep, Split("train", x, labels, frame, labels)


def constant_rate(lr):
    """The rate build.make_rate makes for `schedule: constant` (its options are empty)."""
    return LearningRate("constant", lr, {})


def setup(model, prep, optimizer=None, lr=0.1, epochs=5, batch_size=10, shuffle=True, seed=0):
    """The Setup build.assemble would make for these pieces."""
    optimizer = optimizer or OPTIMIZERS["sgd"](model.params)
    return Setup(
        model, LOSSES["cross_entropy"](), optimizer, constant_rate(lr), prep,
        batch_size=batch_size, shuffle=shuffle, rng=np.random.default_rng(seed), budget=Budget(epochs),
    )


def run(epochs=5, stopper=None, restore_best=True, lr=0.05, seed=0, val=True, activation="tanh"):
    prep, split = toy_problem()
    model = build_model([{"units": 8, "activation": activation, "init": "auto"}], 3, 2, dtype="float64", rng=np.random.default_rng(seed), batch_size=10)
    optimizer = OPTIMIZERS["sgd"](model.params, momentum=0.9)
    callbacks = [EarlyStoppingCallback(stopper, restore_best)] if stopper is not None else []
    outcome = Trainer(setup(model, prep, optimizer, lr, epochs, seed=seed), split, split if val else None, callbacks).run()
    return model, outcome


def test_training_lowers_the_loss_and_logs_one_row_per_epoch():
    _, outcome = run(epochs=20)
    assert [r["epoch"] for r in outcome.rows] == list(range(1, 21))
    assert [r["step"] for r in outcome.rows] == [7 * e for e in range(1, 21)]  # ceil(64 / 10) batches
    assert outcome.rows[-1]["train_loss"] < 0.5 * outcome.rows[0]["train_loss"]
    assert outcome.rows[-1]["val_accuracy"] > 0.9
    assert outcome.stop_reason == "max_epochs"


def test_same_seed_same_weights_bit_for_bit():
    a, _ = run(epochs=3, seed=4)
    b, _ = run(epochs=3, seed=4)
    c, _ = run(epochs=3, seed=5)
    for key, value in a.state_dict().items():
        assert np.array_equal(value, b.state_dict()[key])
    assert not all(np.array_equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_restore_best_puts_back_the_best_epochs_weights():
    values = iter([3.0, 1.0, 2.0, 2.5, 2.7])
    seen = {}
    stopper = EarlyStopping("val_loss", "min", patience=3)
    original = stopper.update

    def update(epoch, value):
        return original(epoch, next(values))

    stopper.update = update
    prep, split = toy_problem()
    model = build_model([{"units": 4, "activation": "tanh", "init": "auto"}], 3, 2, dtype="float64", rng=np.random.default_rng(0), batch_size=10)
    class Snapshots(Callback):
        def on_epoch_end(self, trainer, row):
            seen[row["epoch"]] = model.state_dict()

    callbacks = [Snapshots(), EarlyStoppingCallback(stopper)]
    outcome = Trainer(setup(model, prep, epochs=10, shuffle=False), split, split, callbacks).run()
    assert outcome.stop_reason == "early_stopping" and outcome.epochs_run == 5 and outcome.best_epoch == 2
    for key, value in model.state_dict().items():
        assert np.array_equal(value, seen[2][key])


def test_a_non_finite_loss_stops_training_with_the_epoch_and_step():
    _, outcome = run(epochs=50, lr=1e300, activation="relu")
    assert outcome.stop_reason == "diverged"
    assert re.fullmatch(
        r"training diverged at epoch \d+, step \d+: (loss became (nan|inf)|weights layers\.\d\.[Wb] became non-finite)\. "
        r"Try a smaller optimizer.lr \(now 1e\+300\)",
        outcome.message,
    )


def checkpoints_taken(cadence, epochs=4):
    """(epoch, batch, step) of every checkpoint of a run of 7 batches per epoch."""
    prep, split = toy_problem()
    model = build_model([{"units": 4, "activation": "tanh", "init": "auto"}], 3, 2, dtype="float64", rng=np.random.default_rng(0), batch_size=10)
    seen = []
    saving = Checkpointing(lambda t: seen.append((t.position.epoch, t.position.batch, t.position.step)), cadence)
    Trainer(setup(model, prep, epochs=epochs), split, None, [saving]).run()
    return seen


def test_checkpoint_cadence_by_epochs_and_steps():
    # at the start, after epochs 2 and 4 (epoch counts the next epoch), and at the stop
    assert checkpoints_taken(Cadence(every_epochs=2)) == [(1, 0, 0), (3, 0, 14), (5, 0, 28), (5, 0, 28)]
    assert checkpoints_taken(Cadence(every_epochs=None, every_steps=10)) == [
        (1, 0, 0), (2, 3, 10), (3, 6, 20), (5, 0, 28)
    ]
    assert checkpoints_taken(Cadence(every_epochs=None)) == [(1, 0, 0), (5, 0, 28)]


def test_default_checkpoint_cadence_is_every_minute_so_a_short_run_saves_at_start_and_stop():
    assert Cadence() == Cadence(**CheckpointConfig().model_dump()) == Cadence(every_epochs=None, every_steps=None, every_seconds=60.0)
    assert checkpoints_taken(Cadence()) == [(1, 0, 0), (5, 0, 28)]


def test_checkpoint_cadence_by_seconds():
    every_step = checkpoints_taken(Cadence(every_epochs=None, every_seconds=1e-9), epochs=1)
    assert [c[2] for c in every_step] == [0, 1, 2, 3, 4, 5, 6, 7, 7]
    assert checkpoints_taken(Cadence(every_epochs=None, every_seconds=3600), epochs=1) == [(1, 0, 0), (2, 0, 7)]


# --- steps per epoch ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows, batch_size, batch_norm, steps",
    [(120, 7, False, 18), (120, 7, True, 17), (120, 8, True, 15), (64, 10, True, 7), (7, 2, True, 3), (5, 10, True, 1), (1, 1, True, 1)],
)
def test_an_epoch_skips_a_last_batch_of_one_row_only_under_batch_norm(rows, batch_size, batch_norm, steps):
    assert epoch_steps(rows, batch_size, batch_norm) == steps


@pytest.mark.parametrize("rows, batch_size, steps, suggested", [(120, 7, 17, "6 or 8"), (64, 9, 7, "8 or 10"), (7, 2, 3, "4")])
def test_the_lone_row_warning_names_the_nearest_batch_sizes_that_leave_none(rows, batch_size, steps, suggested):
    assert lone_row_warning(rows, batch_size, True) == (
        f"batch_norm: the last batch of each epoch would hold 1 row ({rows} training rows, training.batch_size {batch_size}); "
        f"it is skipped, since batch norm needs 2 rows, so an epoch takes {steps} steps; "
        f"choose a batch_size that does not leave 1 row, e.g. {suggested}"
    )


@pytest.mark.parametrize("rows, batch_size, batch_norm", [(120, 7, False), (120, 8, True), (5, 10, True)])
def test_no_lone_row_warning_when_no_row_is_skipped(rows, batch_size, batch_norm):
    assert lone_row_warning(rows, batch_size, batch_norm) is None


def test_the_loop_takes_as_many_steps_as_counted_under_batch_norm():
    prep, split = toy_problem()  # 64 rows in batches of 9: the eighth batch would hold one row
    model = build_model([{"type": "dense", "units": 4}, {"type": "batch_norm"}], 3, 2, dtype="float64", rng=np.random.default_rng(0), batch_size=9)
    outcome = Trainer(setup(model, prep, epochs=3, batch_size=9), split, None).run()
    assert [row["step"] for row in outcome.rows] == [epoch_steps(64, 9, True) * e for e in (1, 2, 3)] == [7, 14, 21]


# --- inference: a row's output does not depend on how rows are grouped -----------------------------


class ShapeSensitive:
    """A stand-in network whose result for a row changes with the number of rows in the product and
    with the row's place in it, as a BLAS may (gemv for one row, edge kernels for a remainder)."""

    def __init__(self):
        self.rows_seen = []

    def forward(self, x, *, train=True):
        n = len(x)
        self.rows_seen.append(n)
        return x * 2.0 + 1e-3 * n + 1e-4 * (np.arange(n) % 7)[:, None]


class Identity:
    def link(self, logits):
        return logits.copy()


PARTS = [(0, 1), (1, 2), (255, 257), (256, 512), (300, 1000), (999, 1000), (17, 600)]


def test_a_rows_output_depends_on_its_file_row_not_on_its_block():
    x = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float32)
    model = ShapeSensitive()
    whole = outputs(model, Identity(), x)
    for start, stop in PARTS:
        np.testing.assert_array_equal(outputs(model, Identity(), x[start:stop], first_row=start), whole[start:stop])
    assert set(model.rows_seen) == {INFERENCE_ROWS}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_real_network_gives_each_row_the_same_bits_in_any_block(dtype):
    x = np.random.default_rng(1).normal(size=(1000, 5)).astype(dtype)
    model = build_model([{"units": 33, "activation": "tanh", "init": "auto"}], 5, 4, dtype=dtype, rng=np.random.default_rng(2), batch_size=7)
    loss = LOSSES["cross_entropy"]()
    whole = outputs(model, loss, x)
    assert whole.dtype == np.dtype(dtype) and np.allclose(whole.sum(axis=1), 1.0)
    for start, stop in PARTS:
        np.testing.assert_array_equal(outputs(model, loss, x[start:stop], first_row=start), whole[start:stop])


def test_the_mean_loss_counts_real_rows_only():
    prep, split = toy_problem(n=300)
    model = build_model([{"units": 4, "activation": "relu", "init": "auto"}], 3, 2, dtype="float64", rng=np.random.default_rng(0), batch_size=8)
    loss = LOSSES["cross_entropy"]()
    p, value = outputs_and_loss(model, loss, split.x, split.y)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(300), split.y])), rel=1e-12)
    np.testing.assert_array_equal(p, outputs(model, loss, split.x))  # the same pass gives the same outputs


# --- callbacks ----------------------------------------------------------------------------------


class Rule(Callback):
    """A stopping rule that fires with `reason` at the end of epoch `at`."""

    def __init__(self, reason, at, log=None):
        self.reason, self.at, self.log = reason, at, log

    def should_stop(self, trainer, row):
        return Stop(self.reason, f"{self.reason} at {row['epoch']}") if row["epoch"] >= self.at else None

    def on_train_end(self, trainer, outcome):
        if self.log is not None:
            self.log.append(self.reason)


def trained_with(callbacks, epochs=5):
    prep, split = toy_problem()
    model = build_model([{"units": 4, "activation": "tanh", "init": "auto"}], 3, 2, dtype="float64", rng=np.random.default_rng(0), batch_size=10)
    return Trainer(setup(model, prep, epochs=epochs), split, None, callbacks).run()


@pytest.mark.parametrize(
    "reasons, expected",
    [
        (["early_stopping", "target"], "target"),
        (["target", "diverged"], "diverged"),
        (["early_stopping"], "early_stopping"),
        (["max_steps", "early_stopping"], "early_stopping"),
    ],
)
def test_rules_firing_at_the_same_epoch_end_give_the_first_reason_in_stop_order(reasons, expected):
    outcome = trained_with([Rule(reason, at=2) for reason in reasons])
    assert (outcome.stop_reason, outcome.epochs_run) == (expected, 2)
    assert outcome.message == f"{expected} at 2"


def test_a_budget_that_ends_with_a_callbacks_rule_loses_to_it_and_max_epochs_to_early_stopping():
    assert trained_with([Rule("early_stopping", at=3)], epochs=3).stop_reason == "early_stopping"
    assert trained_with([Rule("early_stopping", at=4)], epochs=3).stop_reason == "max_epochs"


def test_on_train_end_runs_in_reverse_order():
    ended = []
    trained_with([Rule("target", at=1, log=ended), Rule("early_stopping", at=9, log=ended), Rule("diverged", at=9, log=ended)])
    assert ended == ["diverged", "early_stopping", "target"]


def test_only_callbacks_that_override_on_batch_end_are_called_per_batch():
    class Counting(Callback):
        def __init__(self):
            self.batches = []

        def on_batch_end(self, trainer, batch):
            self.batches.append((batch.epoch, batch.batch, batch.batches, batch.step))

    counting, idle = Counting(), Callback()
    assert overriding([idle, counting], "on_batch_end") == [counting]
    trained_with([idle, counting], epochs=2)
    assert counting.batches == [(e, b, 7, 7 * (e - 1) + b) for e in (1, 2) for b in range(1, 8)]


def test_the_fewest_rows_a_batch_may_hold_comes_from_the_layers():
    plain = build_model([{"units": 4}], 3, 2, dtype="float64", rng=np.random.default_rng(0), batch_size=9)
    normed = build_model([{"type": "dense", "units": 4}, {"type": "batch_norm"}], 3, 2, dtype="float64", rng=np.random.default_rng(0), batch_size=9)
    assert (plain.min_batch_rows, normed.min_batch_rows) == (1, 2)
