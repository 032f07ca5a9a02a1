"""Fault tolerance and bit-exact resume of `bptrain fit`.

A run killed with SIGKILL at random moments (once while a checkpoint is being written), a run
resumed from a damaged checkpoint, and a finished run continued with a larger budget all end with
the same model (every array's SHA-256), the same metrics log (apart from `seconds`) and the same
diagnostics as one uninterrupted run. Resuming refuses changes that would alter the training, and a changed data file.
The killed runs and the resumes that continue a run are real processes; the runs they start from
or are compared with, and most refused resumes, run in this process (call_cli).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from conftest import ROOT, call_cli, metrics_rows, model_digests, run_cli, write

IRIS = "configs/iris.yaml"  # seed 42, adam lr 0.01, batch_size 16 over 102 training rows: 7 steps per epoch
STEPS_PER_EPOCH = 7
# early stopping off, dropout on (so the noise generator's state matters), a checkpoint every 3 steps
STEADY = (
    "--set", "stopping.early_stopping=null",
    "--set", "model.layers=[{units: 32, dropout: 0.2}, {units: 32, dropout: 0.2}]",
    "--set", "training.checkpoint.every_steps=3",
)
KILL_EPOCHS = 60
KILL = (*STEADY, "--set", f"stopping.max_epochs={KILL_EPOCHS}")
CORRUPT_EPOCHS = 12
CORRUPT = (*STEADY[:-2], "--set", "training.checkpoint.every_epochs=1", "--set", f"stopping.max_epochs={CORRUPT_EPOCHS}")  # a checkpoint every epoch
SUMMARY = re.compile(r"stopped    (\w+) after (\d+) epochs, \d+\.\d s; best epoch (\d+)")
ALLOWED = (
    "Only these keys may change when resuming: name, stopping.max_epochs, stopping.max_steps, stopping.max_time, "
    "stopping.target, stopping.divergence, training.checkpoint, training.detect_anomaly, training.engine, report, tracking. "
    "To train differently, start a new run without --resume."
)


# --- helpers ----------------------------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """The environment run_cli gives the CLI, for processes that must be signalled or killed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env.pop("BPTRAIN_TRACEBACK", None)
    return env


