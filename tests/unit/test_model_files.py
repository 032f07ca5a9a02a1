"""Model and checkpoint files are untrusted input: crafted ones exit 5 with a message naming the file
and the field, through `bptrain predict`, `bptrain evaluate` and `bptrain fit --resume`.

Each crafted file is re-hashed, as whoever crafts a file can do: the sha256 is no defence.
Every crafted file goes through the CLI's entry point in this process (call_cli); one per command
also through a real `python -m bptrain` process (run_cli), for the process's own exit code.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import call_cli, run_cli

from bptrain.errors import ModelFileError
from bptrain.runs import checkpoint, npzfile

IRIS = "configs/iris.yaml"
LAYERS = ("--set", "model.layers=[{units: 8}]")
CHECKPOINT_EACH_EPOCH = ("--set", "training.checkpoint.every_epochs=1")  # so that previous.npz is the end of epoch 1
SHORT = ("--set", "stopping.max_epochs=3", "--set", "stopping.max_steps=10", *CHECKPOINT_EACH_EPOCH, *LAYERS)
RESUME = ("--set", "stopping.max_epochs=3", *LAYERS)
NAN = float("nan")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """An iris run stopped at step 10 (mid-epoch 2): model.npz, checkpoints/last.npz and previous.npz (step 7)."""
    runs = tmp_path_factory.mktemp("runs")
    result = call_cli("fit", IRIS, "--runs-dir", runs, *SHORT)
    assert result.returncode == 0, result.stderr
    (run,) = runs.iterdir()
    return run


@pytest.fixture
def run(trained, tmp_path) -> Path:
    copy = tmp_path / trained.name
    shutil.copytree(trained, copy)
    return copy


def read(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "__meta__"}
        return arrays, json.loads(str(archive["__meta__"]))


def rewrite(path: Path, change) -> None:
    """Apply `change(arrays, meta)` to the file, then hash it again as bptrain would."""
    arrays, meta = read(path)
    change(arrays, meta)
    meta["sha256"] = checkpoint.content_hash(arrays, meta)
    np.savez(path, __meta__=np.array(json.dumps(meta)), **arrays)


def raw_meta(text: str):
    """Replace the metadata by `text`, verbatim."""

    def write(path: Path) -> None:
        arrays, _ = read(path)
        np.savez(path, __meta__=np.array(text), **arrays)

    return write


def npy_claiming(shape: tuple[int, ...], data: bytes, descr: str = "<f8") -> bytes:
    """A .npy member whose header claims `shape` of `descr` values, followed by `data`."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def npy_header_text(text: str) -> bytes:
    """A version 1.0 .npy header holding `text` as written, padded as numpy pads its own."""
    text += " " * ((16 - (10 + len(text) + 1) % 16) % 16) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1")


def with_member(name: str, content: bytes, compress=zipfile.ZIP_STORED):
    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "a", compression=compress) as archive:
            archive.writestr(name, content)

    return write


def change(fn):
    return lambda path: rewrite(path, fn)


