"""Model files: round trip without pickle, clear refusals, atomic writes, run folders."""

import os
import re

import numpy as np
import pytest

from bptrain import fileio
from bptrain.errors import ConfigError, ModelFileError
from bptrain.runs import checkpoint
from bptrain.runs import folder as runs


def test_round_trip_with_allow_pickle_false(tmp_path):
    path = tmp_path / "model.npz"
    arrays = {"layers.0.W": np.arange(6, dtype=np.float32).reshape(2, 3), "prep.mean": np.array([1.5, 2.5])}
    checkpoint.save_model(path, arrays, {"task": "regression", "classes": []})
    with np.load(path, allow_pickle=False) as archive:
        assert set(archive.files) == {"__meta__", "layers.0.W", "prep.mean"}
    loaded, meta = checkpoint.read_arrays(path)
    assert meta == {"format_version": 2, "kind": "model", "task": "regression", "classes": [], "sha256": meta["sha256"]}
    assert len(meta["sha256"]) == 64
    assert all(np.array_equal(loaded[k], v) and loaded[k].dtype == v.dtype for k, v in arrays.items())


def test_files_that_are_not_models_are_refused(tmp_path):
    bare = tmp_path / "bare.npz"
    np.savez(bare, w=np.zeros(3))
    with pytest.raises(ModelFileError) as info:
        checkpoint.read_arrays(bare)
    assert str(info.value) == f"{bare}: not a bptrain model file (format_version missing); was it written by bptrain fit?"

    text = tmp_path / "model.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match=r"model.npz: not a bptrain model file, or a damaged one \(.*\); was it written by bptrain fit\?"):
        checkpoint.read_arrays(text)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __meta__=np.array('{"format_version": 1}'), w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelFileError, match="damaged"):
        checkpoint.read_arrays(pickled)


def test_truncated_model_file_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    checkpoint.save_model(path, {"w": np.ones(1000)}, {})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ModelFileError, match="damaged"):
        checkpoint.read_arrays(path)


def test_a_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, __meta__=np.array('{"format_version": 99}'))
    with pytest.raises(ModelFileError, match="format_version 99 is not supported by this bptrain"):
        checkpoint.read_arrays(path)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.txt"
    fileio.atomic_write_text(path, "old")

    def fail(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        fileio.atomic_write(path, fail)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_run_folders_never_collide(tmp_path):
    first = runs.new_run_dir(tmp_path, "iris", now=0)
    second = runs.new_run_dir(tmp_path, "iris", now=0)
    assert re.fullmatch(r"iris-\d{8}-\d{6}", first.name)
    assert second.name == first.name + "-2"


@pytest.mark.parametrize("name", ["../x", "a/b", "", "a b"])
def test_run_names_are_checked(tmp_path, name):
    with pytest.raises(ConfigError, match="may hold only letters, digits"):
        runs.new_run_dir(tmp_path, name)


@pytest.mark.parametrize("name", [".", "..", "..."])
def test_a_run_name_of_only_dots_is_refused_as_the_config_refuses_it(tmp_path, name):
    with pytest.raises(ConfigError) as info:
        runs.new_run_dir(tmp_path, name)
    assert str(info.value) == f"run name {name!r} must hold a letter or digit, not only dots; e.g. --name iris"
    assert not any(tmp_path.iterdir())
