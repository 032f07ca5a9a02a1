"""bptrain runs and bptrain compare: the run folders as a table or JSON, sorted; runs side by side.

The folders are copies of one short iris run whose report.json (and config.yaml) are rewritten with
known values, so that the whole output can be pinned.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, call_cli, fit_iris, run_cli


def _rewrite_report(folder: Path, **values) -> None:
    path = folder / "report.json"
    report = json.loads(path.read_text())
    report.update(values)
    path.write_text(json.dumps(report))


def _metrics(task: str, val: float, test: float, val_loss: float) -> dict:
    name = "r2" if task == "regression" else "accuracy"
    return {"train": {"loss": 0.1, name: 0.99}, "val": {"loss": val_loss, name: val}, "test": {"loss": val_loss + 0.05, name: test}}


def _reconfigure(run: Path, lr: float, units: int) -> None:
    """The copy of a run as if trained with another learning rate and second layer: its config.yaml
    says so, and no checkpoint records otherwise (compare shows a checkpoint's record first)."""
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["optimizer"]["lr"] = lr
    config["model"]["layers"][1]["units"] = units
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.rmtree(run / "checkpoints")


@pytest.fixture(scope="module")
def top(tmp_path_factory) -> Path:
    """A folder whose runs/ holds two runs, a cross-validation, a tune folder, a folder of another
    kind that bptrain wrote, and two that bptrain did not write."""
    top = tmp_path_factory.mktemp("listing")
    trained = fit_iris(top / "tmp", epochs=3)
    runs = top / "runs"
    runs.mkdir()
    first, second = runs / "iris-20260101-090000", runs / "iris-20260102-090000"
    shutil.copytree(trained, first)
    shutil.copytree(trained, second)
    _rewrite_report(first, task="classification", stop_reason="early_stopping", epochs_run=40, best_epoch=20, seconds=1.5,
                    metrics=_metrics("classification", 0.9, 0.85, 0.3))
    _rewrite_report(second, task="classification", stop_reason="max_epochs", epochs_run=3, best_epoch=3, seconds=0.25,
                    metrics=_metrics("classification", 0.95, 0.8, 0.2))
    _reconfigure(second, lr=0.05, units=8)
    cv = runs / "iris-20260103-090000"
    (cv / "fold-1").mkdir(parents=True)
    cv_summary = {"run": cv.name, "folds": 3, "task": "classification", "runs": ["fold-1"],
                  "val": {"folds": [], "mean": {"loss": 0.25, "accuracy": 0.9333}, "std": {"loss": 0.01, "accuracy": 0.02}}, "test": None}
    (cv / "cv.json").write_text(json.dumps(cv_summary))
    tune = runs / "iris-tune-20260104-090000"
    tune.mkdir()
    (tune / "tune.json").write_text("{}")
    best = {"trial": 1, "value": 0.2, "run": "trials/0001", "test": {"loss": 0.3, "accuracy": 0.9}}
    (tune / "report.json").write_text(json.dumps({"tune": tune.name, "trials": {"complete": 3, "pruned": 1}, "best": best}))
    (tune / "trials" / "0001").mkdir(parents=True)
    (tune / "trials" / "0001" / "report.json").write_text(json.dumps({"task": "classification", "metrics": {"val": {"loss": 0.2, "accuracy": 0.95}}}))
    odd = runs / "odd-20260105-090000"
    odd.mkdir()
    (odd / "report.json").write_text(json.dumps({"something": 1}))
    (runs / "notes").mkdir()
    (runs / "notes" / "todo.txt").write_text("not a run\n")
    (runs / "stray.txt").write_text("a file\n")
    return top


TABLE = """\
name                       kind   date                 task            stopped         epochs  metric       val    test
iris-20260101-090000       run    2026-01-01 09:00:00  classification  early_stopping      40  accuracy  0.9000  0.8500
iris-20260102-090000       run    2026-01-02 09:00:00  classification  max_epochs           3  accuracy  0.9500  0.8000
iris-20260103-090000       cv     2026-01-03 09:00:00  classification  3 folds              -  accuracy  0.9333       -
iris-tune-20260104-090000  tune   2026-01-04 09:00:00  classification  4 trials             -  accuracy  0.9500  0.9000
odd-20260105-090000        other  2026-01-05 09:00:00  -               -                    -  -              -       -
"""


def test_runs_lists_every_kind_of_folder_oldest_first_and_skips_what_bptrain_did_not_write(top):
    result = run_cli("runs", cwd=top)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == TABLE


def test_runs_shows_a_huge_metric_with_four_significant_digits(top, tmp_path):
    """A regression run that went badly: its R² fits in the column, as the epoch lines show it."""
    run = tmp_path / "runs" / "iris-20260101-090000"
    shutil.copytree(top / "runs" / "iris-20260101-090000", run)
    _rewrite_report(run, task="regression", stop_reason="max_epochs", epochs_run=3, best_epoch=3, seconds=0.5,
                    metrics={"val": {"loss": 1.23456789e20, "r2": -98765.4321}, "test": {"loss": 12345.678, "r2": 0.5}})
    result = call_cli("runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].split()[-3:] == ["r2", "-9.877e+04", "0.5000"]


def test_runs_json_holds_each_rows_fields(top):
    result = call_cli("runs", "--json", cwd=top)
    assert (result.returncode, result.stderr) == (0, "")
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == [line.split()[0] for line in TABLE.splitlines()[1:]]
    assert rows[0] == {
        "name": "iris-20260101-090000",
        "kind": "run",
        "date": "2026-01-01 09:00:00",
        "task": "classification",
        "stop_reason": "early_stopping",
        "epochs": 40,
        "metric": "accuracy",
        "val": 0.9,
        "test": 0.85,
        "path": "runs/iris-20260101-090000",
        "metrics": {"train_loss": 0.1, "train_accuracy": 0.99, "val_loss": 0.3, "val_accuracy": 0.9, "test_loss": 0.35, "test_accuracy": 0.85},
    }
    assert rows[2]["metrics"] == {"val_loss": 0.25, "val_accuracy": 0.9333}
    assert rows[4]["kind"] == "other" and rows[4]["metrics"] == {}


@pytest.fixture
def reshaped(top, tmp_path) -> Path:
    """A copy of the first run whose config has early stopping off (null) and one hidden layer."""
    runs = tmp_path / "runs"
    shutil.copytree(top / "runs" / "iris-20260101-090000", runs / "iris-20260101-090000")
    other = runs / "iris-20260105-090000"
    shutil.copytree(top / "runs" / "iris-20260101-090000", other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["stopping"]["early_stopping"] = None
    del config["model"]["layers"][1]
    (other / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.rmtree(other / "checkpoints")  # nothing records another config: compare reads config.yaml
    return tmp_path


def test_compare_shows_a_mapping_against_null_and_marks_absent_keys(reshaped):
    result = call_cli("compare", "runs/iris-20260101-090000", "runs/iris-20260105-090000", "-o", reshaped, cwd=reshaped)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((reshaped / "runs" / "iris-20260101-090000" / "config.yaml").read_text())
    layer, stopping = config["model"]["layers"][1], config["stopping"]["early_stopping"]
    lines = result.stdout.split("\n\n")[1].splitlines()
    assert lines[0] == f"config: {len(layer) + 1} keys differ"
    rows = [line.split(None, 1) for line in lines[2:]]
    assert [key for key, _ in rows] == [f"model.layers[1].{k}" for k in layer] + ["stopping.early_stopping"]
    assert [values.rsplit(None, 1)[1] for _, values in rows[:-1]] == ["(absent)"] * len(layer)
    shown = "{" + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in stopping.items()) + "}"
    assert rows[-1][1] == f"{shown}  null"


def test_compare_json_says_which_keys_a_run_lacks(reshaped):
    result = call_cli("compare", "runs/iris-20260101-090000", "runs/iris-20260105-090000", "--json", "-o", reshaped, cwd=reshaped)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((reshaped / "runs" / "iris-20260101-090000" / "config.yaml").read_text())
    layer, stopping = config["model"]["layers"][1], config["stopping"]["early_stopping"]
    compared = json.loads(result.stdout)
    assert compared["config"] == {**{f"model.layers[1].{k}": [v, None] for k, v in layer.items()}, "stopping.early_stopping": [stopping, None]}
    assert compared["absent"] == {f"model.layers[1].{k}": [False, True] for k in layer}


@pytest.mark.parametrize(
    "key, order",
    [
        ("val", ["iris-20260102-090000", "iris-tune-20260104-090000", "iris-20260103-090000", "iris-20260101-090000"]),  # best first
        ("test_accuracy", ["iris-tune-20260104-090000", "iris-20260101-090000", "iris-20260102-090000"]),  # a tune: its best trial's
        ("val_loss", ["iris-20260102-090000", "iris-tune-20260104-090000", "iris-20260103-090000", "iris-20260101-090000"]),  # a loss: lowest first
        ("epochs", ["iris-20260102-090000", "iris-20260101-090000"]),
        ("name", ["iris-20260101-090000", "iris-20260102-090000", "iris-20260103-090000", "iris-tune-20260104-090000", "odd-20260105-090000"]),
    ],
)
def test_runs_sort(top, key, order):
    result = call_cli("runs", "--json", "--sort", key, cwd=top)
    assert result.returncode == 0, result.stderr
    names = [r["name"] for r in json.loads(result.stdout)]
    assert names[: len(order)] == order
    assert len(names) == 5


def test_runs_sort_by_an_unknown_metric_says_did_you_mean(top):
    result = call_cli("runs", "--sort", "val_acuracy", cwd=top)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: --sort val_acuracy: unknown column or metric; choose a column (name, date, task, stop_reason, epochs, val, test) "
        "or a split's metric (val_accuracy, test_loss, val_r2, ...). Did you mean 'val_accuracy'?\n"
    )


def test_runs_of_a_missing_folder_exits_2(tmp_path):
    result = call_cli("runs", tmp_path / "nowhere")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {tmp_path / 'nowhere'}: no such folder; give the folder that holds the run folders (default: runs)\n"


def test_runs_where_nothing_was_trained_yet_says_so_like_an_empty_folder(tmp_path):
    """No ./runs folder and no folder given: the same as an empty one, not an error."""
    result = call_cli("runs", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == "no run folders under runs; train one with: bptrain fit CONFIG\n"
    assert json.loads(call_cli("runs", "--json", cwd=tmp_path).stdout) == []
    assert call_cli("runs", "--sort", "val_acc", cwd=tmp_path).returncode == 2
    assert call_cli("runs", "runs", cwd=tmp_path).returncode == 2  # given by name, it must exist


def test_runs_of_an_empty_folder_says_so_on_stderr(tmp_path):
    result = call_cli("runs", tmp_path)
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == f"no run folders under {tmp_path}; train one with: bptrain fit CONFIG\n"
    assert json.loads(call_cli("runs", tmp_path, "--json").stdout) == []


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_runs_of_a_run_folder_names_its_parent(top, as_json):
    result = call_cli("runs", "runs/iris-20260101-090000", *(["--json"] if as_json else []), cwd=top)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: runs/iris-20260101-090000: a run folder itself, not a folder of runs; "
        "list the runs beside it with: bptrain runs runs\n"
    )


def test_runs_on_a_terminal_draws_a_table(top):
    # a real terminal: stdout is a pseudo-terminal, so the table is rich's
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160", "TERM": "xterm"}
    process = subprocess.run([sys.executable, "-m", "bptrain", "runs"], stdout=follower, stderr=subprocess.PIPE, cwd=top, env=env, timeout=60)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    shown = b"".join(chunks).decode()
    assert process.returncode == 0, process.stderr
    assert "━" in shown and "iris-20260102-090000" in shown and "0.9333" in shown
    assert "notes" not in shown


# --- compare ------------------------------------------------------------------------------------

COMPARED = """\
runs
  A  runs/iris-20260101-090000
  B  runs/iris-20260102-090000

config: 2 keys differ
  key                    A     B
  model.layers[1].units  16    8
  optimizer.lr           0.01  0.05

outcome
                            A           B
  stop_reason  early_stopping  max_epochs
  epochs_run               40           3
  best_epoch               20           3
  seconds              1.5000      0.2500

val metrics
                 A       B
  loss      0.3000  0.2000
  accuracy  0.9000  0.9500

test metrics
                 A       B
  loss      0.3500  0.2500
  accuracy  0.8500  0.8000

figure   {figure}
"""


def test_compare_shows_the_keys_that_differ_and_the_metrics_side_by_side(top, tmp_path):
    result = run_cli("compare", "runs/iris-20260101-090000", "runs/iris-20260102-090000", "-o", tmp_path, cwd=top)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == COMPARED.format(figure=tmp_path / "compare.png")
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_shows_the_config_a_run_trained_with_not_a_later_edit_of_its_config_yaml(top, tmp_path):
    """The checkpoint records the config the run trained with; config.yaml edited afterwards changes
    nothing that was trained. The keys keep config.yaml's order (the text output pinned above)."""
    for name in ("iris-20260101-090000", "iris-20260102-090000"):
        shutil.copytree(top / "runs" / name, tmp_path / "runs" / name)
    edited = tmp_path / "runs" / "iris-20260101-090000" / "config.yaml"
    assert (edited.parent / "checkpoints" / "last.npz").is_file()
    edited.write_text(edited.read_text().replace("  lr: 0.01\n", "  lr: 0.9\n", 1))
    assert "  lr: 0.9\n" in edited.read_text()
    runs = ["runs/iris-20260101-090000", "runs/iris-20260102-090000"]
    result = call_cli("compare", *runs, "-o", tmp_path, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == COMPARED.format(figure=tmp_path / "compare.png")


def test_compare_creates_its_output_folder_as_plot_does_and_refuses_a_file(top, tmp_path):
    runs = ["runs/iris-20260101-090000", "runs/iris-20260102-090000"]
    result = call_cli("compare", *runs, "--json", "-o", tmp_path / "new" / "figures", cwd=top)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "new" / "figures" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "a-file").write_text("")
    result = call_cli("compare", *runs, "-o", tmp_path / "a-file", cwd=top)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: -o {tmp_path / 'a-file'}: is a file, not a folder; give a folder for the PNG files\n"


def test_compare_latest_is_the_newest_run(top, tmp_path):
    for name in ("iris-20260101-090000", "iris-20260102-090000"):
        shutil.copytree(top / "runs" / name, tmp_path / "runs" / name)
    result = call_cli("compare", "runs/iris-20260101-090000", "latest", "-o", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:3] == ["  A  runs/iris-20260101-090000", "  B  runs/iris-20260102-090000"]


def test_compare_json_is_pinned(top, tmp_path):
    result = call_cli("compare", "runs/iris-20260101-090000", "runs/iris-20260102-090000", "--json", "-o", tmp_path, cwd=top)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "runs": ["runs/iris-20260101-090000", "runs/iris-20260102-090000"],
        "config": {"model.layers[1].units": [16, 8], "optimizer.lr": [0.01, 0.05]},
        "absent": {},
        "outcome": {"stop_reason": ["early_stopping", "max_epochs"], "epochs_run": [40, 3], "best_epoch": [20, 3], "seconds": [1.5, 0.25]},
        "metrics": {"val": {"loss": [0.3, 0.2], "accuracy": [0.9, 0.95]}, "test": {"loss": [0.35, 0.25], "accuracy": [0.85, 0.8]}},
        "figure": str(tmp_path / "compare.png"),
    }


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["runs/iris-20260101-090000"], 2, "error: compare needs two runs or more; got 1: e.g. bptrain compare latest runs/iris-20261130-101500\n"),
        (["runs/iris-20260101-090000", "runs/notes"], 5,
         "error: runs/notes: not a run folder written by bptrain fit (it needs model.npz and config.yaml)\n"),
        (["runs/iris-20260101-090000", "runs/iris-20260103-090000"], 2,
         "error: runs/iris-20260103-090000: a cross-validation folder, with one run per fold; give one of them, e.g. runs/iris-20260103-090000/fold-1\n"),
        (["runs/iris-20260101-090000", "runs/iris-tune-20260104-090000"], 2,
         "error: runs/iris-tune-20260104-090000: a tune folder, with one run per trial; give one of the trials' run folders\n"),
        (["runs/iris-20260101-090000", "runs/iris-2027"], 2,
         "error: runs/iris-2027: no such run folder; the newest under runs: runs/odd-20260105-090000, "
         "runs/iris-20260102-090000, runs/iris-20260101-090000\n"),
    ],
    ids=["one-run", "not-a-run", "cv-folder", "tune-folder", "missing"],
)
def test_compare_bad_runs(top, tmp_path, args, code, message):
    result = call_cli("compare", *args, "-o", tmp_path, cwd=top)
    assert (result.returncode, result.stdout, result.stderr) == (code, "", message)


