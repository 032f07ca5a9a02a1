"""Reproducibility through the CLI: same config and seed -> same weights and log; the resolved
config.yaml of a run refits to the same model; a missing seed is drawn and recorded."""

from __future__ import annotations

import csv
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from conftest import ROOT, call_cli, run_cli, write

IRIS = ROOT / "datasets" / "iris.csv"
EPOCHS = 3
FIT = ("--set", f"stopping.max_epochs={EPOCHS}", "-q")
META = "__meta__"


def fit(config, runs: Path, *extra: str, cwd: Path | None = None, process: bool = False) -> Path:
    """Fit and return the run folder the summary names: in this process (call_cli), or with
    `process` in a process of its own (run_cli), for runs whose sameness across processes is tested."""
    result = (run_cli if process else call_cli)("fit", config, *FIT, *extra, "--runs-dir", runs, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    match = re.match(r"run        (.+)\n", result.stdout)
    assert match, result.stdout
    run = Path(match.group(1))
    if not run.is_absolute():
        run = (cwd or ROOT) / run
    assert run.is_dir() and run.parent.resolve() == runs.resolve()
    return run


def arrays(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "model.npz", allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def assert_same_model(a: Path, b: Path) -> None:
    """Every array identical (values, dtype, shape); the metadata identical apart from the run name (and so its hash)."""
    left, right = arrays(a), arrays(b)
    assert sorted(left) == sorted(right)
    for name in left:
        if name == META:
            continue
        assert left[name].dtype == right[name].dtype, name
        assert left[name].shape == right[name].shape, name
        assert np.array_equal(left[name], right[name]), name
    if META in left:
        meta_a, meta_b = json.loads(str(left[META])), json.loads(str(right[META]))
        for meta in (meta_a, meta_b):
            meta.pop("run", None)
            meta.pop("sha256", None)
        assert meta_a == meta_b


def metrics_without_seconds(run: Path) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO((run / "metrics.csv").read_text(encoding="utf-8"))))
    assert rows[0][-1] == "seconds"
    return [row[:-1] for row in rows]


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The same config and seed fitted twice, at the same time (so often in the same second)."""
    runs = tmp_path_factory.mktemp("runs")
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: fit("configs/iris.yaml", runs, process=True), range(2))
    return SimpleNamespace(runs=runs, a=a, b=b)


def test_two_fits_get_two_run_folders(twins):
    assert twins.a != twins.b
    assert sorted(p.name for p in twins.runs.iterdir()) == sorted([twins.a.name, twins.b.name])
    for run in (twins.a, twins.b):
        assert re.fullmatch(r"iris-\d{8}-\d{6}(-\d+)?", run.name), run.name
        assert (run / "model.npz").is_file() and (run / "report.json").is_file()
    stamp = re.compile(r"(iris-\d{8}-\d{6})(-\d+)?")
    a, b = stamp.fullmatch(twins.a.name), stamp.fullmatch(twins.b.name)
    if a.group(1) == b.group(1):  # the same second: exactly one of them carries a -N suffix
        assert sorted([a.group(2) or "", b.group(2) or ""]) == ["", "-2"]


def test_same_seed_gives_identical_weights_and_metrics(twins):
    assert_same_model(twins.a, twins.b)
    assert metrics_without_seconds(twins.a) == metrics_without_seconds(twins.b)
    assert len(metrics_without_seconds(twins.a)) == EPOCHS + 1
    report_a = json.loads((twins.a / "report.json").read_text())
    report_b = json.loads((twins.b / "report.json").read_text())
    assert report_a["metrics"] == report_b["metrics"]
    assert report_a["seed"] == report_b["seed"] == 42


def test_another_seed_gives_other_weights(twins, tmp_path):
    other = fit("configs/iris.yaml", tmp_path, "--set", "seed=7")
    left, right = arrays(twins.a), arrays(other)
    weights = [name for name, a in left.items() if a.dtype.kind == "f" and a.ndim == 2]
    assert weights
    for name in weights:
        assert left[name].shape == right[name].shape
        assert not np.array_equal(left[name], right[name]), name
    assert json.loads((other / "report.json").read_text())["seed"] == 7
    assert yaml.safe_load((other / "config.yaml").read_text())["seed"] == 7


def test_resolved_config_holds_the_seed_and_refits_identically(twins, tmp_path):
    resolved = yaml.safe_load((twins.a / "config.yaml").read_text(encoding="utf-8"))
    assert resolved["seed"] == 42
    assert resolved["name"] == "iris"
    assert resolved["stopping"]["max_epochs"] == EPOCHS
    assert resolved["training"]["batch_size"] == 16
    assert resolved["optimizer"]["name"] == "adam" and resolved["optimizer"]["lr"] == 0.01
    assert resolved["stopping"]["early_stopping"]["patience"] == 30
    train_path = (twins.a / resolved["data"]["train"]).resolve()
    assert train_path == IRIS.resolve()
    # fed back to fit from another folder (cwd), without the --set: the same run again
    result = call_cli("fit", twins.a / "config.yaml", "-q", "--runs-dir", tmp_path / "runs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (again,) = (tmp_path / "runs").iterdir()
    assert again.name.startswith("iris-")
    assert_same_model(twins.a, again)
    assert metrics_without_seconds(twins.a) == metrics_without_seconds(again)


def test_missing_seed_is_drawn_recorded_and_reusable(tmp_path):
    config = write(
        tmp_path,
        f"name: noseed\ndata: {{train: {IRIS}, target: species}}\n"
        "model: {layers: [{units: 8}]}\n",
    )
    first = fit(config, tmp_path / "runs")
    resolved = yaml.safe_load((first / "config.yaml").read_text(encoding="utf-8"))
    seed = resolved["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**63
    assert json.loads((first / "report.json").read_text())["seed"] == seed
    assert f"- seed: {seed}" in (first / "report.md").read_text()
    # the recorded seed is the one that was used: refitting the resolved config repeats the run;
    # and a second seedless fit draws another seed
    again, second = fit(first / "config.yaml", tmp_path / "again"), fit(config, tmp_path / "runs")
    assert_same_model(first, again)
    assert metrics_without_seconds(first) == metrics_without_seconds(again)
    assert yaml.safe_load((second / "config.yaml").read_text())["seed"] != seed


def test_run_reached_through_a_symlink_still_evaluates(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "real").mkdir()
    link = tmp_path / "a" / "b" / "link"
    link.symlink_to(tmp_path / "real", target_is_directory=True)
    run = fit("configs/iris.yaml", link, "--set", "stopping.max_epochs=1")
    result = call_cli("evaluate", run)
    assert result.returncode == 0, result.stderr


def test_the_same_thread_count_gives_identical_weights_on_threaded_products(tmp_path):
    """Two BLAS threads on products large enough for OpenBLAS to split (64 x 64 x 512): still the
    same bytes twice, and the count is what report.json records."""
    threaded = ("--set", "training.threads=2", "--set", "stopping.max_epochs=2", "--set", "model.layers=[512]")
    a, b = (fit("configs/digits.yaml", tmp_path / name, *threaded, process=True) for name in ("a", "b"))
    assert_same_model(a, b)
    assert metrics_without_seconds(a) == metrics_without_seconds(b)
    for run in (a, b):
        report = json.loads((run / "report.json").read_text())
        assert report["threads"] == {"count": 2, "chosen": "set"}
        assert report["environment"]["blas_threads"] == 2
