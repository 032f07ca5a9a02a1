"""`latest` as RUN (the newest run folder under ./runs, or under --runs-dir for fit --resume), and the
error for a RUN that does not exist, which names the newest runs there are."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import ROOT, call_cli

IRIS = str(ROOT / "configs" / "iris.yaml")
DATA = str(ROOT / "datasets" / "iris.csv")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/ with two trained runs whose names say they are older and newer, a folder that is no run,
    and newer cross-validation and tune folders, which hold runs but are none."""
    top = tmp_path_factory.mktemp("latest")
    result = call_cli("fit", IRIS, "--set", "stopping.max_steps=10", "-q", "--runs-dir", top / "tmp", cwd=top)
    assert result.returncode == 0, result.stderr
    (trained,) = (top / "tmp").iterdir()
    folder = top / "runs"
    folder.mkdir()
    shutil.copytree(trained, folder / "iris-20260101-090000")
    shutil.copytree(trained, folder / "iris-20270101-090000")
    shutil.copytree(trained, folder / "iris-20270101-090000-2")
    (folder / "notes-zzzz").mkdir()
    for name, marker in (("iris-20280101-090000", "cv.json"), ("iris-tune-20280102-090000", "tune.json")):
        (folder / name).mkdir()
        (folder / name / marker).write_text("{}\n")
    return folder


def test_evaluate_and_predict_latest_use_the_newest_run(runs):
    top = runs.parent
    newest = call_cli("evaluate", "runs/iris-20270101-090000-2", cwd=top)
    latest = call_cli("evaluate", "latest", cwd=top)
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout == newest.stdout
    predicted = call_cli("predict", "latest", DATA, cwd=top)
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout == call_cli("predict", "runs/iris-20270101-090000-2", DATA, cwd=top).stdout


def test_fit_resume_latest_looks_under_runs_dir(runs, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(runs, elsewhere)
    result = call_cli("fit", "--resume", "latest", "--runs-dir", elsewhere, "-q", "--set", "stopping.max_steps=14", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"run        {elsewhere / 'iris-20270101-090000-2'}"


def test_latest_without_runs_exits_2(tmp_path):
    result = call_cli("evaluate", "latest", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "error: latest: no run folder under runs; train one first with: bptrain fit CONFIG\n"


def test_a_missing_run_names_the_newest_runs(runs):
    result = call_cli("predict", "runs/iris-2027", DATA, cwd=runs.parent)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: runs/iris-2027: no such run folder or model file; the newest under runs: "
        "runs/iris-20270101-090000-2, runs/iris-20270101-090000, runs/iris-20260101-090000\n"
    )


def test_a_missing_resume_folder_names_the_newest_runs(runs):
    result = call_cli("fit", "--resume", "runs/nope", cwd=runs.parent)
    assert result.returncode == 2
    assert result.stderr == (
        "error: --resume runs/nope: no such run folder; the newest under runs: "
        "runs/iris-20270101-090000-2, runs/iris-20270101-090000, runs/iris-20260101-090000\n"
    )