def setting(*keys_and_value):
    """A change that sets meta[k1][k2]... = value."""
    *keys, value = keys_and_value

    def apply(arrays, meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change(apply)


def array(name: str, value):
    def apply(arrays, meta):
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value(arrays.get(name))

    return change(apply)


def corrupted_deflate(path: Path) -> None:
    """The model stored compressed (as np.savez_compressed writes it), one deflate stream made unreadable."""
    arrays, meta = read(path)
    np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("layers.0.W.npy")
    data = bytearray(path.read_bytes())
    local = info.header_offset  # a local header: 30 bytes, then the name and the extra field, whose lengths end it
    start = local + 30 + int.from_bytes(data[local + 26 : local + 28], "little") + int.from_bytes(data[local + 28 : local + 30], "little")
    data[start] |= 0b110  # the first block's type becomes 3, which deflate reserves: no decoder reads on
    path.write_bytes(bytes(data))


def needs_zip_version(path: Path) -> None:
    """The archive's second member asks, in its central directory entry, for zip version 15.5 to extract it."""
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    data[entry + 6 : entry + 8] = (155).to_bytes(2, "little")  # "version needed to extract", in tenths
    path.write_bytes(bytes(data))


DEEP = '{"format_version": 1, "kind": "model", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
ASK = "; was it written by bptrain fit?"
BAD_MODEL = "unusable bptrain model file: "
NOT_OURS = "not a bptrain model file, or a damaged one "

MODEL_VARIANTS = {
    "preprocessing-not-an-object": (setting("preprocessing", "x"), BAD_MODEL + "preprocessing: input should be a valid dictionary (got 'x')" + ASK),
    "preprocessing-column-nan": (
        setting("preprocessing", "columns", 0, "fill_value", NAN),
        BAD_MODEL + "preprocessing.columns[0].fill_value: must be a finite number (got nan)" + ASK,
    ),
    "preprocessing-inputs": (
        setting("preprocessing", "inputs", ["a"]),
        BAD_MODEL + "preprocessing.inputs: 1 inputs, but the columns make 4: sepal_length, sepal_width, petal_length, petal_width" + ASK,
    ),
    "one-class": (
        setting("preprocessing", "classes", ["setosa"]),
        BAD_MODEL + "preprocessing.classes: must be two or more distinct labels (got ['setosa'])" + ASK,
    ),
    "deep-json": (raw_meta(DEEP), NOT_OURS + "(its metadata is nested more than 32 levels deep)" + ASK),
    "format-version-text": (setting("format_version", "1"), 'not a bptrain model file (format_version is "1", not a whole number)' + ASK),
    "format-version-float": (setting("format_version", 1.0), "not a bptrain model file (format_version is 1.0, not a whole number)" + ASK),
    "format-version-3": (
        setting("format_version", 3),
        "model file format_version 3 is not supported by this bptrain (reads versions 1 to 2); use the bptrain version that wrote it",
    ),
    "unknown-key": (setting("extra", 1), BAD_MODEL + "extra: unknown key" + ASK),
    "missing-loss": (change(lambda a, m: m.pop("loss")), BAD_MODEL + "loss: missing" + ASK),
    "units-zero": (setting("model", "layers", 0, "units", 0), BAD_MODEL + "model.layers[0].units: input should be greater than 0 (got 0)" + ASK),
    "units-text": (setting("model", "layers", 0, "units", "8"), BAD_MODEL + "model.layers[0].units: input should be a valid integer (got '8')" + ASK),
    "unknown-activation": (
        setting("model", "layers", 0, "activation", "relu6"),
        BAD_MODEL + "model.layers[0].activation: unknown activation (got a JSON object)" + ASK,
    ),
    "bias-init-nan": (setting("model", "layers", 0, "bias_init", NAN), BAD_MODEL + "model.layers[0].bias_init: must be a finite number (got nan)" + ASK),
    "too-many-parameters": (
        setting("model", "layers", 0, "units", 10**9),
        BAD_MODEL + "model.layers: 8000000003 parameters, over bptrain's limit of 268435456" + ASK,
    ),
    "n-in": (setting("model", "n_in", 5), BAD_MODEL + "model.n_in: 5 inputs, but the preprocessing makes 4" + ASK),
    "n-out": (
        setting("model", "n_out", 2),
        BAD_MODEL + "model.n_out: 2 output units, but a classification model with this loss and these classes has 3" + ASK,
    ),
    "dtype": (setting("model", "dtype", "float16"), BAD_MODEL + "model.dtype: input should be 'float32' or 'float64' (got 'float16')" + ASK),
    "unknown-loss": (setting("loss", "name", "hinge"), BAD_MODEL + "loss.name: input should be 'binary_cross_entropy', 'cross_entropy', 'huber', 'mae' or 'mse' (got 'hinge')" + ASK),
    "loss-for-another-task": (setting("loss", "name", "mse"), BAD_MODEL + "loss.name: mse does not fit the classification task of preprocessing.task" + ASK),
    "loss-option": (
        setting("loss", "options", {"label_smoothing": 2.0}),
        BAD_MODEL + "loss.options: loss 'cross_entropy': label_smoothing must be a finite number in [0, 1) (got 2.0)" + ASK,
    ),
    "class-weights": (
        setting("loss", "options", {"weight": [1.0, 2.0]}),
        BAD_MODEL + "loss.options.weight: 2 entries for 3 outputs" + ASK,
    ),
    "wrong-shape": (
        array("layers.0.W", lambda w: np.zeros((5, 8), np.float32)),
        BAD_MODEL + "array 'layers.0.W' has shape (5, 8), but the metadata makes it (4, 8)" + ASK,
    ),
    "wrong-dtype": (
        array("layers.0.W", lambda w: w.astype(np.float64)),
        BAD_MODEL + "array 'layers.0.W' has dtype float64, but the metadata makes it float32" + ASK,
    ),
    "missing-array": (array("layers.0.b", None), BAD_MODEL + "array 'layers.0.b' is missing" + ASK),
    "extra-array": (array("x", lambda _: np.zeros(3)), BAD_MODEL + "unexpected array 'x', which the metadata does not describe" + ASK),
    "nan-weights": (
        array("layers.2.b", lambda b: np.full_like(b, NAN)),
        BAD_MODEL + "array 'layers.2.b' holds non-finite values (NaN or infinity)" + ASK,
    ),
    "zero-scale": (
        array("prep.scale", lambda s: np.zeros_like(s)),
        BAD_MODEL + "array 'prep.scale' holds scales that are not positive" + ASK,
    ),
    "object-array": (
        with_member("x.npy", npy_claiming((1,), b"\x80\x04N.", descr="|O")),
        NOT_OURS + "(array 'x' holds Python objects, which bptrain never loads)" + ASK,
    ),
    "complex-array": (
        array("x", lambda _: np.zeros(3, np.complex128)),
        NOT_OURS + "(array 'x' has dtype complex128; bptrain files hold only float32, float64, int32, int64)" + ASK,
    ),
    "text-array": (
        array("x", lambda _: np.array("hello")),
        NOT_OURS + "(array 'x' has dtype <U5; bptrain files hold only float32, float64, int32, int64)" + ASK,
    ),
    "metadata-huge-number": (
        raw_meta('{"format_version": ' + "9" * 5000 + ', "kind": "model"}'),
        NOT_OURS + "(its metadata holds a number too long to read)" + ASK,
    ),
    "corrupted-deflate-stream": (corrupted_deflate, "the file is damaged (a compressed array inside the archive is corrupted)"),
    "header-cut-short": (  # numpy then tokenizes the header, which fails in its own way
        with_member("x.npy", npy_header_text("{'descr': '<f8', 'fortran_order': False, 'shape': (3,") + b"\0" * 24),
        NOT_OURS + "(array 'x' has no readable .npy header: ('EOF in multi-line statement', (2, 0)))" + ASK,
    ),
    "zip-version-15.5": (needs_zip_version, NOT_OURS + "(a member needs a zip feature bptrain does not read: zip file version 15.5)" + ASK),
    "claims-10^13-values": (
        with_member("x.npy", npy_claiming((10**13,), b"\0" * 800)),
        NOT_OURS + "(array 'x': its header claims shape (10000000000000,) (80000000000000 bytes), but the archive holds 800 bytes)" + ASK,
    ),
}


def assert_crafted_model_file_exits_5(runner, run: Path, command: str, variant: str) -> None:
    craft, message = MODEL_VARIANTS[variant]
    path = run / "model.npz"
    craft(path)
    args = ["datasets/iris.csv"] if command == "predict" else []
    result = runner(command, run, *args)
    assert (result.returncode, result.stdout) == (5, ""), result.stderr
    assert result.stderr == f"error: {path}: {message}\n"


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("variant", list(MODEL_VARIANTS))
def test_crafted_model_file_exits_5_naming_the_field(run, command, variant):
    assert_crafted_model_file_exits_5(call_cli, run, command, variant)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("variant", ["wrong-shape", "object-array"])
def test_crafted_model_file_exits_5_from_a_real_process(run, command, variant):
    assert_crafted_model_file_exits_5(run_cli, run, command, variant)


# --- checkpoints -------------------------------------------------------------------------------

BAD_CHECKPOINT = "unusable checkpoint file: "
CHANGED = "unusable bptrain checkpoint file: "
COLUMNS = ["epoch", "step", "lr", "train_loss", "val_loss", "val_accuracy", "val_balanced_accuracy", "val_precision_macro",
           "val_recall_macro", "val_f1_macro", "val_log_loss", "seconds"]
FOR_THIS_RUN = "; was it written by bptrain fit for this run?"


def compressed(path: Path) -> None:
    """The same checkpoint with deflated members: how a zip bomb would be packed."""
    arrays, meta = read(path)
    np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)