def popen(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bptrain", *map(str, args)],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 60.0, pause: float = 0.002):
    """Poll `predicate` until it returns something truthy; fail if `proc` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"the process ended (exit {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        if pause:
            time.sleep(pause)


def fit(runs: Path, *args: str) -> SimpleNamespace:
    """`bptrain fit IRIS ARGS -q` into `runs`, in this process (call_cli); the result and its run folder."""
    result = call_cli("fit", IRIS, *args, "-q", "--runs-dir", runs)
    assert (result.returncode, result.stderr) == (0, "")
    (run,) = runs.iterdir()
    return SimpleNamespace(result=result, run=run)


def made(runs: Path, *args: str) -> Path:
    return fit(runs, *args).run


def resume(run: Path, *args: str):
    return run_cli("fit", "--resume", run, *args, "-q")






def metrics_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    for record in records:
        record.pop("seconds")
    return records


def report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text(encoding="utf-8"))


def comparable_report(run: Path) -> dict:
    rep = report(run)
    for key in ("run", "run_dir", "seconds", "environment", "engine"):  # how the run went, not what it learned
        rep.pop(key)
    for entry in rep["data"]:  # as given on the command line (relative to the cwd), or absolute after a resume
        entry["path"] = str((ROOT / entry["path"]).resolve())
    return rep


def assert_same_training(run: Path, reference: Path) -> None:
    """The same final model (every array, bit for bit), metrics log, diagnostics and report as `reference`."""
    assert model_digests(run) == model_digests(reference)
    assert metrics_rows(run) == metrics_rows(reference)
    for name in ("diagnostics.csv", "diagnostics.jsonl"):
        assert (run / name).read_bytes() == (reference / name).read_bytes(), name
    assert metrics_records(run) == metrics_records(reference)
    assert comparable_report(run) == comparable_report(reference)


def assert_summary(result, reason: str, epochs: int, best: int) -> None:
    assert result.returncode == 0, result.stderr
    match = SUMMARY.fullmatch(result.stdout.splitlines()[1])
    assert match, result.stdout
    assert (match.group(1), int(match.group(2)), int(match.group(3))) == (reason, epochs, best)


def temp_files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*.tmp"))


def checkpoint_position(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["__meta__"]))["position"]


def saved_step(run: Path) -> int:
    """The step of the newest checkpoint on disk (last.npz is absent between the two renames of a save)."""
    folder = run / "checkpoints"
    path = folder / "last.npz" if (folder / "last.npz").exists() else folder / "previous.npz"
    return checkpoint_position(path)["step"]


def folder_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- SIGKILL at random moments ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    return made(tmp_path_factory.mktemp("uninterrupted"), *KILL)


def _checkpoint_id(folder: Path):
    try:
        stat = os.stat(folder / "last.npz")
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _checkpoint_temp(folder: Path) -> list[str]:
    try:
        return [n for n in os.listdir(folder) if n.startswith(".last.npz.") and n.endswith(".tmp")]
    except FileNotFoundError:
        return []


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, uninterrupted):
    rng = random.Random(20261128)
    runs = tmp_path / "runs"
    plan = ["random", "while-saving", "random"]
    retries = 0
    caught_saving = []  # the temp files a kill left behind mid-save
    steps = []
    run = None
    while plan:
        kind = plan.pop(0)
        if run is None:
            proc = popen("fit", IRIS, *KILL, "-q", "--runs-dir", runs)
            run = wait_for(
                lambda: next((p for p in runs.glob("*") if (p / "checkpoints" / "last.npz").exists()), None),
                proc,
                "the first checkpoint",
            )
            before = None
        else:
            before = _checkpoint_id(run / "checkpoints")
            proc = popen("fit", "--resume", run, "-q")
        folder = run / "checkpoints"
        wait_for(lambda: _checkpoint_id(folder) not in (None, before), proc, "a new checkpoint")
        if kind == "random":
            time.sleep(rng.uniform(0.0, 0.25))
        else:
            wait_for(lambda: _checkpoint_temp(folder), proc, "a checkpoint being written", pause=0)
        proc.kill()
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the run finished before it was killed; give it more epochs"
        if kind == "while-saving":
            left = _checkpoint_temp(folder)
            if left:
                caught_saving.append(left)
            elif retries < 5:  # the save finished between seeing its temp file and the kill: again
                retries += 1
                plan.insert(0, kind)
        steps.append(saved_step(run))
    assert caught_saving, "no kill landed while a checkpoint was being written"
    assert steps == sorted(set(steps)), steps  # every round made progress ...
    assert steps[-1] < KILL_EPOCHS * STEPS_PER_EPOCH  # ... and none finished

    result = resume(run)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == f"run        {run}"
    assert_summary(result, "max_epochs", KILL_EPOCHS, KILL_EPOCHS)
    assert temp_files(run) == []
    assert_same_training(run, uninterrupted)


# --- damaged checkpoints ---------------------------------------------------------------------------

DAMAGED_ARRAY = "model/layers.3.W"  # the second dense layer, 32 x 32 float32: 4096 bytes


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _flip_in_array_data(path: Path) -> None:
    """Flip one byte in the middle of DAMAGED_ARRAY's data, found by its bytes in the file."""
    with np.load(path, allow_pickle=False) as archive:
        data = archive[DAMAGED_ARRAY].tobytes()
    content = bytearray(path.read_bytes())
    at = content.find(data)
    assert at > 0 and content.find(data, at + 1) == -1
    content[at + len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(content))


def _rewrite_with_flipped_array(path: Path) -> None:
    """A valid .npz (zip CRCs recomputed) whose DAMAGED_ARRAY has one flipped byte: only the sha256 can tell."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for info, content in members:
            if info.filename == DAMAGED_ARRAY + ".npy":
                content = bytearray(content)
                content[len(content) - 2048] ^= 0xFF  # inside the data, after the .npy header
                content = bytes(content)
            archive.writestr(info, content)


DAMAGE = {"truncated": _truncate, "flipped": _flip_in_array_data, "rehashed": _rewrite_with_flipped_array}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A run stopped at step 40 (mid-epoch 6) whose last.npz is damaged in each of DAMAGE's ways, then resumed to the end."""
    top = tmp_path_factory.mktemp("damaged")
    reference = made(top / "reference", *CORRUPT)
    base = made(top / "base", *CORRUPT, "--set", "stopping.max_steps=40")
    assert checkpoint_position(base / "checkpoints" / "last.npz")["step"] == 40
    assert checkpoint_position(base / "checkpoints" / "previous.npz")["step"] == 35  # the end of epoch 5
    cases = {}
    for name, damage in DAMAGE.items():
        run = top / name / base.name
        shutil.copytree(base, run)
        damage(run / "checkpoints" / "last.npz")
        cases[name] = run
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(cases, pool.map(lambda run: resume(run, "--set", "stopping.max_steps=null"), cases.values())))
    return SimpleNamespace(reference=reference, base=base, runs=cases, results=results)


