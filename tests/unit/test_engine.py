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
from conftest import ROOT, call_cli

IRIS = ROOT / "configs" / "iris.yaml"


def test_auto_takes_numba_from_a_billion_and_a_half_values_updated_in_the_run():
    assert engine.MIN_UPDATES == 1_500_000_000
    under = "1,499,996,334 parameter values updated at most (235,146 parameters x 6,379 steps)"
    assert choose("auto", 235_146, 6_379) == Engine("numpy", f"auto: {under}, under 1,500,000,000")
    over = "1,500,231,480 parameter values updated at most (235,146 parameters x 6,380 steps)"
    assert choose("auto", 235_146, 6_380) == Engine("numba", f"auto: {over}", numba.__version__)


def test_a_set_engine_is_taken_whatever_the_size():
    assert choose("numpy", 10**9, 10**9) == Engine("numpy", "set")
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


def test_check_names_the_engine_fit_would_take(tmp_path):
    result = call_cli("check", IRIS, "--set", "stopping.max_epochs=600000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"engine     numba (auto: 1,692,600,000 parameter values updated at most (403 parameters x 4,200,000 steps))"
    )


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
        "chosen": "auto: 5,642 parameter values updated at most (403 parameters x 14 steps), under 1,500,000,000",
    }


def test_auto_weighs_the_most_steps_the_run_may_take(tmp_path):
    """A budget big enough takes numba even on iris's small network (403 parameters x 7 steps an
    epoch x 600,000 epochs, which max_time ends early); max_steps caps it."""
    budgets = {"numba": ["stopping.max_epochs=600000"], "numpy": ["stopping.max_epochs=600000", "stopping.max_steps=500000"]}
    for name, budget in budgets.items():
        runs = tmp_path / name
        sets = [arg for key in budget for arg in ("--set", key)]
        result = call_cli("fit", IRIS, *sets, "--set", "stopping.max_time=0.3", "--runs-dir", runs, "-q")
        assert result.returncode == 0, result.stderr
        (run_dir,) = runs.iterdir()
        steps = 500_000 if name == "numpy" else 4_200_000
        chosen = json.loads((run_dir / "report.json").read_text())["engine"]
        assert chosen["name"] == name
        assert chosen["chosen"].startswith(f"auto: {403 * steps:,} parameter values updated at most (403 parameters x {steps:,} steps)")