def rng(**fields):
    def apply(arrays, meta):
        meta["shuffle_rng"].update(fields)

    return change(apply)


CHECKPOINT_VARIANTS = {
    "position-not-an-object": (setting("position", "x"), BAD_CHECKPOINT + "position: input should be a valid dictionary (got 'x')"),
    "position-epoch-zero": (setting("position", "epoch", 0), BAD_CHECKPOINT + "position.epoch: input should be greater than or equal to 1 (got 0)"),
    "position-lr-nan": (setting("position", "lr", NAN), BAD_CHECKPOINT + "position.lr: must be a finite number (got nan)"),
    "position-rows": (setting("position", "rows", ["x"]), BAD_CHECKPOINT + "position.rows[0]: input should be a valid dictionary (got 'x')"),
    "position-batch": (
        setting("position", "batch", 99),
        CHANGED + "position.batch is 99, but an epoch of this run has 7 batches",
    ),
    "position-rows-count": (
        setting("position", "epoch", 5),
        CHANGED + "position.rows holds 1 epochs, but position.epoch 5 needs 4",
    ),
    "position-row-epoch": (
        change(lambda arrays, meta: meta["position"]["rows"][0].update(epoch=4)),
        CHANGED + "position.rows[0] is the row of epoch 4, not of epoch 1",
    ),
    "position-row-columns": (
        change(lambda arrays, meta: meta["position"]["rows"][0].pop("val_loss")),
        CHANGED + "position.rows[0] has the columns " + ", ".join(sorted(set(COLUMNS) - {"val_loss"})) + ", but this run logs " + ", ".join(COLUMNS),
    ),
    "rng-generator": (rng(bit_generator="MT19937"), BAD_CHECKPOINT + "shuffle_rng.bit_generator: input should be 'PCG64' (got 'MT19937')"),
    "rng-state": (rng(state={"state": -1, "inc": 1}), BAD_CHECKPOINT + "shuffle_rng.state.state: input should be greater than or equal to 0 (got -1)"),
    "rng-not-an-object": (setting("noise_rng", [1, 2]), BAD_CHECKPOINT + "noise_rng: input should be a valid dictionary (got a JSON list)"),
    "early-stopping": (
        setting("early_stopping", "best", "low"),
        BAD_CHECKPOINT + "early_stopping.best: input should be a valid number (got 'low')",
    ),
    "rate": (setting("rate", {"lr": 0.1}), BAD_CHECKPOINT + "rate.best: missing"),
    "data": (setting("data", {"train": "x"}), BAD_CHECKPOINT + "data: input should be a valid list (got a JSON object)"),
    "diagnostics-row-epoch": (
        change(lambda arrays, meta: meta["diagnostics"]["rows"][1].pop("epoch")),
        BAD_CHECKPOINT + "diagnostics.rows[1].epoch: missing",
    ),
    "diagnostics-row-layer": (
        change(lambda arrays, meta: meta["diagnostics"]["rows"][0].update(layer=3)),
        BAD_CHECKPOINT + "diagnostics.rows[0].layer: input should be a valid string (got 3)",
    ),
    "deep-json": (raw_meta(DEEP.replace('"model"', '"checkpoint"')), "the file is damaged (its metadata is nested more than 32 levels deep)"),
    "format-version-text": (setting("format_version", "1"), 'not a bptrain model file (format_version is "1", not a whole number)' + ASK),
    "optimizer-step-count": (
        array("optim/t", lambda t: np.zeros(2, np.int64)),
        CHANGED + "optimizer state: 't' has shape (2,), expected ()",
    ),
    "optimizer-step-count-negative": (
        array("optim/t", lambda t: np.array(np.iinfo(np.int64).min)),
        CHANGED + "optimizer state: 't' is -9223372036854775808, not a count of steps (0 or more)",
    ),
    "optimizer-missing": (array("optim/m.layers.0.W", None), CHANGED + "optimizer state: missing key 'm.layers.0.W'"),
    "weights-shape": (
        array("model/layers.0.W", lambda w: np.zeros((5, 8), np.float32)),
        CHANGED + "model state: 'layers.0.W' has shape (5, 8), expected (4, 8)",
    ),
    "best-weights-shape": (
        array("best/layers.0.b", lambda b: np.zeros(3, np.float32)),
        CHANGED + "best weights: 'layers.0.b' has shape (3,), expected (8,)",
    ),
    "nan-weights": (
        array("model/layers.0.b", lambda b: np.full_like(b, NAN)),
        CHANGED + "array 'model/layers.0.b' holds non-finite values (NaN or infinity)",
    ),
    "order-repeats": (array("order", lambda o: np.zeros_like(o)), CHANGED + "array 'order' is not an order of the 102 training rows"),
    "order-dtype": (array("order", lambda o: o.astype(np.float64)), BAD_CHECKPOINT + "array 'order' has dtype float64, but the metadata makes it int64"),
    "order-missing": (array("order", None), BAD_CHECKPOINT + "array 'order' is missing"),
    "extra-array": (array("junk", lambda _: np.zeros(1)), BAD_CHECKPOINT + "unexpected array 'junk', which no part of the training state holds"),
    "compressed": (compressed, BAD_CHECKPOINT + "array 'model/layers.0.W' is compressed, and bptrain writes checkpoints uncompressed"),
}


