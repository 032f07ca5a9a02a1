"""MLflow tracking (bptrain.runs.tracking), against a real local file store read back with MLflow's client.

The fits go through the CLI's entry point in this process (call_cli), so that MLflow is imported once.
"""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest

from conftest import ROOT, call_cli, write

IRIS = ROOT / "configs" / "iris.yaml"


@pytest.fixture
def file_store(tmp_path, monkeypatch):
    """A file: tracking URI in tmp_path (MLflow 3 asks for MLFLOW_ALLOW_FILE_STORE to use one)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"file:{tmp_path / 'store'}"


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def only_run(uri: str, experiment: str):
    found = client(uri).get_experiment_by_name(experiment)
    (run,) = client(uri).search_runs([found.experiment_id])
    return run


def test_params_metric_histories_and_files_are_in_the_store(tmp_path, file_store):
    result = call_cli(
        "fit", IRIS, "--set", "stopping.max_epochs=4", "--set", f"tracking.mlflow={{tracking_uri: '{file_store}', experiment: flowers}}",
        "--runs-dir", tmp_path / "runs", "-q",
    )
    assert (result.returncode, result.stderr) == (0, "")
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = only_run(file_store, "flowers")
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    params = run.data.params
    assert (params["optimizer.lr"], params["optimizer.name"], params["model.layers.0.units"], params["seed"]) == ("0.01", "adam", "16", "42")
    assert params["tracking.mlflow.experiment"] == "flowers"
    logged = list(csv.DictReader(io.StringIO((run_dir / "metrics.csv").read_text())))
    for metric in ("train_loss", "val_loss", "val_accuracy", "lr"):
        history = client(file_store).get_metric_history(run.info.run_id, metric)
        assert [(m.step, m.value) for m in history] == [(int(r["epoch"]), float(r[metric])) for r in logged]
    report = json.loads((run_dir / "report.json").read_text())
    assert run.data.metrics["final_test_accuracy"] == report["metrics"]["test"]["accuracy"]
    files = {a.path for a in client(file_store).list_artifacts(run.info.run_id)}
    assert files == {p.name for p in run_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert {"model.npz", "report.json", "metrics.csv", "diagnostics.csv", "config.yaml"} <= files


def test_the_mlflow_option_tracks_with_the_defaults(tmp_path, file_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", file_store)
    result = call_cli("fit", IRIS, "--mlflow", "--set", "stopping.max_epochs=2", "--runs-dir", tmp_path / "runs", "-q")
    assert (result.returncode, result.stderr) == (0, "")
    run = only_run(file_store, "iris")  # the experiment is the config's name
    assert [m.step for m in client(file_store).get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert "mlflow:\n    tracking_uri: null\n    experiment: null" in (run_dir / "config.yaml").read_text()


def test_a_tracking_failure_warns_and_the_run_goes_on(tmp_path, file_store):
    blocker = write(tmp_path, "a file, not a folder", "blocker")
    result = call_cli(
        "fit", IRIS, "--set", "stopping.max_epochs=2", "--set", f"tracking.mlflow={{tracking_uri: 'file:{blocker}/store'}}",
        "--runs-dir", tmp_path / "runs", "-q",
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"warning: mlflow: start at file:{blocker}/store failed (")
    assert line.endswith("); training goes on, no longer tracked in MLflow")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "report.json").read_text())["epochs_run"] == 2


def test_without_mlflow_installed_fit_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    result = call_cli("fit", IRIS, "--mlflow", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 2
    assert result.stderr == (
        "error: tracking.mlflow needs MLflow (mlflow is missing), the optional extra 'mlflow': pip install 'bptrain[mlflow]'\n"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "value, message",
    [
        ("{tracking_uri: ''}", "tracking.mlflow.tracking_uri: string should have at least 1 character (got '') (from --set)"),
        ("{experimen: x}", "tracking.mlflow.experimen: unknown key. Did you mean 'experiment'? (from --set)"),
    ],
)
def test_the_tracking_section_is_validated(tmp_path, value, message):
    result = call_cli("check", IRIS, "--set", f"tracking.mlflow={value}")
    assert result.returncode == 2
    assert result.stderr == f"error: {IRIS}: 1 problem\n  {message}\n"
