"""bptrain plot: which figures each kind of run gets, the PNG files, what each figure shows, and the
errors for figures that do not apply, unknown names and folders that are not runs.

diagnostics.csv is copied in from tests/fixtures/diagnostics (the format fit's gradient diagnostics write).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, call_cli, fit_shipped, run_cli
from bptrain.insight import plots

DIAGNOSTICS = ROOT / "tests" / "fixtures" / "diagnostics" / "diagnostics.csv"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A binary (without diagnostics), a multiclass (with the fixture's diagnostics.csv) and a
    regression run of three epochs."""
    top = tmp_path_factory.mktemp("plot")
    found = {name: fit_shipped(top / name, name, 3) for name in ("iris", "diabetes")}
    found["breast_cancer"] = fit_shipped(top / "breast_cancer", "breast_cancer", 3, "report.diagnostics=false")
    shutil.copy(DIAGNOSTICS, found["iris"] / "diagnostics.csv")
    return found


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


NO_DIAGNOSTICS = "skipped gradients: the run has no diagnostics.csv (fit writes it unless report.diagnostics is false)\n"


def test_a_binary_run_gets_curves_confusion_roc_and_pr(trained):
    run = trained["breast_cancer"]
    result = run_cli("plot", run)
    assert result.returncode == 0, result.stderr
    names = ["curves", "confusion", "roc", "pr"]
    assert result.stdout == "".join(f"{run / 'figures' / name}.png\n" for name in names)
    assert result.stderr == NO_DIAGNOSTICS
    assert sorted(p.name for p in (run / "figures").iterdir()) == sorted(f"{n}.png" for n in names)
    width, height = png_size(run / "figures" / "curves.png")
    assert (width, height) == (1000, 420)  # two panels: the losses and the validation accuracy


def test_a_multiclass_run_with_diagnostics_gets_gradients_and_says_why_roc_is_left_out(trained, tmp_path):
    run = trained["iris"]
    result = call_cli("plot", run, "-o", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "run": str(run),
        "written": [str(tmp_path / f"{name}.png") for name in ("curves", "gradients", "confusion")],
        "skipped": [
            {"figure": "roc", "why": "ROC and precision-recall curves are for binary classification; this run has 3 classes"},
            {"figure": "pr", "why": "ROC and precision-recall curves are for binary classification; this run has 3 classes"},
        ],
    }
    assert result.stderr == (
        "skipped roc: ROC and precision-recall curves are for binary classification; this run has 3 classes\n"
        "skipped pr: ROC and precision-recall curves are for binary classification; this run has 3 classes\n"
    )
    assert png_size(tmp_path / "gradients.png")[0] == 1480  # three panels: norms, update ratios, dead units
    assert not (run / "figures").exists()


def test_a_regression_run_gets_predicted_and_residuals(trained, tmp_path):
    result = call_cli("plot", trained["diabetes"], "-o", tmp_path, "--log")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / f"{n}.png") for n in ("curves", "gradients", "predicted", "residuals")]
    assert result.stderr == ""  # fit wrote diagnostics.csv


