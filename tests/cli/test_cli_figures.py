"""report.figures: curves.svg is written directly, with no plotting library loaded, or not at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from conftest import ROOT, call_cli

from bptrain.runs import checkpoint

IRIS = ROOT / "configs" / "iris.yaml"

# bptrain's own entry point in a fresh interpreter; then which matplotlib modules that process loaded
IN_PROCESS = """
import json, sys
from bptrain import cli
sys.argv = ["bptrain", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exited:
    code = exited.code
loaded = sorted(m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib."))
print(json.dumps({"code": code, "matplotlib": loaded}), file=sys.stderr)
"""


def fit_in_process(runs: Path, *sets: str) -> tuple[dict, Path]:
    args = ["fit", IRIS, "-q", "--runs-dir", runs, "--set", "stopping.max_epochs=3"]
    for item in sets:
        args += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", IN_PROCESS, *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    outcome = json.loads(result.stderr.splitlines()[-1])
    assert outcome["code"] == 0, result.stderr
    (run,) = Path(runs).iterdir()
    return outcome, run


def svg_size(path: Path) -> tuple[int, int]:
    root = ElementTree.fromstring(path.read_text(encoding="utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return int(root.get("width")), int(root.get("height"))


def test_default_draws_curves_without_loading_matplotlib(tmp_path):
    outcome, run = fit_in_process(tmp_path)
    assert outcome["matplotlib"] == []
    # two panels (loss, validation accuracy) of 550 x 400 pixels
    assert svg_size(run / "curves.svg") == (1100, 400)


def test_figures_off_writes_no_curves_and_never_imports_matplotlib(tmp_path):
    outcome, run = fit_in_process(tmp_path, "report.figures=false")
    assert outcome["matplotlib"] == []
    assert sorted(p.name for p in run.iterdir()) == [
        ".lock", "checkpoints", "config.yaml", "diagnostics.csv", "diagnostics.jsonl", "metrics.csv", "metrics.jsonl", "model.npz",
        "report.json", "report.md",
    ]
    assert "curves" not in (run / "report.md").read_text(encoding="utf-8")
    assert "curves" not in (run / "report.json").read_text(encoding="utf-8")
    assert "report:\n  figures: false\n  diagnostics: true\n" in (run / "config.yaml").read_text(encoding="utf-8")


def test_resolved_config_holds_the_default(tmp_path):
    result = call_cli("fit", IRIS, "-q", "--runs-dir", tmp_path, "--set", "stopping.max_epochs=1")
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    assert "report:\n  figures: true\n" in (run / "config.yaml").read_text(encoding="utf-8")
    svg_size(run / "curves.svg")


@pytest.mark.parametrize(
    "value, found",
    [("1", "1"), ("'false'", "'false'"), ("off_", "'off_'")],
)
def test_figures_is_a_strict_bool(value, found):
    result = call_cli("check", "configs/iris.yaml", "--set", f"report.figures={value}")
    assert result.returncode == 2
    assert result.stderr == (
        "error: configs/iris.yaml: 1 problem\n"
        f"  report.figures: must be a valid boolean (got {found}) (from --set)\n"
    )


def test_cross_validation_obeys_the_switch(tmp_path):
    result = call_cli(
        "fit", IRIS, "-q", "--runs-dir", tmp_path, "--folds", "2", "--set", "stopping.max_epochs=2", "--set", "report.figures=false"
    )
    assert result.returncode == 0, result.stderr
    (parent,) = tmp_path.iterdir()
    folds = sorted(p for p in parent.iterdir() if p.is_dir())
    assert [p.name for p in folds] == ["fold-1", "fold-2"]
    for fold in folds:
        assert (fold / "report.json").is_file()
        assert not (fold / "curves.svg").exists()


def strip_report_section(run: Path) -> None:
    """The layout of a run written before `report` existed: no such key in config.yaml or in the checkpoint's config."""
    config = run / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert "report:\n  figures: true\n  diagnostics: true\n" in text
    config.write_text(text.replace("report:\n  figures: true\n  diagnostics: true\n", ""), encoding="utf-8")
    folder = run / "checkpoints"
    for name in (checkpoint.LAST, checkpoint.PREVIOUS):
        arrays, meta = checkpoint.read_arrays(folder / name)
        del meta["config"]["report"]
        checkpoint.save_model(folder / name, arrays, meta, kind="checkpoint")
    assert "report" not in checkpoint.load_checkpoint(folder).meta["config"]


def test_resuming_a_run_from_before_the_report_section(tmp_path):
    result = call_cli("fit", IRIS, "-q", "--runs-dir", tmp_path, "--set", "stopping.max_epochs=2")
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    strip_report_section(run)
    resumed = call_cli("fit", "--resume", run, "-q", "--set", "stopping.max_epochs=4")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == ""
    assert json.loads((run / "report.json").read_text())["epochs_run"] == 4
    svg_size(run / "curves.svg")


def test_resume_may_turn_figures_off_and_drops_the_older_figure(tmp_path):
    result = call_cli("fit", IRIS, "-q", "--runs-dir", tmp_path, "--set", "stopping.max_epochs=2")
    assert result.returncode == 0, result.stderr
    (run,) = tmp_path.iterdir()
    assert (run / "curves.svg").is_file()
    resumed = call_cli("fit", "--resume", run, "-q", "--set", "stopping.max_epochs=4", "--set", "report.figures=false")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "report.json").read_text())["epochs_run"] == 4
    assert not (run / "curves.svg").exists()  # it showed 2 of the 4 epochs
