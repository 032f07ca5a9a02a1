"""Diagnostics (bptrain.training.diagnostics): diagnostics.csv and .jsonl, and the warnings that teach.

Each warning is provoked on purpose by a network that has the problem, and a healthy run shows none
(the shipped configs are checked in tests/cli/test_cli_shipped_configs.py). The fits run through the
CLI's entry point in this process (call_cli), a few epochs each.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, call_cli

IRIS = ROOT / "configs" / "iris.yaml"
DIABETES = ROOT / "configs" / "diabetes.yaml"
COLUMNS = ["epoch", "layer", "grad_norm", "weight_norm", "update_ratio", "dead_fraction", "saturated_fraction"]


def fit(tmp_path: Path, config: Path, *sets: str):
    """`bptrain fit CONFIG --set ... -q`; (result, run folder, report.json)."""
    args = [a for s in sets for a in ("--set", s)]
    result = call_cli("fit", config, *args, "--runs-dir", tmp_path, "-q")
    (run,) = tmp_path.iterdir()
    return result, run, json.loads((run / "report.json").read_text())


def rows(run: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((run / "diagnostics.csv").read_text(encoding="utf-8"))))


def kinds(report: dict) -> list[str]:
    return [w["kind"] for w in report["diagnostics"]["warnings"]]


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning: ")]


# --- the files -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    return fit(tmp_path_factory.mktemp("healthy"), IRIS, "stopping.max_epochs=12")


def test_one_row_per_dense_layer_and_epoch_in_the_agreed_columns(healthy):
    _, run, report = healthy
    text = (run / "diagnostics.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    table = rows(run)
    with np.load(run / "model.npz", allow_pickle=False) as model:
        layers = sorted(name[: -len(".W")] for name in model.files if name.endswith(".W"))
    assert layers == ["layers.0", "layers.2", "layers.4"]
    assert [(int(r["epoch"]), r["layer"]) for r in table] == [(e, layer) for e in range(1, 13) for layer in layers]
    for r in table:
        assert float(r["grad_norm"]) > 0 and float(r["weight_norm"]) > 0 and float(r["update_ratio"]) > 0
        assert r["saturated_fraction"] == ""  # relu layers and the output layer
        assert (r["dead_fraction"] == "") == (r["layer"] == "layers.4")  # the output layer has no activation
    assert report["diagnostics"]["last_epoch"] == [
        {k: (int(v) if k == "epoch" else v if k == "layer" else float(v) if v else None) for k, v in r.items()} for r in table[-3:]
    ]


def test_jsonl_holds_the_same_rows(healthy):
    _, run, _ = healthy
    records = [json.loads(line) for line in (run / "diagnostics.jsonl").read_text().splitlines()]
    assert [list(r) for r in records] == [COLUMNS] * len(records)
    assert [[str(v) if v is not None else "" for v in r.values()] for r in records] == [
        [r[k] if k in ("epoch", "layer") else (repr(float(r[k])) if r[k] else "") for k in COLUMNS] for r in rows(run)
    ]


def test_a_healthy_run_warns_of_nothing(healthy):
    result, run, report = healthy
    assert result.returncode == 0, result.stderr
    assert (result.stderr, report["diagnostics"]["warnings"]) == ("", [])
    assert "## Diagnostics\n\nNo warnings." in (run / "report.md").read_text()


def test_update_ratio_is_the_step_relative_to_the_weights(tmp_path):
    """Full-batch plain SGD: one step per epoch, ΔW = -lr·g, and W before epoch e's step is W after epoch e-1's,
    so update_ratio(e) · weight_norm(e-1) = lr · grad_norm(e)."""
    _, run, _ = fit(tmp_path, IRIS, "optimizer={name: sgd, lr: 0.05}", "training.batch_size=200", "stopping.max_epochs=6", "model.dtype=float64")
    table = rows(run)
    for layer in ("layers.0", "layers.2", "layers.4"):
        mine = [r for r in table if r["layer"] == layer]
        for before, now in zip(mine, mine[1:]):
            assert float(now["update_ratio"]) * float(before["weight_norm"]) == pytest.approx(0.05 * float(now["grad_norm"]), rel=1e-9)


def test_saturation_is_counted_for_tanh_and_sigmoid_only(tmp_path):
    _, run, _ = fit(tmp_path, DIABETES, "stopping.max_epochs=2", "model.layers=[{units: 8, activation: tanh}, {units: 8, activation: sigmoid}, 8]")
    for r in rows(run):
        fraction = {"layers.0": r["saturated_fraction"], "layers.2": r["saturated_fraction"]}.get(r["layer"])
        if r["layer"] in ("layers.0", "layers.2"):
            assert 0.0 <= float(fraction) <= 1.0 and r["dead_fraction"] == ""
        elif r["layer"] == "layers.4":
            assert r["saturated_fraction"] == "" and 0.0 <= float(r["dead_fraction"]) <= 1.0
        else:
            assert (r["saturated_fraction"], r["dead_fraction"]) == ("", "")


def test_diagnostics_off_writes_no_files_and_no_report_key(tmp_path):
    result, run, report = fit(tmp_path, IRIS, "stopping.max_epochs=2", "report.diagnostics=false")
    assert result.returncode == 0, result.stderr
    assert not (run / "diagnostics.csv").exists() and not (run / "diagnostics.jsonl").exists()
    assert "diagnostics" not in report and "## Diagnostics" not in (run / "report.md").read_text()


def test_a_resume_with_diagnostics_off_drops_the_older_files(tmp_path):
    result, run, _ = fit(tmp_path, IRIS, "stopping.max_epochs=2")
    assert result.returncode == 0, result.stderr
    assert {r["epoch"] for r in rows(run)} == {"1", "2"}
    resumed = call_cli("fit", "--resume", run, "-q", "--set", "stopping.max_epochs=4", "--set", "report.diagnostics=false")
    assert (resumed.returncode, resumed.stderr) == (0, "")
    report = json.loads((run / "report.json").read_text())
    assert report["epochs_run"] == 4 and "diagnostics" not in report
    assert not (run / "diagnostics.csv").exists() and not (run / "diagnostics.jsonl").exists()  # they showed 2 of the 4 epochs


# --- each warning, provoked ---------------------------------------------------------------------

DEEP_SIGMOID = "model.layers=[" + ", ".join(["{units: 16, activation: sigmoid}"] * 6) + "]"


def test_a_deep_sigmoid_net_warns_of_vanishing_gradients(tmp_path):
    result, run, report = fit(tmp_path, IRIS, DEEP_SIGMOID, "optimizer.lr=0.001", "stopping.max_epochs=3")
    assert kinds(report) == ["vanishing"]
    (line,) = warning_lines(result.stderr)
    assert re.fullmatch(
        r"warning: vanishing gradients at epoch 1: the gradient reaching layers\.0 is \d\.\de-0\d times the one at layers\.12 "
        r"\(grad_norm \d\.\d\de-\d\d against \d\.\d\de[-+]\d\d; warned below 0\.001\), so the first layers barely learn: each layer "
        r"multiplies the gradient on its way back, and sigmoid or tanh units shrink it\. Try relu activations, fewer layers, "
        r"or a batch_norm layer between them",
        line,
    ), line
    first = {int(r["epoch"]): float(r["grad_norm"]) for r in rows(run) if r["layer"] == "layers.0"}
    last = {int(r["epoch"]): float(r["grad_norm"]) for r in rows(run) if r["layer"] == "layers.12"}
    assert first[1] / last[1] < 1e-3
    assert "vanishing gradients at epoch 1" in (run / "report.md").read_text()


def test_a_learning_rate_past_stability_warns_of_exploding_gradients(tmp_path):
    """Linear regression by full-batch gradient descent with lr above 2/λ_max: the gradient grows by
    the same factor (about 1.44) every epoch, past 10 times its start at epoch 8."""
    result, run, report = fit(
        tmp_path, DIABETES, "optimizer={name: sgd, lr: 0.3}", "model.layers=[]", "training.batch_size=1000",
        "stopping.max_epochs=10", "stopping.early_stopping=false",
    )
    assert result.returncode == 0, result.stderr
    assert kinds(report) == ["update_ratio_high", "exploding"]
    exploding = report["diagnostics"]["warnings"][1]
    assert exploding["epoch"] == 8
    assert re.fullmatch(
        r"exploding gradients at epoch 8: the gradient of all layers together grew in each of the last 3 epochs, 3\.0 times in all, to 79\.5, "
        r"12 times its size in epoch 1 \(warned from 2 and 10 times\), so the steps grow and training is likely to diverge\. "
        r"Try a smaller optimizer\.lr \(now 0\.3\), or clip the gradients: training\.clip: \{global_norm: 1\.0\}",
        exploding["message"],
    ), exploding["message"]
    norms = [float(r["grad_norm"]) for r in rows(run)]
    assert all(b > a for a, b in zip(norms, norms[1:])) and norms[7] >= 10 * norms[0] > norms[6]


def test_a_very_negative_bias_init_warns_of_dead_units(tmp_path):
    result, run, report = fit(tmp_path, IRIS, "model.layers=[{units: 16, bias_init: -5}]", "stopping.max_epochs=2")
    assert kinds(report) == ["dead_units"]
    (line,) = warning_lines(result.stderr)
    assert re.fullmatch(
        r"warning: dead units at epoch 1: \d+% of the 16 relu units after layers\.0 output 0 for every sampled row \(warned above 50%\), "
        r"so no gradient flows through them and they no longer learn\. Try a smaller optimizer\.lr \(now 0\.01\), a bias_init of 0 "
        r"or more, or leaky_relu activations",
        line,
    ), line
    assert float(rows(run)[0]["dead_fraction"]) > 0.5


def test_a_huge_learning_rate_warns_of_large_updates(tmp_path):
    result, run, report = fit(tmp_path, IRIS, "optimizer.lr=1", "stopping.max_epochs=2")
    assert kinds(report)[0] == "update_ratio_high"
    line = warning_lines(result.stderr)[0]
    assert re.fullmatch(
        r"warning: large updates at epoch 1: a step changes layers\.\d\.W by [\d.]+ of its size \(update_ratio; about 1e-3 is typical, "
        r"warned above 0\.1\), so the learning rate is likely too high: the weights jump around instead of descending\. "
        r"Try a smaller optimizer\.lr \(now 1\)",
        line,
    ), line
    assert max(float(r["update_ratio"]) for r in rows(run) if r["epoch"] == "1") > 0.1


def test_a_tiny_learning_rate_warns_of_tiny_updates(tmp_path):
    result, run, report = fit(tmp_path, IRIS, "optimizer.lr=1e-7", "stopping.max_epochs=3")
    assert kinds(report) == ["update_ratio_low"]
    assert report["diagnostics"]["warnings"][0]["epoch"] == 1
    (line,) = warning_lines(result.stderr)  # once, at the epoch where first seen
    assert re.fullmatch(
        r"warning: tiny updates at epoch 1: a step changes the weights of every layer by at most [\d.]+e-0\d of their size "
        r"\(update_ratio; about 1e-3 is typical, warned below 1e-05 in the first 5 epochs\), so the learning rate is likely too low: "
        r"training will crawl\. Try a larger optimizer\.lr \(now 1e-07\)",
        line,
    ), line
    assert "tiny updates at epoch 1" in (run / "report.md").read_text()


def test_warnings_show_with_quiet_and_go_to_stderr(tmp_path):
    result, _, _ = fit(tmp_path, IRIS, "optimizer.lr=1e-7", "stopping.max_epochs=2")
    assert "tiny updates" not in result.stdout and "warning: tiny updates at epoch 1" in result.stderr


def test_non_finite_norms_are_written_as_empty_fields(tmp_path):
    result, run, _ = fit(tmp_path, DIABETES, "optimizer={name: sgd, lr: 0.5}", "stopping.max_epochs=10")
    assert result.returncode == 4
    for r in rows(run):
        for key in ("grad_norm", "weight_norm", "update_ratio"):
            assert r[key] == "" or math.isfinite(float(r[key]))


def test_exploding_gradients_from_no_gradient_at_all():
    """Every unit dead (grad_norm 0), then the gradient comes back and grows: there is no growth
    factor from 0 to name, so the warning says it grew from 0."""
    from bptrain.nn.model import build_model
    from bptrain.training.diagnostics import Diagnostics

    model = build_model([{"units": 4}], 3, 2, rng=np.random.default_rng(0), batch_size=8)
    diagnostics = Diagnostics(model)
    diagnostics.norms = [0.84, 0.5, 0.0, 38.0, 396.0, 7727.0]
    kind, message = diagnostics._exploding([{"epoch": 6, "layer": "layers.0"}], 0.5)
    assert kind == "exploding"
    assert message == (
        "exploding gradients at epoch 6: the gradient of all layers together grew in each of the last 3 epochs, "
        "from 0 (no gradient at all), to 7.73e+03, 9199 times its size in epoch 1 (warned from 2 and 10 times), so the "
        "steps grow and training is likely to diverge. Try a smaller optimizer.lr (now 0.5), or clip the gradients: "
        "training.clip: {global_norm: 1.0}"
    )


@pytest.mark.parametrize(
    "layers",
    [
        "model.layers=[{units: 16, init: zeros}]",  # W all 0 and no gradient: the ratio is 0/0
        "model.layers=[{units: 16, bias_init: -5}, {units: 16, bias_init: -5}]",  # no gradient: every ratio is 0
    ],
)
def test_no_update_size_warning_without_a_gradient(tmp_path, layers):
    """With every unit dead no gradient reaches the weights: the dead units are the news, and the
    update_ratio says nothing of the learning rate."""
    result, run, report = fit(tmp_path, IRIS, layers, "stopping.max_epochs=3")
    assert result.returncode == 0, result.stderr
    assert kinds(report) == ["dead_units"]
    assert [line.split(":")[1] for line in warning_lines(result.stderr)] == [" dead units at epoch 1"]