def test_what_draws_only_the_named_figures_and_latest_names_the_newest_run(trained, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained["iris"], runs / "iris-20270101-000000")
    result = call_cli("plot", "latest", "--what", "gradients,curves", "-o", tmp_path / "out", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [str(tmp_path / "out" / "gradients.png"), str(tmp_path / "out" / "curves.png")]


@pytest.mark.parametrize(
    "run, what, message",
    [
        ("iris", "curvs", "error: --what curvs: unknown figure; choose from curves, gradients, confusion, roc, pr, predicted, residuals. Did you mean 'curves'?\n"),
        ("iris", "roc", "error: --what roc: cannot draw it for {run}: ROC and precision-recall curves are for binary classification; this run has 3 classes\n"),
        ("breast_cancer", "gradients",
         "error: --what gradients: cannot draw it for {run}: the run has no diagnostics.csv (fit writes it unless report.diagnostics is false)\n"),
        ("diabetes", "confusion", "error: --what confusion: cannot draw it for {run}: a confusion matrix is for classification; this run's task is regression\n"),
        ("iris", "residuals",
         "error: --what residuals: cannot draw it for {run}: predicted-against-actual and residual plots are for regression; this run's task is classification\n"),
        ("iris", ",", "error: --what ',': name at least one figure: curves, gradients, confusion, roc, pr, predicted, residuals\n"),
    ],
    ids=["unknown", "roc-multiclass", "no-diagnostics", "confusion-regression", "residuals-classification", "empty"],
)
def test_figures_that_cannot_be_drawn_exit_2(trained, tmp_path, run, what, message):
    result = call_cli("plot", trained[run], "--what", what, "-o", tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == message.format(run=trained[run])
    assert list(tmp_path.iterdir()) == []


def test_plot_of_a_folder_that_is_not_a_run_exits_5_and_of_a_missing_one_2(tmp_path):
    (tmp_path / "notes").mkdir()
    result = run_cli("plot", tmp_path / "notes")
    assert (result.returncode, result.stdout) == (5, "")
    assert result.stderr == f"error: {tmp_path / 'notes'}: not a run folder written by bptrain fit (it needs model.npz and config.yaml)\n"
    missing = call_cli("plot", tmp_path / "gone")
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"error: {tmp_path / 'gone'}: no such run folder; ")


def test_a_folder_where_a_figure_goes_exits_6_naming_it(trained, tmp_path):
    (tmp_path / "curves.png").mkdir()
    result = call_cli("plot", trained["iris"], "--what", "curves", "-o", tmp_path)
    assert (result.returncode, result.stdout) == (6, "")
    assert result.stderr == (
        f"error: {tmp_path / 'curves.png'}: cannot write (a folder of that name is in the way); move the folder away or write somewhere else\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"] and (tmp_path / "curves.png").is_dir()


def test_a_damaged_diagnostics_file_is_a_data_error_for_the_gradients_only(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained["iris"], run)
    (run / "diagnostics.csv").write_text("epoch,layer,grad_norm\n1,layers.0,0.5\n")
    curves = call_cli("plot", run, "--what", "curves")
    assert (curves.returncode, curves.stdout, curves.stderr) == (0, f"{run / 'figures' / 'curves.png'}\n", "")
    result = call_cli("plot", run, "--what", "curves,gradients")
    assert (result.returncode, result.stdout) == (3, "")
    assert result.stderr == (
        f"error: {run / 'diagnostics.csv'}: missing column 'weight_norm'; its columns should be "
        "epoch,layer,grad_norm,weight_norm,update_ratio,dead_fraction,saturated_fraction\n"
    )


# --- what the figures show ------------------------------------------------------------------------


ROWS = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e + 0.01 * e, "val_accuracy": 0.5 + 0.04 * e} for e in range(1, 11)]


def lines_of(ax) -> dict[str, np.ndarray]:
    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()}


def test_curves_mark_the_best_epoch_and_the_stop_and_take_a_log_scale():
    figure = plots.curves(ROWS, 7, "early_stopping", "accuracy", log=True)
    loss, metric = figure.axes[:2]
    assert loss.get_yscale() == "log" and metric.get_yscale() == "linear"
    drawn = lines_of(loss)
    assert list(drawn) == ["training loss", "validation loss", "best epoch (7)", "stopped: early_stopping (10)"]
    np.testing.assert_allclose(drawn["validation loss"], [r["val_loss"] for r in ROWS])
    assert [line.get_xdata()[0] for line in loss.get_lines()[2:]] == [7, 10]
    assert (loss.get_title(), loss.get_xlabel(), loss.get_ylabel()) == ("Loss (log scale)", "epoch", "loss (training objective)")
    assert metric.get_title() == "Validation accuracy"
    assert plots.curves(ROWS, 7, "early_stopping", "accuracy").axes[0].get_yscale() == "linear"


