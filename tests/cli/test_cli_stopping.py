"""Each stopping rule fires and is recorded, through `bptrain fit` runs on iris.

A rule's firing is checked against the run's own metrics log (the trajectory does not depend on
the rule), in report.json (`stop_reason`, `epochs_run`, `steps`, `best_epoch`) and in the summary
line `stopped    <reason> after N epochs, S s; best epoch B`. Divergence: exit 4, a message naming
epoch and step, the best weights kept in model.npz.

The runs are independent; a module fixture makes them through the CLI's entry point in this process
(call_cli), and one of them, the huge learning rate, as a real process beside them: its exit code 4 and
its single stderr line are those of `python -m bptrain` itself.
"""

from __future__ import annotations

import csv
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import call_cli, model_digests, run_cli

IRIS = "configs/iris.yaml"  # batch_size 16 over 102 training rows: 7 steps per epoch
STEPS_PER_EPOCH = 7
NO_EARLY = ("--set", "stopping.early_stopping=null")
EXPLODING = (  # adam at 0.01, then x10 per epoch: a good epoch 2, then the loss climbs
    "--set", "optimizer={name: adam, lr: 0.01}",
    "--set", "schedule={name: exponential, gamma: 10}",
)
BLOWUP = (  # x1e10 per epoch: epoch 1 is good, epoch 3 overflows to a non-finite loss
    "--set", "optimizer={name: adam, lr: 0.01}",
    "--set", "schedule={name: exponential, gamma: 10000000000.0}",
)
HUGE_LR = ("--set", "optimizer={name: sgd, lr: 1000000.0}")
SUMMARY = re.compile(r"stopped    (\w+) after (\d+) epochs, (\d+\.\d) s; best epoch (\d+)")

RUNS = {
    "max_epochs": (*NO_EARLY, "--set", "stopping.max_epochs=4"),
    "max_steps_10": ("--set", "stopping.max_steps=10"),
    "max_steps_14": ("--set", "stopping.max_steps=14"),
    "max_time": (*NO_EARLY, "--set", "stopping.max_epochs=1000000", "--set", "stopping.max_time=0.4s"),
    "patience_1": ("--set", "stopping.early_stopping={patience: 1}", "--set", "stopping.max_epochs=60"),
    "patience_1_from_10": (
        "--set", "stopping.early_stopping={patience: 1, start_from_epoch: 10}", "--set", "stopping.max_epochs=60",
    ),
    "target_train_loss": ("--set", "stopping.target={train_loss: '<= 0.2'}"),
    "target_val_accuracy": ("--set", "stopping.target={val_accuracy: '>= 0.9'}"),
    "divergence_rule": (*EXPLODING, "--set", "stopping.divergence={train_loss: '> 1.5'}"),
    "blowup": BLOWUP,
    "huge_lr": HUGE_LR,
    "huge_lr_every_step": (*HUGE_LR, "--set", "training.checkpoint.every_steps=1"),
    "anomaly": (*HUGE_LR, "--set", "training.detect_anomaly=true", "--set", "training.checkpoint.every_steps=1"),
}
IN_A_PROCESS = "huge_lr"


def fit(folder: Path, *sets: str, cli=call_cli) -> SimpleNamespace:
    runs = folder / "runs"
    result = cli("fit", IRIS, *sets, "-q", "--runs-dir", runs)
    folders = sorted(runs.iterdir()) if runs.is_dir() else []
    assert len(folders) == 1, (folders, result.stderr)
    run = folders[0]
    return SimpleNamespace(result=result, run=run, code=result.returncode, out=result.stdout, err=result.stderr)


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> dict[str, SimpleNamespace]:
    """Every run of RUNS, by name: the subprocess one in a thread while the others run in this process."""
    folders = {key: tmp_path_factory.mktemp(key) for key in RUNS}
    with ThreadPoolExecutor(1) as pool:
        process = pool.submit(fit, folders[IN_A_PROCESS], *RUNS[IN_A_PROCESS], cli=run_cli)
        found = {key: fit(folders[key], *sets) for key, sets in RUNS.items() if key != IN_A_PROCESS}
        return {**found, IN_A_PROCESS: process.result()}


def report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text(encoding="utf-8"))


def rows(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]




def checkpoint_meta(run: Path) -> dict:
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as archive:
        return json.loads(str(archive["__meta__"]))