def test_runs_of_a_tune_folder_names_its_trials_folder(top):
    result = call_cli("runs", "runs/iris-tune-20260104-090000", cwd=top)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: runs/iris-tune-20260104-090000: a tune folder; "
        "list its trials' runs with: bptrain runs runs/iris-tune-20260104-090000/trials\n"
    )


def test_runs_of_a_tune_with_folds_shows_its_best_trials_mean_over_the_folds(tmp_path):
    tune = tmp_path / "runs" / "iris-tune-20260104-090000"
    best = {"trial": 0, "value": 0.5, "run": "trials/0000", "test": {"loss": 0.3, "accuracy": 0.9}}
    (tune / "trials" / "0000").mkdir(parents=True)
    (tune / "tune.json").write_text("{}")
    (tune / "report.json").write_text(json.dumps({"tune": tune.name, "folds": 2, "trials": {"complete": 1}, "best": best}))
    for fold, (loss, accuracy) in enumerate([(0.25, 0.75), (0.75, 0.25)], start=1):
        (tune / "trials" / "0000" / f"fold-{fold}").mkdir()
        report = {"task": "classification", "metrics": {"val": {"loss": loss, "accuracy": accuracy}}}
        (tune / "trials" / "0000" / f"fold-{fold}" / "report.json").write_text(json.dumps(report))
    result = call_cli("runs", "--json", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    [row] = json.loads(result.stdout)
    assert {k: row[k] for k in ("task", "stop_reason", "metric", "val", "test")} == {
        "task": "classification", "stop_reason": "1 trials", "metric": "accuracy", "val": 0.5, "test": 0.9}
    assert row["metrics"] == {"val_loss": 0.5, "val_accuracy": 0.5, "test_loss": 0.3, "test_accuracy": 0.9}
    given = call_cli("runs", "runs/iris-tune-20260104-090000", cwd=tmp_path)  # trials/ holds no run folders, but folders of folds
    assert (given.returncode, given.stdout) == (2, "")
    assert given.stderr == (
        "error: runs/iris-tune-20260104-090000: a tune folder; its trials ran 2 folds each; "
        "list the best trial's with: bptrain runs runs/iris-tune-20260104-090000/trials/0000\n"
    )


def test_runs_dates_a_fold_by_when_its_fit_began_not_by_a_later_plot(tmp_path):
    run = fit_iris(tmp_path / "runs" / "iris-20260103-090000", epochs=1)
    run = run.rename(run.parent / "fold-1")
    began, plotted = 1_700_000_000, 1_800_000_000
    os.utime(run / ".lock", (began, began))
    (run / "figures").mkdir()
    os.utime(run, (plotted, plotted))
    result = call_cli("runs", "--json", run.parent)
    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout)[0]["date"] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(began))


