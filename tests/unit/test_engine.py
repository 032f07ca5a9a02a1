"""training.engine: which engine runs the optimizer's update, what report.json says of it, and that
a run gives the same bits with either (the loops themselves: tests/nn/test_nn_optimizers.py).

The fits go through the CLI's entry point in this process (call_cli), so that numba compiles once.
"""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types

import numba
import numpy as np
import pytest

from bptrain.errors import ConfigError
from bptrain.training import engine
from bptrain.training.engine import Engine, choose
from conftest import ROOT, call_cli, run_cli

IRIS = ROOT / "configs" / "iris.yaml"


def test_auto_takes_numba_where_it_may_save_two_seconds():
    assert (engine.SAVED_PER_VALUE, engine.MIN_SAVED) == (1.3e-9, 2.0)
    under = "about 1.83 s saved at most (235,146 parameters x 6,000 steps)"
    assert choose("auto", 235_146, 6_000) == Engine("numpy", f"auto: {under}, under 2 s")
    over = "about 2.14 s saved at most (235,146 parameters x 7,000 steps)"
    assert choose("auto", 235_146, 7_000) == Engine("numba", f"auto: {over}", numba.__version__)


def test_auto_saves_at_most_half_of_max_time():
    assert choose("auto", 235_146, 7_000, max_time=3.0) == Engine(
        "numpy", "auto: about 1.5 s saved at most (half of stopping.max_time 3 s), under 2 s"
    )
    assert choose("auto", 235_146, 7_000, max_time=600.0).name == "numba"


def test_a_set_engine_is_taken_whatever_the_size():
    assert choose("numpy", 10**9, 10**9, 1.0) == Engine("numpy", "set")
    assert choose("numba", 1, 1) == Engine("numba", "set", numba.__version__)
    assert Engine("numba", "set", "0.68.1").report() == {"name": "numba", "chosen": "set", "version": "0.68.1"}
    assert Engine("numpy", "set").report() == {"name": "numpy", "chosen": "set"}


def test_without_numba_auto_keeps_numpy_and_a_set_numba_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    assert not engine.installed()
    assert choose("auto", 10**6, 10**6) == Engine("numpy", "auto: numba is not installed")
    with pytest.raises(ConfigError) as refused:
        choose("numba", 10**6, 10**6)
    assert str(refused.value) == "training.engine numba needs numba, the optional extra 'numba': pip install 'bptrain[numba]'"


def _broken_numba(monkeypatch):
    """A numba that is found but does not work (as one built for another numpy), and no loops compiled yet."""
    broken = types.ModuleType("numba")
    broken.__spec__ = importlib.machinery.ModuleSpec("numba", None)
    monkeypatch.setitem(sys.modules, "numba", broken)
    monkeypatch.delitem(sys.modules, "bptrain.nn.fused", raising=False)


def test_a_numba_that_does_not_import_is_named_and_auto_goes_on_with_numpy(monkeypatch):
    _broken_numba(monkeypatch)
    problem = "numba is installed but does not import: AttributeError: module 'numba' has no attribute 'njit'"
    assert choose("auto", 10**6, 10**6) == Engine("numpy", f"auto: {problem}")
    with pytest.raises(ConfigError) as refused:
        choose("numba", 1, 1)
    assert str(refused.value) == (
        f"training.engine numba: {problem}. Reinstall it (pip install 'bptrain[numba]') or set training.engine: numpy"
    )