def test_rewritten_checkpoint_is_a_sound_archive_with_one_changed_byte(damaged):
    """The 'rehashed' damage leaves an .npz that loads (zip CRCs intact): only the content sha256 can catch it."""
    path = damaged.base / "checkpoints" / "last.npz"
    copy = damaged.base.parent / "rehashed-copy.npz"
    shutil.copy(path, copy)
    _rewrite_with_flipped_array(copy)
    with np.load(path, allow_pickle=False) as good, np.load(copy, allow_pickle=False) as bad:
        assert sorted(good.files) == sorted(bad.files)
        assert (good[DAMAGED_ARRAY] != bad[DAMAGED_ARRAY]).sum() == 1
        assert all(np.array_equal(good[n], bad[n]) for n in good.files if n != DAMAGED_ARRAY)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_last_checkpoint_falls_back_to_previous_and_ends_identical(damaged, damage):
    run, result = damaged.runs[damage], damaged.results[damage]
    assert result.returncode == 0, result.stderr
    last, previous = run / "checkpoints" / "last.npz", run / "checkpoints" / "previous.npz"
    warning = result.stderr.splitlines()
    assert len(warning) == 1, result.stderr
    assert warning[0].startswith(f"warning: {last}: ")
    assert warning[0].endswith(f"; using {previous} instead")
    if damage == "rehashed":
        assert result.stderr == (
            f"warning: {last}: the file is damaged (its content does not match its sha256); using {previous} instead\n"
        )
    assert_summary(result, "max_epochs", CORRUPT_EPOCHS, CORRUPT_EPOCHS)
    assert_same_training(run, damaged.reference)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_damaged_checkpoint_warning_says_damaged(damaged, damage):
    warning = damaged.results[damage].stderr
    assert "damaged" in warning
    assert "not an .npz archive" not in warning
    assert "was it written by bptrain fit?" not in warning


@pytest.mark.parametrize("damage", ["rehashed", "truncated"])
def test_both_checkpoints_damaged_exits_5_naming_the_folder(damaged, tmp_path, damage):
    run = tmp_path / damaged.base.name
    shutil.copytree(damaged.base, run)
    folder = run / "checkpoints"
    for name in ("last.npz", "previous.npz"):
        DAMAGE[damage](folder / name)
    before = folder_state(run)
    result = resume(run, "--set", "stopping.max_steps=null")
    assert result.returncode == 5
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    if damage == "rehashed":
        damaged_file = "the file is damaged (its content does not match its sha256)"
        assert result.stderr == (
            f"error: {folder}: no usable checkpoint: {folder / 'last.npz'}: {damaged_file}; {folder / 'previous.npz'}: {damaged_file}\n"
        )
    else:
        assert result.stderr.startswith(f"error: {folder}: no usable checkpoint: {folder / 'last.npz'}: ")
        assert f"; {folder / 'previous.npz'}: " in result.stderr
        assert len(result.stderr.splitlines()) == 1
    assert folder_state(run) == before  # nothing written


# --- what may change on --resume -----------------------------------------------------------------


@pytest.fixture(scope="module")
def partial(tmp_path_factory) -> Path:
    """The iris config stopped at step 10 (mid-epoch 2)."""
    return made(tmp_path_factory.mktemp("partial"), "--set", "stopping.max_steps=10")