def folder_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_crafted_checkpoint_exits_5(runner, run: Path, variant: str) -> None:
    craft, message = CHECKPOINT_VARIANTS[variant]
    folder = run / "checkpoints"
    last = folder / "last.npz"
    (folder / "previous.npz").unlink()
    craft(last)
    before = folder_state(run)
    result = runner("fit", IRIS, "--resume", run, *RESUME)
    assert (result.returncode, result.stdout) == (5, ""), result.stderr
    if message.startswith(CHANGED):
        assert result.stderr == f"error: {last}: {message}{FOR_THIS_RUN}\n"
    else:
        prefix = f"error: {folder}: no usable checkpoint: {last}: {message}"
        assert result.stderr.startswith(prefix) and result.stderr.count("\n") == 1, result.stderr
    assert folder_state(run) == before


@pytest.mark.parametrize("variant", list(CHECKPOINT_VARIANTS))
def test_crafted_checkpoint_exits_5_naming_the_field_and_changes_nothing(run, variant):
    assert_crafted_checkpoint_exits_5(call_cli, run, variant)


@pytest.mark.parametrize("variant", ["position-batch", "order-missing"])  # the two forms of the message
def test_crafted_checkpoint_exits_5_from_a_real_process(run, variant):
    assert_crafted_checkpoint_exits_5(run_cli, run, variant)


