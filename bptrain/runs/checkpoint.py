"""Model and checkpoint files: plain arrays plus JSON metadata in one .npz, atomic, hashed, never unpickled.

A file holds `__meta__` (a JSON string with `format_version`, `kind` and a `sha256` of all the
other content) and one named array per parameter, statistic or state. A checkpoint folder keeps
the newest training state in `last.npz` and the one before in `previous.npz`; a damaged newest
file falls back to the previous one. Files are untrusted input when read: the metadata is parsed
only after the archive's headers pass the caps (npzfile), and no array is read before the headers
match what the metadata implies (modelfile).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from bptrain.errors import ModelFileError
from bptrain.fileio import atomic_write, writing
from bptrain.runs import npzfile

FORMAT_VERSION = 2  # 2: categorical columns record the form of their training values (1 is read too)
READS = (1, 2)
META_KEY = npzfile.META_KEY


def content_hash(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """SHA-256 over the metadata (without its hash) and every array's name, dtype, shape and bytes."""
    digest = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_model(
    path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], kind: str = "model", keep_previous: Path | None = None
) -> None:
    """Save `arrays` and `meta` (JSON-able) as a bptrain file of `kind` ("model" or "checkpoint")."""
    if META_KEY in arrays:
        raise ValueError(f"array name {META_KEY!r} is reserved")
    record = {"format_version": FORMAT_VERSION, "kind": kind, **meta}
    record["sha256"] = content_hash(arrays, record)
    payload = {META_KEY: np.array(json.dumps(record, sort_keys=True)), **arrays}
    atomic_write(path, lambda f: np.savez(f, **payload), keep_previous)


MAX_MODEL_BYTES = 2 * 2**30  # of arrays in a model file; a checkpoint holds up to four copies of the weights
MAX_CHECKPOINT_BYTES = 8 * 2**30
MAX_DEPTH = 32  # of nested JSON lists and objects in the metadata


