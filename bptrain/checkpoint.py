"""Model files: plain arrays plus JSON metadata in one .npz, written atomically, loaded without pickle.

A model file holds `__meta__` (a JSON string with `format_version`, the layer spec, the loss and
the preprocessing facts) and one array per parameter and preprocessing statistic.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, IO

import numpy as np

from bptrain.errors import ModelFileError

FORMAT_VERSION = 1
META_KEY = "__meta__"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through `write(f)` into a temp file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def save_model(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Save `arrays` and `meta` (JSON-able) as a bptrain model file."""
    if META_KEY in arrays:
        raise ValueError(f"array name {META_KEY!r} is reserved")
    record = {"format_version": FORMAT_VERSION, **meta}
    payload = {META_KEY: np.array(json.dumps(record, sort_keys=True)), **arrays}
    atomic_write(path, lambda f: np.savez(f, **payload))


def load_model(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a model file; ModelFileError when it is not a usable one."""
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
        raise ModelFileError(
            f"{path}: not a bptrain model file, or a damaged one ({_why(e)}); was it written by bptrain fit?"
        ) from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version is None:
        raise ModelFileError(f"{path}: not a bptrain model file (format_version missing); was it written by bptrain fit?")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format_version {version} is not supported by this bptrain "
            f"(reads version {FORMAT_VERSION}); use the bptrain version that wrote it"
        )
    return arrays, meta


def _why(exc: Exception) -> str:
    """What was wrong with a file that failed to load, in bptrain's words."""
    if isinstance(exc, zipfile.BadZipFile):
        return "not an .npz archive"
    if isinstance(exc, ValueError) and "pickle" in str(exc):
        return "it is not a NumPy archive, or it holds Python objects, which bptrain never loads"
    if isinstance(exc, EOFError):
        return "the file ends early"
    if isinstance(exc, json.JSONDecodeError):
        return "its metadata is not valid JSON"
    return type(exc).__name__