def test_a_crafted_last_checkpoint_falls_back_to_previous(run):
    last, previous = run / "checkpoints" / "last.npz", run / "checkpoints" / "previous.npz"
    rewrite(last, lambda arrays, meta: meta["position"].update(epoch=0))
    result = run_cli("fit", IRIS, "--resume", run, *RESUME)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"warning: {last}: unusable checkpoint file: position.epoch: input should be greater than or equal to 1 (got 0); using {previous} instead"
    )
    assert "resuming from the checkpoint at epoch 2, step 7" in result.stderr


@pytest.mark.parametrize("version, shown", [("1", '"1"'), (1.0, "1.0"), (True, "true")])
def test_a_format_version_that_is_not_a_whole_number_is_named_exactly(tmp_path, version, shown):
    path = tmp_path / "model.npz"
    checkpoint.save_model(path, {}, {"format_version": version})
    with pytest.raises(ModelFileError) as info:
        checkpoint.read_arrays(path)
    assert str(info.value) == f"{path}: not a bptrain model file (format_version is {shown}, not a whole number){ASK}"


# --- in process: caps before reading, and the unchanged save path ----------------------------------


def test_a_model_written_by_the_unchanged_save_path_loads(trained):
    from bptrain.runs import modelfile

    model, loss, prep, meta = modelfile.load(trained / "model.npz")
    arrays, _ = checkpoint.read_arrays(trained / "model.npz")
    assert all(np.array_equal(model.state_dict()[k], arrays[k]) for k in model.state_dict())
    assert prep.classes == ["setosa", "versicolor", "virginica"] and meta["kind"] == "model"


