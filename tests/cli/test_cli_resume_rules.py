"""What `fit --resume` compares, through real processes: an edited config.yaml is refused like the same
`--set`, a checkpoint copied from another run is named as such, a checkpoint from before the config was
recorded still resumes, and resuming a finished run says so and changes nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, call_cli

IRIS = "configs/iris.yaml"  # 7 steps per epoch
IRIS_PATH = ROOT / IRIS
ALLOWED = (
    "Only these keys may change when resuming: name, stopping.max_epochs, stopping.max_steps, stopping.max_time, "
    "stopping.target, stopping.divergence, training.checkpoint, training.detect_anomaly, training.engine, report, tracking. "
    "To train differently, start a new run without --resume."
)


def fit(runs: Path, *args: str) -> Path:
    """A run to resume, made in this process: the resumes under test are real processes."""
    result = call_cli("fit", IRIS, *args, "-q", "--runs-dir", runs)
    assert result.returncode == 0, result.stderr
    (run,) = runs.iterdir()
    return run


def folder_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def partial(tmp_path_factory) -> Path:
    """The iris config stopped at step 10 (mid-epoch 2)."""
    return fit(tmp_path_factory.mktemp("partial"), "--set", "stopping.max_steps=10")


def copy_of(run: Path, where: Path, name: str | None = None) -> Path:
    copy = where / (name or run.name)
    shutil.copytree(run, copy)
    return copy


def edit_config(run: Path, old: str, new: str) -> None:
    """Replace the first `old` in the run's config.yaml (the first hidden layer's, for a layer key)."""
    path = run / "config.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    "old, new, line",
    [
        ("lr: 0.01\n", "lr: 0.02\n", "  optimizer.lr: 0.01 -> 0.02"),
        ("units: 16\n", "units: 8\n", "  model.layers[0].units: 16 -> 8"),
        ("activation: relu\n", "activation: tanh\n", "  model.layers[0].activation: relu -> tanh"),
    ],
)
def test_an_edited_config_file_is_refused_like_the_same_set(partial, tmp_path, old, new, line):
    run = copy_of(partial, tmp_path)
    edit_config(run, old, new)
    before = folder_state(run)
    result = call_cli("fit", "--resume", run, "-q", "--set", "stopping.max_steps=20")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"error: --resume {run}: these changes would alter the model, the data or the optimization:\n{line}\n{ALLOWED}\n"
    )
    assert folder_state(run) == before


def test_a_budget_edit_in_the_config_file_is_allowed(partial, tmp_path):
    run = copy_of(partial, tmp_path)
    edit_config(run, "max_steps: 10\n", "max_steps: 14\n")
    result = call_cli("fit", "--resume", run, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "stopped    max_steps after 2 epochs" in result.stdout


def test_a_checkpoint_from_another_run_is_named_as_such(partial, tmp_path):
    other = fit(tmp_path / "other", "--name", "other", "--set", "stopping.max_steps=10", "--set", "seed=7")
    run = copy_of(partial, tmp_path / "mine")
    shutil.rmtree(run / "checkpoints")
    shutil.copytree(other / "checkpoints", run / "checkpoints")
    before = folder_state(run)
    result = call_cli("fit", "--resume", run, "-q", "--set", "stopping.max_steps=20")
    assert result.returncode == 5, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {run / 'checkpoints'}: the checkpoint is from another run, {other.name}, with a different config; "
        f"it cannot continue {run}. Put back this run's own checkpoints/ folder, or start a new run\n"
    )
    assert folder_state(run) == before


def test_a_renamed_run_folder_still_resumes(partial, tmp_path):
    run = copy_of(partial, tmp_path, "renamed")
    result = call_cli("fit", "--resume", run, "-q", "--set", "stopping.max_steps=14")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def changes_refused(run: Path, shown: Path | str) -> str:
    return f"error: --resume {shown}: these changes would alter the model, the data or the optimization:\n  optimizer.lr: 0.01 -> 0.1\n{ALLOWED}\n"


def test_a_run_folder_copied_elsewhere_under_another_name_lists_the_changes(partial, tmp_path):
    """Its model.npz, saved with the checkpoint, records the same old name: the checkpoint is its own."""
    run = copy_of(partial, tmp_path / "deeper" / "still", "copy")
    result = call_cli("fit", "--resume", run, "-q", "--set", "optimizer.lr=0.1")
    assert (result.returncode, result.stdout, result.stderr) == (2, "", changes_refused(run, run))


def test_the_model_file_inside_a_run_folder_names_the_run_to_resume(partial, tmp_path):
    """RUN may be the model.npz inside a run folder, for --resume as for the other commands."""
    run = copy_of(partial, tmp_path)
    result = call_cli("fit", "--resume", run / "model.npz", "-q", "--set", "stopping.max_steps=12")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0] == f"run        {run}"
    assert lines[1].startswith("stopped    max_steps after 1 epochs, ")  # step 12 is inside epoch 2
    assert json.loads((run / "report.json").read_text(encoding="utf-8"))["steps"] == 12


def test_resuming_the_current_folder_knows_its_name(partial, tmp_path):
    run = copy_of(partial, tmp_path)
    result = call_cli("fit", "--resume", ".", "-q", "--set", "optimizer.lr=0.1", cwd=run)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", changes_refused(run, run))


def test_a_renamed_run_folder_without_its_model_file_cannot_be_recognized(partial, tmp_path):
    run = copy_of(partial, tmp_path, "renamed")
    (run / "model.npz").unlink()
    result = call_cli("fit", "--resume", run, "-q", "--set", "optimizer.lr=0.1")
    assert (result.returncode, result.stdout) == (5, "")
    assert result.stderr == (
        f"error: {run / 'checkpoints'}: the checkpoint is from a run named {partial.name}, with a different config, and "
        f"without a readable model.npz nothing shows that {run} is that run renamed; it cannot continue {run}. If it is, "
        "rename the folder back to its old name to see what differs; otherwise put back this run's own checkpoints/ "
        "folder, or start a new run\n"
    )


def test_a_checkpoint_without_a_recorded_config_still_resumes(partial, tmp_path):
    """As bptrain 0.1 wrote them: no `config` or `run` in the checkpoint's metadata."""
    from bptrain.runs.checkpoint import read_arrays, save_model

    run = copy_of(partial, tmp_path)
    for name in ("last.npz", "previous.npz"):
        path = run / "checkpoints" / name
        arrays, meta = read_arrays(path)
        assert meta.pop("config")["optimizer"]["lr"] == 0.01 and meta.pop("run") == partial.name
        for key in ("format_version", "kind", "sha256"):
            meta.pop(key)
        save_model(path, arrays, meta, kind="checkpoint")
    result = call_cli("fit", "--resume", run, "-q", "--set", "stopping.max_steps=14")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "stopped    max_steps after 2 epochs" in result.stdout


