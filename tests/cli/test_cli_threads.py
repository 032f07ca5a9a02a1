"""`--threads` of predict and evaluate: a count or auto is taken, anything else is a usage error
naming the option; the count never changes a small network's outputs (real processes, whose BLAS
threads are their own; the usage errors through the CLI's entry point in this process, and one
of each command through a real process for its exit code)."""

from __future__ import annotations

import pytest
from conftest import ROOT, call_cli, run_cli

IRIS = ROOT / "datasets" / "iris.csv"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = call_cli("fit", "configs/iris.yaml", "-q", "--set", "stopping.max_epochs=3", "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    (folder,) = runs.iterdir()
    return folder


@pytest.mark.parametrize("command", [("predict", "{run}", str(IRIS)), ("evaluate", "{run}")])
@pytest.mark.parametrize("value", ["0", "many", "-1", "1.5", ""])
def test_a_bad_thread_count_is_a_usage_error(run, command, value):
    cli = run_cli if value == "many" else call_cli
    result = cli(*(part.format(run=run) for part in command), "--threads", value)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"error: --threads {value}: give auto or a whole number of threads from 1\n"


def test_predict_writes_the_same_bytes_at_any_thread_count(run):
    outputs = {n: run_cli("predict", run, IRIS, "--proba", "--threads", n) for n in ("auto", "1", "2")}
    assert all(result.returncode == 0 for result in outputs.values()), [r.stderr for r in outputs.values()]
    assert outputs["1"].stdout == outputs["2"].stdout == outputs["auto"].stdout
    assert outputs["1"].stdout.count("\n") == 151


def test_evaluate_takes_a_thread_count(run):
    default, two = run_cli("evaluate", run, "--json"), run_cli("evaluate", run, "--json", "--threads", "2")
    assert default.returncode == two.returncode == 0, default.stderr + two.stderr
    assert default.stdout == two.stdout


def test_auto_runs_iris_on_one_thread_since_reading_its_rows_outweighs_the_forward_pass(run):
    from bptrain import app, threads

    trained = app.load_trained(run)
    assert app.inference_threads(trained) == threads.Threads(
        1, "auto: 368 multiply-adds a row for 4 input columns: reading the rows outweighs them, one thread"
    )
    assert app.inference_threads(trained, 2) == threads.Threads(2, "set")
