"""bptrain tune as a user runs it: the tune folder, best.yaml fitted again, SIGKILL and SIGINT then
--resume, and trials on a real Dask cluster that loses a worker."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, call_cli, poll, run_cli, write

IRIS = ROOT / "datasets" / "iris.csv"
QUICK = f"""name: quick
seed: 7
data: {{train: {IRIS}, target: species}}
model: {{layers: [{{units: 8, activation: relu}}]}}
training: {{batch_size: 16}}
stopping: {{max_epochs: 12}}
tune:
  pruner: none
  space:
    optimizer.lr: {{low: 0.001, high: 0.1, log: true}}
    training.batch_size: [8, 16]
    model.layers.count: {{low: 1, high: 2}}
    model.layers.units: {{low: 4, high: 16, step: 4}}
"""
# about a second a trial: long enough to stop a study in the middle of one
SLOW = f"""name: slow
seed: 1
data: {{train: {IRIS}, target: species}}
model: {{layers: [16]}}
training: {{batch_size: 4}}
stopping: {{max_epochs: 400, early_stopping: false}}
tune:
  pruner: none
  space:
    optimizer.lr: {{low: 0.001, high: 0.01, log: true}}
"""


def trials_csv(tune_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((tune_dir / "trials.csv").read_text())))


def test_a_study_writes_the_tune_folder_and_best_yaml_fits_the_best_trial_again(tmp_path):
    result = run_cli("tune", write(tmp_path, QUICK), "--trials", "4", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    (tune_dir,) = (tmp_path / "runs").iterdir()
    assert tune_dir.name.startswith("quick-tune-")
    names = {p.name for p in tune_dir.iterdir()}
    assert {"tune.json", "study.journal", "trials", "trials.csv", "best.yaml", "report.json", "report.md", "history.svg", "importances.svg"} <= names
    rows = trials_csv(tune_dir)
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"] and {r["state"] for r in rows} == {"complete"}
    assert list(rows[0])[:7] == ["number", "state", "val_loss", "optimizer.lr", "training.batch_size", "model.layers.count", "model.layers.units"]
    # one line per trial on stderr, with its parameters and the best so far
    lines = [line for line in result.stderr.splitlines() if line.startswith("trial")]
    assert len(lines) == 4 and all("optimizer.lr=" in line and "best " in line for line in lines)

    # each trial is an ordinary run, scored on validation rows only; the stored metric is its report's
    for row in rows:
        trial_report = json.loads((tune_dir / row["run"] / "report.json").read_text())
        assert trial_report["metrics"]["test"] is None
        assert float(row["val_loss"]) == trial_report["metrics"]["val"]["loss"]
        config = (tune_dir / row["run"] / "config.yaml").read_text()
        assert f"lr: {float(row['optimizer.lr'])!r}" in config
    summary = json.loads((tune_dir / "report.json").read_text())
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert summary["best"]["trial"] == int(best["number"]) and summary["best"]["value"] == float(best["val_loss"])
    assert set(summary["best"]["test"]) >= {"loss", "accuracy"} and "scored once" in summary["best"]["test_note"]
    assert set(summary["importances"]) == {"optimizer.lr", "training.batch_size", "model.layers.count", "model.layers.units"}
    assert f"trial {best['number']}: val_loss {float(best['val_loss']):.4f}" in result.stdout
    history = (tune_dir / "history.svg").read_text()
    assert 'data-title="Optimization history"' in history and history.count("<polyline") == 2  # the trials and the best so far

    refit = call_cli("fit", tune_dir / "best.yaml", "-q", "--runs-dir", tmp_path / "again")
    assert refit.returncode == 0, refit.stderr
    (run,) = (tmp_path / "again").iterdir()
    again = json.loads((run / "report.json").read_text())
    trial_report = json.loads((tune_dir / best["run"] / "report.json").read_text())
    assert again["metrics"]["val"] == trial_report["metrics"]["val"]  # exactly: the same seed and parameters
    assert again["metrics"]["test"] == summary["best"]["test"]


def _start(tmp_path: Path, trials: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    config = write(tmp_path, SLOW.replace("max_epochs: 400", "max_epochs: 100"))  # a trial takes about a second
    return subprocess.Popen(
        [sys.executable, "-m", "bptrain", "tune", str(config), "--trials", str(trials), "--runs-dir", str(tmp_path / "runs")],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )


def _wait_for_trials(process: subprocess.Popen, count: int) -> list[str]:
    """The first `count` trial lines of a running study's stderr."""
    lines = []
    while len(lines) < count:
        line = process.stderr.readline()
        assert line, f"the study ended early: {lines}"
        if line.startswith("trial"):
            lines.append(line)
    return lines