def expect_refused(result, run: Path, *lines: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == "\n".join(
        [f"error: --resume {run}: these changes would alter the model, the data or the optimization:", *lines, ALLOWED]
    ) + "\n"


def test_resume_refuses_a_changed_learning_rate(partial):
    before = folder_state(partial)
    result = resume(partial, "--set", "optimizer.lr=0.02")
    expect_refused(result, partial, "  optimizer.lr: 0.01 -> 0.02")
    assert folder_state(partial) == before


def test_resume_with_a_config_lists_every_refused_change(partial):
    before = folder_state(partial)
    result = call_cli(
        "fit", IRIS, "--resume", partial, "--set", "training.batch_size=8", "--set", "optimizer.lr=0.02",
        "--set", "stopping.max_epochs=7", "-q",
    )
    expect_refused(result, partial, "  optimizer.lr: 0.01 -> 0.02", "  training.batch_size: 16 -> 8")
    assert folder_state(partial) == before


def test_resume_refuses_a_changed_architecture(partial):
    before = folder_state(partial)
    result = call_cli("fit", "--resume", partial, "--set", "model.layers.0.units=8", "-q")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: --resume {partial}: these changes would alter the model, the data or the optimization:"
    assert lines[1:-1] and all(line.startswith("  model.layers") for line in lines[1:-1]), lines
    assert lines[-1] == ALLOWED
    assert folder_state(partial) == before


def test_resume_names_the_changed_layer_key(partial):
    result = call_cli("fit", "--resume", partial, "--set", "model.layers.0.units=8", "-q")
    expect_refused(result, partial, "  model.layers[0].units: 16 -> 8")


def test_resume_without_a_checkpoint_exits_5(partial, tmp_path):
    run = tmp_path / partial.name
    shutil.copytree(partial, run)
    shutil.rmtree(run / "checkpoints")
    result = resume(run)
    assert result.returncode == 5
    assert result.stdout == ""
    assert result.stderr == f"error: {run / 'checkpoints'}: no checkpoint to resume from; the run stopped before saving one, so start it again\n"


def test_resume_of_a_folder_that_is_no_run_exits_2(tmp_path):
    result = call_cli("fit", "--resume", tmp_path, "-q")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"error: --resume {tmp_path}: not a run folder written by bptrain fit (no config.yaml)\n"


def test_resume_of_a_tune_folder_names_tune_resume(tmp_path):
    (tmp_path / "tune.json").write_text("{}")  # what marks a tune folder
    result = call_cli("fit", "--resume", tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: --resume {tmp_path}: a tune folder; continue its study with: bptrain tune --resume {tmp_path}\n"


def test_resume_refuses_changed_data(tmp_path):
    data = tmp_path / "iris.csv"
    shutil.copy(ROOT / "datasets" / "iris.csv", data)
    config = write(tmp_path, "name: mine\nseed: 7\ndata: {train: iris.csv, target: species}\nstopping: {max_steps: 10}\n")
    result = call_cli("fit", config, "-q", "--runs-dir", tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "runs").iterdir()
    text = data.read_text(encoding="utf-8")
    assert "\n5.1,3.5,1.4,0.2,setosa\n" in text
    data.write_text(text.replace("\n5.1,3.5,1.4,0.2,setosa\n", "\n5.2,3.5,1.4,0.2,setosa\n", 1), encoding="utf-8")
    before = folder_state(run)
    result = resume(run, "--set", "stopping.max_steps=20")
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {data}: the data changed since the run {run} started (its sha256 differs); "
        "resuming would not continue the same training. Start a new run instead\n"
    )
    assert folder_state(run) == before


def test_finished_run_continues_with_a_larger_max_epochs(tmp_path):
    short, whole = (made(tmp_path / name, *CORRUPT, "--set", f"stopping.max_epochs={epochs}") for name, epochs in [("short", 5), ("whole", 9)])
    result = resume(short, "--set", "stopping.max_epochs=9")
    assert result.stderr == ""
    assert_summary(result, "max_epochs", 9, 9)
    assert yaml.safe_load((short / "config.yaml").read_text(encoding="utf-8"))["stopping"]["max_epochs"] == 9
    assert_same_training(short, whole)


# --- the default cadence: at the start and at every stop -------------------------------------------

# iris stops early after 21 epochs (best epoch 19) in well under the default 60 seconds between checkpoints
EARLY = ("--set", "stopping.early_stopping={patience: 2}", "--set", "stopping.max_epochs=60")


def checkpoint_arrays(path: Path, prefix: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name[len(prefix):]: archive[name] for name in archive.files if name.startswith(prefix)}


def test_default_cadence_saves_at_the_start_and_at_the_stop_with_the_best_weights(tmp_path):
    done = fit(tmp_path, *EARLY)
    run = done.run
    assert_summary(done.result, "early_stopping", 21, 19)
    folder = run / "checkpoints"
    assert checkpoint_position(folder / "previous.npz")["step"] == 0
    assert checkpoint_position(folder / "last.npz")["step"] == 21 * STEPS_PER_EPOCH
    best, last = checkpoint_arrays(folder / "last.npz", "best/"), checkpoint_arrays(folder / "last.npz", "model/")
    model = checkpoint_arrays(run / "model.npz", "")
    assert best and best.keys() <= model.keys()
    assert all(np.array_equal(model[name], value) for name, value in best.items())  # model.npz is the best epoch's
    assert not all(np.array_equal(last[name], value) for name, value in best.items())  # not the last epoch's


def test_a_stopped_run_with_early_stopping_resumes_bit_identical_under_the_default_cadence(tmp_path):
    whole, part = made(tmp_path / "whole", *EARLY), made(tmp_path / "part", *EARLY, "--set", "stopping.max_steps=66")
    assert checkpoint_position(part / "checkpoints" / "last.npz")["step"] == 66  # mid-epoch 10, saved at the stop
    assert_summary(resume(part, "--set", "stopping.max_steps=null"), "early_stopping", 21, 19)
    assert_same_training(part, whole)


@pytest.mark.parametrize("left", ["no report", "the report of an earlier stop"])
def test_a_run_killed_after_its_final_checkpoint_inside_an_epoch_resumes_without_another_step(tmp_path, left):
    """max_steps 30 ends inside epoch 5: a SIGKILL after the final checkpoint and before report.json is
    written leaves no report, or the one of an earlier Ctrl-C; the resume takes no 31st step."""
    budget = ("--set", "stopping.max_steps=30", *EARLY)
    whole, part = made(tmp_path / "whole", *budget), made(tmp_path / "part", *budget)
    if left == "no report":
        (part / "report.json").unlink()
    else:
        (part / "report.json").write_text(json.dumps({**report(part), "stop_reason": "interrupted", "steps": 20}), encoding="utf-8")
    result = call_cli("fit", "--resume", part, "-q")
    assert result.stderr == ""
    assert_summary(result, "max_steps", 4, 4)
    assert report(part)["steps"] == 30
    assert_same_training(part, whole)


def test_a_run_resumed_on_the_other_engine_ends_bit_identical(tmp_path):
    """training.engine may change on resume: numba's loop writes the bits NumPy's passes write."""
    numpy = (*CORRUPT, "--set", "training.engine=numpy")
    whole, part = made(tmp_path / "whole", *numpy), made(tmp_path / "part", *numpy, "--set", "stopping.max_steps=40")
    result = resume(part, "--set", "stopping.max_steps=null", "--set", "training.engine=numba")
    assert result.stderr == ""
    assert_summary(result, "max_epochs", CORRUPT_EPOCHS, CORRUPT_EPOCHS)
    assert json.loads((part / "report.json").read_text())["engine"]["name"] == "numba"
    assert_same_training(part, whole)


# --- reproducibility records -----------------------------------------------------------------------


def test_a_drawn_seed_is_recorded_and_reproduces_the_run(tmp_path):
    drawn = made(tmp_path / "drawn", "--set", "seed=null", "--set", "stopping.max_steps=10")
    seed = yaml.safe_load((drawn / "config.yaml").read_text(encoding="utf-8"))["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**63
    assert seed != 42  # not the iris config's seed: the override took effect
    assert report(drawn)["seed"] == seed
    # the recorded seed is the one used: given explicitly, it trains the same model
    again = made(tmp_path / "again", "--set", f"seed={seed}", "--set", "stopping.max_steps=10")
    assert_same_training(drawn, again)


def test_report_records_environment_and_data_hashes(uninterrupted):
    import bptrain

    rep = report(uninterrupted)
    env = rep["environment"]
    assert env["python"] == platform.python_version()
    assert env["numpy"] == np.__version__
    assert env["bptrain"] == bptrain.__version__
    assert isinstance(env["blas"], str) and env["blas"]
    assert isinstance(env["blas_threads"], (int, str)) and env["blas_threads"] not in ("", 0)
    assert [entry["split"] for entry in rep["data"]] == ["train"]
    for entry in rep["data"]:
        path = ROOT / entry["path"]
        assert path.resolve() == (ROOT / "datasets" / "iris.csv").resolve()
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry["rows"] == 150