def assert_finished(r: SimpleNamespace, reason: str, epochs: int, best: int) -> dict:
    """Exit 0, no traceback or warning, the summary line and report.json agree on why and when it stopped."""
    assert r.code == 0, r.err
    assert r.err == ""
    assert r.out.splitlines()[0] == f"run        {r.run}"
    match = SUMMARY.fullmatch(r.out.splitlines()[1])
    assert match, r.out
    assert (match.group(1), int(match.group(2)), int(match.group(4))) == (reason, epochs, best)
    rep = report(r.run)
    assert (rep["stop_reason"], rep["epochs_run"], rep["best_epoch"]) == (reason, epochs, best)
    assert float(match.group(3)) == pytest.approx(rep["seconds"], abs=0.051)
    assert len(rows(r.run)) == epochs
    return rep


# --- budgets --------------------------------------------------------------------------------------


def test_max_epochs(done):
    r = done["max_epochs"]
    rep = assert_finished(r, "max_epochs", 4, 4)
    assert rep["steps"] == 4 * STEPS_PER_EPOCH
    log = rows(r.run)
    assert [row["epoch"] for row in log] == [1, 2, 3, 4]
    assert [row["step"] for row in log] == [7, 14, 21, 28]


@pytest.mark.parametrize(
    "key, steps, epochs",
    [
        ("max_steps_10", 10, 1),  # mid-epoch: epoch 2 stops after 3 of its 7 steps
        ("max_steps_14", 14, 2),  # at an epoch's end: epoch 2 is finished and logged
    ],
)
def test_max_steps(done, key, steps, epochs):
    r = done[key]
    rep = assert_finished(r, "max_steps", epochs, epochs)
    assert rep["steps"] == steps
    assert [row["step"] for row in rows(r.run)] == [STEPS_PER_EPOCH * e for e in range(1, epochs + 1)]
    position = checkpoint_meta(r.run)["position"]
    assert (position["step"], position["epoch"], position["batch"]) == (steps, epochs + 1, steps - STEPS_PER_EPOCH * epochs)


def test_max_time(done):
    r = done["max_time"]
    rep = report(r.run)
    assert r.code == 0, r.err
    assert rep["stop_reason"] == "max_time"
    assert rep["seconds"] >= 0.4
    assert 0 < rep["epochs_run"] < 1000000
    assert rep["epochs_run"] * STEPS_PER_EPOCH <= rep["steps"] <= (rep["epochs_run"] + 1) * STEPS_PER_EPOCH
    assert_finished(r, "max_time", rep["epochs_run"], rep["epochs_run"])
    assert checkpoint_meta(r.run)["position"]["seconds"] >= 0.4


# --- early stopping -------------------------------------------------------------------------------


def expected_early_stop(values: list[float], patience: int, start_from_epoch: int = 0) -> tuple[int | None, int]:
    """(the epoch at which min-mode early stopping fires on `values`, the best epoch), by the definition."""
    best, best_epoch, wait = None, 0, 0
    for epoch, value in enumerate(values, start=1):
        if epoch <= start_from_epoch:
            continue
        if best is None or value < best:
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return None, best_epoch


def test_early_stopping_fires_and_restores_the_best_epoch(done):
    r = done["patience_1"]
    log = rows(r.run)
    stop, best = expected_early_stop([row["val_loss"] for row in log], patience=1)
    assert stop == len(log) < 10
    rep = assert_finished(r, "early_stopping", stop, best)
    assert best < stop
    # restore_best: the final model is the best epoch's, so its val loss is that epoch's logged one
    assert rep["metrics"]["val"]["loss"] == log[best - 1]["val_loss"]


def test_early_stopping_start_from_epoch_watches_only_later_epochs(done):
    early, late = done["patience_1"], done["patience_1_from_10"]
    log = rows(late.run)
    without = len(rows(early.run))
    assert without < 10  # the rule alone would stop before epoch 10 ...
    stop, best = expected_early_stop([row["val_loss"] for row in log], patience=1, start_from_epoch=10)
    assert stop == len(log) > 10  # ... but epochs up to 10 are not watched
    assert best > 10
    rep = assert_finished(late, "early_stopping", stop, best)
    assert rep["metrics"]["val"]["loss"] == log[best - 1]["val_loss"]
    # the same trajectory until the first run stopped
    drop = lambda row: {k: v for k, v in row.items() if k != "seconds"}  # noqa: E731
    assert [drop(row) for row in rows(early.run)] == [drop(row) for row in log[:without]]