def test_fit_without_numba_refuses_a_set_numba_before_making_a_run_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    result = call_cli("fit", IRIS, "--set", "training.engine=numba", "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: training.engine numba needs numba, the optional extra 'numba': pip install 'bptrain[numba]'\n"
    assert not (tmp_path / "runs").exists()


def test_check_refuses_a_set_numba_without_numba_as_fit_does(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    result = call_cli("check", IRIS, "--set", "training.engine=numba")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: training.engine numba needs numba, the optional extra 'numba': pip install 'bptrain[numba]'\n"


@pytest.mark.parametrize("budget, line", [
    ([], "numpy (auto: about 0.0011 s saved at most (403 parameters x 2,100 steps), under 2 s)"),
    (["stopping.max_epochs=600000"], "numba (auto: about 2.2 s saved at most (403 parameters x 4,200,000 steps))"),
    (["stopping.max_epochs=600000", "stopping.max_steps=500000"],
     "numpy (auto: about 0.262 s saved at most (403 parameters x 500,000 steps), under 2 s)"),
    (["stopping.max_epochs=600000", "stopping.max_time=1m"], "numba (auto: about 2.2 s saved at most (403 parameters x 4,200,000 steps))"),
    (["stopping.max_epochs=600000", "stopping.max_time=3s"],
     "numpy (auto: about 1.5 s saved at most (half of stopping.max_time 3 s), under 2 s)"),
    (["training.engine=numpy", "stopping.max_epochs=600000"], "numpy (set)"),
])
def test_check_names_the_engine_fit_would_take_from_the_runs_budget(budget, line):
    """iris's network has 403 parameters and 7 steps an epoch; the budget bounds what numba may save."""
    result = call_cli("check", IRIS, *[arg for key in budget for arg in ("--set", key)])
    assert result.returncode == 0, result.stderr
    assert [row for row in result.stdout.splitlines() if row.startswith("engine ")] == [f"engine     {line}"]


def test_an_unknown_engine_is_a_config_error_listing_the_engines(tmp_path):
    result = call_cli("fit", IRIS, "--set", "training.engine=fast", "--runs-dir", tmp_path / "runs")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {IRIS}: 1 problem\n  training.engine: must be one of 'auto', 'numpy', 'numba' (got 'fast') (from --set)\n"
    )


def _fit(tmp_path, engine_name: str, *more: str) -> tuple[dict, dict, list[dict]]:
    runs = tmp_path / engine_name
    result = call_cli(
        "fit", IRIS, "--set", f"training.engine={engine_name}", "--set", "seed=11", "--set", "stopping.max_epochs=30",
        "--set", "optimizer={name: adamw, lr: 0.01, weight_decay: 0.05, amsgrad: true}", *more, "--runs-dir", runs, "-q",
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = runs.iterdir()
    with np.load(run_dir / "model.npz") as model:
        weights = {k: model[k] for k in model.files if k != "__meta__"}
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("seconds")
    report = json.loads((run_dir / "report.json").read_text())
    assert f"Optimizer engine: {engine_name} (set)" in (run_dir / "report.md").read_text()
    return report, weights, rows


def test_a_fit_ends_with_the_same_bits_on_either_engine(tmp_path):
    numpy_report, numpy_weights, numpy_rows = _fit(tmp_path, "numpy")
    numba_report, numba_weights, numba_rows = _fit(tmp_path, "numba")
    assert numpy_report["engine"] == {"name": "numpy", "chosen": "set"}
    assert numba_report["engine"] == {"name": "numba", "chosen": "set", "version": numba.__version__}
    assert numba_rows == numpy_rows and len(numpy_rows) == 30
    assert numba_weights.keys() == numpy_weights.keys()
    for name, value in numpy_weights.items():
        assert value.tobytes() == numba_weights[name].tobytes(), name
    assert numba_report["metrics"] == numpy_report["metrics"]


def test_the_shipped_iris_run_keeps_numpy_under_auto(tmp_path):
    result = call_cli("fit", IRIS, "--set", "stopping.max_epochs=2", "--runs-dir", tmp_path / "runs", "-q")
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "report.json").read_text())["engine"] == {
        "name": "numpy",
        "chosen": "auto: about 7.33e-06 s saved at most (403 parameters x 14 steps), under 2 s",
    }


def test_numba_compiles_before_training_so_max_time_is_spent_on_steps(tmp_path):
    """With the loop compiled while the run is set up, a max_time shorter than the compile still trains
    (a process of its own: this one has compiled the loop already)."""
    result = run_cli(
        "fit", IRIS, "--set", "training.engine=numba", "--set", "stopping.early_stopping=null", "--set", "stopping.max_epochs=100000",
        "--set", "stopping.max_time=0.3s", "--runs-dir", tmp_path / "runs", "-q",
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["stop_reason"] == "max_time" and report["engine"]["name"] == "numba"
    assert report["epochs_run"] >= 20  # iris epochs take a few ms: 0.3 s holds dozens