@pytest.mark.parametrize(
    "budget, notice",
    [
        (("--set", "stopping.max_epochs=3"), "(max_epochs after 3 epochs, 21 steps); stopping.max_epochs 3 is already reached (3 epochs run), "
         "so nothing was changed. To train longer, raise the budget, e.g. --set stopping.max_epochs=6"),
        (("--set", "stopping.max_steps=10"), "(max_steps after 1 epoch, 10 steps); stopping.max_steps 10 is already reached (10 steps run), "
         "so nothing was changed. To train longer, raise the budget, e.g. --set stopping.max_steps=20"),
    ],
)
def test_resuming_a_finished_run_says_so_and_changes_nothing(tmp_path, budget, notice):
    run = fit(tmp_path / "runs", *budget)
    before = folder_state(run)
    summary = call_cli("evaluate", run).stdout
    result = call_cli("fit", "--resume", run, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"notice: {run} already finished {notice}\n"
    assert result.stdout.splitlines()[0] == f"run        {run}"
    assert folder_state(run) == before
    assert call_cli("evaluate", run).stdout == summary


@pytest.mark.parametrize(
    "made, resumed, notice",
    [
        (("stopping.max_epochs=4", "stopping.early_stopping=false"), "stopping.max_epochs=2",
         "(max_epochs after 4 epochs, 28 steps); stopping.max_epochs 2 is already reached (4 epochs run), so nothing was changed. "
         "To train longer, raise the budget, e.g. --set stopping.max_epochs=8"),
        (("stopping.max_epochs=200", "stopping.early_stopping={patience: 1, min_delta: 10}"), "stopping.max_epochs=400",
         "(early_stopping after 2 epochs, 14 steps); early stopping had stopped it (val_loss did not improve for 1 epoch), "
         "and a larger budget does not undo that, so nothing was changed. To train longer, start a new run with a larger "
         "stopping.early_stopping.patience (it cannot change on resume)"),
    ],
)
def test_resuming_a_finished_run_with_another_budget_says_why_nothing_is_left(tmp_path, made, resumed, notice):
    run = fit(tmp_path / "runs", *(a for s in made for a in ("--set", s)))
    before = folder_state(run)
    result = call_cli("fit", "--resume", run, "-q", "--set", resumed)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"notice: {run} already finished {notice}\n"
    assert folder_state(run) == before


def test_resuming_a_finished_run_names_the_folder_as_given(tmp_path):
    """report.json records the run folder as it was named when the run was made (here relative to
    another working directory); the summary shows the folder --resume was given."""
    made = tmp_path / "made"
    made.mkdir()
    result = call_cli("fit", IRIS_PATH, "-q", "--runs-dir", "runs", "--set", "stopping.max_epochs=1", cwd=made)
    assert result.returncode == 0, result.stderr
    (run,) = (made / "runs").iterdir()
    result = call_cli("fit", "--resume", run, "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"run        {run}"


def test_the_thread_count_is_refused_as_a_change(partial, tmp_path):
    run = copy_of(partial, tmp_path)
    result = call_cli("fit", "--resume", run, "-q", "--set", "training.threads=2")
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"error: --resume {run}: these changes would alter the model, the data or the optimization:\n"
        f"  training.threads: auto -> 2\n{ALLOWED}\n"
    )


def test_a_resumed_run_keeps_the_thread_count_it_started_with(partial, tmp_path):
    """`auto` is not chosen again on resuming: the count the checkpoint records is used (it changes the bits)."""
    import json

    from bptrain.runs.checkpoint import read_arrays, save_model

    run = copy_of(partial, tmp_path)
    started = {"count": 2, "chosen": "auto: 2.0 of 2 cores idle at the start"}  # as on an idle 2-core machine
    for name in ("last.npz", "previous.npz"):
        path = run / "checkpoints" / name
        arrays, meta = read_arrays(path)
        assert meta["threads"] == {"count": 1, "chosen": "auto: products up to 4,096 multiply-adds are too small for threads"}
        meta["threads"] = started
        for key in ("format_version", "kind", "sha256"):
            meta.pop(key)
        save_model(path, arrays, meta, kind="checkpoint")
    result = call_cli("fit", "--resume", run, "-q", "--set", "stopping.max_steps=14")
    assert result.returncode == 0, result.stderr
    report = json.loads((run / "report.json").read_text())
    assert report["threads"] == started
    assert report["environment"]["blas_threads"] == 2