def test_a_zip_bomb_is_refused_before_it_is_decompressed(tmp_path, monkeypatch):
    """64 MiB of zeros compressed into ~64 KB: refused from the headers, with no large allocation."""
    path = tmp_path / "model.npz"
    checkpoint.save_model(path, {"w": np.zeros(4)}, {})
    big = np.lib.format.header_data_from_array_1_0(np.zeros(0))
    big["shape"] = (8 * 2**20,)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, big)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.npy", buffer.getvalue() + bytes(64 * 2**20))
    assert path.stat().st_size < 2**20
    monkeypatch.setattr(checkpoint, "MAX_MODEL_BYTES", 16 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as info:
            checkpoint.read_arrays(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value) == (
        f"{path}: the arrays claim 67108896 bytes, over bptrain's limit of 16777216 bytes (0.015625 GiB); "
        "the file was not read. Only files written by bptrain fit within the limits load"
    )
    assert peak < 2**20


def test_metadata_depth_is_measured_without_parsing():
    assert checkpoint._depth('{"a": [1, {"b": "[[[["}]}') == 3
    assert checkpoint._depth("[" * 100_000) == 100_000


def test_too_many_members_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    checkpoint.save_model(path, {f"w{i}": np.zeros(1) for i in range(5)}, {})
    monkeypatch.setattr(npzfile, "MAX_MEMBERS", 4)
    with pytest.raises(ModelFileError, match=r"\(6 members, more than the 4 bptrain reads\)"):
        checkpoint.read_arrays(path)


FIXTURE_0_1 = Path(__file__).resolve().parents[1] / "fixtures" / "model-0.1" / "model.npz"


def test_a_model_file_of_bptrain_0_1_still_loads():
    """tests/fixtures/model-0.1/model.npz: iris, written by bptrain 0.1 (layer specs, version-1 preprocessing)."""
    from bptrain.runs import modelfile

    model, loss, prep, meta = modelfile.load(FIXTURE_0_1)
    assert (meta["kind"], "version" in meta["preprocessing"]) == ("model", False)
    assert prep.features == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    result = run_cli("predict", FIXTURE_0_1, "datasets/iris.csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["prediction", "setosa"]


def test_a_checkpoint_given_as_the_model_is_named_as_such(trained):
    from bptrain.runs import modelfile

    path = trained / "checkpoints" / "last.npz"
    with pytest.raises(ModelFileError) as info:
        modelfile.load(path)
    assert str(info.value) == f"{path}: a checkpoint, not a model file; give the run folder or its model.npz"
