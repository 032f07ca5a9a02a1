"""Signals outside training: SIGINT or SIGTERM while bptrain is still importing, and during `predict`,
through real processes signalled at controlled moments. Each ends with its exit code (130, 143) and
one `error:` line, never a traceback or a death by signal; predict leaves no partial output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, call_cli

IRIS = "configs/iris.yaml"
SIGNALS = [(signal.SIGINT, 130, "interrupted by SIGINT"), (signal.SIGTERM, 143, "terminated by SIGTERM")]


def popen(*args, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("BPTRAIN_TRACEBACK", None)
    return subprocess.Popen(
        [sys.executable, "-m", "bptrain", *map(str, args)],
        cwd=ROOT, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def catches_sigterm(pid: int) -> bool:
    """True once the process has a handler for SIGTERM (the SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(mask & (1 << (signal.SIGTERM - 1)))


def wait_until(predicate, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (exit {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("signum, code, stop", SIGNALS)
def test_signal_while_importing_exits_quietly_with_its_code(tmp_path, signum, code, stop):
    """Sent as soon as the entry point has its handlers, while it still imports typer, numpy, pandas."""
    proc = popen("fit", IRIS, "-q", "--runs-dir", tmp_path / "runs")
    wait_until(lambda: catches_sigterm(proc.pid), proc, "the handlers were installed")
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert out == ""
    assert err == f"error: {stop} before the command started; nothing was done\n"
    assert not (tmp_path / "runs").exists()


def predictions_tmp(folder: Path) -> list[Path]:
    return list(folder.glob(".predictions.csv.*.tmp"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("trained")
    result = call_cli("fit", IRIS, "--set", "stopping.max_epochs=2", "-q", "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    (run,) = runs.iterdir()
    return run


@pytest.mark.parametrize("signum, code, stop", SIGNALS)
def test_signal_during_predict_to_a_file_leaves_it_untouched(tmp_path, trained, signum, code, stop):
    """Signalled while predict streams stdin into -o's temp file: the target keeps its old content."""
    out = tmp_path / "predictions.csv"
    out.write_text("the previous predictions\n")
    proc = popen("predict", trained, "-", "-o", out, stdin=subprocess.PIPE)
    header, *rows = (ROOT / "datasets" / "iris.csv").read_text().splitlines(keepends=True)
    proc.stdin.write(header + "".join(rows[:5]))
    proc.stdin.flush()
    wait_until(lambda: predictions_tmp(tmp_path), proc, "predict opened its temp file")
    proc.send_signal(signum)
    out_text, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert out_text == ""
    assert err == f"error: predict {stop}; {out} is left as it was, with no partial file\n"
    assert out.read_text() == "the previous predictions\n"
    assert predictions_tmp(tmp_path) == []


def reading_stdin(pid: int) -> bool:
    """True while the process is blocked in read(0, ...): past its imports, waiting for more rows."""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().startswith("0 0x0 ")
    except (FileNotFoundError, PermissionError):
        return False


@pytest.mark.skipif(not Path("/proc/self/syscall").exists(), reason="needs /proc/PID/syscall")
def test_sigint_during_predict_to_stdout_speaks_of_predict(trained):
    proc = popen("predict", trained, "-", stdin=subprocess.PIPE)
    header, *rows = (ROOT / "datasets" / "iris.csv").read_text().splitlines(keepends=True)
    proc.stdin.write(header + "".join(rows[:5]))
    proc.stdin.flush()
    wait_until(lambda: reading_stdin(proc.pid), proc, "predict waits for more rows")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "error: predict interrupted by SIGINT; the predictions on stdout stop early\n"


LATE = """
import os, sys
from bptrain.__main__ import main

class Late:  # module globals are torn down last, after Python has put the default signal handlers back
    def __del__(self):
        os.kill(os.getpid(), {signum})

late = Late()
sys.argv = ["bptrain", "--version"]
main()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_python_shuts_down_after_a_command_kills_nothing(signum):
    """The command's exit code stands: a signal in the last moments of the process, while Python
    tears its modules down, used to kill it by signal."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", LATE.format(signum=int(signum))], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split()[0], done.stderr) == (0, "bptrain", "")