@pytest.mark.parametrize("args", [["predict", "-"], ["evaluate"], ["export", "-o", "model.onnx"]], ids=["predict", "evaluate", "export"])
def test_a_tune_folder_given_for_a_model_says_to_give_a_trials_run(top, args):
    result = call_cli(args[0], "runs/iris-tune-20260104-090000", *args[1:], cwd=top)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: runs/iris-tune-20260104-090000: a tune folder, with one run per trial; give one of the trials' run folders\n"
    assert not (top / "model.onnx").exists()


@pytest.mark.parametrize("args", [["plot"], ["explain"], ["compare", "runs/iris-20260101-090000"], ["predict", "-"], ["export", "-o", "model.onnx"]],
                         ids=["plot", "explain", "compare", "predict", "export"])
def test_a_tune_with_folds_trials_folder_given_as_a_run_says_to_give_one_of_its_folds(top, tmp_path, args):
    trial = tmp_path / "trials" / "0000"  # tune --folds: the trial's fold runs, with no cv.yaml or cv.json beside them
    shutil.copytree(top / "runs" / "iris-20260101-090000", trial / "fold-1")
    result = call_cli(args[0], trial, *args[1:], cwd=top)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {trial}: a cross-validation folder, with one run per fold; give one of them, e.g. {trial / 'fold-1'}\n"