# --- targets --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, metric, holds",
    [
        ("target_train_loss", "train_loss", lambda v: v <= 0.2),
        ("target_val_accuracy", "val_accuracy", lambda v: v >= 0.9),
    ],
)
def test_target_stops_at_the_first_epoch_it_holds(done, key, metric, holds):
    r = done[key]
    log = rows(r.run)
    assert len(log) > 1
    assert holds(log[-1][metric])
    assert not any(holds(row[metric]) for row in log[:-1])
    best = min(range(len(log)), key=lambda i: (log[i]["val_loss"], i)) + 1
    assert_finished(r, "target", len(log), best)


# --- divergence -----------------------------------------------------------------------------------


def assert_diverged(r: SimpleNamespace, epochs: int, best: int) -> dict:
    assert r.code == 4, r.err
    assert r.out == ""
    assert "Traceback" not in r.err
    rep = report(r.run)
    assert (rep["stop_reason"], rep["epochs_run"], rep["best_epoch"]) == ("diverged", epochs, best)
    assert len(rows(r.run)) == epochs
    return rep


def test_divergence_rule_keeps_the_best_epoch(done, tmp_path):
    r = done["divergence_rule"]
    log = rows(r.run)
    fired = next(i for i, row in enumerate(log, start=1) if row["train_loss"] > 1.5)
    assert fired == len(log) > 2
    best = min(range(fired), key=lambda i: (log[i]["val_loss"], i)) + 1
    assert best < fired
    *warned, error = r.err.splitlines()
    assert error == (
        f"error: training diverged at epoch {fired}: train_loss = {log[-1]['train_loss']:g} met the divergence "
        f"rule train_loss > 1.5; the best model so far is in {r.run / 'model.npz'}"
    )
    (warning,) = warned  # the diagnostics saw it coming, at the latest in the epoch the rule fired
    assert int(re.fullmatch(r"warning: large updates at epoch (\d+): .+", warning).group(1)) <= fired
    rep = assert_diverged(r, fired, best)
    assert rep["steps"] == fired * STEPS_PER_EPOCH
    assert rep["metrics"]["val"]["loss"] == log[best - 1]["val_loss"]
    # model.npz holds exactly the weights of a run that ends at the best epoch
    reference = fit(tmp_path, *EXPLODING, "--set", f"stopping.max_epochs={best}")
    assert reference.code == 0, reference.err
    assert model_digests(r.run) == model_digests(reference.run)


def test_non_finite_loss_keeps_the_best_epoch(done):
    r = done["blowup"]
    log = rows(r.run)
    epoch = len(log) + 1
    match = re.fullmatch(
        rf"warning: large updates at epoch \d+: [^\n]+\n"  # the diagnostics saw it coming
        rf"error: training diverged at epoch {epoch}, step (\d+): loss became (nan|inf)\. Try a smaller optimizer\.lr "
        rf"\(now ([^)]+)\); the best model so far is in {re.escape(str(r.run / 'model.npz'))}\n",
        r.err,
    )
    assert match, r.err
    step = int(match.group(1))
    assert len(log) * STEPS_PER_EPOCH < step <= epoch * STEPS_PER_EPOCH
    assert float(match.group(3)) == pytest.approx(0.01 * 1e10 ** (epoch - 1))  # the rate the step used
    rep = assert_diverged(r, len(log), 1)
    assert rep["steps"] == step - 1
    # the final model is epoch 1's: its val loss is the one logged then, to the last bit
    assert rep["metrics"]["val"]["loss"] == log[0]["val_loss"]


HUGE_LR_ERROR = re.compile(
    r"error: training diverged at epoch 1, step (\d+): loss became (nan|inf)\. Try a smaller optimizer\.lr \(now 1e\+06\)(.*)"
)


def test_huge_learning_rate_exits_4_naming_epoch_step_and_lr(done):
    r = done["huge_lr"]
    assert r.code == 4
    assert r.out == ""
    assert "Traceback" not in r.err
    match = HUGE_LR_ERROR.fullmatch(r.err.splitlines()[-1])
    assert match, r.err
    rep = assert_diverged(r, 0, 0)
    assert rep["steps"] == int(match.group(1)) - 1


def test_huge_learning_rate_stderr_is_the_one_error_line(done):
    r = done["huge_lr"]
    assert len(r.err.splitlines()) == 1, r.err


def test_huge_learning_rate_still_leaves_a_loadable_model(done):
    r = done["huge_lr"]
    with np.load(r.run / "model.npz", allow_pickle=False) as archive:
        assert "layers.0.W" in archive.files
    assert HUGE_LR_ERROR.fullmatch(r.err.splitlines()[-1]).group(3) == f"; the best model so far is in {r.run / 'model.npz'}"