def _complete(tune_dir: Path) -> dict[str, tuple[str, str]]:
    return {r["number"]: (r["optimizer.lr"], r["val_loss"]) for r in trials_csv(tune_dir) if r["state"] == "complete"}


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_stopped_study_resumes_to_exactly_the_requested_trials(tmp_path, how):
    process = _start(tmp_path, trials=3)
    seen = _wait_for_trials(process, 1)
    assert poll(lambda: list((tmp_path / "runs").glob("*/trials/0001")), process), "the study ended early"  # the next trial runs
    process.send_signal(getattr(signal, how))
    _, err = process.communicate(timeout=60)
    (tune_dir,) = (tmp_path / "runs").iterdir()
    if how == "SIGINT":
        assert process.returncode == 130
        assert err.endswith(f"continue with: bptrain tune --resume {tune_dir}\n") and "Traceback" not in err
        before = _complete(tune_dir)
    else:
        assert process.returncode == -signal.SIGKILL
        before = {line.split()[1]: None for line in seen}
    assert "0" in before

    result = run_cli("tune", "--resume", tune_dir, "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    after = _complete(tune_dir)
    assert len(after) == 3  # exactly the requested number completed
    for number, values in before.items():  # each completed before the stop is kept, as it was, and not run again
        assert number in after and (values is None or after[number] == values)
    rows = trials_csv(tune_dir)
    cut = [r for r in rows if r["state"] == "interrupted"]
    assert len(cut) == 1 and cut[0]["message"] == "stopped with the study"  # the trial running at the stop
    assert len({r["optimizer.lr"] for r in rows if r["state"] == "complete"}) == 3  # a resumed sampler draws new parameters
    assert json.loads((tune_dir / "report.json").read_text())["trials"] == {"complete": 3, "interrupted": 1}


def test_all_trials_failing_is_one_message_and_the_first_failures_exit_code(tmp_path):
    text = SLOW.replace("stopping: {max_epochs: 400, early_stopping: false}", "optimizer: {name: sgd, lr: 0.1}\nstopping: {max_epochs: 3}")
    text = text.replace("{low: 0.001, high: 0.01, log: true}", "{low: 1.0e+6, high: 1.0e+7, log: true}")
    result = run_cli("tune", write(tmp_path, text), "--trials", "2", "--runs-dir", tmp_path / "runs")
    (tune_dir,) = (tmp_path / "runs").iterdir()
    assert result.returncode == 4  # training diverged
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: all 2 trials failed; the first (trial 0): training diverged at epoch 1")
    assert last.endswith(f"every trial is listed in {tune_dir / 'trials.csv'}")
    assert [r["state"] for r in trials_csv(tune_dir)] == ["failed", "failed"]


def test_a_scheduler_without_the_dask_extra_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed raises ImportError
    result = call_cli("tune", write(tmp_path, SLOW), "--scheduler", "tcp://127.0.0.1:9", "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: --scheduler needs Dask's distributed scheduler, the optional extra 'dask': pip install 'bptrain[dask]'\n"


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(tmp_path):
    start = time.monotonic()
    result = call_cli("tune", write(tmp_path, SLOW), "--scheduler", "tcp://127.0.0.1:9", "--runs-dir", tmp_path / "runs")
    assert time.monotonic() - start < 30  # start-up and reading the data included; the connection itself fails at once
    assert result.returncode == 2
    assert result.stderr == (
        "error: --scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler there (ConnectionRefusedError: [Errno 111] Connection refused); "
        "start one with: dask scheduler, and workers with: dask worker ADDRESS\n"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "address, why",
    [
        ("http://127.0.0.1:8786", "ValueError: unknown address scheme 'http' (known schemes: ['inproc', 'tcp', 'tls', 'ucx', 'ws', 'wss'])"),
        ("", "ValueError: no host in the address; give one such as tcp://127.0.0.1:8786"),
    ],
    ids=["http", "empty"],
)
def test_an_address_dask_cannot_use_is_one_error_line_at_once(tmp_path, address, why):
    start = time.monotonic()
    result = call_cli("tune", write(tmp_path, SLOW), "--scheduler", address, "--runs-dir", tmp_path / "runs")
    assert time.monotonic() - start < 30  # no client is started, so none waits 10 s to close
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: --scheduler {address}: cannot reach a Dask scheduler there ({why}); "
        "start one with: dask scheduler, and workers with: dask worker ADDRESS\n"
    )
    assert not (tmp_path / "runs").exists()


def test_trials_run_on_a_dask_cluster_that_loses_a_worker(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the workers import this bptrain
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        config = write(tmp_path, SLOW.replace("max_epochs: 400", "max_epochs: 150"))  # a trial takes about a second
        process = subprocess.Popen(
            [sys.executable, "-m", "bptrain", "tune", str(config), "--trials", "3", "--runs-dir", str(tmp_path / "runs"),
             "--scheduler", cluster.scheduler_address],
            cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        with Client(cluster.scheduler_address) as client:
            pids = client.run(os.getpid)
            deadline = time.monotonic() + 60
            while not list(tmp_path.glob("runs/*/trials/*")):  # a trial has started
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
            os.kill(next(iter(pids.values())), signal.SIGKILL)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    (tune_dir,) = (tmp_path / "runs").iterdir()
    rows = trials_csv(tune_dir)
    assert [r["state"] for r in rows] == ["complete"] * 3
    assert all(json.loads((tune_dir / r["run"] / "report.json").read_text())["threads"]["count"] == 1 for r in rows)


def test_with_folds_a_trial_is_the_mean_of_its_folds(tmp_path):
    text = QUICK.replace("max_epochs: 12", "max_epochs: 3")
    result = run_cli("tune", write(tmp_path, text), "--trials", "1", "--folds", "2", "--runs-dir", tmp_path / "runs", "-q")
    assert result.returncode == 0, result.stderr
    (tune_dir,) = (tmp_path / "runs").iterdir()
    for row in trials_csv(tune_dir):
        folds = [json.loads((tune_dir / row["run"] / f"fold-{i}" / "report.json").read_text())["metrics"]["val"]["loss"] for i in (1, 2)]
        assert float(row["val_loss"]) == pytest.approx(sum(folds) / 2, rel=1e-12)
    best = (tune_dir / "best.yaml").read_text()
    assert "folds: null" in best and "fold: null" in best  # one ordinary run on the config's own split


def test_the_grid_sampler_runs_each_combination_once_and_stops_at_the_grids_size(tmp_path):
    text = QUICK.replace("max_epochs: 12", "max_epochs: 2").split("tune:")[0]
    space = write(tmp_path, "sampler: grid\npruner: none\nspace:\n  optimizer.lr: [0.01, 0.02]\n  training.batch_size: {low: 8, high: 16, step: 8}\n", "space.yaml")
    result = run_cli("tune", write(tmp_path, text), "--space", space, "--trials", "10", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    (tune_dir,) = (tmp_path / "runs").iterdir()
    rows = trials_csv(tune_dir)
    assert sorted((r["optimizer.lr"], r["training.batch_size"]) for r in rows) == [("0.01", "16"), ("0.01", "8"), ("0.02", "16"), ("0.02", "8")]
    progress = [re.match(r"trial +\d+ \((\d+)/(\d+)\)", line) for line in result.stderr.splitlines()]
    assert [m.groups() for m in progress if m] == [("1", "4"), ("2", "4"), ("3", "4"), ("4", "4")]  # of the grid's 4, not of --trials 10
    assert {r["state"] for r in rows} == {"complete"}


def test_parameter_importances_are_ped_anova_and_optunas_warnings_stay_off_stderr(tmp_path):
    # seed 1 samples lr=0.1 for both trials, for which Optuna warns that the importances are equal
    text = QUICK.replace("seed: 7", "seed: 1").replace("max_epochs: 12", "max_epochs: 1").split("tune:")[0]
    space = write(tmp_path, "pruner: none\nspace:\n  optimizer.lr: [0.01, 0.1]\n", "space.yaml")
    result = run_cli("tune", write(tmp_path, text), "--space", space, "--trials", "2", "--runs-dir", tmp_path / "runs", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    (tune_dir,) = (tmp_path / "runs").iterdir()
    assert [r["optimizer.lr"] for r in trials_csv(tune_dir)] == ["0.1", "0.1"]
    assert "## Parameter importances (PED-ANOVA, Optuna)\n" in (tune_dir / "report.md").read_text()


def test_a_timeout_of_0_starts_no_trial_and_says_so(tmp_path):
    result = call_cli("tune", write(tmp_path, QUICK), "--trials", "2", "--timeout", "0", "--runs-dir", tmp_path / "runs", "-q")
    (tune_dir,) = (tmp_path / "runs").iterdir()
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: --timeout 0: it passed before a trial started, so none ran; give more seconds, "
        f"e.g. bptrain tune --resume {tune_dir} --timeout 60\n"
    )
    assert trials_csv(tune_dir) == [] and not (tune_dir / "trials").exists()