def read_arrays(path: Path, expect: Callable[[BptrainFile], dict[str, Expected]] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a model or checkpoint file; ModelFileError when it is not a usable one.

    `expect(file)` may check the metadata and return the dtype and shape of every array the file
    must hold; the headers are compared with them before any array is read.
    """
    with open_file(path) as file:
        expected = expect(file) if expect is not None else None
        return file.read(expected), file.meta


@dataclass(frozen=True)
class Expected:
    """The dtype (None: any of the array dtypes) and shape an array must have."""

    shape: tuple[int, ...]
    dtype: str | None = None


class BptrainFile:
    """A bptrain file opened for reading: metadata parsed and version checked, every array header
    checked against the caps, no array read yet."""

    def __init__(self, path: Path, reader: npzfile.NpzReader, meta: dict[str, Any]):
        self.path, self._reader, self.meta = path, reader, meta
        self.headers = {k: v for k, v in reader.headers.items() if k != META_KEY}

    def read(self, expected: dict[str, Expected] | None = None) -> dict[str, np.ndarray]:
        """Every array, one by one, after comparing the headers with `expected`; then the sha256 is checked."""
        if expected is not None:
            self._compare(expected)
        with _translated(self.path):
            arrays = {name: self._reader.read(name) for name in self.headers}
        if "sha256" in self.meta and content_hash(arrays, self.meta) != self.meta["sha256"]:
            raise _damage(self.path, "its content does not match its sha256")
        return arrays

    def _compare(self, expected: dict[str, Expected]) -> None:
        for name, want in expected.items():
            header = self.headers.get(name)
            if header is None:
                raise self.invalid(f"array {name!r} is missing")
            if header.shape != tuple(want.shape):
                raise self.invalid(f"array {name!r} has shape {header.shape}, but the metadata makes it {tuple(want.shape)}")
            if want.dtype is not None and header.dtype != np.dtype(want.dtype):
                raise self.invalid(f"array {name!r} has dtype {header.dtype}, but the metadata makes it {want.dtype}")
        extra = sorted(set(self.headers) - set(expected))
        if extra:
            raise self.invalid(f"unexpected array {extra[0]!r}, which the metadata does not describe")

    def invalid(self, why: str) -> ModelFileError:
        """The error for a file whose metadata or arrays do not make a usable model or checkpoint."""
        kind = "checkpoint" if self.meta.get("kind") == "checkpoint" else "model"
        error = ModelFileError(f"{self.path}: unusable bptrain {kind} file: {why}; was it written by bptrain fit?")
        error.damage = f"unusable {kind} file: {why}"
        return error


@contextmanager
def open_file(path: Path) -> Iterator[BptrainFile]:
    """A bptrain file with its metadata read (format_version checked) and its arrays not yet read."""
    path = Path(path)
    with _translated(path):
        reader = npzfile.NpzReader(path, MAX_CHECKPOINT_BYTES)
    with reader:
        if META_KEY not in reader.headers:
            raise ModelFileError(f"{path}: not a bptrain model file (format_version missing); was it written by bptrain fit?")
        with _translated(path):
            text = str(reader.read(META_KEY))
        file = BptrainFile(path, reader, _parse_meta(path, text))
        _check_claims(file)
        yield file


def _check_claims(file: BptrainFile) -> None:
    """The arrays' total under the cap of the file's kind. A checkpoint's arrays must also be stored
    uncompressed, as bptrain writes them: its shapes are checked against the run's model only after
    reading, so its size on disk is what bounds the memory reading takes."""
    checkpoint = file.meta.get("kind") == "checkpoint"
    cap = MAX_CHECKPOINT_BYTES if checkpoint else MAX_MODEL_BYTES
    claimed = sum(h.nbytes for h in file.headers.values())
    if claimed > cap:
        raise npzfile.too_large(file.path, "the arrays claim", claimed, cap)
    packed = [h.name for h in file.headers.values() if h.info.compress_type != zipfile.ZIP_STORED]
    if checkpoint and packed:
        raise file.invalid(f"array {packed[0]!r} is compressed, and bptrain writes checkpoints uncompressed")


def _parse_meta(path: Path, text: str) -> dict[str, Any]:
    """The metadata JSON, nested at most MAX_DEPTH deep (checked before parsing), with an exact format_version."""
    if _depth(text) > MAX_DEPTH:
        raise npzfile.unusable(path, f"its metadata is nested more than {MAX_DEPTH} levels deep")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        raise npzfile.unusable(path, "its metadata is not valid JSON") from None
    except ValueError:  # Python refuses to read an integer of more than 4300 digits
        raise npzfile.unusable(path, "its metadata holds a number too long to read") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise ModelFileError(f"{path}: not a bptrain model file (format_version missing); was it written by bptrain fit?")
    version = meta["format_version"]
    if type(version) is not int:
        raise ModelFileError(
            f"{path}: not a bptrain model file (format_version is {json.dumps(version)}, not a whole number); was it written by bptrain fit?"
        )
    if version not in READS:
        raise ModelFileError(
            f"{path}: model file format_version {version} is not supported by this bptrain "
            f"(reads versions {READS[0]} to {READS[-1]}); use the bptrain version that wrote it"
        )
    return meta


def _depth(text: str) -> int:
    """How deeply the JSON `text` nests lists and objects, counted without parsing it."""
    skeleton = re.sub(r'"(?:[^"\\]|\\.)*"', "", text).encode("utf-8", "replace")
    codes = np.frombuffer(skeleton, dtype=np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int64) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


@contextmanager
def _translated(path: Path) -> Iterator[None]:
    """Turn what the zip and .npy readers raise on a bad file into a ModelFileError naming it."""
    try:
        yield
    except FileNotFoundError:
        raise ModelFileError(f"{path}: model file not found") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError, zlib.error, NotImplementedError) as e:
        if _damaged(e):
            raise _damage(path, _why(e)) from None
        raise npzfile.unusable(path, _why(e)) from None


# --- checkpoints ------------------------------------------------------------------------------

LAST, PREVIOUS = "last.npz", "previous.npz"


def save_checkpoint(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write `folder/last.npz`, keeping the one it replaces as `previous.npz`."""
    folder = Path(folder)
    with writing(folder, "create the folder"):
        folder.mkdir(exist_ok=True)
    save_model(folder / LAST, arrays, meta, kind="checkpoint", keep_previous=folder / PREVIOUS)


class Loaded(NamedTuple):
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: Path


def load_checkpoint(folder: Path, warn=lambda message: None) -> Loaded:
    """The newest usable checkpoint in `folder`: last.npz, else previous.npz (with a warning)."""
    folder = Path(folder)
    problems = []
    for name in (LAST, PREVIOUS):
        path = folder / name
        if not path.exists():
            continue
        try:
            arrays, meta = read_arrays(path, expect=_checkpoint_layout)
        except ModelFileError as e:
            problems.append(f"{path}: {getattr(e, 'damage', None) or str(e).removeprefix(f'{path}: ')}")
            continue
        for problem in problems:
            warn(f"{problem}; using {path} instead")
        return Loaded(arrays, meta, path)
    if problems:
        raise ModelFileError(f"{folder}: no usable checkpoint: " + "; ".join(problems))
    raise ModelFileError(f"{folder}: no checkpoint to resume from; the run stopped before saving one, so start it again")


def _checkpoint_layout(file: BptrainFile) -> dict[str, Expected]:
    """The arrays a checkpoint must hold, once its kind and metadata are checked."""
    from bptrain.runs.modelfile import check_checkpoint  # imported here: modelfile imports this module

    kind = file.meta.get("kind")
    if kind != "checkpoint":
        error = ModelFileError(f"{file.path}: not a checkpoint (kind {kind!r})")
        error.damage = f"not a checkpoint (kind {kind!r})"
        raise error
    return check_checkpoint(file)


def remove_stray_temp_files(folder: Path) -> list[Path]:
    """Delete the `.*.tmp` files an interrupted atomic write left in `folder` (and checkpoints/)."""
    removed = []
    for pattern in (".*.tmp", "checkpoints/.*.tmp"):
        for path in Path(folder).glob(pattern):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _damage(path: Path, why: str) -> ModelFileError:
    error = ModelFileError(f"{path}: the file is damaged ({why})")
    error.damage = f"the file is damaged ({why})"
    return error


def _damaged(exc: Exception) -> bool:
    """True when the file is an archive whose content is cut short or corrupted."""
    text = str(exc)
    return isinstance(exc, (EOFError, zlib.error)) or "CRC" in text or "truncated" in text.lower()


def _why(exc: Exception) -> str:
    """What was wrong with a file that failed to load, in bptrain's words."""
    if "CRC" in str(exc):
        return "a checksum inside the archive does not match"
    if isinstance(exc, zipfile.BadZipFile):
        return "no archive directory: cut short, or not an .npz file"
    if isinstance(exc, ValueError) and "pickle" in str(exc):
        return "it is not a NumPy archive, or it holds Python objects, which bptrain never loads"
    if isinstance(exc, EOFError):
        return "the file ends early"
    if isinstance(exc, zlib.error):
        return "a compressed array inside the archive is corrupted"
    if isinstance(exc, NotImplementedError):  # zipfile's word for a member it cannot read, e.g. "zip file version 15.5"
        return f"a member needs a zip feature bptrain does not read: {exc}"
    return type(exc).__name__
