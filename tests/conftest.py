"""Shared test helpers: run the CLI as a real subprocess, and write small files."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

from bptrain import cli as cli_module
from bptrain.cli import app as cli_app

# Property and fuzz tests: few derandomized examples in the suite ("ci"); HYPOTHESIS_PROFILE=thorough
# searches harder, and HYPOTHESIS_PROFILE=fuzz is the long run of tests/fuzz (1000 examples a test, 250 for the slow ones).
settings.register_profile("ci", max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("thorough", max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz", max_examples=1000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config) -> int | None:
    """`-n auto` (pyproject.toml) starts a worker per core, but none for one test file: starting
    the workers would take longer than most files' tests. None leaves the count to pytest-xdist."""
    files = {arg.split("::")[0] for arg in config.args}
    if len(files) == 1 and (config.invocation_params.dir / files.pop()).is_file():
        return 0
    return None


# The test files that take longest, longest first (seconds of one file on one worker, 2-core
# machine): they run first, so that the last minute is shared by many short files instead of
# waiting on one long one. Each worker takes a whole file at a time (`--dist loadfile`).
SLOW_FILES = (
    "cli/test_cli_tune.py",
    "cli/test_cli_serve.py",
    "cli/test_cli_streaming.py",
    "cli/test_cli_predict_hardening.py",
    "cli/test_cli_imports.py",
    "unit/test_model_files.py",
    "cli/test_cli_resume.py",
    "cli/test_cli_workflow.py",
)


def pytest_collection_modifyitems(items) -> None:
    first = {name: rank for rank, name in enumerate(SLOW_FILES)}

    def rank(item) -> int:
        path = Path(str(item.fspath)).relative_to(ROOT / "tests").as_posix()
        return first.get(path, len(first))

    items.sort(key=rank)  # stable: the order within a file, and of the other files, stays


class Hung(BaseException):
    """Raised by cpu_capped; a BaseException so that no `except Exception` in bptrain swallows it."""


