"""Files that cannot be written, and the modes of the files that are: through real `bptrain` processes.

A file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so the write fails with EFBIG), a read-only
folder (/sys) and a full disk (ENOSPC, simulated in-process) end with exit code 6 and one line naming
the file and what to do; training continues from the last good checkpoint bit-identically. Every
file a run writes gets 0666 minus the umask, like the metrics logs.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, call_cli, metrics_rows, model_digests, run_cli

IRIS = "configs/iris.yaml"
EPOCHS = ("--set", "stopping.early_stopping=null", "--set", "stopping.max_epochs=30", "-q")


def limited(limit: int | None = None, umask: int | None = None):
    """A preexec_fn: a file-size limit of `limit` bytes (SIGXFSZ ignored, so writes raise EFBIG) and a umask."""

    def apply() -> None:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        if umask is not None:
            os.umask(umask)

    return apply


def run_limited(*args, limit: int | None = None, umask: int | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("BPTRAIN_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "bptrain", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300, preexec_fn=limited(limit, umask),
    )


def only_run(runs: Path) -> Path:
    (run,) = runs.iterdir()
    return run


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("reference")
    result = call_cli("fit", IRIS, *EPOCHS, "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    return only_run(runs)


def test_file_size_limit_exits_6_naming_the_checkpoint_and_resume_ends_identical(tmp_path, reference):
    # the checkpoint grows with the metrics it carries: a limit under its final size stops the run midway
    final = (reference / "checkpoints" / "last.npz").stat().st_size
    assert final - 2000 > (reference / "model.npz").stat().st_size
    runs = tmp_path / "runs"
    result = run_limited("fit", IRIS, *EPOCHS, "--runs-dir", runs, limit=final - 2000)
    run = only_run(runs)
    last = run / "checkpoints" / "last.npz"
    assert result.returncode == 6, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {last}: cannot write (the file-size limit was reached); raise the limit (ulimit -f); "
        f"nothing saved is lost: the last good checkpoint is {last}; continue with: bptrain fit --resume {run}\n"
    )
    assert sorted(p.name for p in run.rglob("*.tmp")) == []
    assert not (run / "report.json").exists()

    resumed = run_cli("fit", "--resume", run, "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr == ""
    assert model_digests(run) == model_digests(reference)
    assert metrics_rows(run) == metrics_rows(reference)


def test_file_size_limit_on_predict_output_leaves_nothing(tmp_path, reference):
    out = tmp_path / "predictions.csv"
    result = run_limited("predict", reference, "datasets/iris.csv", "-o", out, limit=1000)
    assert result.returncode == 6, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"error: {out}: cannot write (the file-size limit was reached); raise the limit (ulimit -f)\n"
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_folder_exits_6(reference):
    if not Path("/sys/fs").is_dir():
        pytest.skip("no /sys here")
    result = run_cli("predict", reference, "datasets/iris.csv", "-o", "/sys/predictions.csv")
    assert result.returncode == 6, result.stderr
    assert result.stdout == ""
    assert result.stderr == "error: /sys/predictions.csv: cannot write (permission denied); make the folder writable or choose another one\n"


def test_unwritable_runs_folder_exits_6():
    if not Path("/sys/fs").is_dir():
        pytest.skip("no /sys here")
    result = run_cli("fit", IRIS, "-q", "--runs-dir", "/sys/bptrain-runs")
    assert result.returncode == 6, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("error: /sys/bptrain-runs: cannot create the runs folder (")
    assert result.stderr.endswith("); make the folder writable or choose another one\n")
    assert len(result.stderr.splitlines()) == 1


def test_full_disk_raises_storage_error_and_leaves_no_temp_file(tmp_path):
    from bptrain.fileio import atomic_write
    from bptrain.errors import StorageError

    target = tmp_path / "model.npz"
    target.write_bytes(b"the good one")

    def fill_the_disk(f) -> None:
        f.write(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(StorageError) as caught:
        atomic_write(target, fill_the_disk)
    assert str(caught.value) == f"{target}: cannot write (no space left on the device); free some space"
    assert caught.value.exit_code == 6
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    assert target.read_bytes() == b"the good one"


def test_other_os_errors_are_not_disguised_as_storage_errors(tmp_path):
    from bptrain.fileio import atomic_write

    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "missing" / "file", lambda f: f.write(b"x"))


# --- stdout that cannot be written ------------------------------------------------------------------


def run_into(stdout, *args, preexec_fn=None) -> subprocess.CompletedProcess:
    """`python -m bptrain ARGS` with its stdout on `stdout` (an open file, or None for a closed stdout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("BPTRAIN_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "bptrain", *map(str, args)],
        stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env, timeout=300, preexec_fn=preexec_fn,
    )


STDOUT_COMMANDS = {
    "predict": ["predict", "{run}", "datasets/iris.csv"],
    "evaluate-json": ["evaluate", "{run}", "--json"],
    "runs": ["runs", "{runs}"],
    "explain": ["explain", "{run}", "-o", "{tmp}"],
    "compare": ["compare", "{run}", "{run}", "-o", "{tmp}"],
    "export": ["export", "{run}", "-o", "-"],
    "help": ["predict", "--help"],
}


@pytest.mark.parametrize("args", STDOUT_COMMANDS.values(), ids=STDOUT_COMMANDS.keys())
def test_stdout_on_a_full_disk_exits_6_in_one_line(tmp_path, reference, args):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    if args[0] == "export":
        pytest.importorskip("onnx")
    args = [a.format(run=reference, runs=reference.parent, tmp=tmp_path) for a in args]
    with open("/dev/full", "w") as full:
        result = run_into(full, *args)
    assert result.returncode == 6, result.stderr
    assert result.stderr == "error: stdout: cannot write (no space left on the device); free some space\n"


@pytest.mark.parametrize("args", [["predict", "{run}", "datasets/iris.csv"], ["export", "{run}", "-o", "-"]], ids=["predict", "export"])
def test_a_closed_stdout_exits_6_in_one_line(reference, args):
    if args[0] == "export":
        pytest.importorskip("onnx")
    args = [a.format(run=reference) for a in args]
    result = run_into(None, *args, preexec_fn=lambda: os.close(1))
    assert result.returncode == 6, result.stderr
    command = "predict" if args[0] == "predict" else "export -o -"
    assert result.stderr == f"error: stdout is closed, so {command} cannot write to it; give it a file (> FILE) or use -o FILE\n"



@pytest.mark.parametrize("args", [["runs", "{runs}"], ["evaluate", "{run}"], ["compare", "{run}", "{run}", "-o", "{tmp}"], ["explain", "{run}", "-o", "{tmp}"]],
                         ids=["runs", "evaluate", "compare", "explain"])
def test_a_closed_stdout_is_exit_6_for_the_commands_that_print_their_results(tmp_path, reference, args):
    args = [a.format(run=reference, runs=reference.parent, tmp=tmp_path) for a in args]
    result = run_into(None, *args, preexec_fn=lambda: os.close(1))
    assert result.returncode == 6, result.stderr
    assert result.stderr == f"error: stdout is closed, so {args[0]} cannot write to it; give it a file (> FILE)\n"
    assert list(tmp_path.iterdir()) == []  # checked before anything is drawn

# --- symlinks, FIFOs and devices as the target ----------------------------------------------------


def test_atomic_write_through_a_symlink_replaces_its_target_and_keeps_the_link(tmp_path):
    from bptrain.fileio import atomic_write

    real = tmp_path / "data" / "real.csv"
    real.parent.mkdir()
    real.write_bytes(b"old")
    (tmp_path / "hop").symlink_to(real)
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "hop")  # a chain of two links
    atomic_write(link, lambda f: f.write(b"new"))
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "hop")
    assert real.read_bytes() == b"new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["real.csv"]

    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to("made.csv")
    atomic_write(dangling, lambda f: f.write(b"made"))
    assert dangling.is_symlink() and (tmp_path / "made.csv").read_bytes() == b"made"


