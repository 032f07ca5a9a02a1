"""Model and checkpoint files: plain arrays plus JSON metadata in one .npz, atomic, hashed, never unpickled.

A file holds `__meta__` (a JSON string with `format_version`, `kind` and a `sha256` of all the
other content) and one named array per parameter, statistic or state. A checkpoint folder keeps
the newest training state in `last.npz` and the one before in `previous.npz`; a damaged newest
file falls back to the previous one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import zipfile
from pathlib import Path
from typing import Any, Callable, IO, Iterator

import numpy as np

from bptrain.errors import ModelFileError, StorageError

FORMAT_VERSION = 1
META_KEY = "__meta__"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], keep_previous: Path | None = None) -> None:
    """Write through `write(f)` into a temp file beside `path`, fsync it, then rename it over `path`.

    The file gets the mode a plain open() would give it (0666 minus the umask). With
    `keep_previous`, the file being replaced is first renamed to that name. A full disk, a
    file-size limit or a missing permission raises StorageError naming `path`.
    """
    path = Path(path)
    with writing(path):
        tmp = None
        try:
            while tmp is None:
                # named before it is created, so a signal arriving during the creation still finds it
                tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0666 minus the umask, not mkstemp's 0600
                except FileExistsError:  # another writer's temp file: never ours to remove
                    tmp = None
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            if keep_previous is not None and path.exists():
                os.replace(path, keep_previous)
            os.replace(tmp, path)
            _fsync_folder(path.parent)
        except BaseException:  # a signal too: the temp file never outlives the write
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise


# Why a write failed when the machine, not bptrain or the user's input, is at fault: what to say and do.
_ENVIRONMENT = {
    errno.ENOSPC: ("no space left on the device", "free some space"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or raise the quota"),
    errno.EFBIG: ("the file-size limit was reached", "raise the limit (ulimit -f)"),
    errno.EACCES: ("permission denied", "make the folder writable or choose another one"),
    errno.EPERM: ("operation not permitted", "make the folder writable or choose another one"),
    errno.EROFS: ("read-only file system", "choose a folder on a writable file system"),
    errno.EIO: ("input/output error", "check the disk"),
}


def storage_error(path: Path, error: OSError, doing: str = "write") -> StorageError | None:
    """StorageError "PATH: cannot DOING (why); what to do" for an environment OSError, else None."""
    if error.errno not in _ENVIRONMENT:
        return None
    why, advice = _ENVIRONMENT[error.errno]
    return StorageError(f"{path}: cannot {doing} ({why}); {advice}")


@contextlib.contextmanager
def writing(path: Path, doing: str = "write") -> Iterator[None]:
    """Turn an environment OSError raised while writing `path` into StorageError; others pass through."""
    try:
        yield
    except OSError as e:
        translated = storage_error(path, e, doing)
        if translated is None:
            raise
        raise translated from None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


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


def load_model(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a model or checkpoint file; ModelFileError when it is not a usable one."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ModelFileError(f"{path}: not a bptrain model file (a bare .npy array, not an .npz archive)")
            if META_KEY not in archive.files:
                raise ModelFileError(
                    f"{path}: not a bptrain model file (format_version missing); was it written by bptrain fit?"
                )
            meta = json.loads(str(archive[META_KEY]))
            arrays = {name: archive[name] for name in archive.files if name != META_KEY}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: model file not found") from None
    except ModelFileError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, json.JSONDecodeError, KeyError) as e:
        if _damaged(e):
            raise _damage(path, _why(e)) from None
        error = ModelFileError(
            f"{path}: not a bptrain model file, or a damaged one ({_why(e)}); was it written by bptrain fit?"
        )
        error.damage = f"the file is damaged ({_why(e)})"  # what a file bptrain wrote itself has
        raise error from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version is None:
        raise ModelFileError(f"{path}: not a bptrain model file (format_version missing); was it written by bptrain fit?")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format_version {version} is not supported by this bptrain "
            f"(reads version {FORMAT_VERSION}); use the bptrain version that wrote it"
        )
    if "sha256" in meta and content_hash(arrays, meta) != meta["sha256"]:
        raise _damage(path, "its content does not match its sha256")
    return arrays, meta


# --- checkpoints ------------------------------------------------------------------------------

LAST, PREVIOUS = "last.npz", "previous.npz"


def save_checkpoint(folder: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write `folder/last.npz`, keeping the one it replaces as `previous.npz`."""
    folder = Path(folder)
    with writing(folder, "create the folder"):
        folder.mkdir(exist_ok=True)
    save_model(folder / LAST, arrays, meta, kind="checkpoint", keep_previous=folder / PREVIOUS)


def load_checkpoint(folder: Path, warn=lambda message: None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The newest usable checkpoint in `folder`: last.npz, else previous.npz (with a warning)."""
    folder = Path(folder)
    problems = []
    for name in (LAST, PREVIOUS):
        path = folder / name
        if not path.exists():
            continue
        try:
            arrays, meta = load_model(path)
        except ModelFileError as e:
            problems.append(f"{path}: {getattr(e, 'damage', None) or 'the file is damaged'}")
            continue
        if meta.get("kind") != "checkpoint":
            problems.append(f"{path}: not a checkpoint (kind {meta.get('kind')!r})")
            continue
        for problem in problems:
            warn(f"{problem}; using {path} instead")
        return arrays, meta
    if problems:
        raise ModelFileError(f"{folder}: no usable checkpoint: " + "; ".join(problems))
    raise ModelFileError(f"{folder}: no checkpoint to resume from; the run stopped before saving one, so start it again")


def remove_stray_temp_files(folder: Path) -> list[Path]:
    """Delete the `.*.tmp` files an interrupted atomic write left in `folder` (and checkpoints/)."""
    removed = []
    for pattern in (".*.tmp", "checkpoints/.*.tmp"):
        for path in Path(folder).glob(pattern):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _fsync_folder(folder: Path) -> None:
    """Make the renames in `folder` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _damage(path: Path, why: str) -> ModelFileError:
    error = ModelFileError(f"{path}: the file is damaged ({why})")
    error.damage = f"the file is damaged ({why})"
    return error


def _damaged(exc: Exception) -> bool:
    """True when the file is an archive whose content is cut short or corrupted."""
    text = str(exc)
    return isinstance(exc, EOFError) or "CRC" in text or "truncated" in text.lower() or "Truncated" in text


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
    if isinstance(exc, json.JSONDecodeError):
        return "its metadata is not valid JSON"
    return type(exc).__name__
