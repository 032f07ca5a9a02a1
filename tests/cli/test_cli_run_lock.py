"""A run folder being written is locked: a second `fit --resume` of it, by another real process, exits 6
naming the folder; the lock dies with the process that held it, even by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

IRIS = "configs/iris.yaml"


def start_long_fit(runs: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("BPTRAIN_TRACEBACK", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bptrain", "fit", IRIS, "--set", "stopping.early_stopping=null",
         "--set", "stopping.max_epochs=100000", "-q", "--runs-dir", str(runs)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def first_checkpoint(runs: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = next((p for p in runs.glob("*") if (p / "checkpoints" / "last.npz").exists()), None)
        if run is not None:
            return run
        if proc.poll() is not None:
            pytest.fail(f"the first fit ended (exit {proc.returncode}) before its first checkpoint")
        time.sleep(0.01)
    proc.kill()
    pytest.fail("timed out waiting for the first checkpoint")


def test_second_process_on_a_run_in_use_exits_6_and_the_lock_dies_with_sigkill(tmp_path):
    runs = tmp_path / "runs"
    proc = start_long_fit(runs)
    try:
        run = first_checkpoint(runs, proc)
        second = run_cli("fit", "--resume", run, "-q")
        assert proc.poll() is None, "the first fit ended too early; the lock was not tested"
        assert second.returncode == 6, second.stderr
        assert second.stdout == ""
        assert second.stderr == (
            f"error: {run}: the run folder is in use by another bptrain process (it holds {run / '.lock'}); "
            "wait for that one to end, or stop it, then try again\n"
        )
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    resumed = run_cli("fit", "--resume", run, "-q", "--set", "stopping.max_epochs=1")
    assert "in use" not in resumed.stderr
    assert resumed.returncode == 0, resumed.stderr
