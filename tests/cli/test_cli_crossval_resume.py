"""A cross-validation stopped by a signal is continued as a whole by `fit --resume FOLDER`, to the
cv.json, folds and models of an uninterrupted one."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, call_cli, fit_into, logged_epochs, metrics_rows, model_digests, poll

IRIS = "configs/iris.yaml"
FOLDS = 3
SETTINGS = (
    "--folds", str(FOLDS),
    "--set", "stopping.early_stopping=null",
    "--set", "model.layers=[{units: 32, dropout: 0.2}, {units: 32, dropout: 0.2}]",
    "--set", "stopping.max_epochs=40",
    "-q",
)


def start(runs: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("BPTRAIN_TRACEBACK", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bptrain", "fit", IRIS, *SETTINGS, "--runs-dir", str(runs)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def summary_without_name(parent: Path) -> dict:
    summary = json.loads((parent / "cv.json").read_text(encoding="utf-8"))
    for key in ("run", "run_dir"):
        summary.pop(key)
    return summary


def assert_same_cross_validation(parent: Path, reference: Path) -> None:
    assert summary_without_name(parent) == summary_without_name(reference)
    for i in range(1, FOLDS + 1):
        assert model_digests(parent / f"fold-{i}") == model_digests(reference / f"fold-{i}")
        assert metrics_rows(parent / f"fold-{i}") == metrics_rows(reference / f"fold-{i}")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    return fit_into(tmp_path_factory.mktemp("uninterrupted"), IRIS, *SETTINGS)


def test_sigint_in_a_fold_then_resume_of_the_folder_finishes_the_cross_validation(tmp_path, uninterrupted):
    proc = start(tmp_path)
    fold = poll(lambda: next((p for p in tmp_path.glob("*/fold-2") if logged_epochs(p) >= 3), None), proc)
    assert fold is not None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    parent = fold.parent
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == f"error: interrupted by SIGINT: the training state is saved; continue with: bptrain fit --resume {parent}"
    assert not (parent / "cv.json").exists() and not (parent / "fold-3").exists()

    listed = json.loads(call_cli("runs", tmp_path, "--json").stdout)
    assert [(r["name"], r["kind"], r["stop_reason"]) for r in listed] == [(parent.name, "cv", "unfinished")]

    result = call_cli("fit", "--resume", parent, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == f"run        {parent} ({FOLDS} folds)"
    assert_same_cross_validation(parent, uninterrupted)


def test_sigkill_at_a_random_moment_then_resume_is_identical(tmp_path, uninterrupted):
    rng = random.Random()
    proc = start(tmp_path)
    started = poll(lambda: next(iter(tmp_path.glob("*/fold-1/checkpoints/last.npz")), None), proc)
    assert started is not None, proc.communicate()
    time.sleep(rng.uniform(0.0, 1.0))
    proc.kill()
    proc.communicate()
    (parent,) = tmp_path.iterdir()
    result = call_cli("fit", "--resume", parent, "-q")
    assert result.returncode == 0, result.stderr
    assert_same_cross_validation(parent, uninterrupted)


def test_resuming_one_fold_says_how_to_finish_the_cross_validation(tmp_path, uninterrupted):
    proc = start(tmp_path)
    fold = poll(lambda: next((p for p in tmp_path.glob("*/fold-1") if logged_epochs(p) >= 3), None), proc)
    assert fold is not None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    result = call_cli("fit", "--resume", fold, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"notice: {fold} is one fold of the cross-validation {fold.parent}; "
        f"to train the folds left and write its cv.json: bptrain fit --resume {fold.parent}\n"
    )
    result = call_cli("fit", "--resume", fold.parent, "-q")
    assert result.returncode == 0, result.stderr
    assert_same_cross_validation(fold.parent, uninterrupted)


def test_a_finished_cross_validation_resumes_to_the_same_summary(tmp_path, uninterrupted):
    result = call_cli("fit", IRIS, *SETTINGS, "--runs-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    (parent,) = tmp_path.iterdir()
    before = (parent / "cv.json").read_bytes()
    result = call_cli("fit", "--resume", parent, "-q")
    assert (result.returncode, result.stderr) == (0, "")
    assert (parent / "cv.json").read_bytes() == before


def test_resume_of_a_cross_validation_refuses_a_changed_key(tmp_path, uninterrupted):
    result = call_cli("fit", IRIS, *SETTINGS, "--runs-dir", tmp_path)
    (parent,) = tmp_path.iterdir()
    result = call_cli("fit", "--resume", parent, "--set", "optimizer.lr=0.5", "-q")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"error: --resume {parent}: these changes would alter the model, the data or the optimization:\n  optimizer.lr: ")


def test_a_fold_started_by_a_resume_refuses_data_changed_since_the_first_fold(tmp_path):
    data = tmp_path / "iris.csv"
    data.write_bytes((ROOT / "datasets" / "iris.csv").read_bytes())
    result = call_cli("fit", IRIS, *SETTINGS, "--set", f"data.train={data}", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    (parent,) = (tmp_path / "runs").iterdir()
    # as if stopped before the last fold began: no trace of it, no cv.json
    shutil.rmtree(parent / f"fold-{FOLDS}")
    (parent / "cv.json").unlink()
    data.write_text(data.read_text(encoding="utf-8").replace("5.1,3.5,1.4,0.2", "5.2,3.5,1.4,0.2", 1), encoding="utf-8")
    result = call_cli("fit", "--resume", parent, "-q")
    assert (result.returncode, result.stdout) == (3, "")
    # the finished first fold, taken up again, checks the data against its checkpoint's record
    assert result.stderr == (
        f"error: {data}: the data changed since the run {parent / 'fold-1'} started (its sha256 differs); "
        "resuming would not continue the same training. Start a new run instead\n"
    )
    assert not (parent / f"fold-{FOLDS}").exists() and not (parent / "cv.json").exists()


@pytest.mark.parametrize("schedule, budget", [
    ("{name: cosine, min_lr: 0.001}", 9), ("{name: linear, interval: step, min_lr: 0.001}", 9), ("{name: cosine, min_lr: 0.001}", 4),
], ids=["epochs", "steps", "lowered"])
def test_a_new_budget_gives_the_folds_not_started_the_schedule_the_cross_validation_began_with(tmp_path, schedule, budget):
    """A schedule's default length is the budget a run starts with (README: "Schedules"). Resumed
    with another max_epochs before its last fold started, a cross-validation ends as it does when
    it finished first and was then resumed: every fold with the same schedule and epochs."""
    settings = ("--folds", str(FOLDS), "--set", f"schedule={schedule}", "--set", "stopping.early_stopping=null", "-q")
    folders = {}
    for case in ("finished", "stopped"):
        result = call_cli("fit", IRIS, *settings, "--set", "stopping.max_epochs=6", "--runs-dir", tmp_path / case)
        assert result.returncode == 0, result.stderr
        (folders[case],) = (tmp_path / case).iterdir()
    shutil.rmtree(folders["stopped"] / f"fold-{FOLDS}")  # as if stopped before the last fold began
    (folders["stopped"] / "cv.json").unlink()
    for case, parent in folders.items():
        result = call_cli("fit", "--resume", parent, "--set", f"stopping.max_epochs={budget}", "-q")
        assert result.returncode == 0, result.stderr
    assert summary_without_name(folders["stopped"]) == summary_without_name(folders["finished"])
    for i in range(1, FOLDS + 1):
        assert metrics_rows(folders["stopped"] / f"fold-{i}") == metrics_rows(folders["finished"] / f"fold-{i}")
        assert model_digests(folders["stopped"] / f"fold-{i}") == model_digests(folders["finished"] / f"fold-{i}")
    assert result.stderr == (
        f"notice: fold {FOLDS} of {parent} has not started: every fold is first trained to 6 epochs, the budget the "
        f"cross-validation began with, then resumed with stopping.max_epochs={budget}, as a finished cross-validation would be\n"
    )