def test_huge_learning_rate_keeps_the_last_checkpointed_model(done):
    """With a checkpoint every step, model.npz holds the weights of the step before the failure."""
    r = done["huge_lr_every_step"]
    match = HUGE_LR_ERROR.fullmatch(r.err.splitlines()[-1])
    assert match, r.err
    assert match.group(3) == f"; the best model so far is in {r.run / 'model.npz'}"
    step = int(match.group(1))
    assert_diverged(r, 0, 0)
    with np.load(r.run / "model.npz", allow_pickle=False) as archive:
        weights = {name: archive[name] for name in archive.files if name.startswith("layers.")}
    with np.load(r.run / "checkpoints" / "last.npz", allow_pickle=False) as archive:
        assert json.loads(str(archive["__meta__"]))["position"]["step"] == step - 1
        saved = {name[len("model/") :]: archive[name] for name in archive.files if name.startswith("model/")}
    assert sorted(weights) == sorted(saved) == ["layers.0.W", "layers.0.b", "layers.2.W", "layers.2.b", "layers.4.W", "layers.4.b"]
    for name in weights:
        assert np.isfinite(weights[name]).all(), name
        assert np.array_equal(weights[name], saved[name]), name


def first_non_finite_layer(run: Path) -> tuple[int, str, int]:
    """(layer index, layer type, step) where the failing step's forward pass first leaves the finite
    numbers, recomputed in float32 from the checkpoint before that step and the run's own training rows."""
    from bptrain.config.loading import load_config
    from bptrain.data import splits as data

    config = load_config(run / "config.yaml")
    raw = data.read_splits(config.data, config.seed)
    train = data.transform(raw, data.fit_preprocessor(raw), "cross_entropy", "float32").train
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as archive:
        state = {name: archive[name] for name in archive.files}
    position = json.loads(str(state["__meta__"]))["position"]
    batch = config.training.batch_size
    x = train.x[state["order"][position["batch"] * batch : (position["batch"] + 1) * batch]]
    with np.errstate(all="ignore"):
        for i in range(5):
            if i % 2 == 0:
                x = x @ state[f"model/layers.{i}.W"] + state[f"model/layers.{i}.b"]
            else:
                x = np.maximum(x, 0)
            if not np.isfinite(x).all():
                return i, "Dense" if i % 2 == 0 else "Activation", position["step"] + 1
    raise AssertionError("the recomputed forward pass stays finite")


def test_detect_anomaly_names_the_first_non_finite_layer(done):
    r = done["anomaly"]
    assert r.code == 4
    assert r.out == ""
    index, kind, step = first_non_finite_layer(r.run)
    assert r.err == (
        f"error: non-finite value in the forward pass of layers.{index} ({kind}) at epoch 1, step {step}; "
        f"the best model so far is in {r.run / 'model.npz'}\n"
    )
    plain = HUGE_LR_ERROR.fullmatch(done["huge_lr"].err.splitlines()[-1])
    assert int(plain.group(1)) == step  # the same step the plain run's loss check caught


def test_detect_anomaly_still_writes_the_report(done):
    r = done["anomaly"]
    assert report(r.run)["stop_reason"] == "diverged"


# --- stopping settings that cannot work: exit 2 before any training -----------------------------------


@pytest.mark.parametrize(
    "setting, message",
    [
        (
            "stopping.max_time=.nan",
            "error: configs/iris.yaml: 1 problem\n"
            "  stopping.max_time: must be a finite number (got .nan) (from --set)\n",
        ),
        (
            "stopping.max_time=1h 30",
            "error: configs/iris.yaml: 1 problem\n"
            "  stopping.max_time: must be a duration such as 90s, 10m, 2h or 1h30m (got '1h 30') (from --set)\n",
        ),
        (
            "stopping.divergence={train_loss: '=> 3'}",
            "error: configs/iris.yaml: 1 problem\n"
            "  stopping.divergence: train_loss: must be a comparison such as '>= 0.99' or '< 0.01' (got '=> 3') (from --set)\n",
        ),
        (
            "stopping.target={val_acuracy: '>= 0.9'}",
            "error: stopping.target: 'val_acuracy' is not a logged metric; choose from train_loss, val_loss, val_accuracy, "
            "val_balanced_accuracy, val_precision_macro, val_recall_macro, val_f1_macro, val_log_loss. Did you mean 'val_accuracy'?\n",
        ),
    ],
)
def test_unusable_stopping_settings_exit_2(tmp_path, setting, message):
    result = call_cli("fit", IRIS, "--set", setting, "-q", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
