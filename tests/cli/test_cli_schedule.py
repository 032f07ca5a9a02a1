"""A schedule's default `total` is the number of steps the loop really takes, through `bptrain fit`
runs (the console script's entry point, in this process: call_cli).

The case: iris with a test split of 0.2 (120 training rows), one dense layer and batch_norm,
batch_size 7. 120 = 17 * 7 + 1: the last batch of each epoch would hold one row, which batch norm
cannot train on, so it is skipped and an epoch takes 17 steps, not 18. Six epochs: 102 steps.
"""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from conftest import call_cli, metrics_rows, model_digests
from bptrain.nn.schedules import linear, one_cycle

LR = 0.01
EPOCHS, STEPS_PER_EPOCH = 6, 17
TOTAL = EPOCHS * STEPS_PER_EPOCH
LONE_ROW = (
    "batch_norm: the last batch of each epoch would hold 1 row (120 training rows, training.batch_size 7); "
    "it is skipped, since batch norm needs 2 rows, so an epoch takes 17 steps; "
    "choose a batch_size that does not leave 1 row, e.g. 6 or 8"
)
CASE = (
    "configs/iris.yaml",
    "--set", "data.split={val: 0, test: 0.2}",
    "--set", "model.layers=[{units: 8}, {type: batch_norm}]",
    "--set", f"optimizer={{name: adam, lr: {LR}}}",
    "--set", "training.batch_size=7",
    "--set", f"stopping={{max_epochs: {EPOCHS}, early_stopping: null}}",
)


def fit(runs: Path, schedule: str, *sets: str) -> SimpleNamespace:
    result = call_cli("fit", *CASE, "--set", f"schedule={schedule}", *sets, "-q", "--runs-dir", runs)
    (run,) = runs.iterdir()
    return SimpleNamespace(result=result, run=run)


def log(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def one_cycle_run(tmp_path_factory) -> SimpleNamespace:
    return fit(tmp_path_factory.mktemp("one_cycle"), "{name: one_cycle}")


def saved_total(run: Path) -> int:
    return yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))["schedule"]["total"]


@pytest.mark.parametrize(
    "schedule, rate",
    [
        ("{name: one_cycle}", lambda t: one_cycle(t, lr=LR, total=TOTAL)),
        ("{name: linear, min_lr: 0.001}", lambda t: linear(t, lr=LR, total=TOTAL, min_lr=0.001)),
    ],
)
def test_a_step_schedule_spans_exactly_the_steps_the_loop_takes(tmp_path, one_cycle_run, schedule, rate):
    r = one_cycle_run if schedule == "{name: one_cycle}" else fit(tmp_path, schedule)
    assert r.result.returncode == 0, r.result.stderr
    assert saved_total(r.run) == TOTAL
    rows = log(r.run)
    assert [int(row["step"]) for row in rows] == [STEPS_PER_EPOCH * e for e in range(1, EPOCHS + 1)]
    # metrics.csv records the rate of each epoch's last step (step numbers count from 1, t from 0)
    assert [float(row["lr"]) for row in rows] == [rate(int(row["step"]) - 1) for row in rows]


def test_one_cycle_ends_at_its_final_rate_on_the_last_step(one_cycle_run):
    assert float(log(one_cycle_run.run)[-1]["lr"]) == LR / 25.0 / 1e4 == one_cycle(TOTAL - 1, lr=LR, total=TOTAL)


def test_the_skipped_lone_row_is_reported_once(one_cycle_run):
    assert one_cycle_run.result.returncode == 0
    assert one_cycle_run.result.stderr == f"warning: {LONE_ROW}\n"


def test_check_reports_the_skipped_lone_row():
    result = call_cli("check", *CASE, "--set", "schedule={name: one_cycle}")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (  # iris.yaml's tune: section scores trials on validation rows, which CASE has none of
        f"warning: {LONE_ROW}\n"
        "warning: bptrain tune would refuse the tune: section: tune.metric: val_loss is not logged for this config: "
        "it holds out no validation rows (data.split.val), and a search scores each trial on them\n"
    )


def test_no_warning_when_no_lone_row_is_left(tmp_path):
    r = fit(tmp_path, "{name: one_cycle}", "--set", "training.batch_size=8")
    assert r.result.returncode == 0
    assert r.result.stderr == ""
    assert saved_total(r.run) == EPOCHS * 15
    assert int(log(r.run)[-1]["step"]) == EPOCHS * 15


def test_a_resumed_run_keeps_the_saved_total_and_ends_bit_identical(tmp_path, one_cycle_run):
    whole = one_cycle_run
    part = fit(tmp_path, "{name: one_cycle}", "--set", "stopping.max_steps=40")  # inside epoch 3
    assert int(log(part.run)[-1]["step"]) == 2 * STEPS_PER_EPOCH
    resumed = call_cli("fit", "--resume", part.run, "--set", "stopping.max_steps=null", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == f"warning: {LONE_ROW}\n"
    assert saved_total(part.run) == saved_total(whole.run) == TOTAL
    assert metrics_rows(part.run) == metrics_rows(whole.run)
    assert model_digests(part.run) == model_digests(whole.run)


@pytest.mark.parametrize("command", ["check", "fit"])
def test_batch_norm_with_batches_of_one_row_is_a_config_error(tmp_path, command):
    """Every batch of batch_size 1 holds one row, which batch norm cannot train on: refused before
    training, by check as by fit, and fit creates no run folder."""
    extra = ("-q", "--runs-dir", tmp_path / "runs") if command == "fit" else ()
    result = call_cli(command, *CASE, "--set", "training.batch_size=1", *extra)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: training.batch_size: batch_norm needs at least 2 rows in a training batch, but a batch_size of 1 "
        "gives every batch 1 row; use a batch_size of 2 or more, or remove the batch_norm layer\n"
    )
    assert not (tmp_path / "runs").exists()