def test_gradients_draw_a_line_per_layer_and_leave_out_what_does_not_apply(tmp_path):
    layers = plots.diagnostics(DIAGNOSTICS.parent)
    assert list(layers) == ["layers.0", "layers.2", "layers.4"]
    figure = plots.gradients(layers)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["Gradient norm per layer", "Update-to-weight ratio", "Dead units (ReLU family)"]  # no saturated units recorded
    norms, ratios, dead = figure.axes
    np.testing.assert_allclose(lines_of(norms)["layers.2"], layers["layers.2"]["grad_norm"])
    assert list(lines_of(ratios)) == ["layers.0", "layers.2", "layers.4", "1e-3 (a healthy size)"]
    assert list(lines_of(dead)) == ["layers.0", "layers.2"]  # the output layer has no ReLU
    assert norms.get_yscale() == "log"


def test_confusion_matrix_cells_hold_the_counts():
    cm = np.array([[5, 1], [2, 7]])
    figure = plots.confusion(cm, ["no", "yes"], "test")
    (ax,) = [a for a in figure.axes if a.get_title()]
    assert [t.get_text() for t in ax.texts] == ["5", "1", "2", "7"]
    assert ax.get_title() == "Confusion matrix (test rows: 15, accuracy 0.800)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")


def test_a_run_that_logged_no_epoch_gets_no_curves(trained, tmp_path):
    # a run that diverged in its first epoch: metrics.jsonl holds no row. The copy sits beside the
    # run, as config.yaml's data paths are relative to the run folder
    run = trained["diabetes"].with_name("diverged-at-once")
    shutil.copytree(trained["diabetes"], run)
    (run / "metrics.jsonl").write_text("")
    header = (run / "diagnostics.csv").read_text().splitlines()[0]
    (run / "diagnostics.csv").write_text(header + "\n")
    result = call_cli("plot", run, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / "out" / f"{n}.png") for n in ("predicted", "residuals")]
    assert result.stderr == (
        "skipped curves: the run logged no epoch (metrics.jsonl is empty)\n"
        "skipped gradients: the run logged no epoch of diagnostics (diagnostics.csv holds no row)\n"
    )
    asked = call_cli("plot", run, "--what", "curves", "-o", tmp_path / "out")
    assert (asked.returncode, asked.stdout) == (2, "")
    assert asked.stderr == f"error: --what curves: cannot draw it for {run}: the run logged no epoch (metrics.jsonl is empty)\n"


@pytest.fixture
def unreported(trained):
    """Copies of the runs without report.json (a fit killed before it wrote one), beside them:
    config.yaml's data paths are relative to the run folder."""
    copies = {}
    for name in ("iris", "diabetes"):
        run = copies[name] = trained[name].with_name(f"{name}-killed")
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(trained[name], run)
        (run / "report.json").unlink()
    yield copies
    for run in copies.values():
        shutil.rmtree(run)


def test_a_run_without_report_json_gets_its_figures_of_predictions(unreported, tmp_path):
    result = call_cli("plot", unreported["iris"], "-o", tmp_path / "iris")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / "iris" / f"{n}.png") for n in ("curves", "gradients", "confusion")]
    assert result.stderr == "".join(
        f"skipped {n}: ROC and precision-recall curves are for binary classification; this run has 3 classes\n" for n in ("roc", "pr")
    )
    result = call_cli("plot", unreported["diabetes"], "-o", tmp_path / "diabetes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(tmp_path / "diabetes" / f"{n}.png") for n in ("curves", "gradients", "predicted", "residuals")]
    assert result.stderr == ""
    asked = call_cli("plot", unreported["diabetes"], "--what", "residuals", "-o", tmp_path / "asked")
    assert (asked.returncode, asked.stdout) == (0, f"{tmp_path / 'asked' / 'residuals.png'}\n")
    confusion = call_cli("plot", unreported["diabetes"], "--what", "confusion", "-o", tmp_path / "asked")
    assert confusion.returncode == 2
    assert confusion.stderr == (
        f"error: --what confusion: cannot draw it for {unreported['diabetes']}: a confusion matrix is for classification; this run's task is regression\n"
    )


@pytest.mark.parametrize("command", ["plot", "explain", "compare"])
def test_o_dash_is_no_folder_for_the_png_files(trained, tmp_path, command):
    runs = [trained["diabetes"]] * (2 if command == "compare" else 1)
    result = call_cli(command, *runs, "-o", "-", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: -o -: the PNG files are written into a folder, not to stdout; give a folder\n"
    assert list(tmp_path.iterdir()) == []
