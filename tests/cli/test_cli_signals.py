"""SIGINT and SIGTERM during `bptrain fit`: the state is saved, the exit code and message say so, and
`bptrain fit --resume RUN` ends bit-identical to an uninterrupted run. A second SIGINT stops at once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import ROOT, call_cli, logged_epochs, metrics_rows, model_digests, poll, run_cli

IRIS = "configs/iris.yaml"  # 7 steps per epoch
EPOCHS = 60
# early stopping off, dropout on (the noise generator's state matters), the default checkpoint cadence (at
# the start, then every 60 s: the run is shorter): the state saved on a signal is usually mid-epoch
STEADY = (
    "--set", "stopping.early_stopping=null",
    "--set", "model.layers=[{units: 32, dropout: 0.2}, {units: 32, dropout: 0.2}]",
    "--set", f"stopping.max_epochs={EPOCHS}",
    "-q",
)
SUMMARY = re.compile(r"stopped    (\w+) after (\d+) epochs, \d+\.\d s; best epoch (\d+)")


# bptrain's entry point with a figure that takes 3 s to draw: a window in which to signal a run that is
# writing its report (drawn in a millisecond otherwise)
SLOW_FIGURE = """
import sys, time
from bptrain import __main__ as entry
from bptrain.runs import report
draw = report.curves
report.curves = lambda *args: (time.sleep(3), draw(*args))
sys.argv = ["bptrain", *sys.argv[1:]]
entry.main()
"""


def start(runs: Path, slow_figure: bool = False) -> subprocess.Popen:
    """`bptrain fit` as run_cli runs it, but in the background, to be signalled."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("BPTRAIN_TRACEBACK", None)
    program = ["-c", SLOW_FIGURE] if slow_figure else ["-m", "bptrain"]
    return subprocess.Popen(
        [sys.executable, *program, "fit", IRIS, *STEADY, "--runs-dir", str(runs)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def mid_training(runs: Path, proc: subprocess.Popen, epochs: int = 3) -> Path:
    """The run folder, once `epochs` epochs are logged (training is well under way)."""
    run = poll(lambda: next((p for p in runs.glob("*") if logged_epochs(p) >= epochs), None), proc)
    if run is None:
        out, err = proc.communicate()
        pytest.fail(f"the run ended (exit {proc.returncode}) before it was signalled: {err}")
    return run






def report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text(encoding="utf-8"))


def assert_resumes_to(run: Path, reference: Path) -> None:
    """`fit --resume RUN` finishes the run, bit-identical to `reference`."""
    result = run_cli("fit", "--resume", run, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    match = SUMMARY.fullmatch(result.stdout.splitlines()[1])
    assert match and match.groups() == ("max_epochs", str(EPOCHS), str(EPOCHS)), result.stdout
    assert model_digests(run) == model_digests(reference)
    assert metrics_rows(run) == metrics_rows(reference)
    mine, theirs = report(run), report(reference)
    for key in ("stop_reason", "epochs_run", "steps", "best_epoch", "metrics", "confusion_matrix", "per_class"):
        assert mine[key] == theirs[key], key
    assert sorted(p.name for p in run.rglob("*.tmp")) == []


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("uninterrupted")
    result = run_cli("fit", IRIS, *STEADY, "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    (run,) = runs.iterdir()
    return run


@pytest.mark.parametrize(
    "signum, code, reason, name",
    [(signal.SIGINT, 130, "interrupted", "SIGINT"), (signal.SIGTERM, 143, "terminated", "SIGTERM")],
)
def test_signal_saves_the_state_and_resume_is_bit_identical(tmp_path, uninterrupted, signum, code, reason, name):
    runs = tmp_path / "runs"
    proc = start(runs)
    run = mid_training(runs, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert out == ""
    assert err == f"error: {reason} by {name}: the training state is saved; continue with: bptrain fit --resume {run}\n"
    rep = report(run)
    assert rep["stop_reason"] == reason
    assert 3 <= rep["epochs_run"] < EPOCHS
    assert rep["epochs_run"] == logged_epochs(run)
    with np.load(run / "checkpoints" / "last.npz", allow_pickle=False) as archive:
        position = json.loads(str(archive["__meta__"]))["position"]
    assert position["step"] == rep["steps"]  # saved where it stopped
    assert position["batch"] == rep["steps"] - 7 * rep["epochs_run"]
    assert len(position["rows"]) == rep["epochs_run"]
    with np.load(run / "model.npz", allow_pickle=False) as archive:
        assert "layers.0.W" in archive.files
    assert_resumes_to(run, uninterrupted)


@pytest.fixture(scope="module")
def double_sigint(tmp_path_factory):
    """A run sent SIGINT, then SIGINT again while it writes its report after the first (report.json is
    written first, then report.md, then curves.svg, here drawn slowly to leave a window). Retried when the
    process finishes before the second signal could be sent."""
    for _ in range(3):
        runs = tmp_path_factory.mktemp("double")
        proc = start(runs, slow_figure=True)
        run = mid_training(runs, proc)
        proc.send_signal(signal.SIGINT)
        if poll(lambda: (run / "report.json").exists(), proc) is None:
            proc.communicate()
            continue
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        return SimpleNamespace(run=run, code=proc.returncode, out=out, err=err, seconds=time.monotonic() - sent)
    pytest.fail("the process always finished before the second SIGINT")


def test_second_sigint_stops_at_once(double_sigint):
    r = double_sigint
    assert r.code == 130, r.err
    assert r.out == ""
    assert "Traceback" not in r.err
    assert len(r.err.splitlines()) == 1, r.err
    assert "the training state is saved" not in r.err  # it did not finish the way the first SIGINT would
    assert not (r.run / "curves.svg").exists()  # cut short while writing the report
    assert r.seconds < 5
    assert report(r.run)["stop_reason"] == "interrupted"


def test_second_sigint_message_says_how_to_continue(double_sigint):
    r = double_sigint
    assert r.err.startswith("error: interrupted by SIGINT")
    assert f"bptrain fit --resume {r.run}" in r.err


def test_resume_after_a_second_sigint_is_bit_identical(double_sigint, uninterrupted):
    assert_resumes_to(double_sigint.run, uninterrupted)


def test_a_signal_training_did_not_take_says_what_became_of_the_run(tmp_path, monkeypatch):
    """A second Ctrl-C before the run had a folder, or a signal after it ended, reaches the command's
    own handling: the message says whether anything was written and where the run is, not a literal RUN."""
    from bptrain import app, cli
    from bptrain.interrupts import Signalled

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(app, "fit", interrupted)
        fresh = call_cli("fit", IRIS, "-q", "--runs-dir", tmp_path / "runs")
    assert (fresh.returncode, fresh.stderr) == (130, "error: interrupted by SIGINT before training started; nothing was written\n")
    assert not (tmp_path / "runs").exists()

    def terminated(report):
        raise Signalled(signal.SIGTERM)

    monkeypatch.setattr(cli, "_print_fit_summary", terminated)
    done = call_cli("fit", IRIS, "-q", "--runs-dir", tmp_path / "runs", "--set", "stopping.max_epochs=1")
    (run,) = (tmp_path / "runs").iterdir()
    assert (done.returncode, done.stderr) == (143, f"error: terminated by SIGTERM after the run ended; it is complete in {run}\n")
    monkeypatch.setattr(app, "fit", interrupted)
    again = call_cli("fit", "--resume", run, "-q")
    assert (again.returncode, again.stderr) == (130, f"error: interrupted by SIGINT before training continued; continue with: bptrain fit --resume {run}\n")