@contextlib.contextmanager
def cpu_capped(seconds: float = 20):
    """Hung once the block has used `seconds` of CPU time: a hang fails the test instead of stalling the suite."""

    def alarm(signum, frame):
        raise Hung(f"did not finish within {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, alarm)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


# nine anchors of ten aliases each: a YAML list of 10**9 values in a few hundred bytes
ALIAS_BOMB = "[" + ", ".join(["&a0 [x, x, x, x, x, x, x, x, x, x]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]) + "]"


def run_cli(*args: str, input: bytes | str | None = None, cwd: Path | None = None, timeout: float = 120, env=None):
    """Run `python -m bptrain ARGS` and return the CompletedProcess (text mode)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})}
    environment.pop("BPTRAIN_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "bptrain", *map(str, args)],
        input=input.decode() if isinstance(input, bytes) else input,
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env=environment,
    )


def call_cli(*args: str, cwd: Path | None = None, input: bytes | str | None = None) -> subprocess.CompletedProcess:
    """Run `bptrain ARGS` in this process, through the console script's own entry point (bptrain.cli.main).

    The same exit code, stdout and stderr as run_cli, without a new interpreter: for tests that pin
    a message across many crafted inputs; `input` is what stdin holds (empty when None). Pipes,
    signals and the process's own exit stay with run_cli.
    """
    argv = ["bptrain", *map(str, args)]
    stdout, stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO(input.encode() if isinstance(input, str) else input or b""), encoding="utf-8")
    here = os.getcwd()
    os.chdir(cwd or ROOT)  # relative paths as run_cli sees them (contextlib.chdir is Python 3.11+)
    try:
        with mock.patch.object(sys, "argv", argv), mock.patch.object(sys, "stdin", stdin), mock.patch.dict(os.environ, {"COLUMNS": "200"}):
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exited:
                cli_module.main()
    finally:
        os.chdir(here)
    stdout.flush()
    return subprocess.CompletedProcess(argv, exited.value.code, stdout.buffer.getvalue().decode("utf-8"), stderr.getvalue())


def served(model, *requests: tuple[str, dict], limit: int = 1 << 20) -> list:
    """serve's application for `model` (bptrain.load) in this process, through httpx's ASGI transport:
    the response to each request, a (path, keyword arguments of httpx's post) pair, sent in order."""
    import asyncio

    import httpx

    from bptrain import serve

    async def post_all() -> list:
        transport = httpx.ASGITransport(app=serve.create_app(model, limit))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.post(path, **kwargs) for path, kwargs in requests]

    return asyncio.run(post_all())


def fit_into(runs: Path, *args: str) -> Path:
    """`bptrain fit ARGS` into the empty folder `runs`, in this process (call_cli); returns the
    folder it made (a run, or a cross-validation's)."""
    result = call_cli("fit", *args, "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    (folder,) = Path(runs).iterdir()
    return folder


def fit_shipped(runs: Path, config: str, epochs: int, *settings: str) -> Path:
    """A short run of configs/<config>.yaml (with `settings`, each K=V) in the empty folder `runs`,
    in this process: a fixture's run to test other commands on; returns the run folder."""
    options = [part for setting in (f"stopping.max_epochs={epochs}", *settings) for part in ("--set", setting)]
    return fit_into(runs, ROOT / "configs" / f"{config}.yaml", "-q", *options)


def fit_iris(runs: Path, epochs: int) -> Path:
    return fit_shipped(runs, "iris", epochs)



def logged_epochs(run: Path) -> int:
    """The epochs a run folder's metrics.csv holds so far (0 before it exists)."""
    try:
        return max(0, len((run / "metrics.csv").read_text(encoding="utf-8").splitlines()) - 1)
    except FileNotFoundError:
        return 0


def poll(predicate, proc: subprocess.Popen, timeout: float = 60.0):
    """`predicate()` once it is truthy; None if `proc` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            return None
        time.sleep(0.002)
    proc.kill()
    pytest.fail("timed out")

def write(folder: Path, text: str, name: str = "config.yaml") -> Path:
    path = Path(folder) / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cli():
    return run_cli


def model_digests(run: Path) -> dict[str, str]:
    """SHA-256 of every array in model.npz (name, dtype, shape and bytes), plus its metadata minus the run name."""
    with np.load(run / "model.npz", allow_pickle=False) as archive:
        digests = {
            name: hashlib.sha256(f"{archive[name].dtype.str}|{archive[name].shape}|".encode() + archive[name].tobytes()).hexdigest()
            for name in archive.files
            if name != "__meta__"
        }
        meta = json.loads(str(archive["__meta__"]))
    assert len(digests) > 6
    for key in ("run", "sha256"):
        meta.pop(key)
    digests["__meta__"] = json.dumps(meta, sort_keys=True)
    return digests


def metrics_rows(run: Path) -> list[list[str]]:
    """metrics.csv without its `seconds` column, the header first."""
    rows = list(csv.reader(io.StringIO((run / "metrics.csv").read_text(encoding="utf-8"))))
    assert rows[0][-1] == "seconds"
    return [row[:-1] for row in rows]


# --- runs whose files the fuzz tests copy and mutate --------------------------------------------
# Batch norm and dropout put running statistics and a noise generator into the files; penguins adds categories.
FUZZ_CONFIGS = {
    "iris": """
name: iris
seed: 3
data: {train: iris.csv, target: species, split: {val: 0.2, test: 0.2}}
model:
  layers:
    - {units: 6, activation: relu, dropout: 0.1}
    - {type: batch_norm}
stopping: {max_epochs: 2}
""",
    "penguins": """
name: penguins
seed: 11
data:
  train: penguins.csv
  target: species
  numeric: {missing: median}
  categorical: {missing: most_frequent}
  columns: {year: {kind: categorical}}
model: {layers: [{units: 5}]}
stopping: {max_epochs: 2}
""",
}


@pytest.fixture(scope="session")
def fitted(tmp_path_factory) -> dict[str, Path]:
    """{"iris": run folder, "penguins": run folder}, with their data beside the runs folder."""
    folder = tmp_path_factory.mktemp("fuzz-runs")
    found = {}
    for name, text in FUZZ_CONFIGS.items():
        shutil.copy(ROOT / "datasets" / f"{name}.csv", folder / f"{name}.csv")
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
        result = CliRunner().invoke(cli_app, ["fit", str(folder / f"{name}.yaml"), "-q", "--runs-dir", str(folder / "runs")])
        assert result.exit_code == 0, result.output
        (found[name],) = (folder / "runs").glob(f"{name}-*")
    return found