def test_atomic_write_into_a_fifo_writes_into_it(tmp_path):
    from bptrain.fileio import atomic_write

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        atomic_write(fifo, lambda f: f.write(b"through the pipe"))
        assert reader.communicate(timeout=30)[0] == b"through the pipe"
    finally:
        reader.kill()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["fifo"]


@pytest.mark.parametrize("through_link", [False, True], ids=["fifo", "link-to-fifo"])
def test_predict_output_into_a_fifo_reaches_its_reader(tmp_path, reference, through_link):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = fifo
    if through_link:
        target = tmp_path / "link.csv"
        target.symlink_to(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    try:
        result = run_cli("predict", reference, "datasets/iris.csv", "-o", target)
        received = reader.communicate(timeout=60)[0].decode()
    finally:
        reader.kill()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert received == run_cli("predict", reference, "datasets/iris.csv").stdout
    assert received.startswith("prediction\n") and len(received.splitlines()) == 151
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert target.is_symlink() == through_link


def test_predict_output_through_a_symlink_writes_the_file_it_names(tmp_path, reference):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to("real.csv")
    result = run_cli("predict", reference, "datasets/iris.csv", "-o", link)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == "real.csv"
    assert real.read_text() == run_cli("predict", reference, "datasets/iris.csv").stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "real.csv"]


# --- file modes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_every_file_gets_0666_minus_the_umask(tmp_path, umask, mode):
    runs = tmp_path / "runs"
    result = run_limited("fit", IRIS, "--set", "stopping.max_epochs=2", "-q", "--runs-dir", runs, umask=umask)
    assert result.returncode == 0, result.stderr
    run = only_run(runs)
    out = tmp_path / "predictions.csv"
    result = run_limited("predict", run, "datasets/iris.csv", "-o", out, umask=umask)
    assert result.returncode == 0, result.stderr
    modes = {str(p.relative_to(run)): stat.S_IMODE(p.stat().st_mode) for p in run.rglob("*") if p.is_file()}
    modes["predictions.csv"] = stat.S_IMODE(out.stat().st_mode)
    expected = ["config.yaml", "metrics.csv", "metrics.jsonl", "diagnostics.csv", "diagnostics.jsonl", "model.npz", "report.json", "report.md", "curves.svg",
                ".lock", "checkpoints/last.npz", "checkpoints/previous.npz", "predictions.csv"]
    assert modes == {name: mode for name in expected}
